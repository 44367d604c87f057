"""Regenerate the shipped demo map from the shipped demo model.

``rnamotif make-demo``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.testing.make_demo`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.testing.make_demo import write_demo

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif make-demo``."""
    p = argparse.ArgumentParser(prog="rnamotif make-demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "demo")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    write_demo(args.out)
    return 0
