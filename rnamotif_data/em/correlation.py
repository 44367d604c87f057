"""Map-model correlation of a motif: CC_mask as Phenix reports it, and a local sphere CC.

**CC_mask** (Afonine et al., Acta Cryst. D74:814, 2018; doi:10.1107/S2059798318009324;
the number ``phenix.map_model_cc`` prints, computed by mmtbx ``five_cc``): the Pearson
correlation between the experimental map and a model map over the **molecular mask** of
the atoms.

* Mask: the bulk-solvent mask of the atoms (van der Waals radii of cctbx, solvent probe
  1.1 Å, shrink-truncation 0.9 Å: mmtbx ``mask_from_xray_structure`` defaults), computed
  with gemmi's ``SolventMasker`` and its ``Cctbx`` radii set; the "inside" (non-solvent)
  voxels are correlated.
* Model map: the atoms' electron scattering (International Tables C 4.3.2 Gaussians,
  gemmi ``DensityCalculatorE``) with **their B-factors**, Fourier-truncated at the map's
  resolution (``d > d_min`` only, as mmtbx ``structure_factor_box_from_map``), sampled on
  the experimental map's own grid. gemmi computes the density on a grid ``k`` times finer
  with an extra blur against aliasing; the blur is removed in reciprocal space and the
  map subsampled back onto the experimental voxels.
* Box: Phenix treats the whole map box as a periodic cell. We use a local box of the
  map's grid around the atoms with ``padding`` Å on every side (never the whole map):
  the truncation ripples of a small motif decay within a few resolution lengths, and
  the result differs from the whole-box value by < 0.01 on the real seed hairpin box.

Validated against cctbx 2025.11 (``benchmarks/validate_quality.py``; figures in
``benchmarks/RESULTS.md``): the real seed hairpin of EMD-20353 gives 0.797 with Phenix's
engine.

**CC_local** (ours, the pre-0.5 ``cc_mask``): the same correlation with a molmap-style
model map (Gaussian blur ``sigma = 0.225 * resolution``, B-factors ignored) over the
voxels within ``max(3, min(resolution, 10))`` Å of an atom. Kept as ``cc_local`` because
it is cheap and shape-only; it is **not** Phenix's CC_mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gemmi
import numpy as np

from rnamotif_data.em.maps import DensityMap
from rnamotif_data.em.simulate import box_structure, simulate_on_grid
from rnamotif_data.errors import InputError, MapFormatError
from rnamotif_data.rna.labels import within_radius
from rnamotif_data.rna.structure import AtomTable

__all__ = ["cc_mask", "cc_local", "model_map", "molecular_mask", "ModelBox", "cc_mask_box", "cc_local_box",
           "correlate_box"]


def _box_structure(atoms: AtomTable, shift: np.ndarray, cell: tuple[float, ...]) -> gemmi.Structure:
    """``atoms`` (elements, B-factors) in a box cell whose corner is at world ``shift`` (Å)."""
    return box_structure(atoms.xyz - shift, atoms.element, cell, atoms.b_iso)


def model_map(atoms: AtomTable, shape: tuple[int, int, int], origin: np.ndarray,
              voxel_size: np.ndarray, d_min: float, structure: gemmi.Structure | None = None) -> np.ndarray:
    """Model map of ``atoms`` with their B-factors, Fourier-truncated at ``d_min``.

    Parameters
    ----------
    atoms:
        Heavy atoms (Å, x-y-z; elements; ``b_iso`` in Å², zero if the table has none).
    shape:
        ``(D, H, W)`` box in voxels, z-y-x; treated as one periodic cell, so pad it.
    origin:
        ``(3,)`` world position (Å, x-y-z) of voxel ``[0, 0, 0]``.
    voxel_size:
        ``(3,)`` Å, x-y-z.
    d_min:
        Å, resolution: only Fourier terms with ``d > d_min`` are kept.
    structure:
        The atoms as a box structure (:func:`_box_structure`), if already made.

    Returns
    -------
    ``(D, H, W)`` float32, z-y-x, arbitrary scale (electron scattering, Mott-Bethe).
    """
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    n_xyz = np.array(shape[::-1], dtype=np.int64)
    # oversampling: fine spacing <= d_min / 3 (gemmi's default rate 1.5)
    k = max(1, int(math.ceil(float(vs.max()) / (d_min / 3.0))))
    fine = n_xyz * k
    cell = tuple(float(v) for v in n_xyz * vs)
    st = structure or _box_structure(atoms, np.asarray(origin, dtype=np.float64), cell)
    dc = gemmi.DensityCalculatorE()
    dc.d_min = d_min
    dc.rate = d_min / (2.0 * float((vs / k).max()))
    dc.set_grid_cell_and_spacegroup(st)
    dc.set_refmac_compatible_blur(st[0])
    dc.grid.set_size(*(int(v) for v in fine))
    dc.grid.fill(0.0)
    dc.add_model_density_to_grid(st[0])
    import scipy.fft  # here, not at import: the command's --help needs no scipy

    rho = np.array(dc.grid, copy=False)  # x-y-z
    f = scipy.fft.rfftn(rho, workers=1)
    s2 = [np.fft.fftfreq(int(fine[0]), d=float(vs[0] / k)) ** 2, np.fft.fftfreq(int(fine[1]), d=float(vs[1] / k)) ** 2,
          np.fft.rfftfreq(int(fine[2]), d=float(vs[2] / k)) ** 2]
    # undo the blur (separable: exp(B s^2 / 4) = product over axes) and cut at d_min
    g = [np.exp(dc.blur * v / 4.0).astype(np.float32) for v in s2]
    mult = g[0][:, None, None] * g[1][None, :, None] * g[2][None, None, :]
    mult[(s2[0][:, None, None] + s2[1][None, :, None] + s2[2][None, None, :]) >= 1.0 / d_min**2] = 0.0
    f *= mult
    out = scipy.fft.irfftn(f, s=rho.shape, axes=(0, 1, 2), workers=1)[::k, ::k, ::k]
    return np.ascontiguousarray(out.transpose(2, 1, 0), dtype=np.float32)


def molecular_mask(atoms: AtomTable, shape: tuple[int, int, int], origin: np.ndarray,
                   voxel_size: np.ndarray, structure: gemmi.Structure | None = None) -> np.ndarray:
    """Molecular (non-solvent) mask of ``atoms`` on a box grid: the bulk-solvent mask of
    cctbx (vdW radii, probe 1.1 Å, shrink 0.9 Å) via gemmi's ``SolventMasker``.

    Returns ``(D, H, W)`` bool, z-y-x, True inside the molecule. ``structure``: the atoms
    as a box structure (:func:`_box_structure`), if already made.
    """
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    n_xyz = [int(v) for v in shape[::-1]]
    st = structure or _box_structure(atoms, np.asarray(origin, dtype=np.float64),
                                     tuple(float(v) for v in np.array(n_xyz) * vs))
    grid = gemmi.FloatGrid(*n_xyz)
    grid.set_unit_cell(st.cell)
    grid.spacegroup = gemmi.SpaceGroup("P 1")
    gemmi.SolventMasker(gemmi.AtomicRadiiSet.Cctbx).put_mask_on_float_grid(grid, st[0])
    return np.array(grid, copy=False).transpose(2, 1, 0) == 0.0  # 0 = molecule, 1 = solvent


def _box(density_map: DensityMap, xyz: np.ndarray, pad: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Lower corner (z-y-x voxel index) and shape of a box of the map's grid around
    ``xyz`` with ``pad`` Å on every side; it may extend beyond the map."""
    idx = density_map.world_to_index(xyz)  # z-y-x
    reach = np.ceil(pad / density_map.voxel_size[::-1]).astype(np.int64)
    lo = np.floor(idx.min(axis=0)).astype(np.int64) - reach
    hi = np.ceil(idx.max(axis=0)).astype(np.int64) + reach + 1
    d, h, w = (int(v) for v in hi - lo)
    return lo, (d, h, w)


def _map_block(density_map: DensityMap, lo: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Experimental values on a box (zero outside the map) and a mask of the box voxels
    that lie inside the map; both ``shape``, z-y-x."""
    out = np.zeros(shape, dtype=np.float32)
    inside = np.zeros(shape, dtype=bool)
    src, dst = [], []
    for a in range(3):
        s0, s1 = max(int(lo[a]), 0), min(int(lo[a]) + shape[a], density_map.shape[a])
        if s1 <= s0:
            return out, inside
        src.append(slice(s0, s1))
        dst.append(slice(s0 - int(lo[a]), s1 - int(lo[a])))
    out[tuple(dst)] = density_map.data[tuple(src)]
    inside[tuple(dst)] = True
    return out, inside


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    den = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))  # np.sum, not BLAS dot
    return float(np.sum(a * b)) / den if den > 0 else float("nan")


@dataclass(frozen=True, eq=False)
class ModelBox:
    """The model side of one motif's map-model correlation on one map grid: what
    :func:`cc_mask` and :func:`cc_local` compute from the atoms and the grid alone (never
    from map values), so one model in several maps of one grid (a cryoDRGN ensemble)
    makes it once.

    Attributes
    ----------
    lo:
        ``(3,)`` int64, z-y-x voxel index of the box's corner in the map's grid (may lie
        outside the map).
    shape:
        ``(D, H, W)`` box size in voxels.
    mask:
        ``(D, H, W)`` bool, z-y-x: the voxels to correlate, before those outside the map
        are dropped (the molecular mask, or the sphere zone).
    model:
        ``(D, H, W)`` float32, z-y-x: the model map.
    """

    lo: np.ndarray
    shape: tuple[int, int, int]
    mask: np.ndarray
    model: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays."""
        return self.lo.nbytes + self.mask.nbytes + self.model.nbytes


def _check_resolution(resolution, what: str) -> None:
    if resolution is None or not (np.isfinite(resolution) and resolution > 0):
        raise InputError(f"{what} needs a positive resolution (Å), got {resolution}")


def cc_mask_box(density_map: DensityMap, atoms: AtomTable, resolution: float, padding: float = 10.0) -> ModelBox:
    """The model side of :func:`cc_mask` on ``density_map``'s grid (its origin and voxel
    size; no map value is read): the local box, the molecular mask and the Phenix-style
    model map. Arguments and errors as :func:`cc_mask`."""
    _check_resolution(resolution, "CC_mask")
    pad = max(float(padding), 3.0 * float(resolution))
    lo, shape = _box(density_map, atoms.xyz, pad)
    origin = density_map.index_to_world(lo.astype(np.float64))
    vs = density_map.voxel_size
    st = _box_structure(atoms, origin, tuple(float(n * v) for n, v in zip(shape[::-1], vs)))
    mask = molecular_mask(atoms, shape, origin, vs, st)
    return ModelBox(lo=lo, shape=shape, mask=mask, model=model_map(atoms, shape, origin, vs, float(resolution), st))


def cc_local_box(density_map: DensityMap, atoms: AtomTable, resolution: float,
                 radius: float | None = None) -> ModelBox:
    """The model side of :func:`cc_local` on ``density_map``'s grid (no map value is
    read): the local box, the sphere zone and the molmap-style model map. Arguments and
    errors as :func:`cc_local`."""
    _check_resolution(resolution, "CC_local")
    vs = density_map.voxel_size
    if not np.all(np.abs(vs - vs[0]) <= 1e-8 + 1e-4 * abs(vs[0])):  # np.allclose(vs, vs[0], rtol=1e-4)
        raise MapFormatError(f"{density_map.path}: CC_local needs isotropic voxels, got "
                         f"{', '.join(f'{v:g}' for v in vs)} Å")
    r = radius if radius is not None else max(3.0, min(float(resolution), 10.0))
    lo, shape = _box(density_map, atoms.xyz, r)
    origin = density_map.index_to_world(lo.astype(np.float64))
    mask = within_radius(shape, origin, float(vs[0]), atoms.xyz, r)
    return ModelBox(lo=lo, shape=shape, mask=mask,
                    model=simulate_on_grid(atoms, shape, origin, float(vs[0]), float(resolution)))


def correlate_box(density_map: DensityMap, box: ModelBox) -> float:
    """Pearson correlation of the map with ``box.model`` over ``box.mask`` voxels that
    lie inside the map; NaN if fewer than 2 such voxels or either map is constant on
    them. ``box`` must come from this map's grid (:func:`cc_mask_box`, :func:`cc_local_box`)."""
    exp, inside = _map_block(density_map, box.lo, box.shape)
    mask = box.mask & inside
    if mask.sum() < 2:
        return float("nan")
    return _pearson(exp[mask], box.model[mask])


def cc_mask(density_map: DensityMap, atoms: AtomTable, resolution: float, padding: float = 10.0) -> float:
    """CC_mask of a set of atoms as ``phenix.map_model_cc`` defines it (module docstring).

    Parameters
    ----------
    density_map:
        The experimental map, in the model's frame.
    atoms:
        The motif's heavy atoms, with B-factors (``b_iso``, Å²).
    resolution:
        Å, the map's resolution (Fourier truncation of the model map).
    padding:
        Å of the local box around the atoms (periodic cell of the model-map FFT).

    Returns
    -------
    float
        Pearson correlation over the molecular-mask voxels that lie inside the map; NaN
        if fewer than 2 such voxels or either map is constant on them.

    Raises
    ------
    InputError
        If ``resolution`` is not a positive finite number.
    """
    return correlate_box(density_map, cc_mask_box(density_map, atoms, resolution, padding))


def cc_local(density_map: DensityMap, atoms: AtomTable, resolution: float,
             radius: float | None = None) -> float:
    """Local sphere correlation (module docstring, "CC_local"): molmap-style model map of
    ``atoms`` (B-factors ignored) against the map over voxels within ``radius`` Å
    (default ``max(3, min(resolution, 10))``) of an atom.

    Returns NaN if fewer than 2 mask voxels lie inside the map or a map is constant on
    them. Raises ``InputError`` for a non-positive resolution, ``MapFormatError`` for anisotropic voxels.
    """
    return correlate_box(density_map, cc_local_box(density_map, atoms, resolution, radius))
