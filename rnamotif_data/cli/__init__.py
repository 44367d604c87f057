"""The ``rnamotif`` command: one entry point whose sub-commands are the package's programs.

Each sub-command is the ``main(argv)`` of the module that owns its concept (for example
``rnamotif verify`` is :func:`rnamotif_data.release.verify.main`); this module only
dispatches, sets up logging and turns the package's errors into one line. Nothing in the
package imports it (an import-linter contract).

Exit status: 0 success; 1 an error on bad input or in the environment (the message names
the file, entry, row or setting); 2 a usage error (argparse, an unknown command); 3 the
work is complete but some items failed (``rnamotif build``: some manifest rows, listed in
``failures.parquet``); 130 interrupted.
Set ``RNAMOTIF_DEBUG=1`` to get the traceback of an error instead of its one line.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable

from rnamotif_data.common.version import __version__
from rnamotif_data.errors import RNAMotifError

__all__ = ["COMMANDS", "main", "run"]

#: sub-command -> (module whose ``main`` runs it, arguments put before the user's, one-line help, group)
COMMANDS: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "manifest": ("rnamotif_data.inputs.manifest", (), "import, resolve and validate manifests (CoSSMos, Motif Atlas, upstream folds)", "make a dataset"),
    "search": ("rnamotif_data.inputs.manifest", ("search",), "RCSB search: PDB IDs with their primary EMDB map and resolution (network)", "make a dataset"),
    "annotate": ("rnamotif_data.inputs.manifest", ("annotate",), "every hairpin, bulge and internal loop of some models, as a manifest (RNApolis)", "make a dataset"),
    "fetch": ("rnamotif_data.inputs.fetch", (), "download each manifest entry's model and map once into a local mirror (network)", "make a dataset"),
    "build": ("rnamotif_data.pipeline.builder", (), "build a Zarr + Parquet store from a manifest (default: the shipped demo)", "make a dataset"),
    "segment": ("rnamotif_data.samples.extract", (), "cut one motif's labelled cube from a map and a model into MRC files", "make a dataset"),
    "verify": ("rnamotif_data.release.verify", (), "check a store's checksums, cubes, labels and tables", "check and share"),
    "report": ("rnamotif_data.release.report", (), "QC report of a store (Markdown + figures)", "check and share"),
    "audit": ("rnamotif_data.release.audit", (), "shortcut audit: can structure-free features tell the classes apart?", "check and share"),
    "embed": ("rnamotif_data.features.command", (), "sequence features of every sample's residues (structRFM, one-hot; [embed] extra)", "check and share"),
    "split": ("rnamotif_data.split.command", (), "write folds that no similarity crosses (store or manifest)", "check and share"),
    "export": ("rnamotif_data.release.export", (), "export samples as MRC files or HDF5", "check and share"),
    "recode": ("rnamotif_data.release.recode", (), "copy a store to another chunk codec, verified", "check and share"),
    "publish": ("rnamotif_data.release.publish", (), "package a release and publish it on Zenodo (network)", "check and share"),
    "download": ("rnamotif_data.storage.download", (), "download a published release, verified (network unless cached)", "check and share"),
    "train": ("rnamotif_data.learn.train", (), "train Motif3DCNN on a store's split ([learn] extra)", "learn"),
    "evaluate": ("rnamotif_data.learn.evaluate", (), "evaluate a checkpoint on a fold or on MRC files ([learn] extra)", "learn"),
    "make-demo": ("rnamotif_data.testing.make_demo", (), "regenerate the shipped demo (developers)", "developers"),
    "multi-entry": ("rnamotif_data.testing.multi_entry", (), "make the multi-entry fixture from ../shared/data (developers)", "developers"),
    "synthetic-store": ("rnamotif_data.testing.synthetic_store", (), "make a synthetic store for loader benchmarks (developers)", "developers"),
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
    for name, (_, _, text, group) in COMMANDS.items():
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
    module, prefix, _, _ = COMMANDS[name]

    def program(program_argv: list[str] | None) -> int:
        # imported here, inside run(): a missing extra is one line, not a traceback
        return importlib.import_module(module).main(program_argv)

    prog = sys.argv[0]
    sys.argv[0] = f"rnamotif {name}"  # argparse's usage line names the sub-command
    try:
        return run(program, [*prefix, *rest])
    finally:
        sys.argv[0] = prog
