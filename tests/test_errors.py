"""One error base: input errors are RNAMotifErrors and ValueErrors; ``rnamotif`` prints them in
one line and shows the traceback of anything else (a bug)."""

from __future__ import annotations

import errno
import inspect
import re

import pytest

from rnamotif_data import errors
from rnamotif_data.cli import run
from rnamotif_data.errors import (
    ConfigError,
    DownloadError,
    InputError,
    ManifestError,
    MissingDependencyError,
    MissingFileError,
    RNAMotifError,
    SearchError,
    SourceError,
    ZenodoError,
)
from rnamotif_data.inputs.schema import read_manifest, read_pdb_ids

from .conftest import REPO

#: every input error class of the package: bad input, so a ValueError too
INPUT_ERRORS = ["InputError", "MissingFileError", "ConfigError", "MapFormatError", "StructureError",
                "SelectionError", "SelectionSyntaxError", "MotifOutsideMapError", "StoreError", "ManifestError",
                "RegistryError", "CheckpointMismatchError", "UnknownMotifTypeError", "AnnotationError",
                "NoRNAError", "ModelOutsideMapError", "TileSizeError"]
#: errors of the world (network, services) or of the installation: not bad input
OTHER_ERRORS = ["SourceError", "DownloadError", "HomologyTableError", "OfflineError", "NotEMEntryError", "NoMapError", "SearchError",
                "ZenodoError", "ZenodoAuthError", "MissingDependencyError", "DiskFullError"]

#: the ``raise ValueError`` left in rnamotif_data, each with the reason it is not a package error
#: (file -> number of raises)
VALUE_ERROR_ALLOWED = {
    # stage names come from our code only: an unknown stage is a bug, and cli.run shows its traceback
    "rnamotif_data/pipeline/timing.py": 1,
    # control flow in _check_run_options: caught on the next line and re-raised as RNAMotifError
    "rnamotif_data/cli/build.py": 1,
}


@pytest.mark.parametrize("name", INPUT_ERRORS)
def test_every_input_error_is_a_package_error_and_a_value_error(name):
    cls = getattr(errors, name)
    assert issubclass(cls, RNAMotifError) and issubclass(cls, ValueError) and issubclass(cls, InputError)


@pytest.mark.parametrize("name", OTHER_ERRORS)
def test_failures_of_the_world_are_package_errors_not_value_errors(name):
    cls = getattr(errors, name)
    assert issubclass(cls, RNAMotifError) and not issubclass(cls, ValueError)


def test_every_error_class_is_classified():
    defined = {n for n, c in vars(errors).items()
               if inspect.isclass(c) and issubclass(c, BaseException) and c.__module__ == errors.__name__}
    assert defined == {"RNAMotifError", *INPUT_ERRORS, *OTHER_ERRORS}


def test_a_missing_file_is_also_a_file_not_found_error():
    assert issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(MissingDependencyError, ImportError)
    assert str(MissingFileError("runs/m.pt: no such checkpoint")) == "runs/m.pt: no such checkpoint"
    with pytest.raises(RNAMotifError, match="no such manifest"):  # one except catches the library's errors
        read_manifest("/nonexistent/m.parquet")


@pytest.mark.parametrize("exc", [ConfigError("--workers 0: give at least 1 worker process"),
                                 MissingFileError("m.parquet: no such manifest"),
                                 DownloadError("https://x/y: 404"), SearchError("RCSB answered 500"),
                                 ZenodoError("bad token", status=401), SourceError("no file"),
                                 PermissionError(errno.EACCES, "Permission denied", "/data/out.zarr"),
                                 OSError(errno.ENOSPC, "No space left on device")])
def test_the_runner_prints_package_and_environment_errors_in_one_line(exc, capsys):
    def fails(argv):
        raise exc

    assert run(fails, []) == 1
    err = capsys.readouterr().err
    assert err == f"error: {exc}\n" and err.count("\n") == 1


@pytest.mark.parametrize("exc", [ValueError("operands could not be broadcast together"), RuntimeError("oops"),
                                 KeyError("sample_id"), TypeError("unsupported operand"), IndexError("list index")])
def test_the_runner_shows_the_traceback_of_a_bug(exc, capsys):
    def buggy(argv):
        raise exc

    with pytest.raises(type(exc)):
        run(buggy, [])
    assert capsys.readouterr().err == ""


def test_the_runner_names_resume_on_ctrl_c(capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    assert run(interrupted, []) == 130
    assert capsys.readouterr().err == "error: interrupted (rerun with --resume where the command has it)\n"


def test_no_bare_value_error_is_raised_outside_the_allow_list():
    # the pattern finds a bare raise, and only that name
    assert re.findall(r"\braise ValueError\b", "raise ValueError(f'x')\nraise ValueErrorX\n") == ["raise ValueError"]
    found: dict[str, int] = {}
    for path in sorted((REPO / "rnamotif_data").rglob("*.py")):
        n = len(re.findall(r"\braise ValueError\b", path.read_text()))
        if n:
            found[path.relative_to(REPO).as_posix()] = n
    assert found == VALUE_ERROR_ALLOWED, "raise the fitting rnamotif_data.errors class (see errors.py), or allow it here with a reason"


def test_no_bare_file_not_found_error_is_raised_by_the_package():
    found = [p.relative_to(REPO).as_posix() for p in sorted((REPO / "rnamotif_data").rglob("*.py"))
             if re.search(r"\braise FileNotFoundError\b", p.read_text())]
    assert found == [], "raise MissingFileError (an InputError and a FileNotFoundError)"


def test_an_unreadable_ids_file_is_a_manifest_error_not_a_traceback(tmp_path):
    bad = tmp_path / "ids.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(ManifestError, match="ids.parquet: not a readable Parquet file"):
        read_pdb_ids(bad)
    binary = tmp_path / "ids.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81 6PJ6")
    with pytest.raises(ManifestError, match="ids.txt: not a text file of PDB IDs"):
        read_pdb_ids(binary)
    good = tmp_path / "good.txt"
    good.write_text("6pj6  # a hairpin\n\n4v9d\n")
    assert read_pdb_ids(good) == [{"pdb_id": "6PJ6"}, {"pdb_id": "4V9D"}]
