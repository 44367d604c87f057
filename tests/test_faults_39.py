"""Faults of the second campaign (issue 39): nothing a user made is replaced, nothing wrong
passes silently. One test per case, each checked to fail before its fix."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnamotif_data.inputs.sources import SourceConfig
from rnamotif_data.pipeline.builder import build

from .conftest import DEMO, REPO, store_tree


# ---------------------------------------------------------------- resume after an input changed
def test_resume_redoes_a_staged_entry_whose_map_changed(tmp_path, caplog):
    """Kill a build, change a map already staged, ``--resume``: the entry is staged again
    from the new map (and said), so the store equals a fresh build of the new inputs."""
    mirror = tmp_path / "mirror"
    shutil.copytree(DEMO / "mirror", mirror)
    sources = SourceConfig(cache_dir=tmp_path / "cache", mirror=mirror, offline=True)
    manifest = DEMO / "manifest.parquet"
    out = tmp_path / "resumed.zarr"
    build(manifest, str(out), source_config=sources, progress=False, stop_after=1)
    assert list((out / "_staging").glob("*.npz"))
    path = mirror / "emdb" / "emd_21051.map.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    data = np.frombuffer(raw, dtype=np.float32, offset=1024)  # MODE 2 data after the 1024-byte header
    rng = np.random.default_rng(0)
    data += rng.normal(0, float(data.std()), data.shape).astype(np.float32)
    path.write_bytes(gzip.compress(bytes(raw), mtime=0))
    with caplog.at_level("WARNING", logger="rnamotif_data.pipeline.builder"):
        build(manifest, str(out), source_config=sources, progress=False, resume=True)
    assert "6V5B_EMD-21051: its map file changed since it was staged; the entry is staged again" in caplog.text
    fresh = tmp_path / "fresh.zarr"
    build(manifest, str(fresh), source_config=sources, progress=False)
    assert store_tree(out) == store_tree(fresh)


# ---------------------------------------------------------------- the demo cache goes stale
_MIRROR_FILES = ("import sys; from rnamotif_data.inputs.demo import training_mirror; d = training_mirror(); "
                 "[sys.stdout.write(f'{p.relative_to(d)} {p.is_symlink()} {len(p.read_bytes())}\\n') "
                 "for p in sorted(d.glob('*/*'))]")


def _clone(tmp_path: Path, name: str) -> Path:
    clone = tmp_path / name
    shutil.copytree(REPO / "rnamotif_data", clone / "rnamotif_data", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(DEMO, clone / "demo")
    return clone


def test_the_demo_cache_survives_deleting_the_clone_that_made_it(tmp_path):
    """The training demo's cache held links into the clone that built it first: once that
    clone was gone every other clone's build failed on ``pdb/1u6b.cif.gz``. Cached inputs
    are copies, keyed by content."""
    env = dict(os.environ, RNAMOTIF_CACHE=str(tmp_path / "cache"))
    first, second = _clone(tmp_path, "first"), _clone(tmp_path, "second")

    def files(clone: Path) -> list[str]:
        r = subprocess.run([sys.executable, "-c", _MIRROR_FILES], cwd=clone, env={**env, "PYTHONPATH": str(clone)},
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    made = files(first)
    assert len(made) == 30 and all(" False " in line for line in made)  # 15 models and 15 maps, no links
    maps = {p.name: p.read_bytes() for p in (tmp_path / "cache" / "demo-training" / "emdb").iterdir()}
    shutil.rmtree(first)
    assert files(second) == made
    assert {p.name: p.read_bytes() for p in (tmp_path / "cache" / "demo-training" / "emdb").iterdir()} == maps
    shutil.rmtree(tmp_path / "cache" / "demo-training" / "pdb")  # the models gone, the maps kept
    assert files(second) == made
    # a cached model another clone changed is copied again, and its map simulated again
    changed = tmp_path / "cache" / "demo-training" / "pdb" / "1u6b.cif.gz"
    changed.write_bytes(b"not the model")
    map_path = tmp_path / "cache" / "demo-training" / "emdb" / "emd_95001.map.gz"
    map_path.write_bytes(b"not the map")
    (tmp_path / "cache" / "demo-training" / "made-from.json").write_text("{}")
    assert files(second) == made
    assert map_path.read_bytes() == maps["emd_95001.map.gz"]


# ---------------------------------------------------------------- tests that cannot catch what they guard
def test_ci_fails_at_once_without_the_real_test_data(tmp_path):
    """Without ../shared/data, 66 tests skipped and CI stayed green: under CI=true the
    entry point stops first, in one line, before installing anything."""
    clone = tmp_path / "clone"
    (clone / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", clone / ".ci" / "run")
    env = {k: v for k, v in os.environ.items() if k != "RNAMOTIF_SHARED_DATA"}
    r = subprocess.run(["bash", str(clone / ".ci" / "run")], env={**env, "CI": "true"}, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("error: ../shared/data: the real test data is missing (CI needs it; set "
                        "RNAMOTIF_SHARED_DATA)\n")


# ---------------------------------------------------------------- completion marks: export and recode
def test_an_interrupted_mrc_export_is_not_evaluated_as_complete(demo_store, tmp_path, monkeypatch):
    """The export's marker was written first with no completion mark: an interrupted export
    was evaluated as whole (n = 53 of 158). Now it is refused, in one line, until redone."""
    torch = pytest.importorskip("torch")
    import rnamotif_data.release.export as export_module
    from rnamotif_data.errors import RNAMotifError
    from rnamotif_data.learn.evaluate import Evaluator
    from rnamotif_data.release.export import export_mrc

    write_map, calls = export_module.write_map, []

    def dies_on_the_third_sample(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return write_map(path, *args, **kwargs)

    folder = tmp_path / "mrc"
    monkeypatch.setattr(export_module, "write_map", dies_on_the_third_sample)
    with pytest.raises(KeyboardInterrupt):
        export_mrc(demo_store, folder, by_class=True, progress=False)
    monkeypatch.undo()
    assert len(list(folder.rglob("*.mrc"))) == 2
    ev = Evaluator(torch.nn.Identity(), {"cube": 40, "in_channels": 1}, torch.device("cpu"))
    with pytest.raises(RNAMotifError) as err:
        ev.evaluate_mrc_folder(folder)
    assert str(err.value) == (f"{folder}: an interrupted `rnamotif export --format mrc` (it did not finish; 7 samples "
                              "expected); run the export again with --overwrite")
    from rnamotif_data.release.export import check_export_target

    check_export_target(folder, "mrc", overwrite=True)  # the interrupted export is its own to replace
    assert export_mrc(demo_store, folder, by_class=True, progress=False) == 7
    marker = json.loads((folder / ".rnamotif-export.json").read_text())
    assert marker["complete"] is True and marker["samples_written"] == 7
    from rnamotif_data.learn.evaluate import check_export_complete

    check_export_complete(folder)  # a finished export passes


def test_an_interrupted_recode_is_named_and_rerunning_it_replaces_the_copy(demo_store, tmp_path):
    """``open_store`` on an interrupted recode advised ``rnamotif build --resume`` (which
    rebuilds with lz4, not the codec asked for), and rerunning the recode said only
    "already holds a store"."""
    from rnamotif_data.errors import StoreError
    from rnamotif_data.release.recode import recode_store
    from rnamotif_data.storage.layout import get_attrs, set_attrs
    from rnamotif_data.storage.store import open_store

    out = tmp_path / "zstd.zarr"
    recode_store(demo_store, str(out), "zstd", progress=False)
    set_attrs(str(out), {"build_state": "building"})  # what a kill -9 during the copy leaves
    with pytest.raises(StoreError) as err:
        open_store(out)
    assert "interrupted `rnamotif recode`" in str(err.value) and "--resume" not in str(err.value).replace(
        "never `rnamotif build --resume`", "")
    with pytest.raises(StoreError, match="holds an interrupted `rnamotif recode`, not a build"):
        build(DEMO / "manifest.parquet", str(out), source_config=SourceConfig(mirror=DEMO / "mirror", offline=True,
                                                                             cache_dir=tmp_path / "cache"),
              progress=False, resume=True)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match=r"holds files this package did not write \(notes.txt\)"):
        recode_store(demo_store, str(out), "zstd", progress=False)
    (out / "notes.txt").unlink()
    recode_store(demo_store, str(out), "zstd", progress=False)
    assert get_attrs(str(out))["build_config"]["codec"] == "zstd" and len(open_store(out)) == 7
    with pytest.raises(StoreError, match="already holds a store"):
        recode_store(demo_store, str(out), "zstd", progress=False)


# ---------------------------------------------------------------- verify checks the split files it finds
def test_verify_checks_the_split_files_it_finds(multi_entry_store, tmp_path):
    """``verify`` passed a store whose ``splits/similarity.parquet`` was edited (the dataset
    then refused it by fingerprint)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rnamotif_data.cli.split import main as split_main
    from rnamotif_data.release.verify import verify_store

    root = tmp_path / "s.zarr"
    shutil.copytree(multi_entry_store, root)
    assert split_main([str(root)]) == 0
    path = root / "splits" / "similarity.parquet"
    assert verify_store(str(root))[0] == []
    t = pq.read_table(path)
    folds = t.column("fold").to_pylist()
    k = next(i for i, f in enumerate(folds) if f is not None)
    folds[k] = folds[k] % 5 + 1  # one sample moved to another fold
    edited = t.set_column(t.schema.get_field_index("fold"), t.schema.field("fold"), pa.array(folds, t.schema.field("fold").type))
    pq.write_table(edited.replace_schema_metadata(t.schema.metadata), path)
    problems = verify_store(str(root))[0]
    assert len(problems) == 1 and problems[0].startswith(f"splits/similarity.parquet: ConfigError: {path}: fingerprint "
                                                         "mismatch"), problems
    path.unlink()
    pq.write_table(pa.table({"a": [1]}), root / "splits" / "mine.parquet")
    assert verify_store(str(root))[0] == ["splits/mine.parquet: not a split of a known scheme (similarity, entry, "
                                          "upstream)"]


def test_verify_names_a_feature_folder_no_check_would_read(demo_store, tmp_path):
    from rnamotif_data.release.verify import verify_store

    root = tmp_path / "s.zarr"
    shutil.copytree(demo_store, root)
    (root / "features" / "onehot").mkdir(parents=True)
    (root / "features" / "onehot" / "residue_features.npy").write_bytes(b"half")  # an embed killed early
    assert verify_store(str(root))[0] == ["features/onehot: no attrs.json; not a feature set `rnamotif embed` "
                                          "finished (delete it, or embed again with --overwrite)"]


# ---------------------------------------------------------------- export inside the store; the dataset version
def test_an_export_inside_the_store_is_refused_and_the_store_stays_valid(demo_store, tmp_path, capsys):
    from rnamotif_data.cli import run
    from rnamotif_data.cli.export import main as export_main
    from rnamotif_data.release.verify import verify_store

    root = tmp_path / "s.zarr"
    shutil.copytree(demo_store, root)
    for fmt, out in (("mrc", root / "mrc"), ("hdf5", root / "splits" / "s.h5")):
        assert run(export_main, [str(root), "--format", fmt, "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert err == f"error: {out}: is inside the store {root}; an export goes outside it (choose another --out)\n"
    assert run(export_main, [str(root), "--format", "mrc", "--out", str(root), "--overwrite"]) == 1
    assert "which `rnamotif export` did not write" in capsys.readouterr().err  # the store's files (issue 39's rule)
    assert verify_store(str(root))[0] == [] and not (root / "mrc").exists()


def test_a_dataset_version_publish_would_refuse_is_refused_by_the_build(tmp_path, capsys):
    from rnamotif_data.cli import run
    from rnamotif_data.cli.build import main as build_main

    out = tmp_path / "s.zarr"
    args = ["--demo", "small", "--out", str(out), "--scheduler", "synchronous", "--no-progress"]
    assert run(build_main, [*args, "--dataset-version", "not a version!"]) == 1
    assert capsys.readouterr().err == ("error: --dataset-version: 'not a version!' is not a valid dataset version (use "
                                       "e.g. 1.0.0)\n")
    assert not out.exists()
    assert run(build_main, [*args, "--resume", "--overwrite"]) == 1  # it silently rebuilt
    assert capsys.readouterr().err == ("error: --resume continues the build at --out and --overwrite deletes it first; "
                                       "give one of them\n")
    assert not out.exists()


def test_allow_mismatch_never_covers_another_cube_size(demo_store):
    """``evaluate --allow-mismatch`` of a 32³ checkpoint on a 40³ store gave a full report
    without a word of the cube size; it was meant to allow a split-fingerprint mismatch."""
    torch = pytest.importorskip("torch")
    from rnamotif_data.errors import CheckpointMismatchError
    from rnamotif_data.learn.dataset import RNAMotifDataset
    from rnamotif_data.learn.evaluate import Evaluator

    ds = RNAMotifDataset(demo_store, split="all")
    ck = {"cube": 32, "class_names": list(ds.classes), "split_fingerprint": "0" * 64,
          "config": {"channels": list(ds.channels), "masked": ds.masked}}
    ev = Evaluator(torch.nn.Identity(), ck, torch.device("cpu"), path="run/best.pt")
    for allow in (False, True):
        with pytest.raises(CheckpointMismatchError) as err:
            ev.check(ds, allow_mismatch=allow)
        assert str(err.value) == ("run/best.pt: trained on 32³ cubes, the store's are 40x40x40; a model is evaluated "
                                  "on cubes of its own size only (--allow-mismatch does not cover the cube size)")
    ck["cube"] = 40  # the store's own size: nothing to report
    assert ev.check(ds) == []


def test_a_damaged_root_zarr_json_is_one_line_naming_it(demo_store, tmp_path, capsys):
    from rnamotif_data.cli import run
    from rnamotif_data.cli.verify import main as verify_main

    root = tmp_path / "s.zarr"
    shutil.copytree(demo_store, root)
    text = (root / "zarr.json").read_text()
    (root / "zarr.json").write_text(text[:40] + "\x01" + text[40:])
    assert run(verify_main, [str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {root}/zarr.json: the store's attributes are damaged (") and err.count("\n") == 1


def test_an_implausible_resolution_is_rejected_naming_the_row():
    """Manifest resolutions of 1e9 Å or 0.01 Å failed every row inside gemmi
    (``std::bad_alloc``): they are rejected when the manifest is read."""
    from rnamotif_data.inputs.schema import rows_to_table, validate_manifest

    rows = [{"pdb_id": "6PJ6", "emdb_id": "EMD-20353", "motif_type": "hairpin3", "selection": "J:85-91",
             "resolution": r} for r in (1e9, 0.01, 2.2)]
    for k, row in enumerate(rows):
        row["selection"] = f"J:{85 + 10 * k}-{91 + 10 * k}"
    table, rejections = validate_manifest(rows_to_table(rows))
    assert table.num_rows == 1 and [(r.row, r.column) for r in rejections] == [(0, "resolution"), (1, "resolution")]
    assert rejections[0].reason == "resolution 1e+09 Å is outside the plausible 0.5-50 Å (a unit mix-up?)"
    assert rejections[1].reason == "resolution 0.01 Å is outside the plausible 0.5-50 Å (a unit mix-up?)"


def test_report_and_audit_of_a_store_without_samples_are_one_line(tmp_path, capsys):
    """``report`` and ``audit`` of a 0-sample store stopped with numpy's "need at least one
    array to stack"."""
    import pyarrow.parquet as pq

    from rnamotif_data.cli import run
    from rnamotif_data.cli.build import main as build_main
    from rnamotif_data.inputs.schema import rows_to_table
    from rnamotif_data.release.audit import run_audit
    from rnamotif_data.release.report import write_report
    from rnamotif_data.storage.layout import get_attrs

    rows = pq.read_table(DEMO / "manifest.parquet").to_pylist()
    for r in rows:
        r["motif_type"] = "hairpin7"  # a type no selection fits: every row fails
    manifest = tmp_path / "m.parquet"
    pq.write_table(rows_to_table(rows), manifest)
    root = tmp_path / "empty.zarr"
    assert run(build_main, ["--manifest", str(manifest), "--mirror", str(DEMO / "mirror"), "--scheduler",
                            "synchronous", "--no-progress", "--out", str(root)]) == 3
    assert get_attrs(str(root))["n_samples"] == 0
    from rnamotif_data.errors import StoreError

    with pytest.raises(StoreError) as err:
        write_report(str(root), tmp_path / "R")
    assert str(err.value) == (f"{root}: the store has no samples (all 5 manifest rows failed); nothing to report: "
                              "see its failures.parquet")
    with pytest.raises(StoreError, match=r"the store has no samples; nothing to audit$"):
        run_audit(str(root), tmp_path / "A")
    assert not (tmp_path / "R").exists() and not (tmp_path / "A").exists()


# ---------------------------------------------------------------- embed: names, options, a user's file
def test_embed_checks_its_name_and_options_and_keeps_a_users_file(demo_store, tmp_path, capsys):
    from rnamotif_data.cli import run
    from rnamotif_data.cli.embed import main as embed_main
    from rnamotif_data.errors import ConfigError
    from rnamotif_data.features.embedders import make_embedder

    root = tmp_path / "deep" / "s.zarr"
    shutil.copytree(demo_store, root)
    args = [str(root), "--embedder", "onehot", "--no-progress", "--cache-dir", str(tmp_path / "c")]
    assert run(embed_main, [*args, "--name", "../../victim"]) == 1
    assert capsys.readouterr().err == ("error: --name '../../victim': a feature name is a plain folder name (letters, "
                                       "digits, _ - .), e.g. structrfm-random\n")
    assert not (tmp_path / "victim").exists() and not (root / "features").exists()
    assert run(embed_main, args) == 0
    mine = root / "features" / "onehot" / "my-notes.txt"
    mine.write_text("mine")
    before = {p.name: p.read_bytes() for p in mine.parent.iterdir()}
    assert run(embed_main, [*args, "--overwrite"]) == 1
    assert capsys.readouterr().err == (f"error: {mine.parent}: holds my-notes.txt, which rnamotif embed did not "
                                       "write; move it before --overwrite; nothing was changed\n")
    assert {p.name: p.read_bytes() for p in mine.parent.iterdir()} == before
    with pytest.raises(ConfigError, match=r"--size 0,0,0: DIM, LAYERS and HEADS must be >= 1"):
        make_embedder("structrfm", random_weights=True, dim=0, layer=0, heads=0)
    with pytest.raises(ConfigError, match=r"^--batch-size 0: sequences per forward pass must be an integer >= 1$"):
        make_embedder("structrfm", random_weights=True, batch_size=0)


def test_embed_on_cuda_without_cuda_is_one_line():
    torch = pytest.importorskip("torch")
    pytest.importorskip("structRFM.infer", reason="the [embed] extra (structRFM) is not installed")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from rnamotif_data.errors import ConfigError
    from rnamotif_data.features.embedders import make_embedder

    with pytest.raises(ConfigError, match=r"^--device cuda: this machine's torch sees no CUDA device; use --device cpu"):
        make_embedder("structrfm", random_weights=True, dim=32, layer=2, heads=2, device="cuda")


def test_a_missing_registry_and_a_version_that_is_a_path_are_one_line(demo_store, tmp_path, capsys):
    from rnamotif_data.cli import run
    from rnamotif_data.cli.publish import main as publish_main
    from rnamotif_data.errors import RegistryError
    from rnamotif_data.storage.registry import get_release

    missing = tmp_path / "missing.json"
    with pytest.raises(RegistryError) as err:
        get_release(None, missing)  # it said "no published version is registered yet"
    assert str(err.value) == f"{missing}: no such registry file; check --registry or $RNAMOTIF_DATA_REGISTRY"
    assert run(publish_main, ["--store", demo_store, "--version", "../../evil", "--dry-run", "--no-progress"]) == 1
    assert capsys.readouterr().err == "error: '../../evil' is not a valid dataset version (use e.g. 1.0.0)\n"
    assert not list(tmp_path.parent.glob("*evil*"))


@pytest.mark.parametrize("recorded", [{"in_channels": 2}, {"cube": 32}, {"network": "motif3dcnn_bn"}])
def test_a_checkpoint_whose_weights_do_not_fit_its_record_is_one_line(tmp_path, recorded):
    """A checkpoint whose recorded network, cube size or input channels do not match its
    weights stopped with torch's pages-long size-mismatch traceback."""
    pytest.importorskip("torch")
    from rnamotif_data.errors import CheckpointMismatchError
    from rnamotif_data.learn.checkpoints import save_checkpoint
    from rnamotif_data.learn.evaluate import Evaluator
    from rnamotif_data.learn.networks import build_network

    net = build_network("motif3dcnn", 1, 5, cube=40)
    ck = {"model": net.state_dict(), "config": {"network": recorded.get("network", "motif3dcnn"), "channels": ["density"],
                                                "masked": True},
          "class_names": ["a", "b", "c", "d", "e"], "split_fingerprint": "0" * 64,
          "cube": recorded.get("cube", 40), "in_channels": recorded.get("in_channels", 1)}
    path = tmp_path / "best.pt"
    save_checkpoint(ck, path)
    with pytest.raises(CheckpointMismatchError) as err:
        Evaluator.from_checkpoint(path, "cpu")
    msg = str(err.value)
    assert msg.startswith(f"{path}: its weights do not fit the network it records (") and "\n" not in msg
    assert msg.endswith("; the file was edited or mixed from two runs")


def test_audit_seed_out_of_range_is_one_line_naming_the_option(demo_store, tmp_path, capsys):
    from rnamotif_data.cli import run
    from rnamotif_data.cli.audit import main as audit_main

    assert run(audit_main, [demo_store, "--seed", "-1", "--out", str(tmp_path / "A")]) == 1
    assert capsys.readouterr().err == "error: --seed -1: the audit's seed is an integer from 0 to 4294967295\n"
    assert not (tmp_path / "A").exists()
