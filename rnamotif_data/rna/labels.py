"""Voxel labels: nucleotide parts and identities, zones, nearest-atom rasterisation.

Label parts (design §3), following the upstream dataset's three label maps but
naming the base map correctly (upstream called it "sugar"):

====  ========  ===========================================================
id    part      atoms
====  ========  ===========================================================
0     none      no nucleotide atom within the label radius
1     backbone  P, OP1, OP2, OP3 (legacy O1P, O2P, O3P), O5', O3'
2     sugar     C1', C2', C3', C4', C5', O4', O2'
3     base      the base atoms of A, C, G, U (N1 ... N9, O2, O4, O6, N2, N4, N6)
====  ========  ===========================================================

Atoms of modified nucleotides that no standard nucleotide has take the part of the atom
they are bonded to (:func:`residue_parts`): the 2'-O-methyl carbon ``CM2`` of OMG/OMC/OMU
is sugar, the 5-methyl of 5MC base, the threonylcarbamoyl chain of T6A base.

Nucleotide ids: 0 none, 1 A, 2 C, 3 G, 4 U, 5 other/modified. Modified nucleotides are
mapped to their parent base (:mod:`rnamotif_data.rna.modified`: the model file, gemmi's
tables, a shipped table; ``PSU`` -> U, ``OMC`` -> C, DNA ``DA`` -> A) when
``modified_as_parent`` is true (the default); otherwise, and for bases with no A/C/G/U
parent (DNA T, unknown residues), they get 5.

Rasterisation is exact: a voxel's distance to an atom is measured from the voxel centre
to the atom's coordinates, not to the voxel the atom falls in.
"""

from __future__ import annotations

from functools import lru_cache

import gemmi
import numpy as np

from rnamotif_data.common.names import LABEL_NAMES, NUCLEOTIDE_NAMES
from rnamotif_data.rna.modified import parent_letter

__all__ = [
    "label_part",
    "standard_part",
    "residue_parts",
    "nucleotide_id",
    "one_letter",
    "within_radius",
    "nearest_atom",
]


_BACKBONE = frozenset({"P", "OP1", "OP2", "OP3", "O1P", "O2P", "O3P", "O5'", "O3'"})
_SUGAR = frozenset({"C1'", "C2'", "C3'", "C4'", "C5'", "O4'", "O2'"})
#: base atoms of A, C, G, U (and DNA T's methyl, C7/C5M)
_BASE = frozenset({"N1", "C2", "N3", "C4", "C5", "C6", "N6", "N7", "C8", "N9", "O6", "N2", "O2", "N4",
                   "O4", "C7", "C5M"})
#: nucleotide id of each parent letter (ids of :data:`rnamotif_data.common.names.NUCLEOTIDE_NAMES`)
NUCLEOTIDE_IDS: dict[str, int] = {name: NUCLEOTIDE_NAMES.index(name) for name in ("A", "C", "G", "U")}
_OTHER_NUCLEOTIDE = NUCLEOTIDE_NAMES.index("other")
#: part ids (:data:`rnamotif_data.common.names.LABEL_NAMES`)
_BACKBONE_ID, _SUGAR_ID, _BASE_ID = (LABEL_NAMES.index(part) for part in ("backbone", "sugar", "base"))
#: Å, the longest covalent bond followed by :func:`residue_parts` (S-C, Se-C included)
_BOND = 2.0


def standard_part(atom_name: str) -> int:
    """Part id (1 backbone, 2 sugar, 3 base) of an atom name of the standard nucleotides;
    0 for a name none of them has. Legacy ``*`` names (``C1*``) are read as primes."""
    name = atom_name.strip().replace("*", "'")
    if name in _BACKBONE:
        return _BACKBONE_ID
    if name in _SUGAR:
        return _SUGAR_ID
    if name in _BASE:
        return _BASE_ID
    return 0


def label_part(atom_name: str, residue_name: str = "") -> int:
    """Label part id (1 backbone, 2 sugar, 3 base) of a heavy atom of a nucleotide, by
    name alone: standard names as :func:`standard_part`, any other name 3 (base). Use
    :func:`residue_parts` for modified nucleotides, whose extra atoms can sit on the
    ribose (``CM2``) or the phosphate."""
    return standard_part(atom_name) or 3


def residue_parts(atom_names, xyz: np.ndarray) -> np.ndarray:
    """Label parts of the heavy atoms of one nucleotide residue, residue-aware.

    Standard atom names take their part (:func:`standard_part`); every other atom takes
    the part of the atom it is covalently bonded to (≤ 2.0 Å), followed through chains of
    non-standard atoms; atoms bonded to none of them are base.

    Parameters
    ----------
    atom_names:
        ``(N,)`` atom names of the residue.
    xyz:
        ``(N, 3)`` coordinates, Å.

    Returns
    -------
    ``(N,)`` uint8 parts.
    """
    parts = np.array([standard_part(n) for n in atom_names], dtype=np.uint8)
    todo = parts == 0
    if todo.any():
        from scipy.spatial import cKDTree  # here: importing the package needs no scipy

        pairs = cKDTree(np.asarray(xyz, dtype=np.float64)).query_pairs(_BOND, output_type="ndarray")
        changed = True
        while changed and (parts == 0).any():
            changed = False
            for i, j in pairs:
                for a, b in ((i, j), (j, i)):
                    if parts[a] == 0 and parts[b] != 0:
                        # the nearest assigned neighbour wins where two are bonded
                        parts[a] = parts[b]
                        changed = True
        parts[parts == 0] = 3
    return parts


@lru_cache(maxsize=None)
def one_letter(residue_name: str, modified_as_parent: bool = True) -> str:
    """One-letter code of a residue: its parent (:func:`rnamotif_data.rna.modified.parent_letter`)
    for a nucleotide, the standard code otherwise; ``N`` if no source knows it, and for any
    non-standard nucleotide when ``modified_as_parent`` is false."""
    name = residue_name.strip().upper()
    if not modified_as_parent and name not in NUCLEOTIDE_IDS:
        info = gemmi.find_tabulated_residue(name)  # standard components (DA) have upper-case codes
        code = info.one_letter_code.strip() if info is not None and info.found() else ""
        return code if code.isupper() else "N"
    return parent_letter(name)


def nucleotide_id(residue_name: str, modified_as_parent: bool = True) -> int:
    """Nucleotide id (1 A, 2 C, 3 G, 4 U, 5 other/modified) of a nucleotide residue name."""
    return NUCLEOTIDE_IDS.get(one_letter(residue_name, modified_as_parent), _OTHER_NUCLEOTIDE)


def _grid_pairs(
    shape: tuple[int, int, int],
    origin: np.ndarray,
    voxel_size: np.ndarray,
    atom_xyz: np.ndarray,
    radius: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (voxel, atom) pairs closer than ``radius``: flat voxel index, atom index, distance."""
    atom_xyz = np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3)
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    if atom_xyz.shape[0] == 0:
        return empty
    # atom positions in fractional z-y-x index space of the grid
    p = ((atom_xyz - np.asarray(origin, dtype=np.float64)) / vs)[:, ::-1]
    vs_zyx = vs[::-1]
    reach = np.ceil(radius / vs_zyx).astype(np.int64)
    offs = np.stack(
        np.meshgrid(*[np.arange(-r, r + 2) for r in reach], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    base = np.floor(p).astype(np.int64)
    # keep stencil offsets that can reach within radius of any point of the base cell
    cell_far = np.maximum(np.abs(offs - 0.5) - 0.5, 0.0) * vs_zyx
    offs = offs[(cell_far**2).sum(axis=1) <= radius**2]
    vox = base[:, None, :] + offs[None, :, :]  # (A, K, 3)
    d2 = (((vox - p[:, None, :]) * vs_zyx) ** 2).sum(axis=-1)
    ok = d2 <= radius**2
    ok &= np.all((vox >= 0) & (vox < np.asarray(shape)), axis=-1)
    a_idx, k_idx = np.nonzero(ok)
    v = vox[a_idx, k_idx]
    flat = np.ravel_multi_index((v[:, 0], v[:, 1], v[:, 2]), shape)
    return flat, a_idx, np.sqrt(d2[a_idx, k_idx])


def within_radius(
    shape: tuple[int, int, int],
    origin: np.ndarray,
    voxel_size: np.ndarray | float,
    atom_xyz: np.ndarray,
    radius: float,
) -> np.ndarray:
    """Boolean mask of grid voxels whose centre lies within ``radius`` of any atom.

    This is the upstream "volume zone" (ChimeraX ``volume zone``) when ``radius`` = 5 Å.
    Computed exactly as a union of spheres: for every atom and every grid row (z, y)
    the sphere cuts, the run of x indices inside it is added to a difference array.

    Parameters
    ----------
    shape:
        Grid shape ``(D, H, W)``, z-y-x.
    origin:
        ``(3,)`` world position (Å, x-y-z) of voxel ``[0, 0, 0]``.
    voxel_size:
        Å, scalar or ``(3,)`` x-y-z.
    atom_xyz:
        ``(N, 3)`` atom coordinates, Å, x-y-z.
    radius:
        Å.

    Returns
    -------
    ``(D, H, W)`` bool array, z-y-x.
    """
    D, H, W = (int(n) for n in shape)
    atom_xyz = np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3)
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    vx, vy, vz = vs
    if atom_xyz.shape[0] == 0:
        return np.zeros((D, H, W), dtype=bool)
    px, py, pz = ((atom_xyz - np.asarray(origin, dtype=np.float64)) / vs).T
    ry, rz = int(np.ceil(radius / vy)), int(np.ceil(radius / vz))
    kz, ky = np.meshgrid(np.arange(-rz, rz + 2), np.arange(-ry, ry + 2), indexing="ij")
    z = np.floor(pz)[:, None].astype(np.int64) + kz.reshape(1, -1)  # (A, K)
    y = np.floor(py)[:, None].astype(np.int64) + ky.reshape(1, -1)
    rem2 = radius**2 - ((z - pz[:, None]) * vz) ** 2 - ((y - py[:, None]) * vy) ** 2
    ok = (rem2 >= 0) & (z >= 0) & (z < D) & (y >= 0) & (y < H)
    half = np.sqrt(np.where(ok, rem2, 0.0)) / vx
    x0 = np.maximum(np.ceil(px[:, None] - half), 0).astype(np.int64)
    x1 = np.minimum(np.floor(px[:, None] + half), W - 1).astype(np.int64)
    ok &= x0 <= x1
    row = (z[ok] * H + y[ok]) * (W + 1)
    size = D * H * (W + 1)
    diff = (np.bincount(row + x0[ok], minlength=size) - np.bincount(row + x1[ok] + 1, minlength=size)).astype(np.int32)
    return np.cumsum(diff.reshape(D, H, W + 1), axis=2, dtype=np.int32)[:, :, :W] > 0


def nearest_atom(
    shape: tuple[int, int, int],
    origin: np.ndarray,
    voxel_size: np.ndarray | float,
    atom_xyz: np.ndarray,
    radius: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Index of and distance to the nearest atom within ``radius`` of each voxel centre.

    Ties (equal distances) go to the lower atom index, so results are deterministic.

    Parameters
    ----------
    shape, origin, voxel_size, atom_xyz, radius:
        As in :func:`within_radius`.

    Returns
    -------
    index:
        ``(D, H, W)`` int64, atom index into ``atom_xyz``, -1 where no atom is within
        ``radius``.
    distance:
        ``(D, H, W)`` float32 distance in Å, ``inf`` where no atom is within ``radius``.
    """
    n = int(np.prod(shape))
    flat, a_idx, d = _grid_pairs(shape, origin, np.asarray(voxel_size), atom_xyz, radius)
    dist = np.full(n, np.inf)
    np.minimum.at(dist, flat, d)
    winner = d == dist[flat]
    index = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(index, flat[winner], a_idx[winner])
    index[index == np.iinfo(np.int64).max] = -1
    return index.reshape(shape), dist.astype(np.float32).reshape(shape)
