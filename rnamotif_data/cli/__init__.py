"""The ``rnamotif`` command: one entry point whose sub-commands are the package's programs.

Each sub-command is the ``main(argv)`` of its own module in this package, named for it
(``rnamotif verify`` is :func:`rnamotif_data.cli.verify.main`, ``rnamotif make-demo``
:func:`rnamotif_data.cli.make_demo.main`): the module holds the command's flags and exit
status and calls the library, which holds no argparse. This module only dispatches, sets
up logging and turns the package's errors into one line; it imports a program only when
that command runs, so ``rnamotif --help`` starts fast. Nothing in the package imports
``cli`` (an import-linter contract), and the layers contract puts it on top.

Exit status: 0 success; 1 an error on bad input or in the environment (the message names
the file, entry, row or setting); 2 a usage error (argparse, an unknown command); 3 the
work is complete but some items failed (``rnamotif build``: some manifest rows, listed in
``failures.parquet``); 130 interrupted.
Set ``RNAMOTIF_DEBUG=1`` to get the traceback of an error instead of its one line.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from rnamotif_data.common.version import __version__
from rnamotif_data.errors import RNAMotifError

__all__ = ["COMMANDS", "main", "run"]

Program = Callable[[list[str] | None], int]


# One function per program: each imports its module (rnamotif_data/cli/<name>.py) when the
# command runs, so `rnamotif --help` imports none of them and a missing extra is one line;
# the imports are plain ones, so import-linter and grimp see every program.
def _manifest() -> Program:
    from rnamotif_data.cli import manifest

    return manifest.main


def _search() -> Program:
    from rnamotif_data.cli import search

    return search.main


def _annotate() -> Program:
    from rnamotif_data.cli import annotate

    return annotate.main


def _fetch() -> Program:
    from rnamotif_data.cli import fetch

    return fetch.main


def _build() -> Program:
    from rnamotif_data.cli import build

    return build.main


def _segment() -> Program:
    from rnamotif_data.cli import segment

    return segment.main


def _verify() -> Program:
    from rnamotif_data.cli import verify

    return verify.main


def _report() -> Program:
    from rnamotif_data.cli import report

    return report.main


def _audit() -> Program:
    from rnamotif_data.cli import audit

    return audit.main


def _embed() -> Program:
    from rnamotif_data.cli import embed

    return embed.main


def _split() -> Program:
    from rnamotif_data.cli import split

    return split.main


def _export() -> Program:
    from rnamotif_data.cli import export

    return export.main


def _recode() -> Program:
    from rnamotif_data.cli import recode

    return recode.main


def _publish() -> Program:
    from rnamotif_data.cli import publish

    return publish.main


def _download() -> Program:
    from rnamotif_data.cli import download

    return download.main


def _train() -> Program:
    from rnamotif_data.cli import train

    return train.main


def _evaluate() -> Program:
    from rnamotif_data.cli import evaluate

    return evaluate.main


def _compare() -> Program:
    from rnamotif_data.cli import compare

    return compare.main


def _detect() -> Program:
    from rnamotif_data.cli import detect

    return detect.main


def _make_demo() -> Program:
    from rnamotif_data.cli import make_demo

    return make_demo.main


def _multi_entry() -> Program:
    from rnamotif_data.cli import multi_entry

    return multi_entry.main


def _synthetic_store() -> Program:
    from rnamotif_data.cli import synthetic_store

    return synthetic_store.main


#: sub-command -> (function returning its ``main``, one-line help, group)
COMMANDS: dict[str, tuple[Callable[[], Program], str, str]] = {
    "manifest": (_manifest, "import, resolve and validate manifests (CoSSMos, Motif Atlas, upstream folds)", "make a dataset"),
    "search": (_search, "RCSB search: PDB IDs with their primary EMDB map and resolution (network)", "make a dataset"),
    "annotate": (_annotate, "every hairpin, bulge and internal loop of some models, as a manifest (RNApolis)", "make a dataset"),
    "fetch": (_fetch, "download each manifest entry's model and map once into a local mirror (network)", "make a dataset"),
    "build": (_build, "build a Zarr + Parquet store from a manifest (default: the shipped demo); --tiles: whole-map volumes and tiles too", "make a dataset"),
    "segment": (_segment, "cut one motif's labelled cube from a map and a model into MRC files", "make a dataset"),
    "verify": (_verify, "check a store's checksums, cubes, labels and tables", "check and share"),
    "report": (_report, "QC report of a store (Markdown + figures)", "check and share"),
    "audit": (_audit, "shortcut audit: can structure-free features tell the classes apart?", "check and share"),
    "embed": (_embed, "sequence features of every sample's residues (structRFM, one-hot; [embed] extra)", "check and share"),
    "split": (_split, "write folds that no similarity crosses (store or manifest); --tiles: a tiled store's tiles", "check and share"),
    "export": (_export, "export samples as MRC files or HDF5", "check and share"),
    "recode": (_recode, "copy a store to another chunk codec, verified", "check and share"),
    "publish": (_publish, "package a release and publish it on Zenodo (network)", "check and share"),
    "download": (_download, "download a published release, verified (network unless cached)", "check and share"),
    "train": (_train, "train Motif3DCNN on a store's split, or --network unet3d on its tiles ([learn] extra)", "learn"),
    "evaluate": (_evaluate, "evaluate a checkpoint on a fold (whole maps for unet3d) or on MRC files ([learn] extra)", "learn"),
    "compare": (_compare, "two training arms paired by fold and seed: difference, interval, paired tests", "learn"),
    "detect": (_detect, "find the motifs in a map: element labels and probabilities as MRC, sites ([learn] extra)", "learn"),
    "make-demo": (_make_demo, "regenerate the shipped demo (developers)", "developers"),
    "multi-entry": (_multi_entry, "make the multi-entry fixture from ../shared/data (developers)", "developers"),
    "synthetic-store": (_synthetic_store, "make a synthetic store for loader benchmarks (developers)", "developers"),
}


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a program's ``main(argv)`` with logging set up; return its exit status.

    - :class:`~rnamotif_data.errors.RNAMotifError` (bad input, a failed download or service,
      a missing extra) becomes one line on stderr, exit status 1.
    - ``OSError`` (disk full, permission denied, a missing file the user named) also becomes
      one line, exit status 1: it is the environment, not a bug. A narrow branch here rather
      than a conversion where each file is opened, because files are opened in about a hundred
      places of ours and more inside gemmi, mrcfile, pyarrow and zarr; where our code checks a file
      the user named it raises :class:`~rnamotif_data.errors.MissingFileError`, which is both.
    - Ctrl-C gives exit status 130 and a line that points to ``--resume``.
    - Anything else (a bare ``ValueError``, ``KeyError``, ``RuntimeError``, ...) is a bug: its
      traceback is shown (re-raised). ``RNAMOTIF_DEBUG=1`` re-raises package errors too.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        return int(main(argv) or 0)
    except (RNAMotifError, OSError) as exc:
        if os.environ.get("RNAMOTIF_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted (rerun with --resume where the command has it)", file=sys.stderr)
        return 130


def _usage() -> str:

    lines = [f"usage: rnamotif [--version] COMMAND [ARGS ...]   (rnamotif-data {__version__})", "",
             "Cryo-EM maps and fitted RNA models as a machine-learning dataset of RNA motifs.", ""]
    groups: dict[str, list[str]] = {}
    for name, (_, text, group) in COMMANDS.items():
        groups.setdefault(group, []).append(f"  {name:<16} {text}")
    for group, rows in groups.items():
        lines += [f"{group}:", *rows, ""]
    lines.append("'rnamotif COMMAND --help' gives a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The ``rnamotif`` console script: ``rnamotif COMMAND [ARGS ...]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":

        print(f"rnamotif-data {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        close = [c for c in COMMANDS if c.startswith(name[:3])]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        print(f"error: rnamotif has no command {name!r}{hint}; 'rnamotif --help' lists them", file=sys.stderr)
        return 2
    load = COMMANDS[name][0]

    def program(program_argv: list[str] | None) -> int:
        # imported here, inside run(): a missing extra is one line, not a traceback
        return load()(program_argv)

    prog = sys.argv[0]
    sys.argv[0] = f"rnamotif {name}"  # argparse's usage line names the sub-command
    try:
        return run(program, rest)
    finally:
        sys.argv[0] = prog
