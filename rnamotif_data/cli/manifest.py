"""Import, resolve and validate manifests (CoSSMos, Motif Atlas, upstream folds).

Usage::

    rnamotif manifest import cossmos FILE [FILE ...] --out M.parquet [--motif-type T]
    rnamotif manifest import atlas FILE [FILE ...] --out M.parquet
    rnamotif manifest import folds DIR --out M.parquet
    rnamotif manifest resolve FOLDS.parquet --cossmos C.parquet --out M.parquet
    rnamotif manifest validate M.parquet

Importers keep the valid rows and write the rejected ones, with row, column and reason,
to ``M.rejected.parquet`` beside the output; ``--strict`` refuses the whole manifest
instead. The work is done by :mod:`rnamotif_data.inputs.importers` and
:mod:`rnamotif_data.inputs.schema` (the manifest schema and its validation). Annotating
models and searching the PDB are ``rnamotif annotate`` and ``rnamotif search``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rnamotif_data.cli import annotate, search
from rnamotif_data.common.output import REPORT
from rnamotif_data.inputs import importers
from rnamotif_data.inputs.schema import read_manifest, rejected_path, resolve_residues, summary, write_manifest
from rnamotif_data.rna.motifs import FINE_TYPES

__all__ = ["main", "parser"]

log = logging.getLogger("rnamotif_data.cli")


#: 0.8's spellings of two commands, kept for a deprecation period: ``rnamotif manifest
#: annotate|search`` runs ``rnamotif annotate|search`` with a one-line note
MOVED = ("annotate", "search")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif manifest``."""
    p = argparse.ArgumentParser(prog="rnamotif manifest", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="turn a motif list into a manifest")
    kinds = imp.add_subparsers(dest="kind", required=True)
    c = kinds.add_parser("cossmos", help="CoSSMos search exports (2012 '#' or 2025 tab format)")
    c.add_argument("files", nargs="+", type=Path)
    c.add_argument("--motif-type", choices=FINE_TYPES, help="expected type; rows of another type are rejected")
    a = kinds.add_parser("atlas", help="RNA 3D Motif Atlas release JSON (hl_*.json, il_*.json)")
    a.add_argument("files", nargs="+", type=Path)
    a.add_argument("--models", type=Path, help="folder of the entries' model files (or a builder mirror): "
                   "strands are measured on the models, not the numbering")
    f = kinds.add_parser("folds", help="upstream fold CSVs (fold{k}_train.csv / fold{k}_val.csv)")
    f.add_argument("folder", type=Path)
    for k in (c, a, f):
        k.add_argument("--out", required=True, type=Path, help="manifest to write (.parquet)")
        k.add_argument("--strict", action="store_true", help="refuse the manifest if any row is bad")
    r = sub.add_parser("resolve", help="fill residues of needs_residues rows from a CoSSMos manifest")
    r.add_argument("manifest", type=Path)
    r.add_argument("--cossmos", required=True, type=Path, help="manifest imported from CoSSMos exports")
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--strict", action="store_true")
    v = sub.add_parser("validate", help="validate a manifest and print counts")
    v.add_argument("manifest", type=Path)
    v.add_argument("--strict", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] in MOVED:
        name = args_in[0]
        log.warning("'rnamotif manifest %s' is now 'rnamotif %s'; the old spelling will be removed", name, name)
        program = annotate.main if name == "annotate" else search.main
        return program(args_in[1:])
    args = parser().parse_args(argv)
    if args.command == "validate":
        table, rejections = read_manifest(args.manifest, strict=args.strict)
        REPORT.info(f"{args.manifest}:\n{summary(table, rejections)}")
        return 0
    if args.command == "resolve":
        table, _ = read_manifest(args.manifest)
        cossmos, _ = read_manifest(args.cossmos)
        rows, rejected = resolve_residues(table.to_pylist(), cossmos.to_pylist())
        table, everything = write_manifest(rows, rejected, args.out, strict=args.strict)
        REPORT.info(f"{args.out} (rejected rows: {rejected_path(args.out).name}):\n{summary(table, everything)}")
        return 0
    if args.kind == "cossmos":
        rows, rejected = importers.import_cossmos(args.files, motif_type=args.motif_type)
    elif args.kind == "atlas":
        models = importers.models_in(args.models) if args.models else None
        rows, rejected = importers.import_motif_atlas(args.files, models)
    else:
        rows, rejected = importers.import_upstream_folds(args.folder)
    table, everything = write_manifest(rows, rejected, args.out, strict=args.strict)
    REPORT.info(f"{args.out} (rejected rows: {rejected_path(args.out).name}):\n{summary(table, everything)}")
    return 0
