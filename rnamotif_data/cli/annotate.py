"""Every hairpin, bulge and internal loop of some models, as a manifest (RNApolis).

``rnamotif annotate MODEL [MODEL ...] --out M.parquet [--emdb-id EMD-N] [--resolution R]``
or ``rnamotif annotate --pdb-ids ids.parquet --out M.parquet [--mirror DIR]``: the
manifest of every loop RNApolis finds (``[annotate]`` extra), the other loops beside it
(:func:`~rnamotif_data.inputs.annotate.other_path`). The work is done by
:func:`~rnamotif_data.inputs.annotate.annotate_entries`.

Exit status 0, or 3 when the manifest is written but some models were rejected (the log
names them).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from rnamotif_data.cli._options import add_source_arguments, source_config_from_args
from rnamotif_data.errors import RNAMotifError
from rnamotif_data.inputs.annotate import annotate_entries, em_metadata, log, other_path
from rnamotif_data.inputs.schema import read_pdb_ids
from rnamotif_data.inputs.sources import Sources

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif annotate``."""
    p = argparse.ArgumentParser(prog="rnamotif annotate", description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="*", type=Path, help="PDB/mmCIF files (gzip allowed)")
    p.add_argument("--pdb-ids", type=Path, help="entries to fetch and annotate: ids.parquet (pdb_id column) "
                   "or a text file of PDB IDs")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--emdb-id", help="the EMDB map of the model file given (EMD-NNNN; default: read from its mmCIF)")
    p.add_argument("--resolution", type=float, help="Å, of that map (default: read from the mmCIF)")
    add_source_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0, or 3 when some models were rejected.

    For model files, each row's ``emdb_id`` and ``resolution`` come from ``--emdb-id`` /
    ``--resolution`` when given, else from the model file (:func:`em_metadata`); a row
    without them fails later at fetch, so what is missing is said here."""
    args = parser().parse_args(argv)
    if bool(args.models) == bool(args.pdb_ids):
        raise RNAMotifError("give model files or --pdb-ids FILE (one of them)")
    if (args.emdb_id or args.resolution) and not args.models:
        raise RNAMotifError("--emdb-id and --resolution describe model files given on the command line; with "
                            "--pdb-ids, give emdb_id and resolution columns in the ids file")
    if args.emdb_id and len(args.models) > 1:
        raise RNAMotifError(f"--emdb-id {args.emdb_id} names one map; give one model file (got {len(args.models)})")
    if args.models:
        pairs = []
        for p in args.models:
            emdb, resolution = em_metadata(p)
            entry = {"pdb_id": p.name.split(".")[0].upper(), "emdb_id": args.emdb_id or emdb,
                     "resolution": args.resolution if args.resolution is not None else resolution}
            if entry["emdb_id"] is None or entry["resolution"] is None:
                missing = " and ".join(k for k in ("emdb_id", "resolution") if entry[k] is None)
                log.warning("%s: the file records no %s; pass --emdb-id/--resolution, or the build looks the map "
                            "up online (RCSB) and fails offline", p, missing)
            pairs.append((entry, p))
    else:
        sources = Sources(source_config_from_args(args))
        pairs = []
        for entry in read_pdb_ids(args.pdb_ids):
            try:
                pairs.append((entry, sources.model(entry["pdb_id"])))
            except (RNAMotifError, OSError) as exc:
                log.warning("%s: no model (%s)", entry["pdb_id"], exc)
    table, other, rejected = annotate_entries(pairs, args.out)
    counts = Counter(table["motif_type"].to_pylist())
    log.info("wrote %s: %d motifs from %d models (%s)", args.out, table.num_rows, len(pairs),
             ", ".join(f"{t} {n}" for t, n in sorted(counts.items())) or "none")
    reasons = Counter(o["reason"].split(":")[0] for o in other)
    log.info("wrote %s: %d other loops (%s)", other_path(args.out), len(other),
             ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) or "none")
    for rej in rejected:
        log.warning("not annotated: %s", rej.reason)
    return 0 if not rejected else 3  # 3: written, with rejected models (the log names them)
