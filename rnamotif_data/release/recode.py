"""Copy a store with another chunk codec: the same cubes, tables and splits, read faster or
stored smaller.

Usage::

    rnamotif recode STORE --codec lz4 --out COPY.zarr [--compression-level N]

A release can be downloaded small (``zstd``) and trained on fast (``lz4``, the default,
or ``none``: ``benchmarks/RESULTS.md``); a format-4 store (before ``density_masked``) is
upgraded on the way. Codecs: :mod:`rnamotif_data.storage.shards`.

Every cube is read from ``STORE`` through the checking reader (a damaged chunk stops the
copy with its name), written shard by shard to ``--out``, then read back and compared with
the source, all through the store writer (:class:`rnamotif_data.storage.writer.StoreWriter`);
``metadata.parquet``, ``failures.parquet``, ``splits/`` and, for a store built with
``--tiles``, ``volumes/`` and its three tables are copied byte for byte (so split
fingerprints are unchanged; the volumes keep the source's codec). The copy's attributes are the source's with
``build_config.codec`` and ``compression_level`` changed and ``recoded_from`` (the
source's codec); ``config_hash`` is kept (it covers the content, not the storage), so
split files and their fingerprints stay valid. ``checksums.sha256`` is written
for the copy, and ``build_state: complete`` last. ``--out`` must be a new or empty folder,
or the unfinished copy of an interrupted recode (replaced); it is locked while written; if the
copy fails, what it wrote is removed. An interrupted copy is known by its attributes
(``recoded_from`` without ``build_state: complete``): readers call it an interrupted recode.
Exit status 0 on success, 1 on bad input or a damaged source.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath

import numpy as np
from tqdm import tqdm

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.layout import ARRAYS, DERIVED_ARRAYS, FAILURES_FILE, FORMAT_VERSION, METADATA_FILE, join, put_bytes, url_to_fs
from rnamotif_data.storage.outdir import clear_store, foreign_files
from rnamotif_data.storage.shards import check_codec
from rnamotif_data.storage.store import open_store
from rnamotif_data.storage.volumes import INSTANCES_FILE, TILES_FILE, VOLUMES, VOLUMES_FILE
from rnamotif_data.storage.writer import ArraySpec, StoreWriter

log = logging.getLogger("rnamotif_data.release.recode")

__all__ = ["recode_store"]


def _copy_files(src: str, dst: str) -> list[str]:
    """Copy the tables, ``splits/`` and ``features/`` byte for byte; returns the relative paths."""
    fs, base = url_to_fs(src)
    rels = [METADATA_FILE, FAILURES_FILE]
    split_dir = join(base, "splits")
    if fs.isdir(split_dir):
        rels += sorted(f"splits/{p.rstrip('/').rsplit('/', 1)[-1]}" for p in fs.ls(split_dir, detail=False)
                       if fs.isfile(p))
    feature_dir = join(base, "features")  # sequence features: tied to the tables, which are copied as they are
    if fs.isdir(feature_dir):
        root = base.rstrip("/").replace(os.sep, "/")
        rels += sorted(posixpath.relpath(p.replace(os.sep, "/"), root) for p in fs.find(feature_dir)
                       if "/." not in posixpath.relpath(p.replace(os.sep, "/"), root))
    if fs.exists(join(base, VOLUMES_FILE)):  # --tiles: the volumes and their tables, as they are
        root = base.rstrip("/").replace(os.sep, "/")
        rels += [VOLUMES_FILE, TILES_FILE, INSTANCES_FILE]
        rels += sorted(posixpath.relpath(p.replace(os.sep, "/"), root) for p in fs.find(join(base, VOLUMES))
                       if ".tmp-" not in p)
    for rel in rels:
        put_bytes(join(dst, *rel.split("/")), fs.cat_file(join(base, *rel.split("/"))))
    return rels


def recode_store(src: str, out: str, codec: str, compression_level: int | None = None, *,
                 progress: bool = True) -> str:
    """Write a copy of store ``src`` at ``out`` whose arrays use ``codec`` (see the module
    docstring); returns ``out``.

    Raises
    ------
    rnamotif_data.errors.ConfigError
        For an unknown codec or a level outside its range.
    rnamotif_data.storage.store.StoreError
        If ``src`` is not a complete store or is damaged, if ``out`` is not a new or empty
        folder, or if a cube read back from ``out`` differs from the source.
    """
    level = check_codec(codec, compression_level)
    store = open_store(src)
    writer = StoreWriter(out, ArraySpec(store.cube_shape, store.shard_size, codec, level))
    old = writer.existing
    interrupted = old is not None and old.get("build_state") != "complete" and bool(old.get("recoded_from"))
    if old is not None and not interrupted:
        state = "a store" if old.get("build_state") == "complete" else "an interrupted build"
        raise StoreError(f"{out}: already holds {state}; --out must be a new or empty folder (or a recode that "
                         "did not finish, which is replaced)")
    if interrupted and foreign_files(out):
        raise StoreError(f"{out}: an interrupted recode that holds files this package did not write "
                         f"({', '.join(foreign_files(out)[:5])}); move them and run the recode again")
    fs, path = url_to_fs(out)
    locked = False
    try:
        with writer:  # a recode still running holds the lock: refused here, nothing removed
            locked = True
            if interrupted:
                log.warning("%s: replacing the unfinished copy an interrupted recode left", out)
                clear_store(out)
            attrs = json.loads(json.dumps(store.attrs))
            old_codec = attrs.get("build_config", {}).get("codec", "zstd")  # stores before 0.7 are zstd
            config = {**attrs.get("build_config", {}), "codec": codec, "compression_level": level}
            # config_hash is kept: it covers the content, not the storage (BuildConfig.config_hash)
            attrs.update(build_config=config, recoded_from={"codec": old_codec, "format_version": attrs["format_version"]},
                         format_version=FORMAT_VERSION)
            writer.begin(attrs)
            writer.create_arrays(len(store))
            for start, stop in tqdm(store.shard_ranges(), desc="shards", unit="shard", disable=not progress):
                writer.write_shard(start, store.read_batch(slice(start, stop)))  # derived arrays made here
            copy = open_store(out, require_complete=False)
            for start, stop in store.shard_ranges():  # read back through the checking reader
                a = store.read_batch(slice(start, stop), store.array_names)
                b = copy.read_batch(slice(start, stop), copy.array_names)
                bad = [n for n in a if not np.array_equal(a[n], b[n])]
                if bad:
                    raise StoreError(f"{out}: samples {start}-{stop - 1} read back differ from {src} "
                                     f"({', '.join(bad)}); the copy is not usable")
            rels = _copy_files(src, out)
            writer.complete()
    except BaseException:
        if not locked:  # another process's folder: never ours to clean
            raise
        if writer.created:
            fs.rm(path, recursive=True)
        else:  # an empty folder given as --out: remove only what was written into it
            for member in (*ARRAYS, *DERIVED_ARRAYS, "zarr.json", METADATA_FILE, FAILURES_FILE, "splits", "features",
                           "checksums.sha256", VOLUMES, VOLUMES_FILE, TILES_FILE, INSTANCES_FILE):
                p = join(path, member)
                if fs.exists(p):
                    fs.rm(p, recursive=True)
        raise
    shown = [r for r in rels if not r.startswith(f"{VOLUMES}/")]
    n_volume_files = len(rels) - len(shown)
    log.info("%s: %d samples recoded from %s to %s (copied %s%s)", out, len(store), old_codec, codec, ", ".join(shown),
             f", {VOLUMES}/ ({n_volume_files} files)" if n_volume_files else "")
    return out
