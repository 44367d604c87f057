"""Export a store to one HDF5 file or to upstream-style MRC folders.

``rnamotif export``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.release.export`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.errors import ConfigError, StoreError
from rnamotif_data.release.export import check_export_target, export_hdf5, export_mrc, log
from rnamotif_data.storage.store import open_store

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif export``."""
    p = argparse.ArgumentParser(prog="rnamotif export", description=__doc__.split("\n")[0])
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument("--format", choices=("hdf5", "mrc"), required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--by-class", action="store_true", help="mrc: DIR/<class>/<name>.mrc only")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export of this package at --out")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    if args.by_class and args.format != "mrc":
        raise ConfigError(f"--by-class lays out MRC files in class folders; --format {args.format} has no such "
                          "layout (drop --by-class)")
    if len(open_store(args.store)) == 0:
        raise StoreError(f"{args.store}: the store has no samples; nothing to export")
    check_export_target(args.out, args.format, overwrite=args.overwrite)
    if args.format == "hdf5":
        path = export_hdf5(args.store, args.out)
        log.info("wrote %s", path)
    else:
        n = export_mrc(args.store, args.out, by_class=args.by_class)
        log.info("wrote %d samples under %s", n, args.out)
    return 0
