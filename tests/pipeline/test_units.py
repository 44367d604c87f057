"""Unit tests of the build's plumbing (lock, output folder, staging), which the builder
reaches only through a full build elsewhere."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from rnamotif_data.errors import StoreError, StructureError
from rnamotif_data.pipeline.staging import clean_staging, part_exists, part_url, read_part, write_part
from rnamotif_data.storage.layout import ARRAY_DTYPES, ARRAYS
from rnamotif_data.storage.lock import LOCK_FILE, BuildLock
from rnamotif_data.storage.outdir import check_out


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    with BuildLock(str(tmp_path)) as lock:
        held = json.loads((tmp_path / LOCK_FILE).read_text())
        assert held["pid"] == os.getpid() and lock.held
        with pytest.raises(StoreError, match=rf"another build is writing this store .*pid {os.getpid()}"):
            BuildLock(str(tmp_path)).acquire()
    assert not (tmp_path / LOCK_FILE).exists()  # released on exit


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    import socket

    (tmp_path / LOCK_FILE).write_text(json.dumps({"user": "x", "host": socket.gethostname(), "pid": int(dead),
                                                  "started": "2026-01-01T00:00:00+00:00"}))
    with caplog.at_level(logging.WARNING), BuildLock(str(tmp_path)):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"stale lock of process {dead}" in caplog.text


def test_lock_of_another_host_is_never_taken(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"user": "u", "host": "elsewhere.example", "pid": 1,
                                                  "started": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(StoreError, match=r"u@elsewhere\.example.*remove .*\.rnamotif-build\.lock"):
        BuildLock(str(tmp_path)).acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["host"] == "elsewhere.example"  # untouched


def test_output_folder_checks_refuse_what_the_package_did_not_write(tmp_path, demo_store):
    assert check_out(str(tmp_path / "new"), overwrite=False) is None
    (tmp_path / "empty").mkdir()
    assert check_out(str(tmp_path / "empty"), overwrite=True) is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        check_out(str(tmp_path / "file"), overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(StoreError, match=r"not an rnamotif-data store.*thesis\.tex.*nothing was changed"):
        check_out(str(tmp_path / "mine"), overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").exists()
    import shutil

    store = tmp_path / "store.zarr"
    shutil.copytree(demo_store, store)
    assert check_out(str(store), overwrite=True)["build_state"] == "complete"
    (store / "notes.md").write_text("mine")
    with pytest.raises(StoreError, match=r"did not write \(notes\.md\)"):
        check_out(str(store), overwrite=True)


def test_staging_round_trip_keeps_dtypes_and_records(tmp_path):
    rng = np.random.default_rng(0)
    samples = [{"meta": {"sample_id": f"s{i}"}, **{name: rng.random((4, 4, 4)) > 0.5 if name == "zone" else
                                                    (rng.random((4, 4, 4)) * 3).astype(np.float32)
                                                    for name in ARRAYS}} for i in range(3)]
    write_part(str(tmp_path), "6V5B_EMD-21051", samples, [{"reason": "x"}], False, extra={"seconds": 1.5})
    assert part_exists(str(tmp_path), "6V5B_EMD-21051")
    assert not list(tmp_path.rglob("*.tmp-*"))  # written atomically
    back = read_part(str(tmp_path), "6V5B_EMD-21051", arrays=True)
    assert [m["sample_id"] for m in back["meta"]] == ["s0", "s1", "s2"] and back["seconds"] == 1.5
    assert back["failures"] == [{"reason": "x"}] and back["shape"] == [4, 4, 4]
    for name in ARRAYS:
        assert back[name].dtype == np.dtype(ARRAY_DTYPES[name]) and back[name].shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(back["zone"], np.stack([s["zone"] for s in samples]))
    empty = write_part(str(tmp_path), "empty", [], [], True)
    assert empty is None and read_part(str(tmp_path), "empty")["entry_failed"] is True
    clean_staging(str(tmp_path))
    assert not os.path.exists(os.path.dirname(part_url(str(tmp_path), "empty")))


# --- issue 24: where the time goes -----------------------------------------------------------

def test_stage_clock_charges_nested_stages_to_the_inner_one():
    import time as _time

    from rnamotif_data.pipeline.timing import StageClock

    clock = StageClock()
    with clock("background"):
        _time.sleep(0.02)
        with clock("quality"):
            _time.sleep(0.05)
        _time.sleep(0.02)
    assert 0.035 <= clock.wall["background"] < 0.05 + 0.03
    assert 0.05 <= clock.wall["quality"] < 0.05 + 0.03
    assert clock.cpu["quality"] < 0.02  # sleeping costs no CPU
    with pytest.raises(ValueError, match="unknown build stage 'loading'"):
        with clock("loading"):
            pass


def test_build_records_stage_times_and_writes_a_profile(tmp_path, capsys):
    """The summary prints a line per stage, the store's attributes carry the sums (not
    hashed: verify passes), and --profile writes one row per entry."""
    import pyarrow.csv as pacsv

    from rnamotif_data.cli.build import main as build_main
    from rnamotif_data.pipeline.timing import STAGES
    from rnamotif_data.release.verify import verify_store
    from rnamotif_data.storage.layout import get_attrs

    from ..conftest import DEMO

    out, profile = tmp_path / "d.zarr", tmp_path / "p" / "profile.csv"
    args = ["--manifest", str(DEMO / "manifest.parquet"), "--mirror", str(DEMO / "mirror"), "--scheduler",
            "synchronous", "--no-progress", "--out", str(out)]
    from rnamotif_data.cli import run

    assert run(build_main, [*args, "--profile", str(profile)]) == 0
    printed = capsys.readouterr().out
    for stage in STAGES:
        assert f"  {stage} " in printed
    timing = get_attrs(str(out))["build_timing"]
    assert set(timing["cpu"]) == set(STAGES) and timing["summed_over_entries"] == 1
    assert timing["cpu"]["quality"] > 0 and timing["cpu"]["read"] > 0 and timing["cpu"]["writing"] > 0
    assert timing["manifest_rows"] == 5 and 0 < timing["cpu_ms_per_row"] < 10_000
    problems, _ = verify_store(str(out), values=False)
    assert problems == []
    table = pacsv.read_csv(profile).to_pylist()
    assert len(table) == 1 and table[0]["pdb_id"] == "6V5B" and table[0]["manifest_rows"] == 5
    assert table[0]["map_shape"].count("x") == 2 and table[0]["model_atoms"] > 1000
    assert table[0]["quality_cpu_s"] > 0
    # a second --profile to the same file is refused; a bad suffix is a one-line error
    assert run(build_main, [*args, "--profile", str(profile)]) == 1
    assert "--profile" in capsys.readouterr().err
    assert run(build_main, [*args, "--profile", str(tmp_path / "p.txt")]) == 1
    assert "expected a .csv or .parquet file name" in capsys.readouterr().err


def test_pairs_rnapolis_reads_the_closing_pairs_the_rule_misses_and_is_recorded(demo_store, tmp_path):
    """``rnamotif build --pairs rnapolis`` (issue 25, item 1): the small demo's rows keep
    their types, and the two rows whose outer closing pair the geometric rule cannot see
    read it from RNApolis instead of falling back; the choice is in the config (and its
    hash), while a default build keeps the hash it had before the option existed."""
    pytest.importorskip("rnapolis", reason="the [annotate] extra (RNApolis) is not installed")
    from pathlib import Path

    import pandas as pd
    import zarr

    from rnamotif_data.cli.build import main as build_main
    from rnamotif_data.pipeline.config import BuildConfig

    out = tmp_path / "polis.zarr"
    assert build_main(["--demo", "small", "--out", str(out), "--scheduler", "synchronous", "--no-progress",
                       "--pairs", "rnapolis"]) == 0
    geo = pd.read_parquet(Path(demo_store) / "metadata.parquet")
    pol = pd.read_parquet(out / "metadata.parquet")
    assert pol["motif_type"].tolist() == geo["motif_type"].tolist()
    assert geo["loop_note"].notna().sum() == 2 and pol["loop_note"].isna().all()
    attrs = zarr.open_group(str(out), mode="r").attrs
    assert attrs["build_config"]["pairs"] == "rnapolis"
    assert "pairs" not in BuildConfig().to_dict()
    assert attrs["config_hash"] != zarr.open_group(demo_store, mode="r").attrs["config_hash"]


def test_pairs_rnapolis_without_the_extra_is_one_line(monkeypatch, tmp_path):
    import sys

    from rnamotif_data.cli.build import main as build_main
    from rnamotif_data.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "rnapolis", None)
    with pytest.raises(MissingDependencyError, match=r"--pairs rnapolis needs RNApolis.*rnamotif-data\[annotate\]"):
        build_main(["--demo", "small", "--out", str(tmp_path / "x.zarr"), "--pairs", "rnapolis"])
    assert not (tmp_path / "x.zarr").exists()


def test_one_model_file_is_read_and_sampled_once_per_process(tmp_path):
    """Entries whose model files have the same bytes (a cryoDRGN ensemble under several
    IDs) share one parsed model, KD-tree and Q-score sample points, each under its own name
    and path; the shared arrays are read-only; other bytes or another quality config make a
    new state."""
    import shutil
    from pathlib import Path

    from rnamotif_data.em.quality import QualityConfig
    from rnamotif_data.errors import StructureError
    from rnamotif_data.pipeline.context import ModelContexts
    from rnamotif_data.samples.background import BackgroundConfig

    src = Path(__file__).resolve().parents[2] / "demo" / "mirror" / "pdb" / "6v5b.pdb"
    a, b = tmp_path / "a.pdb", tmp_path / "b.pdb"
    shutil.copy(src, a)
    shutil.copy(src, b)
    models = ModelContexts()
    first = models.enter(a, "PDB_A", QualityConfig())
    second = models.enter(b, "PDB_B", QualityConfig())
    assert (first.model.name, second.model.name) == ("PDB_A", "PDB_B")
    assert second.model.path == str(b)
    assert second.context is first.context and second.model.atoms is first.model.atoms
    assert first.memo is None and second.memo is first.context.memo  # the memo serves from the second map on
    with pytest.raises(ValueError, match="read-only"):
        second.model.atoms.xyz[0, 0] = 0.0
    partners = second.context.partners("geometric")
    assert second.context.partners("geometric") is partners and not partners.flags.writeable
    pool = first.context.background_pool(first.model, first.model.atoms.xyz[:10], BackgroundConfig())
    assert second.context.background_pool(second.model, first.model.atoms.xyz[:10], BackgroundConfig()) is pool
    assert first.context.background_pool(first.model, first.model.atoms.xyz[:9], BackgroundConfig()) is not pool
    assert models.enter(b, "PDB_B", QualityConfig(q_max_tries=30)).context.points is not first.context.points
    as_cif = tmp_path / "same-bytes.cif"  # the same bytes read as mmCIF are another parse
    shutil.copy(src, as_cif)
    models.enter(a, "PDB_A", QualityConfig())
    with pytest.raises(StructureError):
        models.enter(as_cif, "PDB_C", QualityConfig())
    assert models.current() is None  # the failed read keeps nothing
    text = src.read_text().splitlines(keepends=True)
    b.write_text("".join(text[:-40] + text[-2:]))  # the last residues' atoms dropped
    changed = models.enter(b, "PDB_B", QualityConfig())
    assert changed.model.atoms is not first.model.atoms and changed.memo is None
    forgetful = ModelContexts(keep=False)
    assert forgetful.enter(a, "PDB_A", QualityConfig()).context is not forgetful.enter(a, "PDB_A", QualityConfig()).context


def test_model_memo_keeps_what_fits_its_budget_read_only_and_nothing_that_failed(rna_model):
    from rnamotif_data.pipeline.memo import ModelMemo
    from rnamotif_data.samples.cubes import atoms_key, label_cube

    motif = rna_model.select("D:14-16,88-90")
    one = label_cube(motif)
    memo = ModelMemo(budget=int(1.5 * one.nbytes))
    made = []

    def make():
        made.append(1)
        return label_cube(motif)

    key = ("cube", atoms_key(motif.xyz))
    first = memo.get(key, make)
    assert memo.get(key, make) is first and len(made) == 1 and memo.hits == 1
    assert not first.labels.flags.writeable and memo.nbytes == one.nbytes
    other = rna_model.select("D:19-22,82-85")
    assert atoms_key(other.xyz) != key[1] and atoms_key(motif.xyz[::-1]) != key[1]
    memo.get(("cube", atoms_key(other.xyz)), lambda: label_cube(other))  # over budget: made, not kept
    assert memo.nbytes == one.nbytes and len(memo) == 1

    def broken():
        raise StructureError("motif has no heavy atoms")

    with pytest.raises(StructureError, match="no heavy atoms"):
        memo.get(("cube", b"x"), broken)
    assert ("cube", b"x") not in memo.keys()
