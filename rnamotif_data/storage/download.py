"""Download a published dataset version and verify it.

``rnamotif download --version 1.0.0 [--root DIR] [--offline] [--metadata-only]
[--keep-archive] [--verify] [--registry FILE]``, or ``RNAMotifDataset(version="1.0.0",
download=True)``.

The version's files, sizes and sha256 come from the registry shipped with the package
(:mod:`rnamotif_data.storage.registry`). Each file is fetched with pooch (Uieda et al., JOSS 5:1943,
2020, doi:10.21105/joss.01943) into ``ROOT/<version>/`` and checked against its sha256;
an interrupted transfer resumes from where it stopped (HTTP ``Range``) and pooch retries
it. Then ``SHA256SUMS`` is checked against the registry, the zipped store is unpacked to
``ROOT/<version>/rnamotif.zarr`` and its own ``checksums.sha256`` is verified, and a
marker file records the verified version; the archive is deleted unless
``keep_archive``. A version already in the cache is used without any network access.

``ROOT`` is ``$RNAMOTIF_DATA_HOME``, else ``$XDG_DATA_HOME/rnamotif-data``, else
``~/.local/share/rnamotif-data``. Offline mode (``offline=True`` or
``RNAMOTIF_OFFLINE=1``) uses the cache and fails with a clear error if the version is
not there. When Zenodo or the registry knows a newer version, a notice is logged; there
is never an interactive prompt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

from rnamotif_data.errors import (
    DownloadError,
    )
from rnamotif_data.storage.checksums import check_checksums
from rnamotif_data.storage.registry import Release, get_release, newer_versions
from rnamotif_data.storage.store import open_store

log = logging.getLogger(__name__)

__all__ = ["ENV_HOME", "ENV_OFFLINE", "STORE_DIRNAME", "data_home", "version_dir",
           "ResumableDownloader", "record_files", "download"]

ENV_HOME = "RNAMOTIF_DATA_HOME"
ENV_OFFLINE = "RNAMOTIF_OFFLINE"
#: Folder name of the unpacked store inside a version's folder.
STORE_DIRNAME = "rnamotif.zarr"
_MARKER = ".rnamotif-download.json"


def data_home() -> Path:
    """Folder holding downloaded versions: ``$RNAMOTIF_DATA_HOME``, ``$XDG_DATA_HOME/rnamotif-data``
    or ``~/.local/share/rnamotif-data``."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "rnamotif-data"


def version_dir(version: str, root: str | os.PathLike | None = None) -> Path:
    """``ROOT/<version>`` (ROOT: ``root`` or :func:`data_home`)."""
    return (Path(root) if root is not None else data_home()) / version


def _offline_default() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


class ResumableDownloader:
    """A pooch downloader that resumes interrupted transfers.

    Bytes are streamed to ``<partial_dir>/<sha256(url)[:16]>.part``; a later attempt asks
    for the rest with an HTTP ``Range`` header (a server that ignores it sends the whole
    file, which then replaces the part). When complete the part is moved to pooch's
    temporary file, which pooch checks against the sha256 before keeping it.
    """

    def __init__(self, partial_dir: Path, *, progress: bool = True, timeout: tuple[float, float] = (10.0, 300.0),
                 chunk_size: int = 1 << 16):
        self.partial_dir, self.progress, self.timeout, self.chunk_size = Path(partial_dir), progress, timeout, chunk_size

    def __call__(self, url: str, output_file, pooch=None, check_only: bool = False):
        import requests
        from tqdm.auto import tqdm

        if check_only:
            return requests.head(url, timeout=self.timeout, allow_redirects=True).ok
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        part = self.partial_dir / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".part")
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as r:
            if have and r.status_code == 416:  # nothing left to send: the part is complete
                have, mode = 0, None
            elif have and r.status_code == 206:
                mode = "ab"
                log.info("resuming %s at byte %d", url, have)
            else:
                r.raise_for_status()
                have, mode = 0, "wb"
            if mode is not None:
                total = int(r.headers.get("Content-Length", 0)) + have or None
                with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                 desc=url.rsplit("/", 2)[-2] if url.endswith("/content") else url,
                                                 disable=not self.progress) as bar:
                    for chunk in r.iter_content(self.chunk_size):
                        f.write(chunk)
                        bar.update(len(chunk))
        if isinstance(output_file, (str, os.PathLike)):
            shutil.move(str(part), str(output_file))
        else:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, output_file)
            part.unlink()


def record_files(record: dict) -> dict[str, dict]:
    """``{name: {"md5", "size", "url"}}`` from a Zenodo records-API answer, in either shape:
    newer records list ``key`` with ``checksum: "md5:…"`` and ``links.self``; older ones
    ``filename`` with a hex ``checksum`` and ``links.download``."""
    out = {}
    for f in record.get("files") or []:
        name = f.get("key") or f.get("filename")
        links = f.get("links") or {}
        out[name] = {"md5": str(f.get("checksum", "")).removeprefix("md5:"),
                     "size": f.get("size", f.get("filesize")),
                     "url": links.get("content") or links.get("self") or links.get("download")}
    return out


def _check_record(release: Release) -> None:
    """Compare the registry with the Zenodo record (md5 per file) and log a notice if Zenodo
    has a newer version. Network problems only log a warning (the files are verified
    by sha256 anyway)."""
    import requests

    url = f"{release.api_url.rstrip('/')}/records/{release.record_id}"
    try:
        r = requests.get(url, timeout=(10, 60))
        r.raise_for_status()
        record = r.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("could not read the Zenodo record %s (%s); continuing with the registry's checksums", url,
                    type(exc).__name__)
        return
    remote = record_files(record)
    for f in release.files:
        if f.name not in remote:
            raise DownloadError(f"Zenodo record {url} has no file {f.name} listed in the registry for version "
                                f"{release.version}")
        if remote[f.name]["md5"] and remote[f.name]["md5"] != f.md5:
            raise DownloadError(f"{f.name}: md5 on Zenodo ({remote[f.name]['md5']}) differs from the registry's "
                                f"({f.md5}) for version {release.version}; the registry is wrong or the record changed")
    rel = ((record.get("metadata") or {}).get("relations") or {}).get("version") or [{}]
    is_last = (record.get("versions") or {}).get("is_latest", rel[0].get("is_last"))
    if is_last is False:
        log.warning("Zenodo has a newer version of this dataset than %s (all versions: %s); a newer rnamotif-data "
                    "may know it", release.version, release.concept_doi or url)


def _marker_ok(vdir: Path, release: Release, need_store: bool) -> bool:
    marker = vdir / _MARKER
    if not marker.exists():
        return False
    try:
        m = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    same = (m.get("version") == release.version and m.get("record_id") == release.record_id
            and m.get("files") == {f.name: f.sha256 for f in release.files})
    return same and (not need_store or (m.get("store") and (vdir / STORE_DIRNAME / "zarr.json").exists()))


def _safe_members(zf: zipfile.ZipFile, archive: Path) -> None:
    for name in zf.namelist():
        p = Path(name)
        if p.is_absolute() or ".." in p.parts:
            raise DownloadError(f"{archive}: unsafe member path {name!r}; not unpacking")


def _unpack(archive: Path, dest: Path, version: str) -> None:
    """Unpack the zipped store to ``dest`` and verify it (checksums, complete, version)."""
    tmp = dest.with_name(dest.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        _safe_members(zf, archive)
        zf.extractall(tmp)
    problems = check_checksums(str(tmp))
    if problems:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive}: unpacked store fails its checksums: {'; '.join(problems[:5])}")
    got = open_store(tmp).attrs.get("dataset_version")
    if got != version:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive}: the store inside is version {got!r}, not {version}")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def download(version: str | None = None, *, root: str | os.PathLike | None = None,
             registry: str | os.PathLike | None = None, offline: bool | None = None, metadata_only: bool = False,
             keep_archive: bool = False, verify: bool = False, progress: bool = True, retries: int = 3) -> Path:
    """Fetch and verify a published version (module docstring); returns ``ROOT/<version>``.

    The store is then at ``ROOT/<version>/rnamotif.zarr``; the metadata, split files,
    dataset card and Croissant description beside it.

    Parameters
    ----------
    version:
        Dataset version (default: the latest registered).
    root:
        Download folder (default :func:`data_home`).
    registry:
        Registry file (default ``$RNAMOTIF_DATA_REGISTRY`` or the shipped one).
    offline:
        Use only the cache (default: ``$RNAMOTIF_OFFLINE``).
    metadata_only:
        Fetch everything but the zipped store.
    keep_archive:
        Keep the zip after unpacking it (default: delete it to save space).
    verify:
        Re-check a cached store against its ``checksums.sha256``.
    retries:
        Further attempts per file after a failed or corrupted transfer (pooch waits
        1, 2, 3 … s between them; interrupted transfers resume).

    Raises
    ------
    RegistryError
        If the version is not registered.
    DownloadError
        If offline and not cached, if a transfer fails, or if a checksum does not match.
    """
    release = get_release(version, registry)
    for v in newer_versions(release.version, registry):
        log.warning("rnamotif-data dataset version %s is available (you asked for %s)", v, release.version)
    offline = _offline_default() if offline is None else offline
    vdir = version_dir(release.version, root)
    store = vdir / STORE_DIRNAME
    if _marker_ok(vdir, release, need_store=not metadata_only):
        if verify and store.exists():
            problems = check_checksums(str(store))
            if problems:
                raise DownloadError(f"{store}: cached store fails its checksums: {'; '.join(problems[:5])}; "
                                    f"delete {vdir} and download again")
        log.info("version %s is in the cache at %s", release.version, vdir)
        return vdir
    if offline:
        raise DownloadError(f"dataset version {release.version} is not in the cache at {vdir} and offline mode is on "
                            f"(offline=True or ${ENV_OFFLINE}); download it where there is network with "
                            f"'rnamotif download --version {release.version} --root DIR' and copy DIR")
    _check_record(release)
    _fetch([f for f in release.files if not (metadata_only and f.name == release.archive)], release, vdir,
           retries=retries, progress=progress)
    _check_sums(vdir / "SHA256SUMS", release)
    if not metadata_only:
        archive = vdir / release.archive
        if archive.exists():
            _unpack(archive, store, release.version)
            if not keep_archive:
                archive.unlink()
        elif not store.exists():
            raise DownloadError(f"{archive}: missing after download")
    (vdir / _MARKER).write_text(json.dumps({
        "version": release.version, "record_id": release.record_id, "doi": release.doi,
        "files": {f.name: f.sha256 for f in release.files}, "store": not metadata_only}, indent=2) + "\n")
    shutil.rmtree(vdir / ".partial", ignore_errors=True)
    log.info("version %s (doi:%s) verified in %s", release.version, release.doi, vdir)
    return vdir


def _fetch(wanted: list, release: Release, vdir: Path, *, retries: int, progress: bool) -> None:
    """Download the files ``wanted`` of ``release`` into ``vdir`` with pooch (sha256
    checked, interrupted transfers resumed). Raises :class:`DownloadError` for a hash
    mismatch or a failed transfer."""
    import pooch
    import requests

    pup = pooch.create(path=vdir, base_url="", registry={f.name: f"sha256:{f.sha256}" for f in wanted},
                       urls={f.name: f.url for f in wanted}, retry_if_failed=retries)
    downloader = ResumableDownloader(vdir / ".partial", progress=progress)
    for f in wanted:
        try:
            pup.fetch(f.name, downloader=downloader)
        except ValueError as exc:  # pooch: hash mismatch
            raise DownloadError(f"{f.name} from {f.url}: {exc}") from None
        except requests.RequestException as exc:
            raise DownloadError(f"could not download {f.name} of version {release.version} from {f.url} "
                                f"({type(exc).__name__}: {exc}); retry later (transfers resume), or use the "
                                f"cache with offline mode") from None


def _check_sums(sums: Path, release: Release) -> None:
    """The downloaded ``SHA256SUMS`` (if any) must agree with the registry's sums of
    ``release``; raises :class:`DownloadError` naming the line or file otherwise."""
    if not sums.exists():
        return
    listed = {}
    for k, line in enumerate(sums.read_text(errors="replace").splitlines(), 1):
        h, sep, name = line.partition("  ")
        if not line.strip():
            continue
        if not sep or len(h) != 64 or not name:
            raise DownloadError(f"{sums} line {k}: not '<sha256>  <file name>'; the file is damaged")
        listed[name] = h
    for f in release.files:
        if f.name in listed and listed[f.name] != f.sha256:
            raise DownloadError(f"{sums}: {f.name} sha256 {listed[f.name]} differs from the registry's {f.sha256}")
