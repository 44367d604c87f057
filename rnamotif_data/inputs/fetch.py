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

import logging

import pyarrow as pa
from tqdm import tqdm

from rnamotif_data.errors import RNAMotifError
from rnamotif_data.inputs.schema import Rejection, check_rows_against_model
from rnamotif_data.inputs.sources import Sources
from rnamotif_data.rna.structure import read_model

log = logging.getLogger("rnamotif_data.inputs.fetch")

REPORT_SCHEMA = pa.schema([
    ("pdb_id", pa.string()), ("emdb_id", pa.string()), ("emdb_reason", pa.string()),
    ("model_path", pa.string()), ("map_path", pa.string()), ("status", pa.string()),
    ("error", pa.string())])


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
