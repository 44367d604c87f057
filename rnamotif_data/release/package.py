"""The release package of a built store: what ``rnamotif publish`` uploads.

A package for version V is a folder of flat files (Zenodo records have no folders):

``rnamotif-data-V.zarr.zip``
    The whole store as one zip that :class:`zarr.storage.ZipStore` opens directly. Members
    are *stored* (not deflated: the chunks are compressed already), in sorted order
    with fixed timestamps, so the same store and version give the same bytes. The group's
    ``zarr.json`` carries ``dataset_version: V``; the split files are included under
    ``splits/``.
``metadata.parquet``, ``failures.parquet``
    The store's tables, so the metadata can be queried without the cubes.
``split-<scheme>.parquet``
    Each split (``similarity`` and ``entry``, made with seed 0 if the store has none --
    none for a store with fewer independent groups than folds, and the card says why;
    ``upstream`` if the store has one), as in ``STORE/splits/``.
``qc.png``
    The QC figure of :mod:`rnamotif_data.release.report`.
``README.md``, ``croissant.json``, ``SHA256SUMS``
    The dataset card, the Croissant JSON-LD description and the sha256 of every other
    file, written by :mod:`rnamotif_data.release.card` (they name the DOI once it is known).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from rnamotif_data.errors import ConfigError, StoreError
from rnamotif_data.release.report import plot_qc
from rnamotif_data.split.splits import Split, SplitConfig, make_split, read_split, split_table
from rnamotif_data.storage.layout import CHECKSUMS_FILE, FAILURES_FILE, METADATA_FILE, SPLIT_SCHEMES, get_attrs, table_bytes, url_to_fs
from rnamotif_data.storage.registry import parse_version
from rnamotif_data.storage.store import RNAMotifStore, open_store

log = logging.getLogger("rnamotif_data.release.package")

__all__ = ["DEFAULT_ZENODO_CONFIG", "LICENCES", "ZenodoConfig", "PackageFile", "Package", "archive_name",
           "load_zenodo_config", "release_splits", "zip_store", "prepare_package", "hash_file"]

DEFAULT_ZENODO_CONFIG = Path(__file__).with_name("zenodo.yaml")
#: Licences a release may carry: Zenodo licence id -> (SPDX id, URL).
LICENCES = {"cc-by-4.0": ("CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/"),
            "cc0-1.0": ("CC0-1.0", "https://creativecommons.org/publicdomain/zero/1.0/")}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ORCID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")


@dataclass(frozen=True)
class ZenodoConfig:
    """Zenodo metadata from ``zenodo.yaml`` (see the shipped example).

    Attributes
    ----------
    title, description: str
    creators: tuple of dicts with ``name`` ("Family, Given" or an organisation), optional
        ``affiliation`` and ``orcid``.
    license: ``cc-by-4.0`` or ``cc0-1.0``.
    access_right: ``open`` (the only value a public dataset release uses).
    keywords: tuple of str.
    related_identifiers: tuple of dicts ``{identifier, relation, resource_type}``.
    communities: tuple of Zenodo community ids.
    """

    title: str
    description: str
    creators: tuple
    license: str = "cc-by-4.0"
    access_right: str = "open"
    keywords: tuple = ()
    related_identifiers: tuple = ()
    communities: tuple = ()

    def metadata(self, version: str, notes: str = "") -> dict:
        """The ``metadata`` object of a Zenodo deposition for ``version`` (``notes``: what
        changed, Zenodo's "additional notes")."""
        m = {"upload_type": "dataset", "title": self.title, "creators": [dict(c) for c in self.creators],
             "description": self.description, "access_right": self.access_right,
             "license": self.license, "version": version}
        if notes:
            m["notes"] = notes
        if self.keywords:
            m["keywords"] = list(self.keywords)
        if self.related_identifiers:
            m["related_identifiers"] = [dict(r) for r in self.related_identifiers]
        if self.communities:
            m["communities"] = [{"identifier": c} for c in self.communities]
        return m


def load_zenodo_config(path: str | os.PathLike | None = None) -> ZenodoConfig:
    """Read and check ``zenodo.yaml`` (default: the one shipped in ``rnamotif_data/release/``).

    Raises
    ------
    ConfigError
        Naming the file and the field: missing title/description/creators, a creator
        without a name or with a malformed ORCID, a licence other than CC-BY-4.0/CC0, an
        unknown key.
    """
    path = Path(path) if path is not None else DEFAULT_ZENODO_CONFIG
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: Zenodo config not found (copy {DEFAULT_ZENODO_CONFIG} and edit it)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of Zenodo metadata fields")
    known = {f.name for f in dataclasses.fields(ZenodoConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {unknown}; known: {sorted(known)}")
    for key in ("title", "description", "creators"):
        if not data.get(key):
            raise ConfigError(f"{path}: '{key}' is required")
    creators = []
    for i, c in enumerate(data["creators"]):
        if not isinstance(c, dict) or not str(c.get("name", "")).strip():
            raise ConfigError(f"{path}: creators[{i}] needs a 'name' (\"Family, Given\" or an organisation)")
        bad = set(c) - {"name", "affiliation", "orcid", "gnd"}
        if bad:
            raise ConfigError(f"{path}: creators[{i}] has unknown field(s) {sorted(bad)}")
        if c.get("orcid") and not _ORCID.match(str(c["orcid"])):
            raise ConfigError(f"{path}: creators[{i}] ORCID {c['orcid']!r} is not of the form 0000-0002-1825-0097")
        creators.append({k: str(v) for k, v in c.items()})
    lic = str(data.get("license", "cc-by-4.0")).lower()
    if lic not in LICENCES:
        raise ConfigError(f"{path}: license {lic!r} is not one of {sorted(LICENCES)}")
    for i, r in enumerate(data.get("related_identifiers") or []):
        if not isinstance(r, dict) or not r.get("identifier") or not r.get("relation"):
            raise ConfigError(f"{path}: related_identifiers[{i}] needs 'identifier' and 'relation'")
    return ZenodoConfig(title=str(data["title"]).strip(), description=str(data["description"]).strip(),
                        creators=tuple(creators), license=lic, access_right=str(data.get("access_right", "open")),
                        keywords=tuple(str(k) for k in data.get("keywords") or ()),
                        related_identifiers=tuple(dict(r) for r in data.get("related_identifiers") or ()),
                        communities=tuple(str(c) for c in data.get("communities") or ()))


@dataclass(frozen=True)
class PackageFile:
    """One file of a release package: ``name`` (flat), ``path``, ``size`` (bytes), hex
    ``sha256`` and ``md5``, and ``role`` (archive, metadata, failures, split, figure, card,
    croissant, checksums)."""

    name: str
    path: Path
    size: int
    sha256: str
    md5: str
    role: str


@dataclass(frozen=True)
class Package:
    """A prepared release package (files in upload order: data first, descriptors last)."""

    version: str
    directory: Path
    store: str
    files: tuple[PackageFile, ...]
    splits: dict

    @property
    def archive(self) -> PackageFile:
        """The zipped store."""
        return next(f for f in self.files if f.role == "archive")

    @property
    def sizes(self) -> dict[str, int]:
        """``{name: bytes}``."""
        return {f.name: f.size for f in self.files}

    def with_files(self, files) -> Package:
        """The same package with another file list."""
        return dataclasses.replace(self, files=tuple(files))


def archive_name(version: str) -> str:
    """File name of the zipped store of ``version``."""
    return f"rnamotif-data-{version}.zarr.zip"


def hash_file(path: Path, role: str, name: str | None = None) -> PackageFile:
    """A :class:`PackageFile` for ``path`` with its size, sha256 and md5 (one read)."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            sha.update(block)
            md5.update(block)
    return PackageFile(name=name or path.name, path=path, size=path.stat().st_size, sha256=sha.hexdigest(),
                       md5=md5.hexdigest(), role=role)


def release_splits(store: RNAMotifStore) -> dict[str, Split | str]:
    """The splits a release ships: the store's split files, plus ``similarity`` and
    ``entry`` made with the default config (seed 0) where the store has none. A scheme
    the store cannot support (fewer independent groups than folds) maps to the reason,
    which the card prints, instead of a split."""
    out: dict[str, Split | str] = {}
    for scheme in SPLIT_SCHEMES:
        try:
            split = read_split(store, scheme)
            if split is None and scheme != "upstream":
                split = make_split(store, SplitConfig(scheme=scheme))
                log.info("%s: no %s split in the store; made one with seed 0 (fingerprint %s…)", store.root, scheme,
                         split.fingerprint[:12])
        except ConfigError as exc:
            log.warning("%s: no %s split: %s", store.root, scheme, exc)
            out[scheme] = str(exc)
            continue
        if split is not None:
            out[scheme] = split
    return out


def zip_store(root: Path, dest: Path, *, attrs_update: dict, extra: dict[str, bytes]) -> None:
    """Write the store at ``root`` as one zip readable by :class:`zarr.storage.ZipStore`.

    Members are stored uncompressed, sorted, dated 1980-01-01 (byte-reproducible), with
    ZIP64 where needed. The group's ``zarr.json`` gets ``attrs_update`` merged into its
    attributes; ``extra`` adds members (``{"splits/similarity.parquet": bytes}``) and
    replaces the store's own ``splits/`` folder. Staging and temporary files are skipped.
    The zip is written to a temporary name and renamed when complete.
    """
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in filenames:
            rel = Path(dirpath, fn).relative_to(root).as_posix()
            if rel.startswith(("_staging/", "splits/")) or ".tmp-" in rel:
                continue
            files.append(rel)
    group = json.loads((root / "zarr.json").read_text())
    group.setdefault("attributes", {}).update(attrs_update)
    members: dict[str, Path | bytes] = {rel: root / rel for rel in files}
    members["zarr.json"] = json.dumps(group, indent=2, sort_keys=True).encode()
    members.update(extra)
    tmp = dest.with_name(dest.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for rel in sorted(members):
            src = members[rel]
            info = zipfile.ZipInfo(rel, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            if isinstance(src, bytes):
                zf.writestr(info, src)
                continue
            info.file_size = src.stat().st_size
            with open(src, "rb") as fin, zf.open(info, "w", force_zip64=info.file_size >= zipfile.ZIP64_LIMIT) as fout:
                shutil.copyfileobj(fin, fout, 1 << 22)
    os.replace(tmp, dest)


def prepare_package(store_path: str, out_dir: str | os.PathLike, version: str) -> Package:
    """Write the data files of a release package for ``version`` (module docstring) into
    ``out_dir``; the descriptors (card, Croissant, SHA256SUMS) are added by
    :func:`rnamotif_data.release.card.write_descriptors`.

    Raises
    ------
    StoreError
        If the store is not local, not complete, or its checksums do not match.
    RegistryError
        If ``version`` is not a valid version string.
    """
    parse_version(version)
    fs, path = url_to_fs(store_path)
    if "file" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        raise StoreError(f"{store_path}: publishing needs a local store; copy it to a local disk first")
    store = open_store(path)
    root = Path(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = release_splits(store)
    split_bytes = {scheme: table_bytes(split_table(s)) for scheme, s in splits.items() if isinstance(s, Split)}
    archive = out / archive_name(version)
    attrs = get_attrs(str(root)) or {}
    log.info("zipping %s (%d samples) to %s", root, attrs.get("n_samples", 0), archive)
    zip_store(root, archive, attrs_update={"dataset_version": version},
              extra={f"splits/{k}.parquet": b for k, b in split_bytes.items()})
    files = [hash_file(archive, "archive")]
    for name, role in ((METADATA_FILE, "metadata"), (FAILURES_FILE, "failures")):
        shutil.copyfile(root / name, out / name)
        files.append(hash_file(out / name, role))
    for scheme, data in split_bytes.items():
        p = out / f"split-{scheme}.parquet"
        p.write_bytes(data)
        files.append(hash_file(p, "split"))

    png = out / "qc.png"
    plot_qc(store.metadata, png, f"rnamotif-data {version}: {len(store)} samples")
    files.append(hash_file(png, "figure"))
    stale = {p.name for p in out.iterdir() if p.is_file()} - {f.name for f in files} - {
        "README.md", "croissant.json", "SHA256SUMS", CHECKSUMS_FILE}
    for name in sorted(stale):
        if not name.startswith("."):
            log.warning("%s: %s is not part of the package and will not be uploaded", out, name)
    return Package(version=version, directory=out, store=str(root), files=tuple(files), splits=splits)
