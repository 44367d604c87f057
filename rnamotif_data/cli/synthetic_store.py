"""A store of many samples made from a few real cubes, for loader tests and benchmarks.

``rnamotif synthetic-store``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.testing.synthetic_store`.
"""

from __future__ import annotations

import argparse

from rnamotif_data.testing.synthetic_store import log, make_synthetic_store

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif synthetic-store``."""
    p = argparse.ArgumentParser(prog="rnamotif synthetic-store", description=__doc__.split("\n")[0])
    p.add_argument("--source", required=True, help="a built store whose cubes are reused (e.g. the demo)")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a store at --out (one this package built)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parser().parse_args(argv)
    make_synthetic_store(args.source, args.out, args.n, seed=args.seed, overwrite=args.overwrite)
    log.info("wrote %s (%d samples)", args.out, args.n)
    return 0
