"""Regenerate the shipped demo map from the shipped demo model.

``rnamotif make-demo``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.testing.make_demo`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.errors import ConfigError
from rnamotif_data.testing.make_demo import DEMO_MODEL, write_demo

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif make-demo``."""
    p = argparse.ArgumentParser(prog="rnamotif make-demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "demo")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: is a file; give the demo folder (it holds {DEMO_MODEL})")
    if not (args.out / DEMO_MODEL).is_file():
        raise ConfigError(f"--out {args.out}: holds no {DEMO_MODEL}, the model the demo map is made from; "
                          "give the demo folder")
    write_demo(args.out)
    return 0
