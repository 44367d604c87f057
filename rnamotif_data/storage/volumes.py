"""Whole-map volumes in a store: each entry's 1 Å density and label volumes, stored once as
blocks, and the tiles read out of them (``rnamotif build --tiles``; ``docs/store.md``,
"Volumes and tiles").

Layout
------
``ROOT/volumes/<entry key>/<name>`` for ``name`` in :data:`VOLUME_ARRAYS`: Zarr v3 arrays
``(n_blocks, B, B, B)`` (block-z-y-x), one **block** of ``B``³ voxels (default 32) per
inner chunk, one z row of blocks (``nby * nbx`` blocks) per shard; each chunk compressed
(:func:`volume_compressors`: Blosc LZ4 in an lz4 store, Zstandard in a zstd store) and
followed by its CRC32C -- the exact layout of the cube arrays (:mod:`rnamotif_data.storage.shards`), read
by the same :class:`~rnamotif_data.storage.shards.ShardReader`. Block ``b`` covers voxels
``[bz*B, (bz+1)*B) x [by*B, ...) x [bx*B, ...)`` of the entry's 1 Å grid with
``b = (bz * nby + by) * nbx + bx``; blocks at the grid's far edges are zero-padded past
the grid (the ``volumes.parquet`` row gives the grid's true shape). Labels are mostly
zeros and compress 50-500x.

Why blocks and not stored tiles: tiles overlap (64³ every 32 voxels is 8 copies of each
voxel); a tile is read as the blocks it covers (8 for a block-aligned 64³ tile), so a
store holds each voxel once and users retile without rebuilding
(``benchmarks/RESULTS.md``, "Tiles"). One entry's arrays are written by that entry's
build task alone (one writer per shard), so the bytes do not depend on the scheduler.

Tables
------
``volumes.parquet`` (one row per entry), ``tiles.parquet`` (one row per tile) and
``instances.parquet`` (one row per loop instance): :data:`VOLUME_COLUMNS`,
:data:`TILE_COLUMNS`, :data:`INSTANCE_COLUMNS`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.layout import checked_row, join, put_bytes, url_to_fs, zarr_location
from rnamotif_data.storage.shards import ShardReader, check_codec, compressors

__all__ = ["VOLUMES", "VOLUME_ARRAYS", "VOLUME_DTYPES", "VOLUMES_FILE", "TILES_FILE", "INSTANCES_FILE",
           "VOLUME_COLUMNS", "TILE_COLUMNS", "INSTANCE_COLUMNS", "VOLUME_SCHEMA", "TILE_SCHEMA", "INSTANCE_SCHEMA",
           "volume_row", "tile_row", "instance_row", "blocks_per_axis", "create_volume_arrays", "write_block_row",
           "volume_array_url", "volume_compressors", "remove_volume_arrays", "create_volume_group", "VolumeReader"]

#: the store's folder of volumes
VOLUMES = "volumes"
#: the volumes of an entry (samples.volumes: density, then the four label volumes)
VOLUME_ARRAYS = ("density", "element", "part", "nucleotide", "instance")
#: their stored dtypes (density as the cubes': float16)
VOLUME_DTYPES = {"density": "float16", "element": "uint8", "part": "uint8", "nucleotide": "uint8",
                 "instance": "uint32"}
VOLUMES_FILE = "volumes.parquet"
TILES_FILE = "tiles.parquet"
INSTANCES_FILE = "instances.parquet"
_ZYX = pa.list_(pa.int32(), 3)
_XYZ = pa.list_(pa.float64(), 3)

#: volumes.parquet: name -> (Arrow type, description)
VOLUME_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "entry": (pa.string(), "entry key PDB_EMDB (6V5B_EMD-21091), the folder volumes/<entry>/"),
    "pdb_id": (pa.string(), "PDB ID of the model"),
    "emdb_id": (pa.string(), "EMDB map, EMD-N"),
    "resolution": (pa.float64(), "resolution of the map in Å (null if unknown)"),
    "origin_xyz": (_XYZ, "world position (Å, x-y-z) of voxel [0, 0, 0] of the grid (the map's origin)"),
    "grid_shape": (_ZYX, "voxels of the 1 Å grid, z-y-x (the map's box of voxel centres)"),
    "voxel_size": (pa.float64(), "Å, the grid's spacing"),
    "block": (pa.int32(), "voxels per block edge B"),
    "blocks_zyx": (_ZYX, "blocks per axis, ceil(grid_shape / B)"),
    "rna_chains": (pa.list_(pa.string()), "chains of the model with a nucleotide, in model order (the tile split's "
                                          "chain homology)"),
    "chain_sequences": (pa.list_(pa.string()), "one-letter sequence of each of those chains (parents of modified "
                                               "residues)"),
    "n_instances": (pa.int32(), "loop instances of the model (instances.parquet rows of the entry)"),
    "n_tiles": (pa.int32(), "tiles of the entry in tiles.parquet"),
    "voxels_per_element": (pa.list_(pa.int64()), "voxels of the grid per element id (rna.elements.ELEMENT_NAMES)"),
    "error": (pa.string(), "why the entry has no volumes (no RNA, model outside the map, tile larger than the "
                           "map, ...), one line; null when it has them"),
}
#: tiles.parquet: name -> (Arrow type, description)
TILE_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "tile_index": (pa.int64(), "row number, 0 ... n-1 in entry order"),
    "entry": (pa.string(), "entry key (volumes.parquet)"),
    "pdb_id": (pa.string(), "PDB ID of the model"),
    "emdb_id": (pa.string(), "EMDB map"),
    "resolution": (pa.float64(), "resolution of the map in Å (null if unknown)"),
    "tile_zyx": (_ZYX, "position of the tile in the entry's tile grid, z-y-x"),
    "origin_voxel": (_ZYX, "voxel [0, 0, 0] of the tile in the entry's grid, z-y-x (a multiple of the stride)"),
    "origin_xyz": (_XYZ, "world position (Å, x-y-z) of the tile's voxel [0, 0, 0]"),
    "size": (pa.int32(), "voxels per tile edge"),
    "clipped": (pa.bool_(), "the tile runs past the grid's edge (those voxels are 0, element 255 when read)"),
    "holds_rna": (pa.bool_(), "some voxel is an RNA element (stem ... single_strand)"),
    "voxels_per_element": (pa.list_(pa.int64()), "voxels of the tile per element id, inside the grid"),
    "instances": (pa.list_(pa.int64()), "ids of the loop instances with a voxel in the tile (instances.parquet)"),
    "motif_types": (pa.list_(pa.string()), "fine types of those instances that have one, sorted, unique"),
}
#: instances.parquet: name -> (Arrow type, description)
INSTANCE_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "entry": (pa.string(), "entry key (volumes.parquet)"),
    "instance": (pa.int64(), "instance id, 1-based, the value of the entry's instance volume"),
    "element": (pa.string(), "hairpin, bulge, internal or junction"),
    "motif_type": (pa.string(), "fine type of the cube dataset (hairpin4, bulge1, 2x3); null outside the 25 "
                                "types or for a broken loop"),
    "sizes": (pa.list_(pa.int32()), "unpaired nucleotides per strand, model order"),
    "selection": (pa.string(), "the loop's strands with their closing pairs, selection syntax (a manifest row's)"),
    "broken": (pa.string(), "why a strand is not covalently continuous, or null"),
    "n_voxels": (pa.int64(), "voxels of the grid labelled with this instance"),
    "manifest_rows": (pa.list_(pa.int64()), "manifest rows of the entry with the same residues (its motif samples)"),
}


def _schema(columns: Mapping[str, tuple[pa.DataType, str]]) -> pa.Schema:
    return pa.schema([pa.field(k, t) for k, (t, _) in columns.items()])


VOLUME_SCHEMA, TILE_SCHEMA, INSTANCE_SCHEMA = (_schema(VOLUME_COLUMNS), _schema(TILE_COLUMNS),
                                               _schema(INSTANCE_COLUMNS))


def volume_row(**values) -> dict:
    """A ``volumes.parquet`` row (every column of :data:`VOLUME_COLUMNS`; a missing or
    unknown one raises ``TypeError``, naming it)."""
    return checked_row(VOLUME_COLUMNS, VOLUMES_FILE, values, names="rnamotif_data.storage.volumes.VOLUME_COLUMNS")


def tile_row(**values) -> dict:
    """A ``tiles.parquet`` row (:data:`TILE_COLUMNS`; raises as :func:`volume_row`)."""
    return checked_row(TILE_COLUMNS, TILES_FILE, values, names="rnamotif_data.storage.volumes.TILE_COLUMNS")


def instance_row(**values) -> dict:
    """An ``instances.parquet`` row (:data:`INSTANCE_COLUMNS`; raises as :func:`volume_row`)."""
    return checked_row(INSTANCE_COLUMNS, INSTANCES_FILE, values, names="rnamotif_data.storage.volumes.INSTANCE_COLUMNS")


def blocks_per_axis(grid_shape: Sequence[int], block: int) -> tuple[int, int, int]:
    """``ceil(n / block)`` per axis of a ``(D, H, W)`` grid."""
    z, y, x = (-(-int(n) // int(block)) for n in grid_shape)
    return z, y, x


def volume_array_url(root: str, entry: str, name: str) -> str:
    """Location of an entry's volume array ``name``."""
    return join(root, VOLUMES, entry, name)


def create_volume_arrays(root: str, entry: str, blocks_zyx: Sequence[int], block: int, codec: str,
                         compression_level: int | None = None) -> None:
    """Create (or replace) the arrays of ``entry`` (module docstring): ``(n_blocks, B, B, B)``
    with ``n_blocks = nbz * nby * nbx``, one block per chunk, one z row of blocks per shard.
    Existing arrays of the entry are replaced (a resumed entry writes them again)."""
    import zarr

    nbz, nby, nbx = (int(v) for v in blocks_zyx)
    per_row = nby * nbx
    root_group = zarr.open_group(zarr_location(root), mode="a")
    group = root_group.require_group(VOLUMES).require_group(entry)
    for name in VOLUME_ARRAYS:
        group.create_array(
            name, shape=(nbz * per_row, block, block, block), chunks=(1, block, block, block),
            shards=(per_row, block, block, block), dtype=VOLUME_DTYPES[name],
            compressors=volume_compressors(codec, compression_level), dimension_names=("block", "z", "y", "x"),
            fill_value=0, overwrite=True)


def volume_compressors(codec: str, level: int | None = None) -> list:
    """The Zarr v3 compressors of the volume arrays of a store built with ``codec``: ``lz4``
    -> Blosc LZ4 (level 5, no shuffle), **not** LZ4HC as the cubes: the volumes are written
    once per build at ~100x the cubes' voxels, and LZ4HC takes 8x longer to write a row of
    blocks for 17 % less (``benchmarks/RESULTS.md``, "Tiles: build cost"); ``zstd`` ->
    Zstandard at ``level`` (3); ``none`` -> CRC32C only. CRC32C follows every chunk.

    Raises
    ------
    rnamotif_data.errors.ConfigError
        As :func:`rnamotif_data.storage.shards.check_codec`.
    """
    import zarr

    level = check_codec(codec, level)
    codecs = zarr.codecs  # type: ignore[attr-defined]  # zarr re-exports codecs lazily
    if codec == "lz4":
        return [codecs.BloscCodec(cname="lz4", clevel=level, shuffle="noshuffle"), codecs.Crc32cCodec()]
    return compressors(codec, level)


def write_block_row(root: str, entry: str, row: int, arrays: Mapping[str, np.ndarray]) -> None:
    """Write z row ``row`` of an entry's blocks: ``arrays[name]`` is ``(nby * nbx, B, B, B)``
    in block order, one shard per array (the caller is its only writer). Every chunk is
    stored, empty ones too, so a missing chunk is damage, never zeros.

    The shard is encoded here, following the array's own ``zarr.json`` (each chunk through
    its codecs and CRC32C, then the ``(offset, nbytes)`` index and its CRC32C: the Zarr v3
    sharding layout, index at the end), and written atomically in one file: the same bytes
    Zarr writes (``tests/storage/test_volumes_shards.py`` compares them) at half the cost of
    Zarr's per-chunk pipeline (``benchmarks/RESULTS.md``, "Tiles: build cost").

    Raises
    ------
    StoreError
        If a block row has the wrong number of blocks, or the array's layout is not the
        one :func:`create_volume_arrays` makes.
    """
    for name in VOLUME_ARRAYS:
        url = volume_array_url(root, entry, name)
        fs, path = url_to_fs(join(url, "zarr.json"))
        meta = json.loads(fs.cat_file(path))
        encode = _shard_encoder(meta, f"{root}: {VOLUMES}/{entry}/{name}")
        data = np.ascontiguousarray(arrays[name], dtype=np.dtype(VOLUME_DTYPES[name]).newbyteorder("<"))
        per_row = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])  # blocks per shard
        if len(data) != per_row:
            raise StoreError(f"{root}: {VOLUMES}/{entry}/{name}: block row {row} has {len(data)} blocks, "
                             f"expected {per_row}")
        put_bytes(join(url, "c", str(int(row)), "0", "0", "0"), encode(data))


def _shard_encoder(meta: dict, where: str):
    """``(n, B, B, B) -> shard bytes`` for an array whose ``zarr.json`` is ``meta``: one
    chunk per block (bytes little-endian, then blosc or zstd, then CRC32C), the index last."""
    import numcodecs
    from numcodecs.checksum32 import crc32c_checksum

    if not ShardReader.supports(meta):
        raise StoreError(f"{where}: not the block layout of this package; the store is damaged or of another version")
    inner = meta["codecs"][0]["configuration"]["codecs"]
    comp = None
    if inner[1]["name"] == "blosc":
        c = inner[1]["configuration"]
        shuffle = {"noshuffle": numcodecs.Blosc.NOSHUFFLE, "shuffle": numcodecs.Blosc.SHUFFLE,
                   "bitshuffle": numcodecs.Blosc.BITSHUFFLE}[c["shuffle"]]
        comp = numcodecs.Blosc(cname=c["cname"], clevel=int(c["clevel"]), shuffle=shuffle,
                               blocksize=int(c.get("blocksize", 0)), typesize=int(c["typesize"]))
    elif inner[1]["name"] == "zstd":
        c = inner[1]["configuration"]
        comp = numcodecs.Zstd(level=int(c["level"]), checksum=bool(c.get("checksum", False)))

    def encode(blocks: np.ndarray) -> bytes:
        parts, index, offset = [], np.zeros((len(blocks), 2), dtype="<u8"), 0
        for k, block in enumerate(blocks):
            raw = block.tobytes()
            body = bytes(comp.encode(raw)) if comp is not None else raw
            chunk = body + int(crc32c_checksum(np.frombuffer(body, np.uint8))).to_bytes(4, "little")
            index[k] = (offset, len(chunk))
            parts.append(chunk)
            offset += len(chunk)
        ib = index.tobytes()
        return b"".join(parts) + ib + int(crc32c_checksum(np.frombuffer(ib, np.uint8))).to_bytes(4, "little")

    return encode


def create_volume_group(root: str) -> None:
    """Create the store's ``volumes`` group (before the entry tasks add theirs to it)."""
    import zarr

    zarr.open_group(zarr_location(root), mode="a").require_group(VOLUMES)


def remove_volume_arrays(root: str, entry: str) -> None:
    """Delete an entry's volume arrays (a task that failed half-way: nothing of it stays)."""
    fs, path = url_to_fs(join(root, VOLUMES, entry))
    if fs.exists(path):
        fs.rm(path, recursive=True)


class VolumeReader:
    """Reads boxes of one entry's volumes (the blocks they cover, decoded and cropped).

    Parameters
    ----------
    root, entry:
        Store and entry key.
    grid_shape, block:
        The entry's ``volumes.parquet`` ``grid_shape`` (z-y-x voxels) and ``block``.
    digests:
        ``{"<name>/c/<k>/0/0/0": sha256}`` of the entry's shard files (from
        ``checksums.sha256``): each shard is checked in full when first opened, so a shard
        moved from elsewhere is an error; None skips that check.

    Raises
    ------
    StoreError
        If an array's metadata is missing or not the layout above.
    """

    def __init__(self, root: str, entry: str, grid_shape: Sequence[int], block: int,
                 digests: Mapping[str, str] | None = None):
        self.root, self.entry = str(root), entry
        self.grid_shape = tuple(int(v) for v in grid_shape)
        self.block = int(block)
        self.blocks_zyx = blocks_per_axis(self.grid_shape, self.block)
        self._digests = dict(digests) if digests is not None else None
        self._readers: dict[str, ShardReader] = {}

    def __getstate__(self):
        return {**self.__dict__, "_readers": {}}

    def _reader(self, name: str) -> ShardReader:
        r = self._readers.get(name)
        if r is None:
            rel = f"{VOLUMES}/{self.entry}/{name}"
            fs, path = url_to_fs(join(self.root, VOLUMES, self.entry, name, "zarr.json"))
            try:
                meta = json.loads(fs.cat_file(path))
            except (OSError, ValueError) as exc:
                raise StoreError(f"{self.root}: {rel}/zarr.json cannot be read ({type(exc).__name__}); the store is "
                                 f"damaged: run rnamotif verify {self.root}") from None
            if not ShardReader.supports(meta) or list(meta["shape"][1:]) != [self.block] * 3:
                raise StoreError(f"{self.root}: {rel} is not a block array of {self.block}³ voxels; the store is "
                                 "damaged or of another version")
            digests = None
            if self._digests is not None:
                prefix = f"{name}/c/"
                digests = {int(k[len(prefix):].split("/")[0]): v for k, v in self._digests.items()
                           if k.startswith(prefix)}
            r = self._readers[name] = ShardReader(self.root, rel, meta, int(meta["shape"][0]), digests,
                                                  dtype=VOLUME_DTYPES[name], unit="block")
        return r

    def read_box(self, origin_zyx: Sequence[int], size: Sequence[int] | int,
                 names: Sequence[str] = ("density", "element")) -> dict[str, np.ndarray]:
        """Voxels ``origin + [0, size)`` of each volume in ``names``: ``{name: (d, h, w)}``
        z-y-x, this entry's dtypes; voxels outside the grid are 0.

        Raises
        ------
        StoreError
            For a damaged block (CRC32C, a missing chunk or shard; naming it) or an
            unknown volume name.
        """
        o = np.asarray(origin_zyx, dtype=np.int64)
        s = np.broadcast_to(np.asarray(size, dtype=np.int64), (3,))
        unknown = [n for n in names if n not in VOLUME_ARRAYS]
        if unknown:
            raise StoreError(f"{self.root}: no volume named {unknown[0]!r}; volumes are {', '.join(VOLUME_ARRAYS)}")
        out = {n: np.zeros(tuple(s), dtype=VOLUME_DTYPES[n]) for n in names}
        B = self.block
        lo = np.maximum(o, 0) // B
        hi = np.minimum(o + s, np.asarray(self.grid_shape)) - 1
        if np.any(hi < np.maximum(o, 0)):
            return out
        hi_b = hi // B
        nbz, nby, nbx = self.blocks_zyx
        scratch = {n: np.empty((B, B, B), dtype=VOLUME_DTYPES[n]) for n in names}
        for bz in range(int(lo[0]), int(hi_b[0]) + 1):
            for by in range(int(lo[1]), int(hi_b[1]) + 1):
                for bx in range(int(lo[2]), int(hi_b[2]) + 1):
                    b = (bz * nby + by) * nbx + bx
                    start = np.array([bz, by, bx]) * B
                    a = np.maximum(start, o)
                    z = np.minimum(start + B, np.minimum(o + s, np.asarray(self.grid_shape)))
                    src = tuple(slice(int(p - q), int(r - q)) for p, q, r in zip(a, start, z))
                    dst = tuple(slice(int(p - q), int(r - q)) for p, q, r in zip(a, o, z))
                    for n in names:
                        self._reader(n).read_into(b, scratch[n])
                        out[n][dst] = scratch[n][src]
        return out

    def close(self) -> None:
        """Close the open shard files."""
        for r in self._readers.values():
            r.close()
        self._readers.clear()

