"""One rule for every command that writes a folder: nothing a user made is replaced.

A command writes into a new or empty folder, or into one it wrote before. It knows its
folders by a marker file, ``FOLDER/.rnamotif-output.json``, that names the command, the
files it owns (glob patterns relative to the folder, ``/``-separated) and whether the run
finished::

    {"command": "train", "files": ["best.pt", "last.pt", "metrics.*", "eval-*/*"],
     "complete": false}

:func:`claim_output` is called before the command writes anything. It refuses, in one
line naming the file, a folder that holds anything the command does not list as its own,
and a folder another command wrote; it never deletes or changes anything when it
refuses. ``mode`` says what to do with the files of an earlier run of the same command:
``"new"`` refuses them (e.g. ``train`` without ``--overwrite``/``--resume``),
``"replace"`` deletes them first (so an old ``eval-fold1-test/`` never stays beside a new
checkpoint as if it described it), ``"resume"`` keeps them. The marker is written with
``complete: false`` before the command's first file; :meth:`OutputClaim.complete` marks the
run finished, so a reader can tell an interrupted output from a finished one
(:func:`output_state`).

The package's own temporary files (``*.tmp-<pid>``, ``*.tmp``) beside an owned file are
its own too. Local folders only.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rnamotif_data.errors import ConfigError, StoreError

__all__ = ["OUTPUT_MARKER", "MRC_MARKER", "OutputClaim", "claim_output", "claimed_output", "output_state", "read_marker",
           "write_marker"]

#: the marker of a folder written by a command through :func:`claim_output`
OUTPUT_MARKER = ".rnamotif-output.json"
#: the marker an MRC export (``rnamotif export --format mrc``) writes into its folder
MRC_MARKER = ".rnamotif-export.json"
_MODES = ("new", "replace", "resume")


def read_marker(folder: str | os.PathLike, name: str = OUTPUT_MARKER) -> dict | None:
    """The JSON record of marker ``name`` in ``folder``, or None if there is none.

    Raises
    ------
    StoreError
        If the marker exists but is not a JSON object (naming it).
    """
    path = Path(folder) / name
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable marker ({exc}); delete it only if nothing of a run is left") from None
    if not isinstance(record, dict):
        raise StoreError(f"{path}: unreadable marker (not a JSON object)")
    return record


def write_marker(folder: str | os.PathLike, record: dict, name: str = OUTPUT_MARKER) -> None:
    """Write marker ``name`` in ``folder`` atomically (a temporary file, then a rename)."""
    path = Path(folder) / name
    tmp = path.with_name(f"{name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def output_state(folder: str | os.PathLike, name: str = OUTPUT_MARKER) -> str | None:
    """``"complete"``, ``"interrupted"`` (a marker without ``complete: true``) or None (no
    marker) for a command's output folder."""
    record = read_marker(folder, name)
    if record is None:
        return None
    return "complete" if record.get("complete") is True else "interrupted"


def _owned(rel: str, patterns: tuple[str, ...]) -> bool:
    base = rel
    for suffix in (".tmp",):
        base = base.removesuffix(suffix)
    stem, _, pid = base.rpartition(".tmp-")
    if stem and pid.isdigit():
        base = stem
    return any(fnmatch.fnmatchcase(base, p) or fnmatch.fnmatchcase(rel, p) for p in patterns)


def _files(folder: Path) -> list[str]:
    """Every file (and link) under ``folder``, relative, ``/``-separated, sorted."""
    out = []
    for p in folder.rglob("*"):
        if p.is_dir() and not p.is_symlink():
            continue
        out.append(p.relative_to(folder).as_posix())
    return sorted(out)


@dataclass(frozen=True)
class OutputClaim:
    """A folder :func:`claim_output` handed to ``command``; ``files`` are the patterns of
    the files it owns there."""

    folder: Path
    command: str
    files: tuple[str, ...]

    def complete(self, **extra) -> None:
        """Mark the run finished (``complete: true``; ``extra`` adds JSON fields)."""
        write_marker(self.folder, {"command": self.command, "files": list(self.files), "complete": True, **extra})


def claim_output(folder: str | os.PathLike, command: str, files, *, mode: str = "replace") -> OutputClaim:
    """Take ``folder`` for ``command``, which writes the files matching ``files`` there.

    Parameters
    ----------
    folder:
        The command's output folder (``--out``); made if missing.
    command:
        The command's name (``train``, ``report``, ...), recorded in the marker.
    files:
        :mod:`fnmatch` patterns (relative to ``folder``, ``/``-separated; ``*`` matches
        across ``/`` too) of every file the command writes.
    mode:
        For a folder an earlier run of ``command`` wrote: ``"new"`` refuses it,
        ``"replace"`` deletes its files (those its marker lists) before the new run,
        ``"resume"`` keeps them.

    Returns
    -------
    OutputClaim
        The marker is written (``complete: false``); call :meth:`OutputClaim.complete`
        when the run has finished.

    Raises
    ------
    StoreError
        One line naming the folder and the file: ``folder`` is a file; it holds a file no
        run of ``command`` owns; another command wrote it; an earlier run is there and
        ``mode`` is ``"new"``. Nothing is changed when it raises.
    ConfigError
        For an unknown ``mode``.
    """
    if mode not in _MODES:
        raise ConfigError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
    folder = Path(folder)
    patterns = tuple(str(p) for p in files)
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"{folder}: exists and is a file; --out must be a new or empty folder")
    old = read_marker(folder) if folder.is_dir() else None
    if old is not None and old.get("command") != command:
        raise StoreError(f"{folder}: was written by `rnamotif {old.get('command')}`, not `rnamotif {command}`; "
                         "choose another --out; nothing was changed")
    earlier = tuple(str(p) for p in (old or {}).get("files", ()))
    present = [f for f in _files(folder) if f != OUTPUT_MARKER] if folder.is_dir() else []
    # without a marker no file is the command's, whatever its name (a user's qc.md included)
    foreign = [f for f in present if old is None or not _owned(f, patterns + earlier)]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        whose = f"no run of `rnamotif {command}` wrote" if old is not None else f"`rnamotif {command}` did not write"
        raise StoreError(f"{folder}: holds {foreign[0]}{more}, which {whose}; move it or choose another --out; "
                         "nothing was changed")
    if old is not None and present and mode == "new":
        state = "a finished" if old.get("complete") is True else "an interrupted"
        raise StoreError(f"{folder}: holds {state} run of `rnamotif {command}`; pass --overwrite to replace it"
                         f"{' or --resume to continue it' if command == 'train' else ''}, or choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    if old is not None and mode == "replace":
        emptied: set[Path] = set()
        for rel in present:  # every one is owned (checked above)
            (folder / rel).unlink()
            emptied.update(p for p in (folder / rel).parents if folder in p.parents)
        for d in sorted(emptied, key=lambda d: -len(d.parts)):
            if d.is_dir() and not any(d.iterdir()):  # only folders that held the earlier run's files
                d.rmdir()
    kept = earlier if mode == "resume" else ()
    claim = OutputClaim(folder, command, tuple(dict.fromkeys(patterns + kept)))
    write_marker(folder, {"command": command, "files": list(claim.files), "complete": False})
    return claim


@contextmanager
def claimed_output(folder: str | os.PathLike, command: str, files, *, mode: str = "replace") -> Iterator[OutputClaim]:
    """:func:`claim_output` around a command's work (a ``with`` block): the run is marked
    complete when the block ends; when it fails before the command wrote any file (a bad
    input found after the claim), the marker goes again, and the folder too if the claim
    made it, so a refused input leaves nothing behind.

    Raises
    ------
    StoreError, ConfigError
        As :func:`claim_output`; the block's own errors pass through.
    """
    folder = Path(folder)
    made = not folder.exists()
    old = read_marker(folder) if folder.is_dir() else None
    before = _snapshot(folder)
    claim = claim_output(folder, command, files, mode=mode)
    try:
        yield claim
    except BaseException:
        if folder.is_dir() and _snapshot(folder) == before:  # the command wrote nothing: leave it as it was
            if old is not None:
                write_marker(folder, old)  # e.g. a refused --resume keeps a finished run finished
            else:
                (folder / OUTPUT_MARKER).unlink(missing_ok=True)
                if made and not any(folder.iterdir()):
                    folder.rmdir()
        raise
    claim.complete()


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """``{file: (size, mtime_ns)}`` of every file under ``folder`` but the marker."""
    if not folder.is_dir():
        return {}
    out = {}
    for rel in _files(folder):
        if rel != OUTPUT_MARKER:
            st = (folder / rel).lstat()
            out[rel] = (st.st_size, st.st_mtime_ns)
    return out
