"""The one writer of a store: every program that writes a store (``rnamotif build``,
``rnamotif recode``, the synthetic fixtures) goes through :class:`StoreWriter`, and a
program that adds to a complete store (``rnamotif embed``) through :class:`StoreUpdate`.

The write sequence (``docs/store.md``, "How a store is written")::

    StoreWriter(root, ArraySpec(...))    --out checked before any change (outdir rules):
                                         a new or empty folder, or a store this package built
    with writer:                         folder made, ROOT/.rnamotif-build.lock taken
        writer.prepare(attrs, resume=)   (a build) new, resumed or complete; --overwrite
                                         deletes only this package's files
        writer.begin(attrs)              group attributes, build_state "building"
        writer.create_arrays(n)          (N, D, H, W) arrays, one sample per chunk
        writer.write_shard(start, cubes) one writer per shard (also write_shard of
                                         rnamotif_data.storage.store, in a worker process)
        writer.resize(n)                 the final N (a build sizes its arrays at an upper bound)
        writer.write_tables(StoreTables(metadata=..., failures=...))
        writer.complete(attrs)           last attributes, checksums.sha256, build_state "complete"

A store interrupted anywhere before :meth:`StoreWriter.complete` stays ``"building"`` and
is refused by readers. Rows are checked against the column dictionaries
(:func:`~rnamotif_data.storage.layout.metadata_row`,
:func:`~rnamotif_data.storage.layout.failures_row`): a missing or unknown column is an
error, never a silent null. Nothing the caller passes is changed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import cast

import numpy as np
import pyarrow as pa

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.checksums import ATTRS_UNHASHED, sha256_file, write_checksums
from rnamotif_data.storage.layout import (
    CHECKSUMS_FILE,
    FAILURES_FILE,
    FAILURES_SCHEMA,
    FORMAT_VERSION,
    METADATA_FILE,
    METADATA_SCHEMA,
    failures_row,
    get_attrs,
    join,
    metadata_row,
    set_attrs,
    stored_arrays,
    url_to_fs,
    write_table,
    zarr_location,
)
from rnamotif_data.storage.lock import BuildLock
from rnamotif_data.storage.outdir import check_out, prepare_root
from rnamotif_data.storage.shards import DEFAULT_CODEC
from rnamotif_data.storage.store import create_arrays, write_shard
from rnamotif_data.storage.volumes import (
    INSTANCE_SCHEMA,
    INSTANCES_FILE,
    TILE_SCHEMA,
    TILES_FILE,
    VOLUME_SCHEMA,
    VOLUMES_FILE,
    create_volume_group,
    instance_row,
    tile_row,
    volume_row,
)

__all__ = ["ArraySpec", "StoreTables", "StoreWriter", "StoreUpdate"]


@dataclass(frozen=True)
class ArraySpec:
    """How a store's arrays are laid out: cubes of ``cube_shape`` ``(D, H, W)`` voxels
    (z-y-x), ``shard_size`` samples per shard, chunks compressed with ``codec``
    (:data:`rnamotif_data.storage.shards.CODECS`) at ``compression_level`` (None: the
    codec's default)."""

    cube_shape: tuple[int, int, int]
    shard_size: int
    codec: str = DEFAULT_CODEC
    compression_level: int | None = None


@dataclass(frozen=True)
class StoreTables:
    """The two Parquet tables of a store. ``metadata``: one row per sample in sample order
    (:func:`~rnamotif_data.storage.layout.metadata_row`; ``sample_index`` numbered by the
    writer); ``failures``: the rows of ``failures.parquet`` in the order to store
    (:func:`~rnamotif_data.storage.layout.failures_row`)."""

    metadata: Sequence[Mapping] = ()
    failures: Sequence[Mapping] = ()


class StoreWriter:
    """Writes the store at ``root`` (a local path or fsspec URL); see the module docstring.

    Creating it checks the folder (nothing is changed): :attr:`existing` holds the
    attributes of the store already there, or None for a new or empty folder. Use it as a
    context manager (or :meth:`acquire` / :meth:`release`): entering makes the folder and
    takes the store's lock; every write needs the lock.

    Raises
    ------
    StoreError
        On creation, if ``root`` is a file or a folder with other content, or
        (``overwrite``) a store holding files this package did not write; on entry, if
        another live build, recode or embed holds the lock.
    """

    def __init__(self, root: str | os.PathLike, arrays: ArraySpec, *, overwrite: bool = False):
        self.root = str(root)
        self.arrays = arrays
        self.overwrite = overwrite
        #: the attributes of the store found at ``root`` (None: a new or empty folder)
        self.existing: dict | None = check_out(self.root, overwrite=overwrite)
        #: whether this writer made the folder (so removing it removes only what it wrote)
        self.created = False
        self._lock = BuildLock(self.root)

    # ------------------------------------------------------------------ the lock
    def acquire(self) -> None:
        """Make the folder (if new) and take the store's lock."""
        fs, path = url_to_fs(self.root)
        self.created = not fs.exists(path)
        fs.makedirs(path, exist_ok=True)
        self._lock.acquire()

    def release(self) -> None:
        """Release the lock (if held)."""
        self._lock.release()

    def __enter__(self) -> StoreWriter:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _held(self) -> None:
        if not self._lock.held:
            raise StoreError(f"{self.root}: the store writer writes only while it holds the lock (use it as a "
                             "context manager)")

    # ------------------------------------------------------------------ the sequence
    def prepare(self, attrs: Mapping, *, resume: bool) -> str:
        """Ready the folder for a build of ``attrs`` (the new store's attributes):
        ``"new"``, ``"resume"`` or ``"complete"``
        (:func:`~rnamotif_data.storage.outdir.prepare_root`; with ``overwrite`` only this
        package's files are deleted).

        Raises
        ------
        StoreError
            If the store there was built in another format, from another manifest or with
            other settings, or is an interrupted build and ``resume`` is not set.
        """
        self._held()
        return prepare_root(self.root, dict(attrs), self.existing, resume=resume, overwrite=self.overwrite)

    def begin(self, attrs: Mapping) -> None:
        """Write the group's attributes, ``build_state: "building"`` among them (until
        :meth:`complete`, readers refuse the store)."""
        self._held()
        set_attrs(self.root, {**attrs, "build_state": "building"})

    def create_arrays(self, n: int) -> None:
        """Create (or replace) the arrays, ``(n, D, H, W)`` each
        (:func:`~rnamotif_data.storage.store.create_arrays` with :attr:`arrays`)."""
        self._held()
        a = self.arrays
        create_arrays(self.root, n, a.cube_shape, a.shard_size, a.compression_level, a.codec)

    def resize(self, n: int) -> None:
        """Set the arrays' first axis to ``n`` samples (shards past it are dropped); with
        ``n == 0`` the arrays are made anew, empty."""
        self._held()
        if n == 0:
            self.create_arrays(0)
            return
        import zarr

        group = zarr.open_group(zarr_location(self.root), mode="r+")
        for name in stored_arrays(FORMAT_VERSION):
            cast("zarr.Array", group[name]).resize((int(n), *self.arrays.cube_shape))

    def write_shard(self, start: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Write samples ``start : start + len`` (:func:`~rnamotif_data.storage.store.write_shard`:
        whole shards, this writer the only one of them; derived arrays computed here).
        A worker process without the writer calls that function itself."""
        self._held()
        write_shard(self.root, start, dict(arrays))

    def write_tables(self, tables: StoreTables) -> None:
        """Write ``metadata.parquet`` (rows numbered ``sample_index`` 0 ... N-1 in order)
        and ``failures.parquet``, atomically and with deterministic bytes.

        Raises
        ------
        TypeError
            If a row misses a column or has one that is not in the table (naming it).
        StoreError
            If a metadata row states a ``sample_index`` other than its position.
        """
        self._held()
        meta = []
        for k, row in enumerate(tables.metadata):
            given = row.get("sample_index")
            if given is not None and int(given) != k:
                raise StoreError(f"{self.root}: metadata row {k} states sample_index {given}; rows are in "
                                 "sample order")
            meta.append(metadata_row(**{**row, "sample_index": k}))
        fails = [failures_row(**row) for row in tables.failures]
        write_table(join(self.root, METADATA_FILE), pa.Table.from_pylist(meta, schema=METADATA_SCHEMA))
        write_table(join(self.root, FAILURES_FILE), pa.Table.from_pylist(fails, schema=FAILURES_SCHEMA))

    def create_volume_group(self) -> None:
        """Create the ``volumes`` group (a build with ``--tiles``, before its entry tasks
        write their arrays: :mod:`rnamotif_data.storage.volumes`)."""
        self._held()
        create_volume_group(self.root)

    def write_volume_tables(self, volumes: Sequence[Mapping], tiles: Sequence[Mapping],
                            instances: Sequence[Mapping]) -> None:
        """Write ``volumes.parquet``, ``tiles.parquet`` (rows numbered ``tile_index`` 0 ...
        n-1 in order) and ``instances.parquet`` atomically.

        Raises
        ------
        TypeError
            If a row misses a column or has one that is not in its table (naming it).
        """
        self._held()
        tiles = [tile_row(**{**row, "tile_index": k}) for k, row in enumerate(tiles)]
        for name, rows, schema, check in ((VOLUMES_FILE, volumes, VOLUME_SCHEMA, volume_row),
                                          (TILES_FILE, tiles, TILE_SCHEMA, tile_row),
                                          (INSTANCES_FILE, instances, INSTANCE_SCHEMA, instance_row)):
            table = pa.Table.from_pylist([check(**row) for row in rows], schema=schema)
            write_table(join(self.root, name), table)

    def complete(self, attrs: Mapping | None = None) -> dict[str, str]:
        """Finish the store: add ``attrs`` (counts and the like) to the group's attributes,
        write ``checksums.sha256`` (:func:`~rnamotif_data.storage.checksums.write_checksums`)
        and last ``build_state: "complete"``. Returns the checksums written."""
        self._held()
        if attrs:
            set_attrs(self.root, dict(attrs))
        sums = write_checksums(self.root)
        set_attrs(self.root, {"build_state": "complete"})
        return sums


class StoreUpdate:
    """Adds to a complete store at ``root`` (a context manager holding the store's lock):
    attributes outside the attributes' checksum and folders that carry their own
    ``checksums.sha256`` (``rnamotif embed``'s ``features/<name>/``), so the store's own
    checksums stay valid.

    Raises
    ------
    StoreError
        On entry, if another build, recode or embed holds the lock.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = str(root)
        self._lock = BuildLock(self.root)

    def __enter__(self) -> StoreUpdate:
        self._lock.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._lock.release()

    def _held(self) -> None:
        if not self._lock.held:
            raise StoreError(f"{self.root}: a store is updated only while its lock is held (use StoreUpdate as a "
                             "context manager)")

    def attrs(self) -> dict:
        """The store's group attributes, as now."""
        return dict(get_attrs(self.root) or {})

    def update_attrs(self, attrs: Mapping) -> None:
        """Add or replace group attributes that the attributes' checksum leaves out
        (:data:`~rnamotif_data.storage.checksums.ATTRS_UNHASHED`, e.g. ``sequence_features``;
        ``build_state`` excepted).

        Raises
        ------
        StoreError
            For any other attribute (changing it would break ``checksums.sha256``) or
            ``build_state``.
        """
        self._held()
        covered = sorted(k for k in attrs if k not in ATTRS_UNHASHED or k == "build_state")
        if covered:
            raise StoreError(f"{self.root}: attributes {', '.join(covered)} are covered by {CHECKSUMS_FILE}; a "
                             "complete store's are not changed (rebuild or recode it)")
        set_attrs(self.root, dict(attrs))

    def seal_folder(self, folder: str | os.PathLike) -> dict[str, str]:
        """Write ``folder/checksums.sha256`` (``sha256sum`` format) over every other file
        directly in ``folder`` (a local folder; names sorted); returns ``{name: sha256}``."""
        self._held()
        path = Path(folder)
        sums = {f.name: sha256_file(f) for f in sorted(path.iterdir()) if f.name != CHECKSUMS_FILE}
        (path / CHECKSUMS_FILE).write_text("".join(f"{h}  {n}\n" for n, h in sums.items()))
        return sums
