"""Sources: PDB entry records, models and EMDB maps, fetched once into a local cache.

Cache and mirror layout (design §6)::

    DIR/pdb/{pdb_id lower}.cif.gz     (also .cif, .pdb, .pdb.gz)
    DIR/pdb/{pdb_id lower}.json       (RCSB entry record)
    DIR/emdb/emd_{number}.map.gz      (also .map, .mrc, .ccp4)

* The cache defaults to ``$RNAMOTIF_CACHE``, else ``$XDG_CACHE_HOME/rnamotif-data``
  (``~/.cache/rnamotif-data``). A mirror is read-only and searched first; ``offline``
  forbids the network and names every file that is missing.
* Downloads (requests) retry with exponential backoff on connection errors, timeouts,
  429 (honouring ``Retry-After``) and 5xx (urllib3's ``Retry``); a body that breaks off,
  is shorter than its ``Content-Length`` or is not intact gzip is fetched again. Files
  stream to a temporary file in the cache folder and are renamed into place only after
  every check passed, so the cache never holds a partial file. A ``.sha256`` sidecar
  records each downloaded file; a cached file that no longer matches it (or, without a
  sidecar, a ``.gz`` that is not intact) is treated as missing and fetched again.
* Entries with several EMDB maps use the manifest's ``emdb_id``; otherwise the entry's
  primary map (the ``pdbx_database_related`` record of type "associated EM volume",
  else the first of ``rcsb_entry_container_identifiers.emdb_ids``). Entries whose
  method is not electron microscopy are rejected for map-based builds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from rnamotif_data.errors import DownloadError, InputError, NoMapError, NotEMEntryError, OfflineError, SourceError
from rnamotif_data.storage.checksums import sha256_stream

log = logging.getLogger("rnamotif_data.inputs.sources")

__all__ = ["SourceConfig", "Sources", "EntryInfo", "default_cache_dir"]

MODEL_SUFFIXES = (".cif.gz", ".cif", ".pdb", ".pdb.gz")
MAP_SUFFIXES = (".map.gz", ".map", ".mrc", ".ccp4")


class _Incomplete(Exception):
    """Internal: a body that broke off or failed its integrity check (retried)."""


def default_cache_dir() -> Path:
    """``$RNAMOTIF_CACHE``, else ``$XDG_CACHE_HOME/rnamotif-data``, else ``~/.cache/rnamotif-data``."""
    if os.environ.get("RNAMOTIF_CACHE"):
        return Path(os.environ["RNAMOTIF_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rnamotif-data"


@dataclass(frozen=True)
class SourceConfig:
    """Where files come from and how hard to try.

    Attributes
    ----------
    cache_dir:
        Writable cache (layout in the module docstring).
    mirror:
        Optional read-only mirror with the same layout, searched before the cache.
    offline:
        Never use the network.
    entry_url, model_url, map_url:
        URL templates (RCSB Data API entry record, RCSB mmCIF, EMDB map archive).
    timeout:
        Seconds for connecting and between bytes.
    retries:
        Retries of one request on connection errors, timeouts, 429 and 5xx.
    attempts:
        Whole-download attempts when a body breaks off or fails its integrity check.
    backoff:
        Base of the exponential backoff in seconds (``backoff * 2**k``).
    verify_found:
        Check files found in the mirror or cache (gzip stream and CRC, or the sha256
        sidecar) before returning them. The builder turns this off: reading a map
        decompresses it fully and gzip checks its CRC and length then, so a corrupt file
        still fails (as a ``map`` failure), without decompressing every map twice.
    """

    cache_dir: Path = field(default_factory=default_cache_dir)
    mirror: Path | None = None
    offline: bool = False
    entry_url: str = "https://data.rcsb.org/rest/v1/core/entry/{pdb_id}"
    model_url: str = "https://files.rcsb.org/download/{pdb_id}.cif.gz"
    map_url: str = "https://files.wwpdb.org/pub/emdb/structures/EMD-{number}/map/emd_{number}.map.gz"
    timeout: float = 60.0
    retries: int = 5
    attempts: int = 3
    backoff: float = 1.0
    verify_found: bool = True


@dataclass(frozen=True)
class EntryInfo:
    """What the RCSB entry record says about a PDB entry.

    Attributes
    ----------
    pdb_id, method, resolution, release_date:
        Method as in mmCIF ``exptl.method`` (``ELECTRON MICROSCOPY``); resolution in Å
        (None when not reported); release date ``YYYY-MM-DD``.
    emdb_ids:
        Every EMDB map of the entry.
    primary_emdb_id:
        The entry's primary ("associated EM volume") map, or None.
    polymer_types:
        RCSB's selected polymer entity types (``Protein/NA``, ``Nucleic acid (only)``).
    """

    pdb_id: str
    method: str
    resolution: float | None
    release_date: str | None
    emdb_ids: tuple[str, ...]
    primary_emdb_id: str | None
    polymer_types: str | None

    @property
    def is_em(self) -> bool:
        """True for electron-microscopy entries."""
        return "ELECTRON" in self.method.upper()

    @classmethod
    def from_record(cls, pdb_id: str, record: dict) -> "EntryInfo":
        """Parse an RCSB Data API ``/rest/v1/core/entry/{id}`` JSON record."""
        ids = record.get("rcsb_entry_container_identifiers", {}) or {}
        emdb_ids = tuple(ids.get("emdb_ids") or ())
        primary = None
        for rel in record.get("pdbx_database_related", []) or []:
            if (rel.get("content_type") or "").lower() == "associated em volume":
                primary = rel.get("db_id")
                break
        if primary is None and emdb_ids:
            primary = emdb_ids[0]
        methods = [e.get("method", "") for e in record.get("exptl", []) or []]
        info = record.get("rcsb_entry_info", {}) or {}
        res = info.get("resolution_combined") or []
        return cls(
            pdb_id=pdb_id.upper(),
            method=", ".join(m for m in methods if m) or "UNKNOWN",
            resolution=float(res[0]) if res else None,
            release_date=((record.get("rcsb_accession_info", {}) or {}).get("initial_release_date") or "")[:10] or None,
            emdb_ids=emdb_ids,
            primary_emdb_id=primary,
            polymer_types=info.get("selected_polymer_entity_types"),
        )


class Sources:
    """Find or fetch entry records, models and maps (see the module docstring).

    Parameters
    ----------
    config:
        Cache, mirror, offline flag, URLs and retry policy.

    Attributes
    ----------
    bytes_downloaded, files_downloaded:
        Running totals for summaries.
    """

    def __init__(self, config: SourceConfig = SourceConfig()):
        self.config = config
        self.bytes_downloaded = 0
        self.files_downloaded = 0
        self._session: requests.Session | None = None

    # ------------------------------------------------------------ public API
    def entry(self, pdb_id: str) -> EntryInfo:
        """The RCSB entry record of ``pdb_id`` (cached as ``pdb/{id}.json``).

        Raises
        ------
        OfflineError, DownloadError
            If the record is not cached and cannot be fetched.
        SourceError
            If the cached record is not valid JSON even after a fresh download.
        """
        pid = pdb_id.lower()
        rel = Path("pdb") / f"{pid}.json"
        path = self._find([rel]) or self._download(self.config.entry_url.format(pdb_id=pdb_id.upper()), rel)
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(f"{path}: RCSB entry record for {pdb_id} is not valid JSON ({exc})") from None
        return EntryInfo.from_record(pdb_id, record)

    def model(self, pdb_id: str) -> Path:
        """Path of the entry's model (mirror, cache, else downloaded mmCIF).

        Raises
        ------
        OfflineError, DownloadError
        """
        pid = pdb_id.lower()
        rels = [Path("pdb") / f"{pid}{s}" for s in MODEL_SUFFIXES]
        return self._find(rels) or self._download(self.config.model_url.format(pdb_id=pdb_id.upper()), rels[0])

    def map(self, emdb_id: str) -> Path:
        """Path of an EMDB map (mirror, cache, else downloaded ``emd_N.map.gz``).

        Raises
        ------
        InputError
            If ``emdb_id`` is not ``EMD-N``.
        OfflineError, DownloadError
        """
        number = _emdb_number(emdb_id)
        rels = [Path("emdb") / f"emd_{number}{s}" for s in MAP_SUFFIXES]
        return self._find(rels) or self._download(self.config.map_url.format(number=number), rels[0])

    def map_id(self, pdb_id: str, emdb_id: str | None = None) -> tuple[str, str]:
        """Which EMDB map to build an entry from, and why.

        Returns
        -------
        (emdb_id, reason)
            ``reason`` is ``"manifest"`` or ``"primary map of PDB entry"``.

        Raises
        ------
        NotEMEntryError
            If no ``emdb_id`` is given and the entry is not an EM structure.
        NoMapError
            If the entry lists no EMDB map.
        """
        if emdb_id:
            _emdb_number(emdb_id)
            return emdb_id, "manifest"
        info = self.entry(pdb_id)
        if not info.is_em:
            raise NotEMEntryError(f"{pdb_id}: method {info.method}, not electron microscopy; no map to build from")
        if not info.primary_emdb_id:
            raise NoMapError(f"{pdb_id}: the entry lists no EMDB map")
        return info.primary_emdb_id, "primary map of PDB entry"

    # ------------------------------------------------------------ internals
    @property
    def session(self) -> requests.Session:
        """A requests session whose adapter retries on connection errors, 429 and 5xx."""
        if self._session is None:
            retry = Retry(
                total=self.config.retries, connect=self.config.retries, read=self.config.retries,
                status=self.config.retries, backoff_factor=self.config.backoff,
                status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET",),
                respect_retry_after_header=True, raise_on_status=True,
            )
            s = requests.Session()
            s.mount("https://", HTTPAdapter(max_retries=retry))
            s.mount("http://", HTTPAdapter(max_retries=retry))
            s.headers["User-Agent"] = "rnamotif-data (https://github.com/rnamotif-data)"
            self._session = s
        return self._session

    def _find(self, rels: list[Path]) -> Path | None:
        for root in (self.config.mirror, self.config.cache_dir):
            if root is None:
                continue
            for rel in rels:
                path = Path(root) / rel
                if path.is_file():
                    if not self.config.verify_found or _intact(path):
                        return path
                    if root == self.config.mirror:
                        raise SourceError(f"{path}: corrupt file in the read-only mirror")
                    log.warning("%s: cached file is corrupt; fetching it again", path)
                    path.unlink()
                    _sidecar(path).unlink(missing_ok=True)
        return None

    def _download(self, url: str, rel: Path) -> Path:
        dest = Path(self.config.cache_dir) / rel
        if self.config.offline:
            places = [str(Path(r) / rel) for r in (self.config.mirror, self.config.cache_dir) if r is not None]
            raise OfflineError(f"offline and missing: {' or '.join(places)} (from {url})")
        dest.parent.mkdir(parents=True, exist_ok=True)
        last: Exception | None = None
        for attempt in range(max(1, self.config.attempts)):
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
            try:
                digest, size = self._stream(url, tmp, check_gzip=dest.name.endswith(".gz"))
                os.replace(tmp, dest)
                _sidecar(dest).write_text(f"{digest}  {size}\n")
                self.bytes_downloaded += size
                self.files_downloaded += 1
                log.debug("downloaded %s (%d bytes) -> %s", url, size, dest)
                return dest
            except _Incomplete as exc:
                last = exc
                log.warning("%s: %s (attempt %d of %d)", url, exc, attempt + 1, self.config.attempts)
                time.sleep(self.config.backoff * 2**attempt)
            finally:
                tmp.unlink(missing_ok=True)
        raise DownloadError(f"{url}: failed after {self.config.attempts} attempts ({_short(last)})")

    def _stream(self, url: str, tmp: Path, *, check_gzip: bool) -> tuple[str, int]:
        """Stream ``url`` into ``tmp``; return (sha256, size).

        Errors of the request itself (urllib3 has already retried them) raise
        :class:`DownloadError`; a body that breaks off or fails its checks raises
        ``_Incomplete`` so the caller fetches it again.
        """
        try:
            r = self.session.get(url, stream=True, timeout=self.config.timeout)
        except requests.exceptions.RetryError as exc:
            raise DownloadError(f"{url}: gave up after {self.config.retries} retries ({_short(exc)})") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise DownloadError(f"{url}: {_short(exc)}") from None
        h = hashlib.sha256()
        size = 0
        with r:
            if r.status_code >= 400:
                raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason}")
            expected = r.headers.get("Content-Length")
            try:
                with open(tmp, "wb") as fh:
                    for chunk in r.iter_content(chunk_size=1 << 20):
                        fh.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError,
                    requests.Timeout) as exc:
                raise _Incomplete(f"connection broke after {size} bytes ({_short(exc)})") from None
        if expected is not None and size != int(expected):
            raise _Incomplete(f"received {size} of {expected} bytes")
        if check_gzip and not _gzip_intact(tmp):
            raise _Incomplete("gzip data is truncated or corrupt")
        return h.hexdigest(), size


def _emdb_number(emdb_id: str) -> str:
    head, _, number = emdb_id.upper().partition("EMD-")
    if head or not number.isdigit():
        raise InputError(f"bad EMDB ID {emdb_id!r}: expected EMD-NNNN")
    return number


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _gzip_intact(path: Path) -> bool:
    """True if the whole gzip stream decompresses and its CRC and length check out."""
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 22):
                pass
        return True
    except (OSError, EOFError, zlib.error):
        return False


def _intact(path: Path) -> bool:
    side = _sidecar(path)
    if side.exists():
        digest, _, size = side.read_text().strip().partition("  ")
        if path.stat().st_size != int(size or -1):
            return False
        with open(path, "rb") as fh:
            return sha256_stream(fh) == digest
    return _gzip_intact(path) if path.name.endswith(".gz") else True


def _short(exc: Exception | None) -> str:
    text = str(exc) if exc else "unknown error"
    return text if len(text) < 200 else text[:200] + "…"
