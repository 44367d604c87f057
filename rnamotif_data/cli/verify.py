"""Check a built store: shapes, dtypes, metadata against arrays, value ranges, checksums.

``rnamotif verify``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.release.verify`.
"""

from __future__ import annotations

import argparse

from rnamotif_data.release.verify import log, verify_store

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif verify``."""
    p = argparse.ArgumentParser(prog="rnamotif verify", description=__doc__.split("\n")[0])
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument("--no-values", action="store_true", help="skip reading the cubes")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 if the store passes, 1 otherwise."""
    args = parser().parse_args(argv)
    problems, counts = verify_store(args.store, values=not args.no_values)
    for msg in problems:
        log.error("%s: %s", args.store, msg)
    log.info("class counts: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    if problems:
        log.error("%s: %d problem(s)", args.store, len(problems))
        return 1
    log.info("%s: OK (%d samples)", args.store, sum(counts.values()))
    return 0
