"""Prefetch every model and map a manifest needs into the local cache.

Usage::

    rnamotif fetch --manifest M.parquet [--cache DIR] [--mirror DIR] [--offline]
                             [--report FILE]
    rnamotif fetch --pdb-ids ids.parquet|ids.txt ...     # entries, before any manifest

One line per entry goes into the report (Parquet; default
``CACHE/reports/<manifest>-<hash of its path>.fetch.parquet``): PDB ID, the EMDB map chosen and why
(``manifest`` or ``primary map of PDB entry``), model and map paths, and the error of an
entry that failed. A failing entry never stops the others; the run ends with a summary
(files and bytes downloaded, entries ok, failures by reason) and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from rnamotif_data.common.output import REPORT
from rnamotif_data.errors import RNAMotifError
from rnamotif_data.inputs.schema import REJECTED_SCHEMA, Rejection, check_rows_against_model, read_manifest, read_pdb_ids
from rnamotif_data.inputs.sources import SourceConfig, Sources, default_cache_dir
from rnamotif_data.rna.structure import read_model

log = logging.getLogger("rnamotif_data.inputs.fetch")

REPORT_SCHEMA = pa.schema([
    ("pdb_id", pa.string()), ("emdb_id", pa.string()), ("emdb_reason", pa.string()),
    ("model_path", pa.string()), ("map_path", pa.string()), ("status", pa.string()),
    ("error", pa.string()),
])


def entry_maps(table: pa.Table) -> dict[str, list[str | None]]:
    """Per PDB ID, the distinct EMDB IDs its manifest rows name (None: use the primary map)."""
    out: dict[str, list[str | None]] = {}
    for pdb, emdb in zip(table["pdb_id"].to_pylist(), table["emdb_id"].to_pylist()):
        ids = out.setdefault(pdb, [])
        if emdb not in ids:
            ids.append(emdb)
    for pdb, ids in out.items():  # rows with an explicit map cover rows without one
        if len(ids) > 1 and None in ids:
            ids.remove(None)
    return out


def fetch_entries(sources: Sources, wanted: dict[str, list[str | None]], progress: bool = True,
                  rows_by_entry: dict[str, list[tuple[int, dict]]] | None = None) -> tuple[list[dict], list[Rejection]]:
    """Fetch each entry's model and maps.

    Returns one report row per (entry, map), and, when ``rows_by_entry`` is given, the
    manifest rows whose residues or sequence do not match the fetched model.
    """
    rows = []
    bad_rows: list[Rejection] = []
    for pdb, emdb_ids in tqdm(sorted(wanted.items()), desc="entries", unit="entry", disable=not progress):
        model_path, model_error = None, None
        try:  # once per entry: every map of the entry shares the model and its outcome
            model_path = sources.model(pdb)
            if rows_by_entry is not None:
                bad_rows += check_rows_against_model(rows_by_entry.get(pdb, []), read_model(model_path, name=pdb))
        except (RNAMotifError, ValueError) as exc:
            model_error = exc
        for emdb in emdb_ids:
            row = {"pdb_id": pdb, "emdb_id": emdb, "emdb_reason": None,
                   "model_path": str(model_path) if model_path else None,
                   "map_path": None, "status": "ok", "error": None}
            try:
                if model_error is not None:
                    raise model_error
                row["emdb_id"], row["emdb_reason"] = sources.map_id(pdb, emdb)
                row["map_path"] = str(sources.map(row["emdb_id"]))
            except (RNAMotifError, ValueError) as exc:
                row["status"], row["error"] = type(exc).__name__, str(exc)
                log.debug("%s: %s", pdb, exc)
            rows.append(row)
    return rows, bad_rows


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="rnamotif fetch", description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--manifest", type=Path)
    what.add_argument("--pdb-ids", type=Path, help="entries to fetch: ids.parquet (pdb_id, optional emdb_id) "
                      "from `rnamotif_data.inputs.manifest search`, or a text file of PDB IDs")
    p.add_argument("--cache", type=Path, default=None, help=f"cache folder (default {default_cache_dir()})")
    p.add_argument("--mirror", type=Path, help="read-only mirror with the cache layout")
    p.add_argument("--offline", action="store_true", help="never use the network")
    p.add_argument("--report", type=Path, help="report file (.parquet)")
    defaults = SourceConfig()
    for name in ("entry_url", "model_url", "map_url"):
        p.add_argument("--" + name.replace("_", "-"), default=getattr(defaults, name), help="URL template")
    p.add_argument("--check-residues", action="store_true",
                   help="read each model and reject rows whose residues or sequence it lacks")
    p.add_argument("--no-progress", action="store_true")
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
    config = SourceConfig(cache_dir=args.cache or default_cache_dir(), mirror=args.mirror,
                          offline=args.offline, entry_url=args.entry_url, model_url=args.model_url,
                          map_url=args.map_url)
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
