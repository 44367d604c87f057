"""Model maps: density simulated from atoms with gemmi's electron-scattering calculator.

Used for the shipped demo, for tests and benchmarks on maps larger than the real test
fixtures, and as the model map of map-model correlation metrics.

Each heavy atom contributes its electron scattering factor (International Tables vol. C
4.3.2, five-Gaussian fits, as in gemmi's ``DensityCalculatorE``; Wojdyr, J. Open Source
Softw. 7:4200, 2022; doi:10.21105/joss.04200), blurred by a Gaussian of standard
deviation ``sigma = 0.225 * resolution`` Å, i.e. B = 8 π² sigma², the ``molmap``
convention of UCSF Chimera/ChimeraX. Atomic B-factors of the model are ignored.
"""

from __future__ import annotations

import math

import gemmi
import numpy as np

from rnamotif_data.em.maps import DensityMap
from rnamotif_data.errors import ConfigError
from rnamotif_data.rna.structure import AtomTable

__all__ = ["simulate_map", "simulate_on_grid", "box_structure"]

#: molmap's ratio of Gaussian sigma to resolution (Å/Å).
SIGMA_PER_RESOLUTION = 0.225


def box_structure(atoms_xyz: np.ndarray, elements: np.ndarray, cell: tuple[float, ...],
                  b_iso: np.ndarray | None = None) -> gemmi.Structure:
    """A P1 gemmi structure of atoms in an orthogonal box cell (for gemmi's density
    calculator and solvent masker).

    ``atoms_xyz`` ``(N, 3)`` Å relative to the cell's corner; ``elements`` ``(N,)``;
    ``cell`` the box edges in Å (x, y, z); ``b_iso`` ``(N,)`` Å² (negative values read as
    0), or None for B = 0. Occupancies are 1.
    """
    st = gemmi.Structure()
    st.cell = gemmi.UnitCell(cell[0], cell[1], cell[2], 90, 90, 90)
    st.spacegroup_hm = "P 1"
    # gemmi 0.6 names a model, 0.7 numbers it (and still takes a name): its 0.7 stubs say int
    model, chain, res = gemmi.Model("1"), gemmi.Chain("A"), gemmi.Residue()  # type: ignore[arg-type]
    res.name, res.seqid = "UNK", gemmi.SeqId(1, " ")
    xyz = np.asarray(atoms_xyz, dtype=np.float64).reshape(-1, 3)
    b = [0.0] * len(xyz) if b_iso is None else np.maximum(np.asarray(b_iso, dtype=np.float64), 0.0).tolist()
    # one atom object, re-filled: add_atom copies it (Python floats and one Element per
    # element name make this ~3x faster than a new gemmi.Atom per atom)
    atom, position = gemmi.Atom(), gemmi.Position
    kinds: dict[str, gemmi.Element] = {}
    atom.occ = 1.0
    for (x, y, z), name, bi in zip(xyz.tolist(), np.asarray(elements).tolist(), b):
        element = kinds.get(name)
        if element is None:
            element = kinds[name] = gemmi.Element(str(name))
        atom.pos = position(x, y, z)
        atom.element = element
        atom.b_iso = bi
        res.add_atom(atom)
    chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    return st


def simulate_on_grid(
    atoms: AtomTable,
    shape: tuple[int, int, int],
    origin: np.ndarray,
    voxel_size: float,
    resolution: float,
) -> np.ndarray:
    """Simulated density of ``atoms`` on a given grid.

    Parameters
    ----------
    atoms:
        Heavy atoms (coordinates in Å, x-y-z, model frame; elements).
    shape:
        ``(D, H, W)`` grid size in voxels, z-y-x.
    origin:
        ``(3,)`` world position (Å, x-y-z) of voxel ``[0, 0, 0]``.
    voxel_size:
        Isotropic voxel size in Å.
    resolution:
        Å; sets the Gaussian blur (``sigma = 0.225 * resolution``).

    Returns
    -------
    ``(D, H, W)`` float32 density, z-y-x. Density that would fall outside the grid is
    dropped (the grid is padded internally, never wrapped).

    Raises
    ------
    ConfigError
        If ``resolution`` or ``voxel_size`` is not positive.
    """
    if resolution <= 0 or voxel_size <= 0:
        raise ConfigError("resolution and voxel_size must be positive (Å)")
    sigma = SIGMA_PER_RESOLUTION * resolution
    # pad so that atom density never wraps across the periodic cell gemmi uses
    pad = int(math.ceil((3.0 * sigma + 3.0) / voxel_size)) + 1
    D, H, W = (int(n) for n in shape)
    full = (W + 2 * pad, H + 2 * pad, D + 2 * pad)  # x, y, z
    cell = tuple(n * voxel_size for n in full)
    shift = np.asarray(origin, dtype=np.float64) - pad * voxel_size
    st = box_structure(atoms.xyz - shift, atoms.element, cell)
    dc = gemmi.DensityCalculatorE()
    dc.d_min = resolution
    dc.blur = 8.0 * math.pi**2 * sigma**2
    dc.set_grid_cell_and_spacegroup(st)
    # gemmi's initialize_grid() would round the size to FFT-friendly numbers and change
    # the spacing; set the size ourselves and add the atoms directly (P1: no symmetry)
    dc.grid.set_size(*full)
    dc.grid.fill(0.0)
    dc.add_model_density_to_grid(st[0])
    if (dc.grid.nu, dc.grid.nv, dc.grid.nw) != full:
        raise RuntimeError(
            f"gemmi changed the simulation grid from {full} to "
            f"{(dc.grid.nu, dc.grid.nv, dc.grid.nw)}; spacing would not be {voxel_size} Å"
        )
    arr = np.array(dc.grid, copy=False).transpose(2, 1, 0)  # gemmi x-y-z -> z-y-x
    return np.ascontiguousarray(arr[pad:pad + D, pad:pad + H, pad:pad + W], dtype=np.float32)


def simulate_map(
    atoms: AtomTable,
    resolution: float,
    voxel_size: float = 1.0,
    padding: float = 10.0,
    noise_sd: float = 0.0,
    seed: int = 0,
    name: str = "<simulated>",
) -> DensityMap:
    """A whole simulated map around a model, placed like an EMDB map.

    The box covers the atoms plus ``padding`` Å on every side; its corner is snapped to
    a multiple of ``voxel_size`` so that the map can be written with integer NSTART, as
    EMDB maps are.

    Parameters
    ----------
    atoms:
        Heavy atoms of the model.
    resolution:
        Å (Gaussian blur as in :func:`simulate_on_grid`).
    voxel_size:
        Å.
    padding:
        Å of empty space around the atoms.
    noise_sd:
        Standard deviation of added Gaussian noise, as a fraction of the noise-free
        map's standard deviation (0 = no noise).
    seed:
        Seed of the noise generator.

    Returns
    -------
    DensityMap
        ``data`` ``(D, H, W)`` float32, z-y-x; ``origin`` and ``voxel_size`` in Å, x-y-z.
    """
    lo = np.floor((atoms.xyz.min(axis=0) - padding) / voxel_size) * voxel_size
    hi = atoms.xyz.max(axis=0) + padding
    n_xyz = np.ceil((hi - lo) / voxel_size).astype(int) + 1
    shape = (int(n_xyz[2]), int(n_xyz[1]), int(n_xyz[0]))
    data = simulate_on_grid(atoms, shape, lo, voxel_size, resolution)
    if noise_sd > 0:
        rng = np.random.default_rng(seed)
        data = data + rng.normal(0.0, noise_sd * float(data.std()), size=data.shape).astype(np.float32)
    return DensityMap(data=data, voxel_size=np.full(3, float(voxel_size)), origin=lo, path=name)
