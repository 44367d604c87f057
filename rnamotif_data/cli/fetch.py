"""Prefetch every model and map a manifest needs into the local cache.

``rnamotif fetch``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.inputs.fetch`.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rnamotif_data.cli._options import add_source_arguments, source_config_from_args
from rnamotif_data.common.output import REPORT
from rnamotif_data.inputs.fetch import REPORT_SCHEMA, entry_maps, fetch_entries, log
from rnamotif_data.inputs.schema import REJECTED_SCHEMA, read_manifest, read_pdb_ids
from rnamotif_data.inputs.sources import Sources

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif fetch``."""
    p = argparse.ArgumentParser(prog="rnamotif fetch", description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--manifest", type=Path)
    what.add_argument("--pdb-ids", type=Path, help="entries to fetch: ids.parquet (pdb_id, optional emdb_id) "
                      "from `rnamotif search`, or a text file of PDB IDs")
    p.add_argument("--report", type=Path, help="report file (.parquet)")
    add_source_arguments(p, online=False)
    p.add_argument("--check-residues", action="store_true",
                   help="read each model and reject rows whose residues or sequence it lacks")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = parser()
    args = p.parse_args(argv)

    if args.pdb_ids is not None:
        if args.check_residues:
            p.error("--check-residues needs --manifest")
        entries = read_pdb_ids(args.pdb_ids)
        table = pa.Table.from_pylist([{"pdb_id": e["pdb_id"].upper(), "emdb_id": e.get("emdb_id")} for e in entries],
                                     schema=pa.schema([("pdb_id", pa.string()), ("emdb_id", pa.string())]))
        args.manifest = args.pdb_ids
    else:
        table, rejected = read_manifest(args.manifest)
        if rejected:
            log.warning("%s: %d invalid rows ignored (run `rnamotif manifest validate`)",
                        args.manifest, len(rejected))
    config = source_config_from_args(args, offline=args.offline)  # a mirror does not mean offline here
    sources = Sources(config)
    by_entry: dict | None = None
    if args.check_residues:
        by_entry = {}
        for i, r in enumerate(table.to_pylist()):
            by_entry.setdefault(  # type: ignore[union-attr]
                r["pdb_id"], []).append((i, r))
    rows, bad_rows = fetch_entries(sources, entry_maps(table), progress=not args.no_progress,
                                   rows_by_entry=by_entry)
    # the input's name and a hash of its absolute path: same-named manifests of different
    # folders get different reports
    tag = hashlib.sha256(str(Path(args.manifest).resolve()).encode()).hexdigest()[:8]
    report = args.report or Path(config.cache_dir) / "reports" / f"{args.manifest.name.rsplit('.', 1)[0]}-{tag}.fetch.parquet"
    report.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=REPORT_SCHEMA), report)
    failures = Counter(r["status"] for r in rows if r["status"] != "ok")
    ok = sum(r["status"] == "ok" for r in rows)
    REPORT.info(f"{args.manifest}: {len(rows)} entry maps, {ok} ok, {sum(failures.values())} failed; "
          f"downloaded {sources.files_downloaded} files, {sources.bytes_downloaded / 2**20:.1f} MiB")
    for reason, n in failures.most_common():
        REPORT.info(f"  {n:6d}  {reason}")
    if args.check_residues:
        bad_path = report.with_name(report.name.removesuffix(".parquet") + ".rejected-rows.parquet")
        pq.write_table(pa.Table.from_pylist(
            [{"row": b.row, "source": b.source, "source_id": b.source_id, "column": b.column,
              "reason": b.reason} for b in bad_rows], schema=REJECTED_SCHEMA), bad_path)
        REPORT.info(f"rows not matching their model: {len(bad_rows)} ({bad_path})")
    REPORT.info(f"report: {report}")
    return 1 if failures else 0
