"""The one output rule on every command that writes (issue 39, deliverable 1): a command
writes into a new or empty folder or one it wrote before (its marker,
``.rnamotif-output.json``); a user's file is refused in one line naming it and left as it
was; a rerun into the command's own folder works as documented (docs/cli.md, "What a
command may replace")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rnamotif_data.cli import run
from rnamotif_data.storage.outputs import OUTPUT_MARKER, read_marker

from .conftest import REPO

MAP = REPO / "demo" / "mirror" / "emdb" / "emd_21051.map.gz"
MODEL = REPO / "demo" / "mirror" / "pdb" / "6v5b.pdb"
USER = b"my own notes, not to be replaced\n"


def _main(command: str):
    import importlib

    return importlib.import_module(f"rnamotif_data.cli.{command.replace('-', '_')}").main


def _cli(capsys, command: str, *argv) -> tuple[int, str]:
    rc = run(_main(command), [str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _refused(capsys, user_file: Path, command: str, *argv) -> str:
    """Run ``command`` with a user's file in its way: exit 1, one line naming the file, the
    file unchanged."""
    rc, err = _cli(capsys, command, *argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert user_file.name in lines[0], lines[0]
    assert user_file.read_bytes() == USER
    return lines[0]


def _user_file(folder: Path, name: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(USER)
    return path


@pytest.fixture(scope="module")
def train_store(demo_store, tmp_path_factory) -> str:
    """40 samples over 8 made-up entries from the demo's cubes (as tests/learn/test_train.py):
    enough independent groups for 5 folds."""
    from rnamotif_data.testing.synthetic_store import make_synthetic_store

    root = tmp_path_factory.mktemp("train") / "syn40.zarr"
    return make_synthetic_store(demo_store, str(root), 40, seed=4, shard_size=16, n_entries=8)


@pytest.fixture(scope="module")
def trained(train_store, tmp_path_factory) -> Path:
    """One epoch of ``rnamotif train`` (a run folder with its marker)."""
    out = tmp_path_factory.mktemp("train") / "run"
    assert run(_main("train"), ["--root", train_store, "--split", "fold1", "--epochs", "1", "--out", str(out),
                                "--device", "cpu", "--workers", "0", "--no-progress"]) == 0
    return out


TRAIN = ("--split", "fold1", "--epochs", "1", "--device", "cpu", "--workers", "0", "--no-progress")


# ---------------------------------------------------------------------------------- train
def test_train_refuses_a_users_file_in_out(demo_store, tmp_path, capsys):
    user = _user_file(tmp_path / "run", "best.pt")
    _refused(capsys, user, "train", "--root", demo_store, "--out", tmp_path / "run", *TRAIN)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt"]


def test_train_reruns_only_with_overwrite_or_resume(train_store, trained, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    assert read_marker(run_dir) == {**read_marker(run_dir), "command": "train", "complete": True}
    best = (run_dir / "best.pt").read_bytes()
    # an evaluation of the earlier run beside its checkpoint
    (run_dir / "eval-fold1-test").mkdir()
    (run_dir / "eval-fold1-test" / "report.md").write_text("old run's report")
    rc, err = _cli(capsys, "train", "--root", train_store, "--out", run_dir, *TRAIN)
    assert rc == 1 and "pass --overwrite to replace it or --resume to continue it" in err
    assert (run_dir / "best.pt").read_bytes() == best and (run_dir / "eval-fold1-test" / "report.md").exists()
    rc, err = _cli(capsys, "train", "--root", train_store, "--out", run_dir, "--resume", "--overwrite", *TRAIN)
    assert rc == 1 and "--resume" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    # --resume: the run (1 of 1 epochs done) is kept and continued, nothing removed
    assert _cli(capsys, "train", "--root", train_store, "--out", run_dir, "--resume", *TRAIN)[0] == 0
    assert (run_dir / "eval-fold1-test" / "report.md").exists() and read_marker(run_dir)["complete"] is True
    # --overwrite: a new run; the old evaluation goes with the old checkpoint
    assert _cli(capsys, "train", "--root", train_store, "--out", run_dir, "--overwrite", *TRAIN)[0] == 0
    assert not (run_dir / "eval-fold1-test").exists() and (run_dir / "best.pt").is_file()
    assert read_marker(run_dir)["complete"] is True


# ------------------------------------------------------------------------------- evaluate
def test_evaluate_refuses_a_users_file_and_reruns_into_its_own_folder(train_store, trained, tmp_path, capsys):
    args = ("--checkpoint", trained / "best.pt", "--root", train_store, "--split", "fold1", "--device", "cpu")
    user = _user_file(tmp_path / "E", "report.md")
    _refused(capsys, user, "evaluate", *args, "--out", tmp_path / "E")
    for _ in range(2):
        assert _cli(capsys, "evaluate", *args, "--out", tmp_path / "own")[0] == 0
    assert {p.name for p in (tmp_path / "own").iterdir()} == {"metrics.json", "report.md", "confusion.png",
                                                               OUTPUT_MARKER}
    assert read_marker(tmp_path / "own")["complete"] is True


# ------------------------------------------------------------------------- report / audit
@pytest.mark.parametrize(("command", "name"), [("report", "qc.md"), ("report", "figures/qc.png"),
                                               ("audit", "audit.md"), ("audit", "audit.json")])
def test_report_and_audit_refuse_a_users_file(train_store, tmp_path, capsys, command, name):
    user = _user_file(tmp_path / "R", name)
    _refused(capsys, user, command, train_store, "--out", tmp_path / "R")


@pytest.mark.parametrize(("command", "files"), [("report", {"qc.md", "qc.png", "placement.png"}),
                                                ("audit", {"audit.md", "audit.json", "audit.png"})])
def test_report_and_audit_rerun_into_their_own_folder(train_store, tmp_path, capsys, command, files):
    out = tmp_path / "own"
    for _ in range(2):
        assert _cli(capsys, command, train_store, "--out", out)[0] == 0
    assert files <= {p.name for p in out.iterdir()} and read_marker(out)["command"] == command
    # and another command's folder is not theirs
    other = "audit" if command == "report" else "report"
    rc, err = _cli(capsys, other, train_store, "--out", out)
    assert rc == 1 and f"was written by `rnamotif {command}`" in err


# -------------------------------------------------------------------------------- segment
SEGMENT = ("--map", MAP, "--model", MODEL, "D:19-22,82-85", "--motif-type", "2x2")


def test_segment_overwrite_never_replaces_a_density_it_did_not_write(tmp_path, capsys):
    user = _user_file(tmp_path / "o", "density.mrc")
    line = _refused(capsys, user, "segment", *SEGMENT, "--out", tmp_path / "o", "--overwrite")
    assert "did not write" in line


def test_segment_reruns_with_overwrite_into_its_own_folder(tmp_path, capsys):
    out = tmp_path / "o"
    assert _cli(capsys, "segment", *SEGMENT, "--out", out)[0] == 0
    rc, err = _cli(capsys, "segment", *SEGMENT, "--out", out)
    assert rc == 1 and "--overwrite" in err
    assert _cli(capsys, "segment", *SEGMENT, "--out", out, "--overwrite")[0] == 0
    assert json.loads((out / "motif.json").read_text())["sequence"] == "UCUAUUUA"
    assert read_marker(out)["complete"] is True


# -------------------------------------------------------------------------------- publish
@pytest.mark.parametrize("name", ["README.md", "qc.png"])
def test_publish_dry_run_never_overwrites_a_users_file(demo_store, tmp_path, capsys, monkeypatch, name):
    monkeypatch.delenv("ZENODO_TOKEN", raising=False)
    user = _user_file(tmp_path / "P", name)
    _refused(capsys, user, "publish", "--store", demo_store, "--version", "0.1.0", "--dry-run", "--out",
             tmp_path / "P", "--registry", tmp_path / "reg.json", "--no-verify-values")
    assert sorted(p.name for p in (tmp_path / "P").iterdir()) == [name]


def test_publish_dry_run_reruns_into_its_own_folder(demo_store, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ZENODO_TOKEN", raising=False)
    args = ("--store", demo_store, "--version", "0.1.0", "--dry-run", "--out", tmp_path / "P",
            "--registry", tmp_path / "reg.json", "--no-verify-values")
    for _ in range(2):
        assert _cli(capsys, "publish", *args)[0] == 0
    assert (tmp_path / "P" / "README.md").is_file() and read_marker(tmp_path / "P")["command"] == "publish"


# ------------------------------------------------------------------------------ make-demo
def test_make_demo_refuses_a_file_path_in_one_line(tmp_path, capsys):
    user = _user_file(tmp_path, "notes.txt")
    _refused(capsys, user, "make-demo", "--out", user)


# ------------------------------------------------------------------------ synthetic-store
def test_synthetic_store_replaces_a_built_store_only_with_overwrite(demo_store, tmp_path, capsys):
    built = tmp_path / "real.zarr"
    shutil.copytree(demo_store, built)
    meta = (built / "metadata.parquet").read_bytes()
    rc, err = _cli(capsys, "synthetic-store", "--source", demo_store, "--n", "10", "--out", built)
    assert rc == 1 and "real.zarr" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (built / "metadata.parquet").read_bytes() == meta
    rc, err = _cli(capsys, "synthetic-store", "--source", demo_store, "--n", "-5", "--out", tmp_path / "n.zarr")
    assert rc == 1 and "--n -5" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "n.zarr").exists()
    user = _user_file(tmp_path / "mine", "notes.md")
    rc, err = _cli(capsys, "synthetic-store", "--source", demo_store, "--n", "10", "--out", tmp_path / "mine",
                   "--overwrite")
    assert rc == 1 and "notes.md" in err and user.read_bytes() == USER
    # a rerun into its own store with --overwrite
    assert _cli(capsys, "synthetic-store", "--source", demo_store, "--n", "10", "--out", built, "--overwrite")[0] == 0
    from rnamotif_data.storage.store import open_store

    assert len(open_store(str(built))) == 10


# --------------------------------------------------------------------------------- export
def test_export_refuses_a_foreign_file_in_an_mrc_folder(demo_store, tmp_path, capsys):
    out = tmp_path / "mrc"
    assert _cli(capsys, "export", demo_store, "--format", "mrc", "--out", out)[0] == 0
    user = _user_file(out, "notes.md")
    _refused(capsys, user, "export", demo_store, "--format", "mrc", "--out", out, "--overwrite")
    user.unlink()
    assert _cli(capsys, "export", demo_store, "--format", "mrc", "--out", out, "--overwrite")[0] == 0
    user = _user_file(tmp_path / "plain", "notes.md")  # a folder no export wrote
    _refused(capsys, user, "export", demo_store, "--format", "mrc", "--out", tmp_path / "plain")


# ---------------------------------------------------------------------- split --report-out
def test_split_report_out_never_replaces_a_users_file(train_store, tmp_path, capsys):
    store = tmp_path / "s.zarr"
    shutil.copytree(train_store, store)
    user = _user_file(tmp_path, "notes.md")
    _refused(capsys, user, "split", store, "--scheme", "entry", "--report-out", user)
    report = tmp_path / "split-report.md"
    for _ in range(2):  # its own report is replaced by a rerun
        assert _cli(capsys, "split", store, "--scheme", "entry", "--report-out", report)[0] == 0
    text = report.read_text()
    assert text.startswith("<!-- written by rnamotif split") and "Leakage report" in text


def test_a_refused_block_keeps_a_finished_runs_marker(tmp_path):
    """Campaign at the stop: a --resume refused on its settings marked a finished run as
    interrupted; a block that writes nothing now leaves the marker as it was."""
    from rnamotif_data.errors import ConfigError
    from rnamotif_data.storage.outputs import claimed_output, output_state

    run = tmp_path / "run"
    with claimed_output(run, "train", ("last.pt",), mode="new"):
        (run / "last.pt").write_bytes(b"weights")
    assert output_state(run) == "complete"
    with pytest.raises(ConfigError):
        with claimed_output(run, "train", ("last.pt",), mode="resume"):
            raise ConfigError("made with other settings")
    assert output_state(run) == "complete"
    with pytest.raises(ConfigError):  # a block that wrote something stays marked unfinished
        with claimed_output(run, "train", ("last.pt",), mode="resume"):
            (run / "last.pt").write_bytes(b"half")
            raise ConfigError("stopped")
    assert output_state(run) == "interrupted"


def test_split_never_writes_over_a_users_file_or_its_manifest(tmp_path, demo_store, capsys):
    """Campaign at the stop: ``split --manifest M --out F`` replaced any F (the manifest
    itself too), and a user's file at STORE/splits/<scheme>.parquet was replaced."""
    import shutil

    from rnamotif_data.cli import main

    manifest = tmp_path / "m.parquet"
    shutil.copy(REPO / "demo" / "training" / "manifest.parquet", manifest)
    before = manifest.read_bytes()
    assert main(["split", "--manifest", str(manifest), "--scheme", "entry", "--out", str(manifest)]) == 1
    assert "is the manifest being split" in capsys.readouterr().err and manifest.read_bytes() == before
    mine = tmp_path / "mine.parquet"
    mine.write_text("precious")
    assert main(["split", "--manifest", str(manifest), "--scheme", "entry", "--out", str(mine)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a split file this package wrote" in err[0] and mine.read_text() == "precious"
    out = tmp_path / "split.parquet"  # a split the command wrote is replaced by a rerun
    assert main(["split", "--manifest", str(manifest), "--scheme", "entry", "--out", str(out)]) == 0
    assert main(["split", "--manifest", str(manifest), "--scheme", "entry", "--out", str(out)]) == 0
    store = tmp_path / "s.zarr"
    shutil.copytree(demo_store, store)
    (store / "splits").mkdir(exist_ok=True)
    (store / "splits" / "entry.parquet").write_text("precious")
    assert main(["split", str(store), "--scheme", "entry"]) == 1
    assert "not a split file this package wrote" in capsys.readouterr().err
    assert (store / "splits" / "entry.parquet").read_text() == "precious"


def test_export_hdf5_refuses_by_class(tmp_path, demo_store, capsys):
    """Campaign at the stop: --by-class with --format hdf5 was ignored without a word."""
    from rnamotif_data.cli import main

    assert main(["export", demo_store, "--format", "hdf5", "--by-class", "--out", str(tmp_path / "x.h5")]) == 1
    assert "--by-class" in capsys.readouterr().err and not (tmp_path / "x.h5").exists()
