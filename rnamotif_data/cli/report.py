"""QC report of a built store: a PNG of histograms and a Markdown page.

``rnamotif report``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.release.report`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.release.report import log, write_report
from rnamotif_data.storage.outputs import claimed_output

__all__ = ["REPORT_FILES", "main", "parser"]

#: the files ``rnamotif report`` owns in its ``--out`` folder; a rerun replaces them
REPORT_FILES = ("qc.md", "qc.png", "placement.png", "audit.png", "tile.png")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif report``."""
    p = argparse.ArgumentParser(prog="rnamotif report", description=__doc__.split("\n")[0])
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument("--out", type=Path, help="output folder (default: <store>-report beside the store)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``rnamotif report STORE [--out DIR]``."""
    args = parser().parse_args(argv)
    out = args.out or Path(str(args.store).rstrip("/")).with_name(Path(str(args.store).rstrip("/")).stem + "-report")
    with claimed_output(out, "report", REPORT_FILES):
        png, md = write_report(args.store, out)
    log.info("wrote %s and %s", md, png)
    return 0
