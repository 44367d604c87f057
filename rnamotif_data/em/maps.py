"""Cryo-EM density maps: reading, placement in the model's frame, statistics, writing.

Conventions used everywhere in this package
-------------------------------------------
* ``DensityMap.data`` is a C-contiguous ``float32`` array of shape ``(nz, ny, nx)``,
  axis order **z-y-x** (sections along Z, rows along Y, columns along X), whatever the
  file's MAPC/MAPR/MAPS axis order was.
* World coordinates are Cartesian x-y-z in Å, in the frame of the fitted atomic model.
  ``voxel_size`` and ``origin`` are given in **x-y-z** order, like mrcfile's
  ``voxel_size`` and the MRC ORIGIN field.
* Index space is z-y-x and fractional: index ``(k, j, i)`` is the centre of voxel
  ``data[k, j, i]`` at world position ``origin + (i, j, k) * voxel_size``.

Placement (MRC2014, https://www.ccpem.ac.uk/mrc_format/mrc2014.php; design §2):
the world position of the first stored voxel comes from the ORIGIN field if it is
non-zero, else from NXSTART/NYSTART/NZSTART times the voxel size. NSTART values are
given per *file* axis (columns, rows, sections) and are permuted to x-y-z with
MAPC/MAPR/MAPS, as CCP4, gemmi and ChimeraX do. When both ORIGIN and NSTART are
non-zero, ORIGIN wins (as in ChimeraX) and a warning names the file.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import os
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import mrcfile.utils
import numpy as np

from rnamotif_data.errors import (
    ConfigError,
    DiskFullError,
    InputError,
    MapFormatError,
    MissingFileError,
    is_environment_failure,
    one_line,
)

log = logging.getLogger(__name__)

__all__ = [
    "DensityMap",
    "MapStatistics",
    "read_map",
    "write_map",
    "map_statistics",
    "axis_order_to_zyx",
    "header_statistics_notes",
]

_SUPPORTED_MODES = {0, 1, 2, 6, 12}  # int8, int16, float32, uint16, float16


@dataclass(frozen=True, eq=False)
class DensityMap:
    """A density map placed in the model's Cartesian frame.

    Attributes
    ----------
    data:
        ``(nz, ny, nx)`` float32 array, z-y-x axis order, raw map values (not normalised).
    voxel_size:
        ``(3,)`` float64, voxel size in Å along x, y, z.
    origin:
        ``(3,)`` float64, world position (Å, x-y-z) of the centre of ``data[0, 0, 0]``.
    path:
        The file the map was read from (used in error messages), or a description.
    header_origin, nstart_xyz, axis_order:
        Provenance: the file's ORIGIN field (Å, x-y-z), its NSTART permuted to x-y-z
        (voxels) and its (MAPC, MAPR, MAPS).
    warnings:
        Header anomalies found on reading (:func:`read_map`), one line each.
    header_stats:
        The header's (DMIN, DMAX, DMEAN, RMS), or None for maps not read from a file.
    """

    data: np.ndarray
    voxel_size: np.ndarray
    origin: np.ndarray
    path: str = "<memory>"
    header_origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    nstart_xyz: tuple[int, int, int] = (0, 0, 0)
    axis_order: tuple[int, int, int] = (1, 2, 3)
    warnings: tuple[str, ...] = ()
    header_stats: tuple[float, float, float, float] | None = None
    _stats: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        data = np.ascontiguousarray(self.data, dtype=np.float32)
        if data.ndim != 3:
            raise MapFormatError(f"{self.path}: map data must be 3D, got shape {data.shape}")
        vs = np.asarray(self.voxel_size, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(vs)) or np.any(vs <= 0):
            raise MapFormatError(f"{self.path}: voxel size {_fmt(vs)} Å must be positive")
        org = np.asarray(self.origin, dtype=np.float64).reshape(3)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "voxel_size", vs)
        object.__setattr__(self, "origin", org)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)`` in voxels."""
        return tuple(self.data.shape)

    def world_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Convert world coordinates to fractional voxel indices.

        Parameters
        ----------
        xyz:
            ``(N, 3)`` or ``(3,)`` world coordinates in Å, x-y-z order.

        Returns
        -------
        ``(N, 3)`` or ``(3,)`` float64 fractional indices in **z-y-x** order; integer
        values are voxel centres.
        """
        xyz = np.asarray(xyz, dtype=np.float64)
        return ((xyz - self.origin) / self.voxel_size)[..., ::-1]

    def index_to_world(self, index_zyx: np.ndarray) -> np.ndarray:
        """Convert (fractional) voxel indices, z-y-x order, to world x-y-z in Å.

        Exact inverse of :meth:`world_to_index`.
        """
        index_zyx = np.asarray(index_zyx, dtype=np.float64)
        return self.origin + index_zyx[..., ::-1] * self.voxel_size

    def contains(self, xyz: np.ndarray) -> np.ndarray:
        """Return a boolean ``(N,)`` mask: which points lie within the box of voxel centres.

        A point is inside when each fractional index is in ``[0, n - 1]``, i.e. it can be
        interpolated from stored voxels only.
        """
        idx = np.atleast_2d(self.world_to_index(xyz))
        upper = np.asarray(self.shape, dtype=np.float64) - 1.0
        return np.all((idx >= 0.0) & (idx <= upper), axis=-1)

    def interpolate(self, xyz: np.ndarray) -> np.ndarray:
        """Trilinearly interpolate raw map values at scattered world points.

        Parameters
        ----------
        xyz:
            ``(N, 3)`` world coordinates in Å, x-y-z order.

        Returns
        -------
        ``(N,)`` float64 values. Points outside the box of voxel centres take the value
        of a zero-padded map (they never wrap around); use :meth:`contains` to find them.
        """
        from scipy.ndimage import map_coordinates  # here: importing the package needs no scipy

        idx = np.atleast_2d(self.world_to_index(xyz))
        return map_coordinates(
            self.data, idx.T, order=1, mode="constant", cval=0.0, prefilter=False,
            output=np.float64,
        )

    def sample_box(
        self, origin: np.ndarray, shape: tuple[int, int, int], voxel_size: np.ndarray | float
    ) -> tuple[np.ndarray, float]:
        """Trilinearly sample the map on an axis-aligned box of points (local resampling).

        Only the box's points are computed, from the block of the original grid that
        surrounds them; the whole map is never resampled. Because the box is aligned with
        the map axes, trilinear interpolation is applied separably, one axis at a time,
        which is exactly equal to trilinear interpolation at each point.

        Parameters
        ----------
        origin:
            ``(3,)`` world position (Å, x-y-z) of the box's voxel ``[0, 0, 0]``.
        shape:
            ``(D, H, W)`` box size in voxels, z-y-x order.
        voxel_size:
            Box voxel size in Å, a scalar or ``(3,)`` x-y-z.

        Returns
        -------
        values:
            ``(D, H, W)`` float32 raw map values, z-y-x. The map is treated as zero
            outside its stored voxels (zero padding, never periodic wrap-around).
        fraction_outside:
            Fraction of box points that lie outside the box of the map's voxel centres.
        """
        origin = np.asarray(origin, dtype=np.float64).reshape(3)
        box_vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
        if len(shape) != 3 or min(shape) < 1:
            raise InputError(f"box shape must be three positive sizes, got {shape}")
        inside_frac = 1.0
        axes = []
        for axis_zyx, n in enumerate(shape):
            a = 2 - axis_zyx  # the x-y-z component for this z-y-x axis
            t = (origin[a] + np.arange(n) * box_vs[a] - self.origin[a]) / self.voxel_size[a]
            n_map = self.data.shape[axis_zyx]
            inside = (t >= 0.0) & (t <= n_map - 1)
            inside_frac *= float(inside.mean())
            i0 = np.floor(t).astype(np.int64)
            w = (t - i0).astype(np.float32)
            axes.append((i0, w, n_map))
        # The block of stored voxels the box needs, zero-padded where it leaves the map.
        lo = [int(i0.min()) for i0, _, _ in axes]
        hi = [int(i0.max()) + 2 for i0, _, _ in axes]  # exclusive; +1 neighbour
        block = np.zeros([h - low for low, h in zip(lo, hi)], dtype=np.float32)
        src, dst = [], []
        for (low, h), (_, _, n_map) in zip(zip(lo, hi), axes):
            s0, s1 = max(low, 0), min(h, n_map)
            if s1 <= s0:  # the box misses the map entirely along this axis
                return np.zeros(shape, dtype=np.float32), 1.0
            src.append(slice(s0, s1))
            dst.append(slice(s0 - low, s1 - low))
        block[tuple(dst)] = self.data[tuple(src)]
        out = block
        for axis_zyx, ((i0, w, _), low) in enumerate(zip(axes, lo)):
            r0 = i0 - low
            a0 = np.take(out, r0, axis=axis_zyx)
            a1 = np.take(out, r0 + 1, axis=axis_zyx)
            bshape = [1, 1, 1]
            bshape[axis_zyx] = -1
            wb = w.reshape(bshape)
            out = a0 + (a1 - a0) * wb
        return np.ascontiguousarray(out, dtype=np.float32), 1.0 - inside_frac

    def statistics(self, percentile: float = 95.0) -> "MapStatistics":
        """Return (and cache) :func:`map_statistics` of this map."""
        key = float(percentile)
        if key not in self._stats:
            self._stats[key] = map_statistics(self.data, percentile, path=self.path)
        return self._stats[key]


@dataclass(frozen=True)
class MapStatistics:
    """Whole-map statistics, computed once per map on the original grid.

    Attributes
    ----------
    mean, sd:
        Mean and (population) standard deviation of all voxels.
    minimum, maximum:
        Extremes of all voxels.
    percentile, percentile_value:
        ``percentile_value`` is the ``percentile``-th percentile of the map's positive
        (non-zero after clipping negatives to zero) voxels, the normalisation divisor
        of Cryo2StructData (Giri et al., Sci. Data 11:458, 2024;
        doi:10.1038/s41597-024-03299-9).
    n_voxels:
        Number of voxels.
    """

    mean: float
    sd: float
    minimum: float
    maximum: float
    percentile: float
    percentile_value: float
    n_voxels: int

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary of the fields."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def map_statistics(data: np.ndarray, percentile: float = 95.0, *, path: str = "<memory>") -> MapStatistics:
    """Compute whole-map statistics.

    Parameters
    ----------
    data:
        ``(nz, ny, nx)`` map values, any axis order.
    percentile:
        Percentile (0-100] of the positive voxels used as the normalisation divisor.

    Raises
    ------
    MapFormatError
        If the map has no positive voxel (it cannot be normalised) or non-finite values.
    """
    flat = np.asarray(data).reshape(-1)
    # mean and sd in blocks, float64 accumulators: no map-sized float64 temporary
    block = 1 << 22
    total = 0.0
    for a in range(0, flat.size, block):
        total += float(flat[a:a + block].sum(dtype=np.float64))
    mean = total / flat.size
    sq = 0.0
    # one float64 block reused: 32 MiB temporaries at the size of glibc's largest mmap
    # threshold would each be mapped and zeroed anew
    buf = np.empty(min(block, flat.size), dtype=np.float64)
    for a in range(0, flat.size, block):
        d = buf[:min(block, flat.size - a)]
        np.subtract(flat[a:a + block], mean, out=d, dtype=np.float64)
        np.multiply(d, d, out=d)
        sq += float(np.sum(d))  # not np.dot: BLAS sums in a thread-count-dependent order
    sd = (sq / flat.size) ** 0.5
    lo, hi = float(flat.min()), float(flat.max())
    if not (np.isfinite(mean) and np.isfinite(sd) and np.isfinite(lo) and np.isfinite(hi)):
        raise MapFormatError(f"{path}: map contains non-finite values (NaN or inf)")
    n_positive = int(sum(int(np.count_nonzero(flat[a:a + block] > 0)) for a in range(0, flat.size, block)))
    if n_positive == 0:
        raise MapFormatError(f"{path}: map has no positive density; it cannot be normalised")
    k = (n_positive - 1) * percentile / 100.0
    # np.percentile's linear interpolation between the two order statistics around k
    k0 = int(np.floor(k))
    k1 = min(k0 + 1, n_positive - 1)
    v0, v1 = _positive_order_statistics(flat, (k0, k1), block)
    pval = float(v0 + (v1 - v0) * (k - k0))
    return MapStatistics(mean, sd, lo, hi, float(percentile), pval, int(flat.size))


def _positive_order_statistics(flat: np.ndarray, ranks: tuple[int, ...], block: int) -> list:
    """The ``ranks``-th smallest (0-based) of the positive values of ``flat`` ``(N,)``, as
    its scalars, without a copy of the positive voxels (a map-sized temporary).

    float32 maps: a radix select (positive IEEE-754 floats order as their bit patterns):
    one blocked pass counts the positive values by their upper 16 bits, a second gathers
    the few values of the bins that hold the ranks, and a partition of those gives the
    exact order statistics. Other dtypes: a copy and :meth:`numpy.ndarray.partition`.
    """
    if flat.dtype != np.float32:
        positive = flat[flat > 0]
        positive.partition(ranks)
        return [positive[r] for r in ranks]
    bits = flat.view(np.uint32)
    hist = np.zeros(1 << 16, dtype=np.int64)
    for a in range(0, flat.size, block):
        b = bits[a:a + block][flat[a:a + block] > 0]
        hist += np.bincount(b >> 16, minlength=1 << 16)
    cum = np.cumsum(hist)
    bins = np.searchsorted(cum, np.asarray(ranks) + 1)  # first bin whose cumulative count passes the rank
    wanted = np.unique(bins)
    values = []
    for a in range(0, flat.size, block):
        f = flat[a:a + block]
        b = bits[a:a + block]
        values.append(f[(f > 0) & np.isin(b >> 16, wanted)])
    chosen = np.concatenate(values)  # the wanted bins' values (bins ascending = values ascending)
    before = np.searchsorted(wanted, bins)
    offset = cum[wanted] - hist[wanted]  # positives below each wanted bin
    local = np.asarray(ranks) - offset[before] + np.concatenate([[0], np.cumsum(hist[wanted])[:-1]])[before]
    chosen.partition(tuple(int(r) for r in local))
    return [chosen[int(r)] for r in local]


def axis_order_to_zyx(data_file: np.ndarray, mapc: int, mapr: int, maps: int) -> np.ndarray:
    """Reorder an array as stored in an MRC file into z-y-x axis order.

    Parameters
    ----------
    data_file:
        ``(n_sections, n_rows, n_columns)`` array, as mrcfile returns it.
    mapc, mapr, maps:
        The header's MAPC, MAPR, MAPS: which of X (1), Y (2), Z (3) runs along columns,
        rows and sections.

    Returns
    -------
    A view of shape ``(nz, ny, nx)``.
    """
    labels = (maps, mapr, mapc)  # data axis 0, 1, 2 -> x/y/z label
    if sorted(labels) != [1, 2, 3]:
        raise MapFormatError(f"MAPC/MAPR/MAPS = {mapc},{mapr},{maps} is not a permutation of 1,2,3")
    perm = [labels.index(a) for a in (3, 2, 1)]
    return data_file.transpose(perm)


def read_map(path: str | os.PathLike) -> DensityMap:
    """Read an MRC/CCP4 map (``.mrc``, ``.map``, ``.ccp4``, optionally ``.gz``/``.bz2``).

    Permissive like ChimeraX and mrcfile's permissive mode: header anomalies that do not
    touch the data -- a zero or unknown machine stamp (cryoDRGN writes zeros), a missing
    ``MAP`` id, an unknown EXTTYP, an NVERSION that is not MRC2014, bytes after the data
    block, both ORIGIN and NSTART set -- are kept in ``DensityMap.warnings`` (one line
    each) and logged, never raised. Compression is detected from the file's content. The
    array is returned in z-y-x order with MAPC/MAPR/MAPS applied, and placed with ORIGIN
    or NSTART as described in the module docstring.

    Parameters
    ----------
    path:
        Map file.

    Returns
    -------
    DensityMap
        ``data`` float32 ``(nz, ny, nx)``; ``voxel_size`` and ``origin`` in Å, x-y-z;
        ``warnings``: the header anomalies found.

    Raises
    ------
    MissingFileError
        If the file does not exist.
    MapFormatError
        One line naming the file, for what would misread the data: truncated data,
        header dimensions that do not match the file (checked before any allocation),
        an unsupported mode (complex, 4-bit), a non-orthogonal cell (EM maps have 90°
        angles), a zero voxel size, non-positive dimensions, or an axis order that is
        not a permutation of 1, 2, 3.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise MissingFileError(f"{name}: no such map file")
    notes: list[str] = []
    try:
        compressed = _compression(path)
        header, vs = _read_header(path, notes)
        mapcrs = _check_header(name, header, vs)
        notes += _header_notes(header)
        raw = _read_data(path, header, compressed, notes)
        data = np.ascontiguousarray(axis_order_to_zyx(raw, *mapcrs), dtype=np.float32)
        hdr_origin = np.array(header.origin.tolist(), dtype=np.float64)
        nstart_crs = (int(header.nxstart), int(header.nystart), int(header.nzstart))
        nstart_xyz = [0, 0, 0]
        for n, label in zip(nstart_crs, mapcrs):
            nstart_xyz[label - 1] = n
    except MapFormatError:
        raise
    except (ValueError, OSError, EOFError, zlib.error, MemoryError) as exc:
        raise MapFormatError(f"{name}: corrupt or truncated map file ({exc})") from None
    origin = _placed_origin(name, hdr_origin, nstart_xyz, vs, notes)
    notes = list(dict.fromkeys(n.strip() for n in notes if n.strip()))
    for note in notes:
        log.warning("%s: %s", name, note)
    return DensityMap(
        data=data,
        voxel_size=vs,
        origin=origin,
        path=name,
        header_origin=(float(hdr_origin[0]), float(hdr_origin[1]), float(hdr_origin[2])),
        nstart_xyz=(nstart_xyz[0], nstart_xyz[1], nstart_xyz[2]),
        axis_order=mapcrs,
        warnings=tuple(notes),
        header_stats=(float(header.dmin), float(header.dmax), float(header.dmean), float(header.rms)),
    )


def _read_header(path: Path, notes: list[str]):
    """The map's header (a copy) and voxel size ``(3,)`` Å, x-y-z; mrcfile's warnings
    are added to ``notes``. Raises :class:`MapFormatError` when there is no header."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
            header = mrc.header.copy() if mrc.header is not None else None
            vs = np.array(mrc.voxel_size.tolist(), dtype=np.float64)  # x, y, z
    notes += [f"{w.message}" for w in caught]
    if header is None:
        raise MapFormatError(f"{path}: not a readable MRC map (no header)")
    return header, vs


def _check_header(name: str, header, vs: np.ndarray) -> tuple[int, int, int]:
    """The axis order (MAPC, MAPR, MAPS) of a header that can be read right; raises
    :class:`MapFormatError` for an unsupported mode, non-positive dimensions, a
    non-orthogonal cell, an axis order that is not a permutation or a voxel size <= 0."""
    mode = int(header.mode)
    if mode not in _SUPPORTED_MODES:
        raise MapFormatError(f"{name}: MRC mode {mode} is not a supported real-valued density map "
                             "(modes 0, 1, 2, 6, 12)")
    dims = (int(header.nx), int(header.ny), int(header.nz))
    if min(dims) < 1:
        raise MapFormatError(f"{name}: header dimensions NX, NY, NZ = {dims[0]}, {dims[1]}, {dims[2]} "
                             "must be positive")
    cellb = tuple(float(v) for v in (header.cellb.alpha, header.cellb.beta, header.cellb.gamma))
    if any(abs(a - 90.0) > 1e-3 for a in cellb):
        raise MapFormatError(
            f"{name}: cell angles ({cellb[0]:g}, {cellb[1]:g}, {cellb[2]:g}) are not "
            "orthogonal; cryo-EM maps must have 90° cell angles"
        )
    mapcrs = (int(header.mapc), int(header.mapr), int(header.maps))
    if sorted(mapcrs) != [1, 2, 3]:
        raise MapFormatError(f"{name}: MAPC/MAPR/MAPS = {mapcrs[0]},{mapcrs[1]},{mapcrs[2]} is not a "
                             "permutation of 1,2,3")
    if np.any(~np.isfinite(vs)) or np.any(vs <= 0):
        raise MapFormatError(f"{name}: voxel size {_fmt(vs)} Å (cell / sampling) is not positive")
    return mapcrs


def _read_data(path: Path, header, compressed: str | None, notes: list[str]) -> np.ndarray:
    """The data block in file order (sections, rows, columns), native byte order; the
    sizes are checked against the file before any allocation (:class:`MapFormatError`
    when it is too short); trailing bytes are noted in ``notes``."""
    name = str(path)
    mode = int(header.mode)
    dims = (int(header.nx), int(header.ny), int(header.nz))
    dtype = mrcfile.utils.data_dtype_from_header(header)
    shape = mrcfile.utils.data_shape_from_header(header)
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    skip = 1024 + int(header.nsymbt)
    if compressed is not None:
        _check_compressed_size(path, compression=compressed, need=need + skip, dims=dims, mode=mode)
        raw, extra = _stream_data(path, compressed, header)
        if extra:
            notes.append("bytes after the data block ignored")
        return raw
    have = path.stat().st_size - skip
    if have < need:
        raise MapFormatError(
            f"{name}: truncated, or header dimensions {dims[0]} x {dims[1]} x {dims[2]} (mode {mode}) "
            f"do not match the file: the data block needs {_size(need)}, the file holds {_size(max(have, 0))}")
    if have > need:
        notes.append(f"{have - need} bytes after the data block ignored")
    raw = np.fromfile(path, dtype=dtype, count=int(np.prod(shape)), offset=skip).reshape(shape)
    if not dtype.isnative:
        raw = raw.byteswap().view(dtype.newbyteorder("="))
    return raw


def _placed_origin(name: str, hdr_origin: np.ndarray, nstart_xyz: list[int], vs: np.ndarray,
                   notes: list[str]) -> np.ndarray:
    """The map's origin (Å, x-y-z): ORIGIN when set, else NSTART × voxel size (module
    docstring); both set is noted. Raises :class:`MapFormatError` for a non-finite ORIGIN."""
    if not np.all(np.isfinite(hdr_origin)):
        raise MapFormatError(f"{name}: ORIGIN {_fmt(hdr_origin)} is not finite")
    nstart_arr = np.asarray(nstart_xyz, dtype=np.float64)
    if np.any(hdr_origin != 0.0):
        if np.any(nstart_arr != 0):
            notes.append(f"both ORIGIN ({_fmt(hdr_origin)}) Å and NSTART {tuple(nstart_xyz)} are non-zero; "
                         "ORIGIN used, as ChimeraX does")
        return hdr_origin
    return nstart_arr * vs


def _compression(path: Path) -> str | None:
    """``"gzip"``, ``"bzip2"`` or None, from the file's magic bytes (as mrcfile does)."""
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic == b"BZh":
        return "bzip2"
    return None


def _stream_data(path: Path, compression: str, header) -> tuple[np.ndarray, bool]:
    """Decompress a map's data block once, straight into its array (file axis order).

    Returns the array and whether bytes follow the data block. Raises ``MapFormatError`` if
    the data block is shorter than the header says, and lets gzip/bz2 raise on a bad CRC
    or a truncated stream.
    """
    dtype = mrcfile.utils.data_dtype_from_header(header)
    shape = mrcfile.utils.data_shape_from_header(header)
    opener = gzip.open if compression == "gzip" else bz2.open
    out = np.empty(shape, dtype=dtype)
    # numpy's stubs give ndarray the buffer protocol (__buffer__) for Python >= 3.12 only
    buf = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    with opener(path, "rb") as fh:
        skip = int(header.nbytes) + int(header.nsymbt)
        if len(fh.read(skip)) != skip:
            raise MapFormatError("file ends inside the header")
        got = 0
        while got < len(buf):  # bounded blocks: readinto(huge) allocates a same-size temporary
            n = fh.readinto(buf[got:got + (1 << 24)])
            if not n:
                raise MapFormatError(f"data block is {got} bytes, header says {len(buf)}")
            got += n
        extra = bool(fh.read(1))
        if extra:
            while fh.read(1 << 24):  # read to the end: the gzip/bz2 CRC is checked there
                pass
    return (out if dtype.isnative else out.byteswap().view(dtype.newbyteorder("="))), extra


# ----------------------------------------------------------------------
# Checks of MRC/CCP4 map headers: the anomalies a permissive reader records, and the
#: EXTTYP values defined by MRC2014 (and in use by writers); anything else is recorded.
_KNOWN_EXTTYP = {"", "CCP4", "MRCO", "SERI", "AGAR", "FEI1", "FEI2", "HDF5"}


def _fmt(values) -> str:
    """Numbers for messages: ``1.5, 0, 2.25`` (never a numpy repr)."""
    return ", ".join(f"{float(v):g}" for v in np.ravel(values))


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n}"


def _header_notes(header) -> list[str]:
    """Header anomalies that do not change how the data are read (MRC2014)."""
    notes = []
    if int(header.nversion) not in (0, 20140, 20141):
        notes.append(f"NVERSION {int(header.nversion)} is not MRC2014 (20140/20141)")
    exttyp = bytes(header.exttyp).decode("ascii", "replace").strip("\x00 ")
    if int(header.nsymbt) > 0 and exttyp not in _KNOWN_EXTTYP:
        notes.append(f"unknown EXTTYP {exttyp!r}; {int(header.nsymbt)} bytes of extended header skipped")
    return notes


def _check_compressed_size(path: Path, *, compression: str, need: int, dims, mode: int) -> None:
    """Refuse header dimensions the compressed file cannot hold, before allocating them.

    gzip stores the uncompressed size modulo 2**32 in its last 4 bytes, and deflate
    compresses at most 1032:1; bzip2 has no size field, so only an absurd request (more
    than 10**5 times the compressed size) is refused before reading.
    """
    size = path.stat().st_size
    ok = True
    if compression == "gzip":
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            isize = int.from_bytes(fh.read(4), "little")
        ok = need <= 1032 * size and (need >= 2**32 or isize == need % 2**32 or size >= 2**32)
    elif need > 100_000 * size:
        ok = False
    if not ok:
        raise MapFormatError(
            f"{path}: truncated, or header dimensions {dims[0]} x {dims[1]} x {dims[2]} (mode {mode}) do not "
            f"match the file: the data block needs {_size(need)}, the {compression} file holds "
            f"{_size(size)} compressed")


def header_statistics_notes(dmap: "DensityMap", stats: "MapStatistics") -> list[str]:
    """Where the header's DMIN/DMAX/DMEAN/RMS disagree with the data (MRC2014 marks
    unset values by DMAX < DMIN, DMEAN < min(DMIN, DMAX) and RMS < 0, and many writers leave RMS 0; those are not
    compared). One line each, values printed as numbers."""
    if dmap.header_stats is None:
        return []
    dmin, dmax, dmean, rms = dmap.header_stats
    tol = 1e-3 * max(stats.maximum - stats.minimum, 1e-12)
    notes = []
    if dmax >= dmin:
        if abs(dmin - stats.minimum) > tol or abs(dmax - stats.maximum) > tol:
            notes.append(f"header DMIN/DMAX {dmin:.4g}/{dmax:.4g} differ from the data's "
                         f"{stats.minimum:.4g}/{stats.maximum:.4g}")
        if dmean >= min(dmin, dmax) and abs(dmean - stats.mean) > tol:
            notes.append(f"header DMEAN {dmean:.4g} differs from the data's {stats.mean:.4g}")
    if rms > 0 and abs(rms - stats.sd) > max(tol, 1e-3 * stats.sd):
        notes.append(f"header RMS {rms:.4g} differs from the data's sd {stats.sd:.4g}")
    return notes


# ----------------------------------------------------------------------
# Writing z-y-x arrays as MRC2014 maps that overlay the model in ChimeraX, byte for byte
def _header_placement(path, org: np.ndarray, vs: np.ndarray, placement: str) -> tuple[np.ndarray, np.ndarray]:
    """ORIGIN ``(3,)`` Å and NSTART ``(3,)`` voxels, x-y-z, that place ``data[0, 0, 0]`` at
    ``org`` (:func:`write_map`'s ``placement``). Raises as :func:`write_map` says."""
    if placement == "origin":
        header_origin, nstart = org, np.zeros(3, dtype=np.int64)
    elif placement == "nstart":
        n = org / vs
        nstart = np.rint(n).astype(np.int64)
        if not np.allclose(n, nstart, atol=1e-4):
            raise InputError(
                f"{path}: origin {tuple(org)} Å is not a whole number of voxels "
                f"({tuple(vs)} Å); NSTART placement impossible"
            )
        header_origin = np.zeros(3)
    else:
        raise ConfigError(f"{path}: placement must be 'origin' or 'nstart', got {placement!r}")
    return header_origin, nstart


def _write_mrc_file(path: Path, arr: np.ndarray, vs: np.ndarray, header_origin, nstart) -> None:
    """Write ``arr`` (z-y-x) as an uncompressed MRC file at ``path`` with the given voxel size,
    ORIGIN and NSTART, and a fixed label (no creation time: the bytes are reproducible)."""
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(arr))
        mrc.voxel_size = tuple(float(v) for v in vs)
        mrc.header.origin = tuple(float(v) for v in header_origin)
        mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = (int(v) for v in nstart)
        mrc.update_header_stats()
        # mrcfile stamps a creation time into label 0: keep the file reproducible
        mrc.header.label[0] = b"Written by rnamotif-data".ljust(80)
        mrc.header.nlabl = 1


def write_map(
    path: str | os.PathLike,
    data: np.ndarray,
    voxel_size: float | np.ndarray,
    origin: np.ndarray,
    *,
    placement: str = "origin",
) -> Path:
    """Write a z-y-x array as an MRC2014 file that passes ``mrcfile.validate``.

    The file has axis order 1,2,3 (columns X) and cell = shape × voxel size, placed so
    that it overlays the model in ChimeraX. A path ending in ``.gz`` or ``.bz2`` is
    compressed accordingly. The bytes depend on the inputs only (no time stamp in the
    label or the gzip header), so the same data give the same file.

    Parameters
    ----------
    path:
        Output file (overwritten).
    data:
        ``(D, H, W)`` array, z-y-x. float32/float64 are written as mode 2 (float32),
        float16 as mode 12, bool/uint8/int8 label maps as mode 0 (int8).
    voxel_size:
        Å, scalar or ``(3,)`` x-y-z.
    origin:
        ``(3,)`` world position (Å, x-y-z) of ``data[0, 0, 0]``.
    placement:
        ``"origin"`` (default): ORIGIN = ``origin``, NSTART = 0, as ChimeraX writes maps.
        ``"nstart"``: ORIGIN = 0 and NSTART = ``origin / voxel_size``, as EMDB maps are;
        the origin must then be a whole number of voxels.

    Raises
    ------
    InputError
        If ``data`` is not 3D, a label map has values outside the int8 range, the
        placement is unknown (ConfigError), or an NSTART placement is not a whole number of voxels.
    DiskFullError
        If the disk is full (or another failure of the machine, :data:`~rnamotif_data.errors.ENVIRONMENT_ERRNOS`):
        the file is written beside ``path`` and renamed, so nothing truncated is left under
        its name; the temporary file is removed and the message names ``path``.
    """
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise InputError(f"{path}: MRC data must be 3D (z-y-x), got shape {arr.shape}")
    if arr.dtype == np.bool_ or arr.dtype == np.uint8:
        if arr.size and int(arr.max()) > 127:
            raise InputError(f"{path}: label values above 127 do not fit MRC mode 0 (int8)")
        arr = arr.astype(np.int8)
    elif arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    header_origin, nstart = _header_placement(path, np.asarray(origin, dtype=np.float64).reshape(3), vs, placement)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compression = {".gz": "gzip", ".bz2": "bzip2"}.get(path.suffix)
    # written beside it and renamed: a full disk never leaves a truncated map under its name
    plain = path.with_name(path.name + ".tmp-mrc")
    tmp = path.with_name(path.name + ".tmp")
    try:
        _write_mrc_file(plain, arr, vs, header_origin, nstart)
        if compression:  # no timestamp in the compressed stream either (gzip mtime 0)
            raw = plain.read_bytes()
            packed = gzip.compress(raw, mtime=0) if compression == "gzip" else bz2.compress(raw)
            tmp.write_bytes(packed)
            os.replace(tmp, path)
            plain.unlink()
        else:
            os.replace(plain, path)
    except OSError as exc:
        plain.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        if is_environment_failure(exc):
            raise DiskFullError(f"{path}: the map could not be written (disk full? free space or choose another "
                                f"output folder): {one_line(exc)}") from exc
        raise
    return path

