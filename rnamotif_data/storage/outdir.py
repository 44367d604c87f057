"""What ``--out`` may be, and getting it ready for a build.

``--out`` is a new or empty folder, or a store this package built (recognised by its
group attributes). Anything else is refused before any change, ``--overwrite``
included; ``--overwrite`` deletes only the files a store of this package has (by their
names, :func:`foreign_files`, in every sub-folder), and refuses a store that holds any
other file, naming it. The package's own temporary files (``*.tmp-<pid>``, left by a
build that was killed) are its own: they never block a later run. An existing store of another manifest, format
or configuration is refused with the settings that differ.
"""

from __future__ import annotations

import os
import posixpath
import re

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.layout import (
    ARRAYS,
    CHECKSUMS_FILE,
    DERIVED_ARRAYS,
    FAILURES_FILE,
    FEATURE_ARRAYS,
    METADATA_FILE,
    SPLIT_SCHEMES,
    STAGING,
    get_attrs,
    join,
    url_to_fs,
)
from rnamotif_data.storage.lock import LOCK_FILE
from rnamotif_data.storage.volumes import INSTANCES_FILE, TILES_FILE, VOLUME_ARRAYS, VOLUMES, VOLUMES_FILE

__all__ = ["STORE_MEMBERS", "foreign_files", "check_out", "prepare_root", "clear_store"]


#: what a store this package built may hold at its top level
STORE_MEMBERS = frozenset({"zarr.json", *ARRAYS, *DERIVED_ARRAYS, METADATA_FILE, FAILURES_FILE, CHECKSUMS_FILE, STAGING, "splits",
                           "features", LOCK_FILE, VOLUMES, VOLUMES_FILE, TILES_FILE, INSTANCES_FILE})
#: the files of one stored feature set (rnamotif_data.features.stored)
_FEATURE_FILES = ("attrs\\.json", "checksums\\.sha256", *(f"{name}\\.npy" for name in FEATURE_ARRAYS))


_ARRAY_NAMES = "|".join(re.escape(a) for a in (*ARRAYS, *DERIVED_ARRAYS))
#: every file a build, a split, a recode or ``rnamotif embed`` of this package writes into a store (paths
#: relative to the store, ``/``-separated), and their temporary files
_OWN_FILE = re.compile(
    r"^(?:"
    rf"zarr\.json|{re.escape(METADATA_FILE)}|{re.escape(FAILURES_FILE)}|{re.escape(CHECKSUMS_FILE)}|{re.escape(LOCK_FILE)}"
    rf"|(?:{_ARRAY_NAMES})/zarr\.json|(?:{_ARRAY_NAMES})/c(?:/\d+)+"
    rf"|{re.escape(STAGING)}/[^/]+\.npz"
    rf"|{re.escape(VOLUMES_FILE)}|{re.escape(TILES_FILE)}|{re.escape(INSTANCES_FILE)}"
    rf"|{VOLUMES}/zarr\.json|{VOLUMES}/[\w.-]+/zarr\.json"
    rf"|{VOLUMES}/[\w.-]+/(?:{'|'.join(VOLUME_ARRAYS)})/(?:zarr\.json|c(?:/\d+)+)"
    rf"|splits/(?:{'|'.join(SPLIT_SCHEMES)}|tiles)\.parquet"
    rf"|splits/(?:{'|'.join(SPLIT_SCHEMES)})-report\.md"
    rf"|splits/(?:{'|'.join(SPLIT_SCHEMES)})-[\w.-]+-pca\d+\.npz"
    rf"|features/[\w-][\w.-]*/(?:{'|'.join(_FEATURE_FILES)})"
    r")(?:\.tmp-\d+)?$")


def foreign_files(root: str) -> list[str]:
    """Files under ``root`` that this package did not write (paths relative to ``root``,
    sorted): anything but the store's own members, checked in every sub-folder."""
    fs, path = url_to_fs(root)
    base = path.rstrip("/").replace(os.sep, "/")
    out = []
    for p in fs.find(path):
        rel = posixpath.relpath(p.replace(os.sep, "/"), base)
        if not _OWN_FILE.match(rel):
            out.append(rel)
    return sorted(out)


def _is_our_store(attrs: dict | None) -> bool:
    return attrs is not None and "format_version" in attrs and "config_hash" in attrs and "manifest_sha256" in attrs


def _members(fs, path: str) -> list[str]:
    return sorted(os.path.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


def check_out(root: str, *, overwrite: bool) -> dict | None:
    """Refuse an ``--out`` that holds anything but a store this package built (before any
    change): returns the existing store's attributes, or None for a new or empty folder.

    Raises
    ------
    StoreError
        If ``root`` is a file, a folder with other content, or (``overwrite``) a store
        that holds files this package did not write. Nothing is changed.
    """
    fs, path = url_to_fs(root)
    if not fs.exists(path):
        return None
    if not fs.isdir(path):
        raise StoreError(f"{root}: exists and is a file, not a store folder; choose another --out")
    old = get_attrs(root) if fs.exists(join(root, "zarr.json")) else None
    members = [m for m in _members(fs, path) if m != LOCK_FILE]
    if not _is_our_store(old):
        if members:
            raise StoreError(f"{root}: exists and is not an rnamotif-data store ({len(members)} entries, e.g. "
                             f"{members[0]}); --out must be a new folder or a store this package built "
                             "(--overwrite replaces only those); nothing was changed")
        return None
    if overwrite:
        foreign = foreign_files(root)
        if foreign:
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            raise StoreError(f"{root}: holds files this package did not write ({', '.join(foreign[:5])}{more}); "
                             "move them before --overwrite; nothing was changed")
    return old


def clear_store(root: str) -> None:
    """Delete the members a store of this package has from ``root`` (the lock excepted),
    after :func:`foreign_files` found none other; the folder itself stays.

    Raises
    ------
    StoreError
        If ``root`` holds a file this package did not write (naming it); nothing is deleted.
    """
    fs, path = url_to_fs(root)
    foreign = foreign_files(root)
    if foreign:
        raise StoreError(f"{root}: holds files this package did not write ({', '.join(foreign[:5])}); "
                         "move them first; nothing was changed")
    for m in _members(fs, path):
        if m != LOCK_FILE and (m in STORE_MEMBERS or _OWN_FILE.match(m)):
            fs.rm(join(root, m), recursive=True)


def _config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


def prepare_root(root: str, attrs: dict, old: dict | None, *, resume: bool, overwrite: bool) -> str:
    """Ready ``root`` for a build (the lock is held): ``"new"``, ``"resume"`` or
    ``"complete"``. ``--overwrite`` deletes only the members a store of this package has."""
    fs, path = url_to_fs(root)
    if old is not None and overwrite:
        foreign = foreign_files(root)
        if foreign:  # written since check_out: still never ours to delete
            raise StoreError(f"{root}: holds files this package did not write ({', '.join(foreign[:5])}); "
                             "move them before --overwrite")
        for m in _members(fs, path):
            if m != LOCK_FILE and (m in STORE_MEMBERS or _OWN_FILE.match(m)):
                fs.rm(join(root, m), recursive=True)
        return "new"
    if old is None:
        return "new"
    if old.get("recoded_from") and old.get("build_state") != "complete":
        raise StoreError(f"{root}: holds an interrupted `rnamotif recode`, not a build; run that recode again "
                         "(it replaces the unfinished copy), or pass --overwrite to build here instead")
    if old.get("format_version") != attrs["format_version"]:
        raise StoreError(f"{root}: was built in store format {old.get('format_version')}, this package writes "
                         f"{attrs['format_version']}; choose another --out or pass --overwrite")
    if old.get("manifest_sha256") != attrs["manifest_sha256"]:
        raise StoreError(f"{root}: was built from another manifest ({old.get('manifest')}, sha256 "
                         f"{str(old.get('manifest_sha256'))[:12]}...); choose another --out or pass --overwrite")
    if old.get("config_hash") != attrs["config_hash"]:
        diff = _config_differences(old.get("build_config", {}), attrs["build_config"])
        raise StoreError(f"{root}: was built with other settings ({'; '.join(diff[:6]) or 'config hash differs'}); "
                         "choose another --out or pass --overwrite")
    if old.get("build_state") == "complete":
        return "complete"
    if not resume:
        raise StoreError(f"{root}: holds an interrupted build; pass --resume to continue it "
                         "or --overwrite to start again")
    return "resume"
