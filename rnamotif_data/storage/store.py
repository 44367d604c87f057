"""The dataset store: sharded Zarr v3 cubes plus Parquet metadata (design §7).

Layout of a store ``ROOT`` (a local path or an fsspec URL such as ``s3://bucket/x.zarr``)::

    ROOT/zarr.json              Zarr v3 group; attributes below
    ROOT/density/ zone/ labels/ nucleotide/
                                arrays (N, D, H, W), z-y-x, one sample per inner chunk,
                                ``shard_size`` samples per shard, lz4 (Blosc), zstd or
                                uncompressed chunks with CRC32C (rnamotif_data.storage.shards)
    ROOT/density_masked/        (format 5) density * zone, the model's input, laid out
                                alike; derived when a shard is written (rnamotif_data.release.verify
                                checks it)
    ROOT/metadata.parquet       one row per sample, in sample order (METADATA_COLUMNS)
    ROOT/failures.parquet       every manifest row that did not become a sample, and why
    ROOT/checksums.sha256       sha256 of every other file but the group's zarr.json
                                (``sha256sum`` format)

Group attributes: ``format_version``, ``dataset_version``, ``build_state``
(``"building"`` until the last file is written, then ``"complete"``), ``build_config``
and ``config_hash``, ``manifest_sha256``, ``class_names``, ``label_names``,
``nucleotide_names``, ``voxel_size`` (Å), ``cube_shape`` (D, H, W), ``shard_size``,
``n_samples``, ``package_version``.

A store whose ``build_state`` is not ``"complete"`` is refused by :class:`RNAMotifStore`
(an interrupted build); its arrays may hold half-written shards.

Each shard is written by exactly one writer (:func:`write_shard`): zarr-python 3 loses data
silently when two writers update parts of one shard concurrently.

Stores are written through :class:`rnamotif_data.storage.writer.StoreWriter`, which owns the
write sequence; :func:`create_arrays` and :func:`write_shard` are its array steps
(:func:`write_shard` is also called by a build's worker processes, one per shard).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from typing import Iterable, Iterator, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.checksums import ATTRS_ENTRY, attrs_checksum, read_checksums
from rnamotif_data.storage.layout import (
    ARRAY_DTYPES,
    ARRAYS,
    CHECKSUMS_FILE,
    DERIVED_ARRAYS,
    DIMENSION_NAMES,
    FAILURES_FILE,
    FORMAT_VERSION,
    LATER_METADATA_COLUMNS,
    METADATA_COLUMNS,
    METADATA_FILE,
    get_attrs,
    join,
    stored_arrays,
    url_to_fs,
    zarr_location,
)
from rnamotif_data.storage.shards import DEFAULT_CODEC, ShardReader, array_codec, check_codec, compressors, mask_density

log = logging.getLogger(__name__)

__all__ = [ "RNAMotifStore", "open_store",
    "create_arrays", "write_shard",
]

def _derive(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The derived arrays of one block of samples: ``density_masked = density * zone``
    (:func:`rnamotif_data.storage.shards.mask_density`)."""

    dens = np.array(arrays["density"], dtype=ARRAY_DTYPES["density"], order="C")
    return {"density_masked": mask_density(dens, np.asarray(arrays["zone"], dtype=bool))}


# ---------------------------------------------------------------------- writing
def create_arrays(root: str, n: int, cube_shape: tuple[int, int, int], shard_size: int,
                  compression_level: int | None = None, codec: str = DEFAULT_CODEC) -> None:
    """Create (or replace) the arrays of a store (:func:`stored_arrays` of this format),
    shape ``(n, D, H, W)``.

    One sample per inner chunk ``(1, D, H, W)``; shards of ``(shard_size, D, H, W)``;
    each chunk compressed with ``codec`` (:data:`rnamotif_data.storage.shards.CODECS`; the density
    array's, the label arrays follow :func:`rnamotif_data.storage.shards.array_codec`) at
    ``compression_level`` (None: the codec's default) and followed by its CRC32C
    (``crc32c`` codec), so a damaged chunk fails on read; ``dimension_names``
    ``("sample", "z", "y", "x")``.
    Existing arrays and their chunks are deleted first (``overwrite``).

    Raises
    ------
    rnamotif_data.errors.ConfigError
        For an unknown codec or a level outside its range.
    """
    import zarr

    check_codec(codec, compression_level)
    group = zarr.open_group(zarr_location(root), mode="a")
    for name in stored_arrays(FORMAT_VERSION):
        group.create_array(
            name, shape=(int(n), *cube_shape), chunks=(1, *cube_shape),
            shards=(int(shard_size), *cube_shape),
            dtype=ARRAY_DTYPES[name],
            compressors=compressors(array_codec(name, codec),
                                    compression_level if array_codec(name, codec) == codec else None),
            dimension_names=DIMENSION_NAMES, fill_value=0, overwrite=True,
        )


def write_shard(root: str, start: int, arrays: dict[str, np.ndarray]) -> None:
    """Write samples ``start : start + len`` of every array; the caller is the only writer
    of the shard(s) this range covers (ranges must be whole shards, or end at N).
    ``arrays`` holds :data:`ARRAYS`; the derived arrays the store has are computed here.

    Raises
    ------
    StoreError
        If the range is not shard-aligned or the arrays disagree in length.
    """
    import zarr

    group = zarr.open_group(zarr_location(root), mode="r+")
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise StoreError(f"{root}: arrays of different lengths for one shard: {lengths}")
    (k,) = lengths
    derived = [n for n in DERIVED_ARRAYS if n in group and n not in arrays]
    if derived:
        arrays = {**arrays, **{n: v for n, v in _derive(arrays).items() if n in derived}}
    for name, data in arrays.items():
        # every chunk is stored, all-zero ones too (zarr skips those by default): a chunk
        # missing from a shard is then damage, which the reader reports, never zeros
        arr = cast("zarr.Array", group[name]).with_config({"write_empty_chunks": True})
        shard = arr.shards[0] if arr.shards else arr.chunks[0]
        if start % shard or (k % shard and start + k != arr.shape[0]):
            raise StoreError(f"{root}/{name}: write of samples {start}:{start + k} is not shard-aligned "
                             f"(shard size {shard}, N {arr.shape[0]})")
        arr[start:start + k] = np.asarray(data, dtype=ARRAY_DTYPES[name])


# ---------------------------------------------------------------------- reading
class RNAMotifStore:
    """Read access to a built store.

    Metadata and failures are read from Parquet without touching the cube arrays; the
    Zarr arrays are opened lazily on first cube access and never pickled, so an instance
    can be sent to DataLoader workers (fork or spawn) and reopens there.

    Parameters
    ----------
    root:
        Local path or fsspec URL of the store.
    require_complete:
        Refuse a store whose build did not finish (default).

    Raises
    ------
    StoreError
        If ``root`` holds no store, or (``require_complete``) its build is incomplete, or
        its format version is newer than this package understands.
    """

    def __init__(self, root: str | os.PathLike, *, require_complete: bool = True):
        self.root = str(root)
        attrs = get_attrs(self.root)
        if attrs is None or "format_version" not in attrs:
            raise StoreError(f"{self.root}: no rnamotif-data store here (build one with "
                             "`rnamotif build --manifest M.parquet --out "
                             f"{self.root}`)")
        if attrs["format_version"] > FORMAT_VERSION:
            raise StoreError(f"{self.root}: store format {attrs['format_version']} is newer than "
                             f"this package's ({FORMAT_VERSION}); upgrade rnamotif-data")
        if require_complete and attrs.get("build_state") != "complete" and attrs.get("recoded_from"):
            raise StoreError(f"{self.root}: an interrupted `rnamotif recode` (state {attrs.get('build_state')!r}), "
                             "not a build; run the same `rnamotif recode ... --out` again: it replaces the "
                             "unfinished copy (never `rnamotif build --resume`)")
        if require_complete and attrs.get("build_state") != "complete":
            raise StoreError(f"{self.root}: build is incomplete (state {attrs.get('build_state')!r}); "
                             "finish it with `rnamotif build ... --resume`")
        self.attrs = attrs
        self._sums = None
        if require_complete and attrs["format_version"] >= 3:

            self._sums = read_checksums(self.root)
            if ATTRS_ENTRY not in self._sums:
                raise StoreError(f"{self.root}: {CHECKSUMS_FILE} has no line for the group's attributes (a store "
                                 "written before attribute checksums); rebuild it")
            if self._sums[ATTRS_ENTRY] != attrs_checksum(attrs):
                raise StoreError(f"{self.root}: the group's attributes (zarr.json: class names, voxel size, "
                                 f"config ...) differ from {CHECKSUMS_FILE}; the store was edited or damaged")
        self._arrays: dict | None = None
        self._readers: dict | None = None
        self._metadata = None
        if require_complete:  # every array's metadata is there: a missing one is a damaged store
            fs, _ = url_to_fs(self.root)
            for name in self.array_names:
                if not fs.exists(url_to_fs(join(self.root, name, "zarr.json"))[1]):
                    raise StoreError(f"{self.root}: array {name!r} is missing ({name}/zarr.json not found); the store "
                                     f"is damaged: 'rnamotif verify {self.root}' lists what else is")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_arrays"] = None
        state["_readers"] = None
        return state

    def _fast_readers(self) -> dict:
        """Per-array :class:`ShardReader` where the array has the layout it supports."""
        if self._readers is None:
            import json

            readers = {}
            for name in self.array_names:
                fs, path = url_to_fs(join(self.root, name, "zarr.json"))
                try:
                    meta = json.loads(fs.cat_file(path))
                except (OSError, ValueError) as exc:
                    raise StoreError(f"{self.root}: {name}/zarr.json cannot be read ({type(exc).__name__}); the store "
                                     "is damaged (rnamotif verify lists what else is): rebuild it or download it "
                                     "again") from None
                if ShardReader.supports(meta) and tuple(meta["shape"][1:]) == self.cube_shape:
                    digests = None
                    if self._sums is not None:  # every shard checked in full when first opened
                        prefix = f"{name}/c/"
                        digests = {int(key[len(prefix):].split("/")[0]): v for key, v in self._sums.items()
                                   if key.startswith(prefix)}
                    readers[name] = ShardReader(self.root, name, meta, len(self), digests)
            self._readers = readers
        return self._readers

    def __len__(self) -> int:
        return int(self.attrs.get("n_samples", 0))

    def __repr__(self) -> str:
        return (f"RNAMotifStore({self.root!r}, samples={len(self)}, cube={tuple(self.cube_shape)}, "
                f"version={self.attrs.get('dataset_version')!r})")

    @property
    def cube_shape(self) -> tuple[int, int, int]:
        """``(D, H, W)`` voxels."""
        return tuple(self.attrs["cube_shape"])

    @property
    def voxel_size(self) -> float:
        """Cube voxel size in Å."""
        return float(self.attrs["voxel_size"])

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in class-index order."""
        return tuple(self.attrs["class_names"])

    @property
    def array_names(self) -> tuple[str, ...]:
        """The arrays this store holds (:func:`stored_arrays` of its format version)."""
        return stored_arrays(int(self.attrs["format_version"]))

    def _check_names(self, arrays: Iterable[str]) -> list[str]:
        names = list(arrays)
        missing = [n for n in names if n not in self.array_names]
        if missing:
            raise StoreError(f"{self.root}: no array {missing[0]!r} in this store (format "
                             f"{self.attrs['format_version']}: {', '.join(self.array_names)})")
        return names

    @property
    def shard_size(self) -> int:
        """Samples per shard."""
        return int(self.attrs["shard_size"])

    def _verified_table(self, name: str) -> pa.Table:
        """A Parquet table of the store, checked against ``checksums.sha256`` first."""
        fs, path = url_to_fs(join(self.root, name))
        try:
            data = fs.cat_file(path)
        except FileNotFoundError:
            raise StoreError(f"{self.root}: {name} is missing; the store is damaged (rnamotif verify lists what "
                             "else is): rebuild it or download it again") from None
        if self._sums is not None and hashlib.sha256(data).hexdigest() != self._sums.get(name):
            raise StoreError(f"{self.root}: {name} differs from {CHECKSUMS_FILE}; the store is damaged "
                             "(rnamotif verify lists what else is)")
        return pq.read_table(io.BytesIO(data))

    @property
    def metadata(self):
        """``pandas.DataFrame`` of metadata.parquet, one row per sample in sample order
        (verified against ``checksums.sha256``; raises :class:`StoreError` if it differs).
        A format-5 store built before the :data:`~rnamotif_data.storage.layout.LATER_METADATA_COLUMNS`
        gets them as nulls, in their place."""
        if self._metadata is None:
            meta = self._verified_table(METADATA_FILE).to_pandas()
            for name in (c for c in LATER_METADATA_COLUMNS if c not in meta.columns):
                before = list(METADATA_COLUMNS)[:list(METADATA_COLUMNS).index(name)]
                meta.insert(sum(c in before for c in meta.columns), name, None)
            self._metadata = meta
        return self._metadata

    @property
    def failures(self):
        """``pandas.DataFrame`` of failures.parquet (verified like :attr:`metadata`)."""
        return self._verified_table(FAILURES_FILE).to_pandas()

    def arrays(self) -> dict:
        """The Zarr arrays by name (opened on first use, in this process)."""
        if self._arrays is None:
            import zarr

            group = zarr.open_group(zarr_location(self.root), mode="r")
            arrays = {}
            for name in self.array_names:
                try:
                    arrays[name] = group[name]
                except (OSError, ValueError, KeyError) as exc:  # a damaged or missing array's zarr.json
                    raise StoreError(f"{self.root}: {name}/zarr.json cannot be read ({type(exc).__name__}); the store "
                                     "is damaged (rnamotif verify lists what else is): rebuild it or download it "
                                     "again") from None
            self._arrays = arrays
        return self._arrays

    def _check(self, index: int) -> int:
        n = len(self)
        if not isinstance(index, (int, np.integer)) or not 0 <= index < n:
            raise IndexError(f"{self.root}: sample index {index!r} out of range [0, {n})")
        return int(index)

    def _indices(self, indices: Iterable[int] | slice) -> np.ndarray:
        """``indices`` as int64 sample indices, all in ``[0, N)`` (IndexError otherwise)."""
        if isinstance(indices, slice):
            return np.arange(*indices.indices(len(self)))
        idx = np.asarray(list(indices), dtype=np.int64)
        bad = idx[(idx < 0) | (idx >= len(self))]
        if bad.size:
            self._check(int(bad[0]))
        return idx

    def read(self, index: int, arrays: Iterable[str] = ARRAYS) -> dict[str, np.ndarray]:
        """One sample: ``{name: (D, H, W) array}`` (z-y-x; dtypes as :data:`ARRAY_DTYPES`).

        Raises
        ------
        IndexError
            If ``index`` is not in ``[0, N)`` (no negative-index wrap-around).
        """
        i = self._check(index)
        return {name: a[0] for name, a in self.read_batch([i], arrays).items()}

    def read_batch(self, indices: Iterable[int] | slice, arrays: Iterable[str] = ARRAYS) -> dict[str, np.ndarray]:
        """Several samples in one call: ``{name: (B, D, H, W) array}`` in the order given.

        The store's own layout is read directly, one chunk per sample (see
        :class:`ShardReader`); other layouts go through zarr (a consecutive run as one
        block, other lists with orthogonal indexing).

        Raises
        ------
        IndexError
            If any index is out of range.
        StoreError
            If an array is not in this store, or a chunk is missing or damaged.
        """
        arrays = self._check_names(arrays)
        arrs = self.arrays()
        idx = self._indices(indices)
        if idx.size == 0:
            return {name: np.zeros((0, *self.cube_shape), dtype=ARRAY_DTYPES[name]) for name in arrays}
        fast = self._fast_readers()
        if all(name in fast for name in arrays):
            return {name: fast[name].read(idx) for name in arrays}
        if np.all(np.diff(idx) == 1):
            sel = slice(int(idx[0]), int(idx[-1]) + 1)
            return {name: np.asarray(arrs[name][sel]) for name in arrays}
        uniq, inverse = np.unique(idx, return_inverse=True)
        return {name: np.asarray(arrs[name].get_orthogonal_selection((uniq,)))[inverse] for name in arrays}

    def iter_samples(self, indices: Iterable[int], arrays: Iterable[str] = ARRAYS) -> Iterator[dict[str, np.ndarray]]:
        """The samples ``indices`` one at a time: ``{name: (D, H, W) array}`` per sample.

        The arrays are buffers reused for the next sample (read each one into the same
        few hundred kB, which stay in the CPU cache): copy what you keep. They are
        writable. The fastest way to turn samples into tensors one by one
        (:class:`rnamotif_data.learn.dataset.RNAMotifDataset` does).

        Raises
        ------
        IndexError
            If any index is out of range (before anything is read).
        StoreError
            As :meth:`read_batch`, when the damaged sample is reached.
        """
        idx = self._indices(indices)
        arrays = self._check_names(arrays)
        fast = self._fast_readers()
        if not all(name in fast for name in arrays):
            for start in range(0, len(idx), self.shard_size):
                batch = self.read_batch(idx[start:start + self.shard_size], arrays)
                for j in range(len(batch[arrays[0]]) if arrays else 0):
                    yield {name: batch[name][j] for name in arrays}
            return
        bufs = {name: np.empty(self.cube_shape, dtype=fast[name].dtype) for name in arrays}
        readers = [(fast[name], bufs[name]) for name in arrays]
        for i in idx.tolist():
            for reader, buf in readers:
                reader.read_into(i, buf)
            yield bufs

    def shard_ranges(self) -> list[tuple[int, int]]:
        """``(start, stop)`` sample ranges of the shards, in order."""
        s, n = self.shard_size, len(self)
        return [(a, min(a + s, n)) for a in range(0, n, s)]


def open_store(root: str | os.PathLike, *, require_complete: bool = True) -> RNAMotifStore:
    """Open a built store for reading (see :class:`RNAMotifStore`)."""
    return RNAMotifStore(root, require_complete=require_complete)
