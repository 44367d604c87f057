"""RCSB search: PDB IDs with their primary EMDB map and resolution (network).

``rnamotif search --out ids.parquet [--max-resolution 4] [--released-after 2020-01-01]
[--limit N]``: one row per entry (:data:`~rnamotif_data.inputs.search.IDS_SCHEMA`), the input
of ``rnamotif fetch --pdb-ids`` and ``rnamotif annotate --pdb-ids``. The flags of the query
are the fields of :class:`~rnamotif_data.inputs.search.SearchQuery`; the work is done by
:func:`~rnamotif_data.inputs.search.search_entries`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rnamotif_data.cli._options import add_source_arguments, source_config_from_args
from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.inputs.search import IDS_SCHEMA, SEARCH_URL, SearchQuery, log, search_entries, search_request

__all__ = ["main", "parser"]

QUERY_HELPS = {
    "method": "experimental method",
    "max_resolution": "Å",
    "polymer": "entries that contain this polymer type",
    "released_after": "YYYY-MM-DD",
    "limit": "at most this many entries",
    "page_size": "entries per request",
}


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif search``."""
    p = argparse.ArgumentParser(prog="rnamotif search", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="ids file to write (.parquet)")
    p.add_argument("--search-url", default=SEARCH_URL, help=argparse.SUPPRESS)
    add_config_arguments(p, SearchQuery, helps=QUERY_HELPS, choices={"polymer": ("rna", "dna", "protein")},
                         title="the query (SearchQuery)")
    add_source_arguments(p, exclude=("verify_found",), online=False)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0."""
    args = parser().parse_args(argv)
    query = config_from_args(args, SearchQuery)
    config = source_config_from_args(args, exclude=("verify_found",), offline=args.offline)
    rows = search_entries(query, config, args.search_url)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=IDS_SCHEMA), args.out)
    with_map = sum(1 for r in rows if r["emdb_id"])
    log.info("wrote %s: %d entries (%d with a primary EMDB map); query %s", args.out, len(rows), with_map,
             json.dumps(search_request(query)["query"]))
    return 0
