"""Writing z-y-x arrays as MRC2014 maps that overlay the model in ChimeraX, byte for byte
reproducible (:func:`write_mrc`)."""

from __future__ import annotations

import bz2
import gzip
import os
from pathlib import Path

import mrcfile
import numpy as np

__all__ = ["write_mrc"]


def write_mrc(
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
    ValueError
        If ``data`` is not 3D, a label map has values outside the int8 range, the
        placement is unknown, or an NSTART placement is not a whole number of voxels.
    """
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise ValueError(f"{path}: MRC data must be 3D (z-y-x), got shape {arr.shape}")
    if arr.dtype == np.bool_ or arr.dtype == np.uint8:
        if arr.size and int(arr.max()) > 127:
            raise ValueError(f"{path}: label values above 127 do not fit MRC mode 0 (int8)")
        arr = arr.astype(np.int8)
    elif arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    org = np.asarray(origin, dtype=np.float64).reshape(3)
    if placement == "origin":
        header_origin, nstart = org, np.zeros(3, dtype=np.int64)
    elif placement == "nstart":
        n = org / vs
        nstart = np.rint(n).astype(np.int64)
        if not np.allclose(n, nstart, atol=1e-4):
            raise ValueError(
                f"{path}: origin {tuple(org)} Å is not a whole number of voxels "
                f"({tuple(vs)} Å); NSTART placement impossible"
            )
        header_origin = np.zeros(3)
    else:
        raise ValueError(f"{path}: placement must be 'origin' or 'nstart', got {placement!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compression = {".gz": "gzip", ".bz2": "bzip2"}.get(path.suffix)
    plain = path.with_name(path.name + ".tmp-mrc") if compression else path
    with mrcfile.new(plain, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(arr))
        mrc.voxel_size = tuple(float(v) for v in vs)
        mrc.header.origin = tuple(float(v) for v in header_origin)
        mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = (int(v) for v in nstart)
        mrc.update_header_stats()
        # mrcfile stamps a creation time into label 0: keep the file reproducible
        mrc.header.label[0] = b"Written by rnamotif-data".ljust(80)
        mrc.header.nlabl = 1
    if compression:  # no timestamp in the compressed stream either (gzip mtime 0)
        raw = plain.read_bytes()
        data = gzip.compress(raw, mtime=0) if compression == "gzip" else bz2.compress(raw)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        plain.unlink()
    return path
