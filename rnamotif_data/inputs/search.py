"""Find the entries to build from, with the RCSB Search API (v2) (the work of
``rnamotif search``).

    rnamotif search --method "electron microscopy" --max-resolution 4.0 \\
        --polymer rna [--released-after 2026-01-01] [--limit N] --out ids.parquet

The query (https://search.rcsb.org/#search-api, ``POST /rcsbsearch/v2/query``) is a group
of text-service terminals -- ``exptl.method``, ``rcsb_entry_info.resolution_combined``,
``rcsb_entry_info.polymer_entity_count_{RNA,DNA,protein}``,
``rcsb_accession_info.initial_release_date`` -- returning entries, paged with
``request_options.paginate`` (``start``, ``rows``) and sorted by release date. The API
answers 200 with ``total_count`` and ``result_set`` (``identifier``, ``score``), or 204
with no body when nothing matches. Each PDB ID is then completed from its RCSB entry
record (:class:`rnamotif_data.inputs.sources.Sources`, cached): primary EMDB map, resolution, method,
release date. Requests are retried with backoff on connection errors, 429 (honouring
``Retry-After``) and 5xx, as ``rnamotif_data.inputs.sources`` does.

``ids.parquet`` columns: ``pdb_id``, ``emdb_id``, ``resolution``, ``method``,
``release_date``, ``score``; it is the ``--pdb-ids`` input of ``annotate``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass

import pyarrow as pa
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from rnamotif_data.errors import (
    RNAMotifError,
    SearchError,
)
from rnamotif_data.inputs.sources import SourceConfig, Sources

log = logging.getLogger("rnamotif_data.inputs.manifest")

__all__ = ["SearchQuery", "search_request", "search_entries", "IDS_SCHEMA"]

SEARCH_URL = "https://search.rcsb.org/rcsbsearch/v2/query"
_POLYMER = {"rna": "RNA", "dna": "DNA", "protein": "protein"}

IDS_SCHEMA = pa.schema([
    pa.field("pdb_id", pa.string()), pa.field("emdb_id", pa.string()), pa.field("resolution", pa.float64()),
    pa.field("method", pa.string()), pa.field("release_date", pa.string()), pa.field("score", pa.float64()),
])


@dataclass(frozen=True)
class SearchQuery:
    """What to search for (all conditions must hold).

    Attributes
    ----------
    method:
        Experimental method, case-insensitive (``electron microscopy``).
    max_resolution:
        Å; None for any.
    polymer:
        ``rna``, ``dna`` or ``protein``: entries with at least one such polymer entity.
    released_after:
        ``YYYY-MM-DD``; None for any.
    limit:
        At most this many entries; None for all.
    page_size:
        Entries per request (the API allows up to 10,000).
    """

    method: str = "electron microscopy"
    max_resolution: float | None = None
    polymer: str = "rna"
    released_after: str | None = None
    limit: int | None = None
    page_size: int = 1000

    def __post_init__(self) -> None:
        if self.polymer not in _POLYMER:
            raise SearchError(f"polymer must be one of {', '.join(_POLYMER)}, got {self.polymer!r}")
        if self.max_resolution is not None and not self.max_resolution > 0:
            raise SearchError(f"max_resolution must be a positive number of Å, got {self.max_resolution}")
        if self.released_after is not None:
            try:
                dt.date.fromisoformat(self.released_after)
            except ValueError:
                raise SearchError(f"released_after must be YYYY-MM-DD, got {self.released_after!r}") from None
        if self.limit is not None and self.limit < 1:
            raise SearchError(f"limit must be >= 1, got {self.limit}")
        if not 1 <= self.page_size <= 10000:
            raise SearchError(f"page_size must be 1-10000, got {self.page_size}")


def _terminal(attribute: str, operator: str, value) -> dict:
    return {"type": "terminal", "service": "text",
            "parameters": {"attribute": attribute, "operator": operator, "value": value}}


def search_request(query: SearchQuery, start: int = 0) -> dict:
    """The Search API request body for one page of ``query`` (documented JSON shape)."""
    nodes = [_terminal("exptl.method", "exact_match", query.method.upper()),
             _terminal(f"rcsb_entry_info.polymer_entity_count_{_POLYMER[query.polymer]}", "greater", 0)]
    if query.max_resolution is not None:
        nodes.append(_terminal("rcsb_entry_info.resolution_combined", "less_or_equal", float(query.max_resolution)))
    if query.released_after is not None:
        nodes.append(_terminal("rcsb_accession_info.initial_release_date", "greater", query.released_after))
    rows = query.page_size if query.limit is None else min(query.page_size, query.limit - start)
    return {"query": {"type": "group", "logical_operator": "and", "nodes": nodes},
            "return_type": "entry",
            "request_options": {"paginate": {"start": start, "rows": rows},
                                "results_content_type": ["experimental"],
                                "sort": [{"sort_by": "rcsb_accession_info.initial_release_date", "direction": "asc"}]}}


def _session(config: SourceConfig) -> requests.Session:
    retry = Retry(total=config.retries, connect=config.retries, read=config.retries, status=config.retries,
                  backoff_factor=config.backoff, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=("POST", "GET"), respect_retry_after_header=True, raise_on_status=True)
    s = requests.Session()
    s.mount("https://", HTTPAdapter(max_retries=retry))
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.headers["User-Agent"] = "rnamotif-data (https://github.com/rnamotif-data)"
    return s


def _page(session: requests.Session, url: str, body: dict, timeout: float) -> tuple[int, list[dict]]:
    try:
        r = session.post(url, json=body, timeout=timeout)
    except requests.exceptions.RetryError as exc:
        raise SearchError(f"{url}: gave up after retries ({exc.args[0] if exc.args else exc})") from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise SearchError(f"{url}: {type(exc).__name__}: {exc}") from None
    if r.status_code == 204:
        return 0, []
    if r.status_code >= 400:
        try:
            message = r.json().get("message", r.text[:200])
        except ValueError:
            message = r.text[:200]
        raise SearchError(f"{url}: HTTP {r.status_code}: {message}")
    try:
        data = r.json()
        total = int(data["total_count"])
        hits = [{"pdb_id": str(h["identifier"]).upper(), "score": float(h.get("score", 0.0))}
                for h in data.get("result_set", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise SearchError(f"{url}: the answer is not a Search API result ({type(exc).__name__}: "
                          f"{str(exc)[:80]}; body starts {r.text[:60]!r})") from None
    return total, hits


def search_entries(query: SearchQuery, source_config: SourceConfig = SourceConfig(),
                   url: str = SEARCH_URL) -> list[dict]:
    """Run ``query`` page by page and complete each entry from its RCSB record.

    Returns rows of :data:`IDS_SCHEMA`, in the API's order. An entry whose record cannot
    be read keeps null map and resolution and is logged.

    Raises
    ------
    SearchError
        If the service refuses the query, keeps failing after the retries, or answers
        with a body that is not a Search API result.
    """
    session = _session(source_config)
    hits: list[dict] = []
    total = None
    while total is None or len(hits) < total:
        if query.limit is not None and len(hits) >= query.limit:
            break
        n, page = _page(session, url, search_request(query, len(hits)), source_config.timeout)
        total = n if total is None else total
        if not page:
            break
        hits += page
        log.info("search: %d of %d entries", len(hits), total)
    hits = hits[: query.limit] if query.limit is not None else hits
    sources = Sources(dataclasses.replace(source_config, verify_found=False))
    rows = []
    for h in hits:
        row = {"pdb_id": h["pdb_id"], "emdb_id": None, "resolution": None, "method": None, "release_date": None,
               "score": h["score"]}
        try:
            info = sources.entry(h["pdb_id"])
            row.update(emdb_id=info.primary_emdb_id, resolution=info.resolution, method=info.method,
                       release_date=info.release_date)
        except (RNAMotifError, OSError, ValueError) as exc:
            log.warning("%s: entry record not read (%s)", h["pdb_id"], exc)
        rows.append(row)
    return rows
