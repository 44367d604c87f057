"""The one output-folder rule (issue 39): a command writes into a new or empty folder or
one it wrote before, replaces only files it lists as its own, refuses anything else in
one line naming it, and marks when it finished."""

from __future__ import annotations

import json

import pytest

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.outputs import OUTPUT_MARKER, claim_output, claimed_output, output_state, read_marker

TRAIN_FILES = ("best.pt", "last.pt", "metrics.*", "config.json", "eval-*/*")


def _tree(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_or_empty_folder_is_claimed_and_marked_unfinished_then_complete(tmp_path):
    for folder in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        claim = claim_output(folder, "report", ["qc.md", "qc.png"])
        assert read_marker(folder) == {"command": "report", "files": ["qc.md", "qc.png"], "complete": False}
        assert output_state(folder) == "interrupted"
        (folder / "qc.md").write_text("# QC")
        claim.complete(samples=7)
        assert read_marker(folder) == {"command": "report", "files": ["qc.md", "qc.png"], "complete": True, "samples": 7}
        assert output_state(folder) == "complete"
    assert output_state(tmp_path / "nothing-here") is None


def test_a_users_file_is_refused_naming_it_and_nothing_changes(tmp_path):
    folder = tmp_path / "R"
    folder.mkdir()
    (folder / "qc.md").write_text("my notes")  # a user's file of the very name the command writes
    (folder / "sub").mkdir()
    (folder / "sub" / "x.txt").write_text("x")
    before = _tree(folder)
    with pytest.raises(StoreError) as err:
        claim_output(folder, "report", ["qc.md", "qc.png"])
    assert str(err.value) == (f"{folder}: holds qc.md and 1 more, which `rnamotif report` did not write; move it or "
                              "choose another --out; nothing was changed")
    assert _tree(folder) == before and not (folder / OUTPUT_MARKER).exists()
    (tmp_path / "file").write_text("a file")
    with pytest.raises(StoreError, match="exists and is a file"):
        claim_output(tmp_path / "file", "report", ["qc.md"])


def test_a_rerun_replaces_only_its_own_files_and_drops_the_earlier_runs_leftovers(tmp_path):
    folder = tmp_path / "run"
    claim = claim_output(folder, "train", TRAIN_FILES)
    for name in ("best.pt", "last.pt", "metrics.json", "config.json", "eval-fold1-test/report.md",
                 "last.pt.tmp-123"):  # a temporary file a killed run left is its own too
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("old")
    claim.complete()
    # train without --overwrite/--resume is refused, nothing changed
    before = _tree(folder)
    with pytest.raises(StoreError) as err:
        claim_output(folder, "train", TRAIN_FILES, mode="new")
    assert str(err.value) == (f"{folder}: holds a finished run of `rnamotif train`; pass --overwrite to replace it or "
                              "--resume to continue it, or choose another --out")
    assert _tree(folder) == before
    # --resume keeps the files
    claim_output(folder, "train", TRAIN_FILES, mode="resume")
    assert set(_tree(folder)) == set(before)
    assert output_state(folder) == "interrupted"
    # --overwrite: the earlier run's files go, the old eval-fold1-test/ with them
    claim_output(folder, "train", TRAIN_FILES, mode="replace")
    assert list(_tree(folder)) == [OUTPUT_MARKER] and not (folder / "eval-fold1-test").exists()


def test_a_users_file_beside_an_earlier_run_and_another_commands_folder_are_refused(tmp_path):
    folder = tmp_path / "run"
    claim_output(folder, "train", TRAIN_FILES).complete()
    (folder / "best.pt").write_text("weights")
    (folder / "eval-fold1-test").mkdir()
    (folder / "eval-fold1-test" / "report.md").write_text("report")
    (folder / "README.md").write_text("mine")
    with pytest.raises(StoreError, match=r"holds README.md, which no run of `rnamotif train` wrote; move it"):
        claim_output(folder, "train", TRAIN_FILES, mode="replace")
    assert (folder / "best.pt").read_text() == "weights" and (folder / "README.md").read_text() == "mine"
    (folder / "README.md").unlink()
    with pytest.raises(StoreError, match=r"was written by `rnamotif train`, not `rnamotif evaluate`"):
        claim_output(folder, "evaluate", ["report.md", "metrics.json"])
    assert (folder / "best.pt").read_text() == "weights"
    assert json.loads((folder / OUTPUT_MARKER).read_text())["complete"] is True


def test_files_the_earlier_run_listed_stay_its_own_after_the_list_changes(tmp_path):
    """A file listed by the earlier run's marker (not by this run's list) is still the
    command's own to replace; a user's empty folder is never removed."""
    folder = tmp_path / "E"
    claim_output(folder, "evaluate", ["report.md", "confusion.png"]).complete()
    (folder / "confusion.png").write_bytes(b"png")
    (folder / "mine").mkdir()
    claim_output(folder, "evaluate", ["report.md", "metrics.json"])
    assert not (folder / "confusion.png").exists() and (folder / "mine").is_dir()
    assert read_marker(folder)["files"] == ["report.md", "metrics.json"]


def test_an_unknown_mode_and_a_damaged_marker_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of new, replace, resume"):
        claim_output(tmp_path / "x", "train", ["a"], mode="append")
    folder = tmp_path / "y"
    folder.mkdir()
    (folder / OUTPUT_MARKER).write_text("{not json")
    with pytest.raises(StoreError, match=r"\.rnamotif-output\.json: unreadable marker"):
        claim_output(folder, "train", ["a"])


def test_claimed_output_completes_or_leaves_nothing_when_the_work_fails_before_writing(tmp_path):
    with claimed_output(tmp_path / "ok", "audit", ["audit.md"]) as claim:
        assert output_state(claim.folder) == "interrupted"
        (claim.folder / "audit.md").write_text("# audit")
    assert output_state(tmp_path / "ok") == "complete"
    for folder in (tmp_path / "new", tmp_path / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        with pytest.raises(ValueError, match="bad input"), claimed_output(folder, "audit", ["audit.md"]):
            raise ValueError("bad input")
        assert not folder.exists() if folder.name == "new" else list(folder.iterdir()) == []
    # a failure after the first file keeps the marker: the output reads as interrupted
    with pytest.raises(ValueError), claimed_output(tmp_path / "half", "audit", ["audit.md"]) as claim:
        (claim.folder / "audit.md").write_text("half")
        raise ValueError("disk full")
    assert output_state(tmp_path / "half") == "interrupted"
