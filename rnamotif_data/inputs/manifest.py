"""Manifests: the builder's input contract, its validation, and the import commands.

A manifest is a Parquet table with one row per motif occurrence (design §5);
its columns are documented in ``manifests/README.md`` (tested against :data:`SCHEMA`).
Every entry point (importers, builder, fetcher) validates through
:func:`validate_manifest`.

Usage::

    rnamotif manifest import cossmos FILE [FILE ...] --out M.parquet [--motif-type T]
    rnamotif manifest import atlas FILE [FILE ...] --out M.parquet
    rnamotif manifest import folds DIR --out M.parquet
    rnamotif manifest resolve FOLDS.parquet --cossmos C.parquet --out M.parquet
    rnamotif manifest validate M.parquet

Importers keep the valid rows and write the rejected ones, with row, column and reason,
to ``M.rejected.parquet`` beside the output; ``--strict`` refuses the whole manifest
instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.common.output import REPORT
from rnamotif_data.inputs import importers
from rnamotif_data.inputs.annotate import run_annotate
from rnamotif_data.inputs.schema import (
    read_manifest,
    rejected_path,
    resolve_residues,
    summary,
    write_manifest,
)
from rnamotif_data.inputs.search import run_search
from rnamotif_data.inputs.sources import default_cache_dir
from rnamotif_data.rna.motifs import FINE_TYPES

__all__ = [ "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""

    p = argparse.ArgumentParser(prog="rnamotif manifest", description="Import and validate motif manifests.")
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
    n = sub.add_parser("annotate", help="every hairpin, bulge and internal loop of some models (RNApolis)")
    n.add_argument("models", nargs="*", type=Path, help="PDB/mmCIF files (gzip allowed)")
    n.add_argument("--pdb-ids", type=Path, help="entries to fetch and annotate: ids.parquet (pdb_id column) "
                   "or a text file of PDB IDs")
    n.add_argument("--out", required=True, type=Path)
    n.add_argument("--emdb-id", help="the EMDB map of the model file given (EMD-NNNN; default: read from its mmCIF)")
    n.add_argument("--resolution", type=float, help="Å, of that map (default: read from the mmCIF)")
    s = sub.add_parser("search", help="RCSB Search API: PDB IDs with their primary EMDB map and resolution")
    s.add_argument("--method", default="electron microscopy", help="experimental method (default %(default)s)")
    s.add_argument("--max-resolution", type=float, help="Å")
    s.add_argument("--polymer", choices=("rna", "dna", "protein"), default="rna",
                   help="entries that contain this polymer type (default %(default)s)")
    s.add_argument("--released-after", help="YYYY-MM-DD")
    s.add_argument("--limit", type=int, help="at most this many entries")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--search-url", default=None, help=argparse.SUPPRESS)
    for k in (n, s):
        k.add_argument("--cache", type=Path, default=None, help="download cache (default $RNAMOTIF_CACHE)")
        k.add_argument("--mirror", type=Path, help="local mirror with the cache layout (implies --offline)")
        k.add_argument("--offline", action="store_true")
        k.add_argument("--online", action="store_true", help="with --mirror, download what it lacks")
    args = p.parse_args(argv)
    if args.command in ("annotate", "search"):

        args.cache = args.cache or default_cache_dir()
        if args.command == "annotate":

            return run_annotate(args)

        return run_search(args)

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
