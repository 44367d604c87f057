"""Tiles of a whole map's volumes: which overlapping sub-boxes a dataset serves, and what
each holds.

A map's 1 Å volumes (:mod:`rnamotif_data.samples.volumes`) are cut into overlapping
cubic **tiles** of ``size`` voxels every ``stride`` voxels (default 64³ every 32, CryoREAD's
box; Cryo2StructData's 32³ and CryoREAD's 64³/16 are ``size=32`` and ``size=64,
stride=16``). Tiles start at multiples of ``stride`` along each axis, ``ceil((n - size) /
stride) + 1`` per axis (:func:`~rnamotif_data.samples.volumes.check_tile_size`); the last
one is **clipped** at the grid's edge unless ``n - size`` is a multiple of the stride
(its voxels past the edge read as density 0, element 255 = outside).

The tile table lists every tile that holds RNA (a voxel of an RNA element: stem, hairpin,
bulge, internal, junction or single strand) and a share of the RNA-free tiles
(``rna_free_share`` x the RNA tiles, drawn uniformly without replacement with a seed
made of ``seed`` and the entry key, so a rebuild draws the same ones): solvent,
protein-only and map-edge tiles, so a network also sees what is *not* RNA.

Counting is exact and cheap: voxel counts per element and the instances present are
accumulated per **cell** of ``g = gcd(size, stride)`` voxels (every tile is a whole number
of cells), one block row at a time, then summed per tile through a summed-area table.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rnamotif_data.errors import ConfigError
from rnamotif_data.rna.elements import ELEMENT_NAMES

__all__ = ["TileConfig", "RNA_ELEMENTS", "OUTSIDE", "CellCounts", "put_slab", "tile_table"]

#: element ids that are RNA (stem ... single_strand)
RNA_ELEMENTS = (1, 2, 3, 4, 5, 6)
#: the element value of a tile voxel outside the map's grid (a clipped tile's far part)
OUTSIDE = 255
_N_ELEMENTS = len(ELEMENT_NAMES)


@dataclass(frozen=True)
class TileConfig:
    """How a build stores volumes and tiles them (``rnamotif build --tiles``).

    Attributes
    ----------
    size:
        Voxels per tile edge (64: CryoREAD; 32: Cryo2StructData).
    stride:
        Voxels between tile origins (32; CryoREAD 16). At most ``size``.
    block:
        Voxels per edge of a stored block (:mod:`rnamotif_data.storage.volumes`); must be a
        multiple of ``gcd(size, stride)``.
    rna_free_share:
        RNA-free tiles listed per RNA tile (0: none).
    seed:
        Seed of the RNA-free tiles' draw (with the entry key).
    voxel_size, label_radius, slab, max_fraction_outside:
        The volumes' :class:`~rnamotif_data.samples.volumes.VolumeConfig` (1 Å, 1.5 Å, 8
        planes, 0.5); its ``normalise_percentile`` is the cubes' (``SegmentConfig``).
    """

    size: int = 64
    stride: int = 32
    block: int = 32
    rna_free_share: float = 0.1
    seed: int = 0
    voxel_size: float = 1.0
    label_radius: float = 1.5
    slab: int = 8
    max_fraction_outside: float = 0.5

    def __post_init__(self) -> None:
        for name in ("size", "stride", "block", "seed", "slab"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if name == "seed" else 1):
                raise ConfigError(f"tile {name} must be a whole number >= {0 if name == 'seed' else 1}, got {v!r}")
        if self.stride > self.size:
            raise ConfigError(f"tile stride {self.stride} is larger than the tile size {self.size}: voxels between "
                              "tiles would be skipped")
        if self.block % self.cell:
            raise ConfigError(f"tile block {self.block} must be a multiple of gcd(size {self.size}, stride "
                              f"{self.stride}) = {self.cell}")
        if not (isinstance(self.rna_free_share, (int, float)) and math.isfinite(self.rna_free_share)
                and self.rna_free_share >= 0):
            raise ConfigError(f"tile rna_free_share must be a finite number >= 0, got {self.rna_free_share!r}")

    @property
    def cell(self) -> int:
        """``gcd(size, stride)``: voxels per edge of a counting cell."""
        return math.gcd(int(self.size), int(self.stride))


def put_slab(blocks: np.ndarray, planes: np.ndarray, z: int) -> None:
    """Copy ``planes`` ``(d, H, W)`` (z-y-x) into a block row ``blocks`` ``(nby, nbx, B, B,
    B)`` at its planes ``z .. z + d - 1``, block by block (one copy, no transposed
    temporary); voxels past ``H``, ``W`` stay as they are (zeros: the padding)."""
    nby, nbx, B = blocks.shape[:3]
    d, H, W = planes.shape
    for by in range(nby):
        y0 = by * B
        hy = min(B, H - y0)
        if hy <= 0:
            break
        for bx in range(nbx):
            x0 = bx * B
            hx = min(B, W - x0)
            if hx <= 0:
                break
            blocks[by, bx, z:z + d, :hy, :hx] = planes[:, y0:y0 + hy, x0:x0 + hx]


class CellCounts:
    """Voxel counts per element and the instances present, per cell of ``cell`` voxels,
    accumulated one block row at a time (:meth:`add`).

    Parameters
    ----------
    grid_shape:
        ``(D, H, W)`` voxels of the grid.
    cell:
        Voxels per cell edge (divides the block rows' height).
    n_instances:
        Loop instances of the model (ids 1 ... n).
    """

    def __init__(self, grid_shape: Sequence[int], cell: int, n_instances: int):
        self.grid_shape = tuple(int(v) for v in grid_shape)
        self.cell = int(cell)
        self.shape = tuple(-(-n // self.cell) for n in self.grid_shape)
        self.counts = np.zeros((*self.shape, _N_ELEMENTS), dtype=np.int64)
        self.instance_voxels = np.zeros(int(n_instances) + 1, dtype=np.int64)
        self._pairs: list[np.ndarray] = []

    def add(self, z0: int, element: np.ndarray, instance: np.ndarray) -> None:
        """Count the block row starting at plane ``z0`` of the grid: ``element`` and
        ``instance`` ``(nby, nbx, B, B, B)`` (blocks by y and x, each z-y-x), ``B`` a
        multiple of the cell. Voxels past the grid are not counted, not even as ``none``.
        Only the labelled voxels are visited (a bincount over their cells); ``none`` is the
        rest of each cell."""
        g, E = self.cell, _N_ELEMENTS
        nby, nbx, B = element.shape[:3]
        cz0 = z0 // g
        ncz = min(B // g, self.shape[0] - cz0)
        if ncz <= 0:
            return
        _, ny, nx = self.shape
        zmax = min(B, self.grid_shape[0] - z0)
        flat = np.flatnonzero(element)  # contiguous: fast; the labelled voxels only
        by, bx, k, j, i = np.unravel_index(flat, element.shape)
        j, i = by * B + j, bx * B + i
        keep = (k < zmax) & (j < self.grid_shape[1]) & (i < self.grid_shape[2])
        flat, k, j, i = flat[keep], k[keep], j[keep], i[keep]
        cell = ((k // g) * ny + j // g) * nx + i // g
        local = np.bincount(cell * E + element.reshape(-1)[flat], minlength=ncz * ny * nx * E).reshape(ncz, ny, nx, E)
        extent = [np.clip(n - np.arange(m) * g, 0, g) for n, m in zip((zmax, *self.grid_shape[1:]), (ncz, ny, nx))]
        inside = extent[0][:, None, None] * extent[1][None, :, None] * extent[2][None, None, :]
        local[..., 0] = inside - local[..., 1:].sum(axis=-1)
        self.counts[cz0:cz0 + ncz] += local
        ids = instance.reshape(-1)[flat].astype(np.int64)  # instances label only labelled voxels
        has = ids > 0
        if has.any():
            ids = ids[has]
            self.instance_voxels += np.bincount(ids, minlength=len(self.instance_voxels))[:len(self.instance_voxels)]
            cells = np.ravel_multi_index(((k[has] + z0) // g, j[has] // g, i[has] // g), self.shape)
            self._pairs.append(np.unique(cells.astype(np.int64) * (1 << 32) + ids))

    def pairs(self) -> np.ndarray:
        """``(P, 2)`` int64 unique (cell flat index, instance id) pairs."""
        if not self._pairs:
            return np.zeros((0, 2), dtype=np.int64)
        u = np.unique(np.concatenate(self._pairs))
        return np.stack([u >> 32, u & ((1 << 32) - 1)], axis=1)


def _tile_sums(counts: np.ndarray, starts: list[np.ndarray], stops: list[np.ndarray]) -> np.ndarray:
    """Sums of ``counts`` ``(cz, cy, cx, E)`` over the cell boxes ``[starts, stops)`` (one
    array of cell indices per axis, broadcast over the tile grid): ``(tz, ty, tx, E)``."""
    P = np.zeros(tuple(n + 1 for n in counts.shape[:3]) + counts.shape[3:], dtype=np.int64)
    P[1:, 1:, 1:] = counts.cumsum(0).cumsum(1).cumsum(2)
    (z0, z1), (y0, y1), (x0, x1) = ((a, b) for a, b in zip(starts, stops))
    Z0, Y0, X0 = np.ix_(z0, y0, x0)
    Z1, Y1, X1 = np.ix_(z1, y1, x1)
    return (P[Z1, Y1, X1] - P[Z0, Y1, X1] - P[Z1, Y0, X1] - P[Z1, Y1, X0]
            + P[Z0, Y0, X1] + P[Z0, Y1, X0] + P[Z1, Y0, X0] - P[Z0, Y0, X0])


def _tile_instances(pairs: np.ndarray, cells_shape: Sequence[int], n_tiles: Sequence[int], size_c: int,
                    stride_c: int) -> dict[int, list[int]]:
    """Instances per tile (flat tile index -> sorted ids) from (cell, instance) pairs."""
    out: dict[int, set[int]] = {}
    if not len(pairs):
        return {}
    cz, cy, cx = np.unravel_index(pairs[:, 0], tuple(cells_shape))
    per = -(-size_c // stride_c)
    for dz in range(per):
        for dy in range(per):
            for dx in range(per):
                t = [c // stride_c - d for c, d in ((cz, dz), (cy, dy), (cx, dx))]
                ok = np.ones(len(pairs), dtype=bool)
                for tt, c, n in zip(t, (cz, cy, cx), n_tiles):
                    ok &= (tt >= 0) & (tt < n) & (c < tt * stride_c + size_c)
                flat = np.ravel_multi_index(tuple(tt[ok] for tt in t), tuple(n_tiles))
                for f, inst in zip(flat.tolist(), pairs[ok, 1].tolist()):
                    out.setdefault(f, set()).add(inst)
    return {f: sorted(v) for f, v in out.items()}


def tile_table(cells: CellCounts, config: TileConfig, n_tiles: Sequence[int], key: str,
               fine_types: Sequence[str | None]) -> list[dict]:
    """The tiles of one entry (module docstring), in tile order (z, y, x): dicts with
    ``tile_zyx``, ``origin_voxel``, ``size``, ``clipped``, ``holds_rna``,
    ``voxels_per_element``, ``instances`` and ``motif_types``.

    ``n_tiles``: tiles per axis (:func:`~rnamotif_data.samples.volumes.check_tile_size`);
    ``fine_types[id - 1]``: each instance's fine type (or None).
    """
    g = config.cell
    size_c, stride_c = config.size // g, config.stride // g
    idx = [np.arange(n) for n in n_tiles]
    starts = [i * stride_c for i in idx]
    stops = [np.minimum(i * stride_c + size_c, n) for i, n in zip(idx, cells.shape)]
    sums = _tile_sums(cells.counts, starts, stops)
    rna = sums[..., list(RNA_ELEMENTS)].sum(axis=-1) > 0
    keep = rna.copy()
    free = np.flatnonzero(~rna.reshape(-1))
    n_free = min(len(free), int(round(config.rna_free_share * int(rna.sum()))))
    if n_free:
        rng = np.random.default_rng([int(config.seed), zlib.crc32(key.encode())])
        keep.reshape(-1)[np.sort(rng.choice(free, n_free, replace=False))] = True
    inst = _tile_instances(cells.pairs(), cells.shape, n_tiles, size_c, stride_c)
    rows = []
    for flat in np.flatnonzero(keep.reshape(-1)).tolist():
        t = np.unravel_index(flat, tuple(n_tiles))
        origin = [int(v) * config.stride for v in t]
        ids = inst.get(flat, [])
        rows.append({"tile_zyx": [int(v) for v in t], "origin_voxel": origin, "size": int(config.size),
                     "clipped": any(o + config.size > n for o, n in zip(origin, cells.grid_shape)),
                     "holds_rna": bool(rna[t]), "voxels_per_element": [int(v) for v in sums[t]],
                     "instances": ids, "motif_types": _types(ids, fine_types)})
    return rows


def _types(ids: Iterable[int], fine_types: Sequence[str | None]) -> list[str]:
    return sorted({t for t in (fine_types[i - 1] for i in ids if 0 < i <= len(fine_types)) if t})
