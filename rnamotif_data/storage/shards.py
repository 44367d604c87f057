"""The cube arrays' chunk codecs, and a direct reader of the sharded layout the store writes.

Every array of a store is Zarr v3 ``(N, D, H, W)`` (z-y-x) with one sample per inner
chunk and ``shard_size`` samples per shard (the ``sharding_indexed`` codec). Each chunk is
compressed with one of :data:`CODECS` and followed by its CRC32C (the ``crc32c`` codec).
A build's ``codec`` is the density array's (float16; :func:`array_codec`):

* ``lz4`` (default since 0.7): the LZ4 format through Blosc (its LZ4HC compressor, which
  writes fewer, longer matches: 30-45 % faster to decode than Blosc's fast LZ4 mode and
  15-70 % smaller, for 1-3 ms more per chunk when the store is written), no shuffle. A
  40³ density chunk decodes in ~0.03 ms at a ratio of ~3.5 on the real 50S volumes,
  ~0.06 ms at ~1.5 on the demo's simulated map;
* ``zstd``: Zstandard, level 3: ~0.13 ms at ~5.2 on the 50S volumes, ~0.3 ms at ~1.65 on
  the demo's map: the smallest store, the slowest to read;
* ``none``: the density stored as is (CRC32C only), read straight into the output: the
  fastest, and the largest (each 40³ density cube takes 128 kB).

The ``zone``, ``labels`` and ``nucleotide`` arrays hold a few distinct values and shrink
10-50x under any compressor: they use ``zstd`` in a ``zstd`` store and ``lz4`` otherwise.
All are codecs of the Zarr v3 core specification, so any Zarr v3 reader opens every store.
Figures: ``benchmarks/RESULTS.md`` ("Chunk codecs").
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections import OrderedDict

import numpy as np

from rnamotif_data.errors import ConfigError, StoreError
from rnamotif_data.storage.layout import ARRAY_DTYPES, is_local, join, url_to_fs

__all__ = ["CODECS", "DEFAULT_CODEC", "array_codec", "compressors", "check_codec", "mask_density", "ShardReader"]

#: chunk codecs a build can choose: name -> (default level, lowest level, highest level)
CODECS: dict[str, tuple[int | None, int | None, int | None]] = {"lz4": (5, 1, 9), "zstd": (3, 1, 22), "none": (None, None, None)}
DEFAULT_CODEC = "lz4"

_EMPTY = 2**64 - 1  # offset of a chunk that is not in its shard
_OPEN_SHARDS = 64  # open shard files kept per array and process (random order touches every shard)


def check_codec(codec: str, level: int | None) -> int | None:
    """The compression level to use for ``codec`` (its default for ``level=None``).

    Raises
    ------
    rnamotif_data.errors.ConfigError
        If ``codec`` is not in :data:`CODECS` or ``level`` is outside its range.
    """
    if codec not in CODECS:
        raise ConfigError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
    default, lo, hi = CODECS[codec]
    if level is None:
        return default
    if codec == "none" or lo is None or hi is None:
        raise ConfigError(f"compression_level does not apply to codec 'none', got {level}")
    if isinstance(level, bool) or int(level) != level or not lo <= level <= hi:
        raise ConfigError(f"compression_level must be a {codec} level from {lo} to {hi}, got {level}")
    return int(level)


def array_codec(name: str, codec: str) -> str:
    """The codec of array ``name`` in a store built with ``codec``: ``codec`` itself for
    the density arrays (``density``, ``density_masked``); for the label arrays (``zone``,
    ``labels``, ``nucleotide``) ``zstd`` in a ``zstd`` store, else ``lz4``."""
    if name.startswith("density"):
        return codec
    return "zstd" if codec == "zstd" else "lz4"


def compressors(codec: str = DEFAULT_CODEC, level: int | None = None) -> list:
    """The Zarr v3 ``compressors`` of a cube array: ``codec`` at ``level``, then CRC32C.

    Raises
    ------
    rnamotif_data.errors.ConfigError
        As :func:`check_codec`.
    """
    import zarr

    level = check_codec(codec, level)
    if codec == "none":
        return [zarr.codecs.Crc32cCodec()]  # type: ignore[attr-defined]  # zarr re-exports codecs lazily
    codecs = zarr.codecs  # type: ignore[attr-defined]  # zarr re-exports codecs lazily
    first = (codecs.ZstdCodec(level=level) if codec == "zstd"
             else codecs.BloscCodec(cname="lz4hc", clevel=level, shuffle="noshuffle"))
    return [first, codecs.Crc32cCodec()]


def mask_density(density: np.ndarray, zone: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """``density * zone`` for float16 ``density`` and bool ``zone`` of one shape (a cube
    ``(D, H, W)`` or a batch ``(B, D, H, W)``, z-y-x), written into ``density`` (copied
    first if it is read-only or not C-contiguous) and returned.

    A bitwise AND of the float16 bits with 0xFFFF (in the zone) or 0 (outside): exactly
    the product for finite, non-negative densities (the store's), at a third of the cost
    of a multiply by a bool array, one cube at a time (no batch-sized temporaries).
    ``keep``: an int16 ``(D, H, W)`` scratch cube to reuse.
    """
    if not density.flags.writeable or not density.flags.c_contiguous:
        density = np.array(density, order="C")
    bits = density.view(np.int16)
    batch = bits.reshape(-1, *density.shape[-3:])
    zones = np.ascontiguousarray(zone).reshape(batch.shape)
    if keep is None or keep.shape != batch.shape[1:]:
        keep = np.empty(batch.shape[1:], dtype=np.int16)
    for j in range(len(batch)):
        np.negative(zones[j].view(np.int8), out=keep, casting="unsafe")  # True -> 0xFFFF, False -> 0
        batch[j] &= keep
    return density


class ShardReader:
    """Direct reader of one array's sample chunks, for the exact layout the store writes.

    zarr-python 3 spends ~3 ms of per-call overhead on a one-sample read and far more on
    orthogonal selections inside a shard, against ~0.07-0.3 ms to decode a 40³ chunk. For
    the layout of :func:`rnamotif_data.storage.store.create_arrays` (shards of ``(S, D, H, W)``,
    one sample per inner chunk, codecs ``bytes`` little-endian + ``blosc`` or ``zstd`` (+
    ``crc32c``), index ``bytes`` + ``crc32c`` at the end -- the Zarr v3 sharding spec) this
    reads the shard index once per shard (checking its CRC32C), then each sample's byte
    range, checks its CRC32C and decodes it straight into the output array.
    :meth:`rnamotif_data.storage.store.RNAMotifStore.read_batch` checks on open that the array's
    metadata is exactly this layout (:meth:`supports`) and falls back to zarr otherwise;
    tests compare both readers.

    Parameters
    ----------
    root, name:
        Store and array name (a path inside the store, e.g. ``density`` or
        ``volumes/<entry>/element``); ``meta``: the array's ``zarr.json`` as a dict; ``n``: N.
    digests:
        ``{shard k: sha256}`` of the shard files (None: not checked).
    dtype:
        The array's dtype (default: :data:`~rnamotif_data.storage.layout.ARRAY_DTYPES` of ``name``).
    unit:
        What one chunk is, for messages: ``"sample"`` (the cube arrays) or ``"block"`` (the volumes).
    """

    def __init__(self, root: str, name: str, meta: dict, n: int, digests: dict[int, str] | None = None,
                 dtype: str | None = None, unit: str = "sample"):
        import numcodecs


        codec = meta["codecs"][0]["configuration"]
        names = [c["name"] for c in codec["codecs"]]
        self.root, self.name, self.n, self.unit = root, name, n, unit
        self.chunk_crc = names[-1] == "crc32c"
        self.codec = {"blosc": "lz4", "zstd": "zstd"}.get(names[1], "none")
        self.shard = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
        self.cube = tuple(int(v) for v in codec["chunk_shape"][1:])
        self.dtype = np.dtype(dtype or ARRAY_DTYPES[name]).newbyteorder("<")
        self.nbytes = int(np.prod(self.cube)) * self.dtype.itemsize
        import numcodecs.blosc
        from numcodecs.checksum32 import crc32c_checksum

        self.zstd = numcodecs.Zstd()
        self.crc = numcodecs.CRC32C()
        self._crc32c = crc32c_checksum  # numcodecs' crc32c codec's function, bound once
        self._blosc = numcodecs.blosc
        self.fs, self.base = url_to_fs(join(root, name))

        self.local = is_local(self.fs)
        # sha256 of each shard file (checksums.sha256): a shard is checked in full the first
        # time this process opens it, so a shard moved to another position (or another
        # store's shard) is an error, not another sample's cube
        self.digests = digests
        self._index: dict[int, list[list[int]]] = {}
        self._paths: dict[int, str] = {}
        self._files: OrderedDict[int, object] = OrderedDict()  # a few open shard files (LRU)

    @staticmethod
    def supports(meta: dict) -> bool:
        """Whether ``meta`` (an array's ``zarr.json``) is the layout this reader reads."""
        try:
            (codec,) = meta["codecs"]
            cfg = codec["configuration"]
            inner = [c["name"] for c in cfg["codecs"]]
            index = [c["name"] for c in cfg["index_codecs"]]
            return (codec["name"] == "sharding_indexed"
                    and inner in (["bytes", "zstd"], ["bytes", "zstd", "crc32c"], ["bytes", "blosc", "crc32c"],
                                  ["bytes", "crc32c"])
                    and index == ["bytes", "crc32c"] and cfg.get("index_location", "end") == "end"
                    and cfg["chunk_shape"][0] == 1
                    and all(c.get("configuration", {}).get("endian", "little") == "little"
                            for c in cfg["codecs"] + cfg["index_codecs"] if c["name"] == "bytes")
                    and meta["chunk_key_encoding"]["name"] == "default"
                    and meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/") == "/")
        except (KeyError, TypeError, ValueError):
            return False

    def _path(self, k: int) -> str:
        path = self._paths.get(k)
        if path is None:
            path = self._paths[k] = posixpath.join(self.base.replace(os.sep, "/"), "c", str(k), "0", "0", "0")
        return path

    def _file(self, k: int):
        """The open local file of shard ``k`` (kept in a small LRU)."""
        f = self._files.get(k)
        if f is None:
            f = self._files[k] = open(self._path(k), "rb")
            if len(self._files) > _OPEN_SHARDS:
                self._files.popitem(last=False)[1].close()  # type: ignore[attr-defined]
        else:
            self._files.move_to_end(k)
        return f

    def _read(self, k: int, start: int, stop: int) -> bytes:
        if self.local:
            return os.pread(self._file(k).fileno(), stop - start, start)
        return self.fs.cat_file(self._path(k), start=start, end=stop)

    def _shard_index(self, k: int) -> list[list[int]]:

        if k not in self._index:
            n_chunks = self.shard  # the index always covers a full shard, even the last
            size = n_chunks * 16 + 4
            path = self._path(k)
            first, last = k * self.shard, min((k + 1) * self.shard, self.n) - 1
            where = f"{self.root}: array {self.name}: shard c/{k}/0/0/0 ({self.unit}s {first}-{last})"
            if not self.fs.exists(path):
                raise StoreError(f"{where} is missing; the store is damaged (run rnamotif verify)")
            total = self.fs.size(path)
            if total < size:
                raise StoreError(f"{where} is truncated ({total} bytes); the store is damaged")
            try:
                raw = self.crc.decode(self._read(k, total - size, total))
            except RuntimeError:
                raise StoreError(f"{where}: shard index fails its CRC32C; the store is damaged") from None
            # (offset, nbytes) per chunk as Python ints: the per-sample loop indexes it
            index = np.frombuffer(raw, dtype="<u8").reshape(n_chunks, 2).tolist()
            if self.digests is not None and self._digest(k) != self.digests.get(k) and self._chunks_intact(k, index):
                # every chunk is intact, yet the file is not the one written here: a shard moved
                # from another position (or store) would serve other samples' cubes
                raise StoreError(f"{where} is not the shard written at this position (its sha256 differs from "
                                 f"checksums.sha256 while every chunk passes its CRC32C: moved or replaced); the "
                                 f"store is damaged: run rnamotif verify {self.root}")
            self._index[k] = index
        return self._index[k]

    def _digest(self, k: int) -> str:
        """sha256 (hex) of shard file ``k``, read in 4 MiB blocks."""
        h = hashlib.sha256()
        with self.fs.open(self._path(k), "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        return h.hexdigest()

    def _chunks_intact(self, k: int, index: list[list[int]]) -> bool:
        """Whether every chunk of shard ``k`` passes its CRC32C (without a chunk CRC, a
        file that differs from its checksum counts as moved: nothing tells damage apart)."""
        if not self.chunk_crc:
            return True
        for off, nbytes in index:
            if off == _EMPTY:
                continue
            raw = self._read(k, off, off + nbytes)
            if nbytes < 4 or (self._crc32c(np.frombuffer(raw, np.uint8, count=nbytes - 4))
                              != int.from_bytes(raw[-4:], "little")):
                return False  # damaged, not moved: each sample's read reports its own chunk
        return True

    def _decode(self, raw: bytes | memoryview, dest: np.ndarray) -> None:
        """Decode one chunk's bytes (CRC32C already removed) into ``dest`` ``(D, H, W)``."""
        if self.codec == "lz4":
            # Blosc's 16-byte header holds the decompressed size at bytes 4-8 (uint32, little-endian)
            if len(raw) < 16 or int.from_bytes(raw[4:8], "little") != self.nbytes:
                raise StoreError(f"decodes to the wrong size (expected {self.nbytes} bytes)")
            self._blosc.decompress(raw, dest)
        elif self.codec == "zstd":
            self.zstd.decode(raw, out=dest)
        else:
            if len(raw) != self.nbytes:
                raise StoreError(f"holds {len(raw)} bytes, expected {self.nbytes}")
            dest[...] = np.frombuffer(raw, dtype=self.dtype).reshape(self.cube)

    def _read_raw_into(self, k: int, off: int, nbytes: int, dest: np.ndarray) -> None:
        """An uncompressed chunk of a local shard read straight into ``dest`` (no copy),
        then its CRC32C checked."""
        if nbytes != self.nbytes + 4:
            raise StoreError(f"holds {nbytes - 4} bytes, expected {self.nbytes}")
        crc = bytearray(4)
        # numpy's stubs give ndarray the buffer protocol (__buffer__) for Python >= 3.12 only
        if os.preadv(self._file(k).fileno(), [dest, crc], off) != nbytes:  # type: ignore[list-item]
            raise StoreError("is cut short")
        if self._crc32c(dest) != int.from_bytes(crc, "little"):
            raise RuntimeError("checksum")

    def read(self, indices: np.ndarray) -> np.ndarray:
        """``(B, D, H, W)`` samples ``indices`` (already range-checked).

        Raises
        ------
        rnamotif_data.storage.store.StoreError
            Naming store, array and sample, if a shard or a sample's chunk is missing, or a
            chunk fails its CRC32C or does not decode: damaged data is never returned, and
            a missing chunk is never read as zeros.
        """
        out = np.empty((len(indices), *self.cube), dtype=self.dtype)
        for j, i in enumerate(indices):
            self.read_into(int(i), out[j])
        return out

    def read_into(self, i: int, dest: np.ndarray) -> None:
        """Sample ``i`` (already range-checked) decoded into ``dest`` ``(D, H, W)`` (C-contiguous,
        this array's dtype); raises as :meth:`read`."""

        k, r = divmod(i, self.shard)
        off, nbytes = self._index[k][r] if k in self._index else self._shard_index(k)[r]
        if off == _EMPTY:
            raise StoreError(f"{self.root}: array {self.name}: the chunk of {self.unit} {i} is missing "
                             f"from shard c/{k}/0/0/0; the store is damaged")
        try:
            if self.codec == "none" and self.chunk_crc and self.local:
                self._read_raw_into(k, off, nbytes, dest)
                return
            raw: bytes | memoryview = self._read(k, off, off + nbytes)
            if self.chunk_crc:  # the crc32c codec appends the CRC32C (little-endian) of the chunk
                if nbytes < 4 or (self._crc32c(np.frombuffer(raw, np.uint8, count=nbytes - 4))
                                  != int.from_bytes(raw[-4:], "little")):
                    raise RuntimeError("checksum")
                raw = memoryview(raw)[:-4]
            self._decode(raw, dest)
        except (RuntimeError, ValueError) as exc:
            raise StoreError(f"{self.root}: array {self.name}: {self.unit} {i} is damaged "
                             f"({'CRC32C mismatch' if 'checksum' in str(exc) else exc})") from None

    def close(self) -> None:
        """Close the open shard files."""
        for f in self._files.values():
            f.close()  # type: ignore[attr-defined]
        self._files.clear()
