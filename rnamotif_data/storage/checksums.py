"""Checksums of a store: ``checksums.sha256`` (``sha256sum`` format) over every file, plus
one line for the group's attributes; written last by the builder, checked by readers
(:class:`rnamotif_data.storage.store.RNAMotifStore`), ``rnamotif_data.release.verify`` and downloads."""

from __future__ import annotations

import hashlib
import os
import posixpath
from typing import Iterable

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.layout import CHECKSUMS_FILE, get_attrs, join, put_bytes, url_to_fs

__all__ = ["ATTRS_ENTRY", "ATTRS_UNHASHED", "sha256_stream", "sha256_file", "file_checksums", "attrs_checksum", "write_checksums",
           "read_checksums", "check_checksums"]


def sha256_stream(f) -> str:
    """sha256 (hex) of everything left in a binary file object, read in 4 MiB blocks."""
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 22), b""):
        h.update(block)
    return h.hexdigest()


def sha256_file(url: str | os.PathLike) -> str:
    """sha256 (hex) of a local file or fsspec URL."""
    fs, path = url_to_fs(url)
    with fs.open(path, "rb") as f:
        return sha256_stream(f)


def file_checksums(root: str, *, exclude: Iterable[str] = (CHECKSUMS_FILE, "zarr.json")) -> dict[str, str]:
    """sha256 (hex) of every file under ``root``, keyed by POSIX path relative to it.

    The group's own ``zarr.json`` (its attributes, which record the build state after the
    checksums are written) and the checksum file are excluded; staging and temporary
    files and the build lock (``.rnamotif-build.lock``) are skipped, and so are ``splits/`` (split files are derived from the store later,
    each with its own fingerprint; :mod:`rnamotif_data.split.splits`) and ``features/``
    (sequence features, derived later, with their own checksums; :mod:`rnamotif_data.features.stored`)."""
    fs, base = url_to_fs(root)
    base = base.rstrip("/")
    out = {}
    for path in sorted(fs.find(base)):
        rel = posixpath.relpath(path.replace(os.sep, "/"), base.replace(os.sep, "/"))
        if rel in exclude or ".tmp-" in rel or rel.startswith(("_staging/", "splits/", "features/", ".rnamotif-")):
            continue
        with fs.open(path, "rb") as f:
            out[rel] = sha256_stream(f)
    return out


#: the checksum line that covers the group's attributes (its zarr.json changes with the
#: build state, a release's version label and the build's measured run times, which are
#: left out of the hash)
ATTRS_ENTRY = "zarr.json#attributes"
#: attributes the checksum leaves out (they change after the store is complete)
ATTRS_UNHASHED = ("build_state", "dataset_version", "build_timing", "sequence_features")


def attrs_checksum(attrs: dict) -> str:
    """sha256 (hex) of the canonical JSON of a store's attributes, ``build_state`` and
    ``dataset_version`` and ``build_timing`` (seconds measured by the build) left out, and
    ``sequence_features`` (added later by ``rnamotif embed``; each feature set checks itself):
    class names, voxel size, cube shape, config ... ."""
    import json

    blob = json.dumps({k: v for k, v in attrs.items() if k not in ATTRS_UNHASHED}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def write_checksums(root: str) -> dict[str, str]:
    """Write ``checksums.sha256`` (``sha256sum`` format) for every file of the store, and a
    line ``zarr.json#attributes`` for the group's attributes (:func:`attrs_checksum`)."""
    sums = file_checksums(root)
    sums[ATTRS_ENTRY] = attrs_checksum(get_attrs(root) or {})
    text = "".join(f"{h}  {rel}\n" for rel, h in sums.items())
    put_bytes(join(root, CHECKSUMS_FILE), text.encode())
    return sums


def read_checksums(root: str) -> dict[str, str]:
    """``checksums.sha256`` of a store as ``{relative path: sha256}``.

    Raises
    ------
    StoreError
        If the file is missing or a line is not ``<64 hex>  <path>``.
    """
    fs, path = url_to_fs(join(root, CHECKSUMS_FILE))
    if not fs.exists(path):
        raise StoreError(f"{root}: no {CHECKSUMS_FILE}; the store is damaged or was not finished")
    listed = {}
    for k, line in enumerate(fs.cat_file(path).decode("utf-8", "replace").splitlines(), 1):
        h, sep, rel = line.partition("  ")
        if not sep or len(h) != 64 or any(c not in "0123456789abcdef" for c in h) or not rel:
            raise StoreError(f"{root}/{CHECKSUMS_FILE} line {k}: not '<sha256>  <path>'")
        listed[rel] = h
    return listed


def check_checksums(root: str) -> list[str]:
    """Compare the store's files and attributes with ``checksums.sha256``; a list of
    problems (empty if every listed file exists with its checksum, no unlisted file
    exists and the attributes hash as recorded)."""
    try:
        listed = read_checksums(root)
    except StoreError as exc:
        return [str(exc)]
    actual = file_checksums(root)
    if ATTRS_ENTRY in listed:
        actual[ATTRS_ENTRY] = attrs_checksum(get_attrs(root) or {})
    problems = [f"{rel}: missing" for rel in listed if rel not in actual]
    problems += [f"{rel}: sha256 differs from {CHECKSUMS_FILE}" for rel in listed
                 if rel in actual and actual[rel] != listed[rel]]
    problems += [f"{rel}: not listed in {CHECKSUMS_FILE}" for rel in actual if rel not in listed]
    return problems
