"""Checks of MRC/CCP4 map headers: the anomalies a permissive reader records, and the
header sizes it refuses before allocating (used by :func:`rnamotif_data.maps.read_map`).

MRC2014: https://www.ccpem.ac.uk/mrc_format/mrc2014.php.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import MapFormatError

if TYPE_CHECKING:  # annotations only: maps imports this module
    from .maps import DensityMap, MapStatistics

__all__ = ["header_statistics_notes"]


#: EXTTYP values defined by MRC2014 (and in use by writers); anything else is recorded.
_KNOWN_EXTTYP = {"", "CCP4", "MRCO", "SERI", "AGAR", "FEI1", "FEI2", "HDF5"}


def _fmt(values) -> str:
    """Numbers for messages: ``1.5, 0, 2.25`` (never a numpy repr)."""
    return ", ".join(f"{float(v):g}" for v in np.ravel(values))


def _size(n: int) -> str:
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
