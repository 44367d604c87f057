"""Copy a store with another chunk codec: the same cubes, tables and splits, verified.

``rnamotif recode``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.release.recode`.
"""

from __future__ import annotations

import argparse

from rnamotif_data.release.recode import recode_store
from rnamotif_data.storage.shards import CODECS

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif recode``."""
    p = argparse.ArgumentParser(prog="rnamotif recode", description=__doc__.split("\n")[0])
    p.add_argument("store", help="a complete store (path or fsspec URL)")
    p.add_argument("--codec", required=True, choices=tuple(CODECS), help="chunk codec of the copy")
    p.add_argument("--compression-level", type=int, default=None,
                   help="level of the codec (lz4 1-9, default 5; zstd 1-22, default 3)")
    p.add_argument("--out", required=True, help="a new or empty folder")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parser().parse_args(argv)
    recode_store(args.store, args.out, args.codec, args.compression_level, progress=not args.no_progress)
    return 0
