"""Faults of the second campaign (issue 39), the remaining cases: a full disk gives one line
naming the file and leaves no temporary file, refused option pairs, a non-CoSSMos table,
and the README walk's friction. Each test was checked to fail before its fix."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from rnamotif_data.cli import run

from .conftest import DEMO, REPO


def _run(main, argv, capsys) -> tuple[int, str]:
    rc = run(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


# 1 ------------------------------------------------------------ a full disk: one line, no temporary file
def test_a_full_disk_in_the_hdf5_export_is_one_line_and_leaves_no_tmp(demo_store, tmp_path, capsys, monkeypatch):
    pytest.importorskip("h5py")
    import h5py

    from rnamotif_data.cli.export import main

    class FullFile(h5py.File):
        def create_dataset(self, *args, **kwargs):
            _enospc()

    monkeypatch.setattr(h5py, "File", FullFile)
    out = tmp_path / "x.h5"
    rc, err = _run(main, [demo_store, "--format", "hdf5", "--out", out], capsys)
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert f"{out}: the HDF5 file could not be written (disk full?" in err
    assert list(tmp_path.iterdir()) == []


def test_the_hdf5_export_checks_free_space_first(demo_store, tmp_path, capsys, monkeypatch):
    pytest.importorskip("h5py")
    import shutil

    from rnamotif_data.cli.export import main

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    out = tmp_path / "x.h5"
    rc, err = _run(main, [demo_store, "--format", "hdf5", "--out", out], capsys)
    assert rc == 1 and "MB free there, the export needs about" in err and str(out) in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fault", ["oserror", "torch"])
def test_a_full_disk_writing_a_checkpoint_is_one_line_and_leaves_no_tmp(tmp_path, monkeypatch, fault):
    pytest.importorskip("torch")
    from rnamotif_data.errors import DiskFullError, RNAMotifError
    from rnamotif_data.learn import checkpoints

    def full(obj, path):
        Path(path).write_bytes(b"half")
        if fault == "torch":
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing "
                               "file data/0: file write failed")
        _enospc()

    monkeypatch.setattr(checkpoints.torch, "save", full)
    with pytest.raises(DiskFullError) as info:
        checkpoints.save_checkpoint({"a": 1}, tmp_path / "best.pt")
    assert isinstance(info.value, RNAMotifError)
    assert str(info.value).startswith(f"{tmp_path / 'best.pt'}: the checkpoint could not be written (disk full?")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_in_a_dask_build_prints_no_worker_traceback(tmp_path):
    """The default (LocalCluster) build: a worker logged the failed task with its traceback
    before the build's good last line. One worker process, writes limited to 100 KiB
    (``ulimit -f`` gives EFBIG, as a full disk gives ENOSPC)."""
    pytest.importorskip("distributed")
    out = tmp_path / "s.zarr"
    script = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (102400, "
              "resource.getrlimit(resource.RLIMIT_FSIZE)[1])); from rnamotif_data.cli import main; "
              "sys.exit(main(sys.argv[1:]))")
    args = ["build", "--manifest", DEMO / "manifest.parquet", "--mirror", DEMO / "mirror", "--no-progress",
            "--workers", "1", "--out", out]
    r = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                       timeout=300)
    assert r.returncode == 1, r.stderr
    assert "the build stopped while staging" in r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr and "Compute Failed" not in r.stderr, r.stderr


# 2 ------------------------------------------------------------ --split with --all-folds
def test_train_refuses_split_with_all_folds(tmp_path, capsys):
    pytest.importorskip("torch")
    from rnamotif_data.cli.train import main

    rc, err = _run(main, ["--root", tmp_path / "missing.zarr", "--out", tmp_path / "run", "--spl", "fold2",
                          "--all-folds"], capsys)  # an abbreviation, as argparse allows
    assert rc == 1 and err.strip() == ("error: --split fold2 and --all-folds: --all-folds trains every fold; "
                                       "give one of them")
    assert not (tmp_path / "run").exists()


def test_train_without_split_still_uses_fold1(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    from rnamotif_data.cli import train as cli_train

    seen = {}
    monkeypatch.setattr(cli_train, "train", lambda cfg, **kw: seen.setdefault("split", cfg.split) and {})
    monkeypatch.setattr(cli_train, "train_all_folds", lambda cfg, **kw: seen.setdefault("all", True))
    assert cli_train.main(["--root", str(tmp_path), "--out", str(tmp_path / "run")]) == 0
    assert seen["split"] == "fold1"
    assert cli_train.main(["--root", str(tmp_path), "--out", str(tmp_path / "run"), "--all-folds"]) == 0
    assert seen["all"]


# 3 ------------------------------------------------------------ manifest import cossmos of another file
def test_importing_a_file_that_is_not_cossmos_is_one_line_naming_it(tmp_path, capsys):
    from rnamotif_data.cli.manifest import main

    bad = tmp_path / "folds.csv"
    bad.write_text("pdb_id,emdb_id,fold\n6V5B,EMD-21051,1\n")
    out = tmp_path / "m.parquet"
    rc, err = _run(main, ["import", "cossmos", bad, "--out", out], capsys)
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {bad}: not a CoSSMos export: expected a header line with the columns pdb, Aseq and "
                          "Aseq_num"), err
    assert not out.exists()


# 4 ------------------------------------------------------------ segment on a full disk
def test_segment_on_a_full_disk_leaves_no_truncated_map_and_names_it(tmp_path, capsys, monkeypatch):
    from rnamotif_data.cli.segment import main
    from rnamotif_data.em import maps

    def full(path, *args, **kwargs):
        Path(path).write_bytes(b"\0" * 1024)  # half a header, then the disk is full
        _enospc()

    monkeypatch.setattr(maps.mrcfile, "new", full)
    out = tmp_path / "o"
    args = ["--map", DEMO / "mirror" / "emdb" / "emd_21051.map.gz", "--model", DEMO / "mirror" / "pdb" / "6v5b.pdb",
            "D:14-16,88-90", "--motif-type", "1x1", "--out", out]
    rc, err = _run(main, args, capsys)
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {out / 'density.mrc'}: the map could not be written (disk full?"), err
    assert not out.exists() or list(out.iterdir()) == []
    monkeypatch.undo()
    assert _run(main, args, capsys)[0] == 0  # the rerun is not refused


# 5 ------------------------------------------------------------ friction met on the README walk
@pytest.fixture(scope="module")
def syn_store(demo_store, tmp_path_factory):
    """300 samples from the demo's real cubes over many entries (the demo has one entry)."""
    from rnamotif_data.testing.synthetic_store import make_synthetic_store

    return make_synthetic_store(demo_store, str(tmp_path_factory.mktemp("syn") / "syn.zarr"), 300, seed=1,
                                shard_size=32)


def test_audit_says_where_it_wrote(syn_store, tmp_path, caplog):
    from rnamotif_data.cli.audit import main

    out = tmp_path / "a"
    with caplog.at_level("INFO"):
        assert main([syn_store, "--out", str(out)]) == 0
    assert f"audit written to {out} (audit.md, audit.json, audit.png)" in caplog.text


def test_split_report_is_compact_saved_beside_the_store_and_says_test(syn_store, tmp_path, capsys):
    import shutil

    from rnamotif_data.cli.split import main
    from rnamotif_data.release.verify import verify_store
    from rnamotif_data.storage.outdir import foreign_files

    root = tmp_path / "s.zarr"
    shutil.copytree(syn_store, root)
    assert main([str(root), "--scheme", "entry", "--report", "--offline"]) == 0
    out = capsys.readouterr().out
    saved = root / "splits" / "entry-report.md"
    assert out.startswith("Leakage report: ") or "\nLeakage report: " in out
    assert f"full report (every relation and class): {saved}" in out
    table = [line for line in out.splitlines() if line.startswith("| fold")]
    assert len(table) == 6 and table[0].count("|") == 8  # 7 columns, not 16
    assert "| fold | train | test | removed from test | pruned from train (distinct) |" in out and "val" not in table[0]
    full = saved.read_text()
    assert "fold K as the test fold" in full and "per relation (overlapping)" in full and "| test |" in full
    assert "val sharing" not in full and "test sharing canonical" in full
    problems = verify_store(str(root))[0]  # the synthetic store has its own (no manifest rows)
    assert not [p for p in problems if "splits" in p or "report" in p], problems
    assert foreign_files(str(root)) == []


def test_the_two_demos_do_not_share_a_default_output(tmp_path, monkeypatch):
    from rnamotif_data.cli.build import DEMO_OUT, SMALL_DEMO_OUT, main

    assert SMALL_DEMO_OUT != DEMO_OUT
    monkeypatch.chdir(tmp_path)
    assert main(["--demo", "small", "--scheduler", "synchronous", "--no-progress"]) == 0
    assert (tmp_path / SMALL_DEMO_OUT / "zarr.json").exists() and not (tmp_path / DEMO_OUT).exists()


def test_the_readme_says_how_long_the_install_takes():
    readme = (REPO / "README.md").read_text()
    assert "installs the package (about 3 minutes" in readme
    assert "`demo-out/rnamotif-demo-small.zarr`" in readme


def test_the_qc_report_and_the_card_say_the_demo_maps_are_simulated(demo_store, tmp_path, monkeypatch):
    """The store records its manifest's sha256; a build of a shipped demo manifest read
    simulated maps (no attribute is added: checksums.sha256 of stores is unchanged)."""
    from rnamotif_data.cli.publish import main as publish_main
    from rnamotif_data.inputs.demo import simulated_maps_note
    from rnamotif_data.release.report import write_report

    qc = write_report(demo_store, tmp_path / "qc")[1].read_text()
    assert "**The maps are simulated** (the shipped small demo: one map simulated from 6V5B chain D)" in qc
    monkeypatch.delenv("ZENODO_TOKEN", raising=False)
    assert publish_main(["--store", demo_store, "--version", "0.1.0", "--dry-run", "--out", str(tmp_path / "pkg"),
                         "--registry", str(tmp_path / "reg.json"), "--no-verify-values"]) == 0
    card = (tmp_path / "pkg" / "README.md").read_text()
    assert "**The maps are simulated**" in card.split("## Quality")[1]
    assert simulated_maps_note({"manifest_sha256": "0" * 64}) is None and simulated_maps_note({}) is None
