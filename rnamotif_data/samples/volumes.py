"""Whole maps at 1 Å with every voxel labelled: density and label volumes on the map's grid.

The cubes (:mod:`rnamotif_data.samples.cubes`) answer *what is this motif?*; these
volumes answer *where are the motifs in this map?* -- the voxel-labelling convention of
Cryo2StructData (Giri, Wang & Cheng 2024, Sci. Data 11:458, doi:10.1038/s41597-024-03299-9:
whole maps resampled to 1 Å, cut into overlapping sub-grids, every voxel labelled) and
CryoREAD (Wang et al. 2023, Nat. Methods 20:1739, doi:10.1038/s41592-023-02032-5:
phosphate, sugar, base, protein and A/C/G/U voxel channels), with the RNA elements and
loop instances of :mod:`rnamotif_data.rna.elements` added.

Grid and placement
------------------
The volume's voxel ``[i, j, k]`` (z-y-x) is the map's point at
``origin + (k, j, i) * voxel_size`` Å (x-y-z), where ``origin`` is the map's own origin
(the centre of its voxel ``[0, 0, 0]``, placed in the model's frame by
:func:`rnamotif_data.em.maps.read_map`) and ``voxel_size`` is 1 Å by default
(:class:`VolumeConfig`). The grid covers the map's box of voxel centres:
``n = floor((n_map - 1) * map_voxel / voxel_size) + 1`` points per axis
(:func:`volume_grid`), so every point is interpolated from stored voxels (nothing is
padded). Density is sampled and normalised exactly as the cubes are: trilinear
interpolation of the original map at the grid's points
(:meth:`~rnamotif_data.em.maps.DensityMap.sample_box`), divided by the map's 95th
percentile of positive voxels and clipped to [0, 1]
(:func:`~rnamotif_data.samples.cubes.normalise_density`); a cube whose origin lies on
this grid has the volume's values where they overlap.

Labels
------
Each voxel takes the labels of the **nearest heavy atom** of the model (every residue
but water) whose distance to the voxel's centre is at most ``label_radius`` (1.5 Å, the
cubes' label radius: a cube labelled with ``label_scope="all"`` marks the same voxels
with the same parts and nucleotides); voxels with no such atom are 0 in every volume.
Distances are Euclidean in float64 (:class:`scipy.spatial.cKDTree`); ties (two atoms at
exactly the same distance) go to the lower atom index (the model's file order). Where two
motifs touch, the voxels are split between them by the nearest-atom rule (a Voronoi
boundary between their atoms): no voxel carries two instances, and a voxel nearest to a
closing pair's atom is stem (instance 0), not loop.

================  ========  =====================================================
volume            dtype     values
================  ========  =====================================================
``density``       float32   normalised density in [0, 1]
``element``       uint8     :data:`rnamotif_data.rna.elements.ELEMENT_NAMES`
                            (0 none, 1 stem, 2 hairpin, 3 bulge, 4 internal,
                            5 junction, 6 single strand, 7 protein, 8 other)
``part``          uint8     :data:`VOLUME_PART_NAMES` (0 none, 1 backbone/phosphate,
                            2 sugar, 3 base, 4 protein, 5 other); nucleotide parts
                            as :mod:`rnamotif_data.rna.labels` assigns them
``nucleotide``    uint8     :data:`rnamotif_data.rna.labels.NUCLEOTIDE_NAMES`
                            (0 none, 1 A, 2 C, 3 G, 4 U, 5 other; modified
                            nucleotides as their parent)
``instance``      uint16    loop instance id (0 none; uint32 when a model has more
                            than 65,535 loops; a store keeps it as uint32),
                            ``ElementAssignment.instances[id-1]``
================  ========  =====================================================

Memory
------
The volumes are made one z-slab at a time (:func:`iter_label_slabs`, ``slab`` planes
of the 1 Å grid at a time), so the peak is the input map (float32, held by its
:class:`~rnamotif_data.em.maps.DensityMap`), the model's atoms and one slab's working set,
about ``45 B × slab × H × W`` (the slab's density and four label volumes, 11 B per voxel,
plus the interpolation's and the zone's temporaries; measured: 120 MiB for 16 planes of
the 50S volumes' 413² grid, ``benchmarks/bench_volumes.py``), never the whole 1 Å grid: a
1.5 Å, 400³ map (256 MiB) is a 600³ grid at 1 Å (2.4 GB of volumes) but with 16-plane
slabs needs ~260 MB beside its input. The default is 8 planes: on a ribosome entry (439²
planes) the labelling grows the process by 46 MiB instead of 134 MiB, in the same time
(``benchmarks/RESULTS.md``, "Tiles: build cost"). :func:`label_volumes` gathers the slabs into whole
arrays, 11 B per 1 Å voxel: for small maps and tests; a build writes the slabs as they come.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rnamotif_data.common.names import LABEL_NAMES
from rnamotif_data.em.maps import DensityMap, MapStatistics
from rnamotif_data.errors import ConfigError, InputError, ModelOutsideMapError, NoRNAError, TileSizeError
from rnamotif_data.rna.elements import ElementAssignment
from rnamotif_data.rna.labels import within_radius
from rnamotif_data.rna.structure import Model
from rnamotif_data.samples.cubes import normalise_density

log = logging.getLogger(__name__)

__all__ = ["VOLUME_PART_NAMES", "VolumeConfig", "VolumeGrid", "LabelAtoms", "LabelSlab", "LabelVolumes", "volume_grid",
           "label_atoms", "iter_label_slabs", "label_volumes", "nearest_labels", "check_tile_size",
           "instance_dtype"]

#: Part names by id of a ``part`` volume: the cubes' nucleotide parts
#: (:data:`rnamotif_data.common.names.LABEL_NAMES`, the same ids), then protein and other.
VOLUME_PART_NAMES: tuple[str, ...] = (*LABEL_NAMES, "protein", "other")
_PROTEIN_PART, _OTHER_PART = 4, 5
_WATER = frozenset({"HOH", "WAT", "DOD", "H2O"})


@dataclass(frozen=True)
class VolumeConfig:
    """How a map is resampled and labelled.

    Attributes
    ----------
    voxel_size:
        Å, the grid's spacing (Cryo2StructData and CryoREAD: 1 Å).
    label_radius:
        Å; a voxel takes the labels of its nearest heavy atom within this distance (the
        cubes' ``label_radius``).
    normalise_percentile:
        Percentile of the map's positive voxels that density is divided by.
    slab:
        z planes of the grid made at a time (the memory bound, module docstring).
    max_fraction_outside:
        Largest fraction of the model's heavy atoms allowed outside the map's box
        before :class:`~rnamotif_data.errors.ModelOutsideMapError`.
    """

    voxel_size: float = 1.0
    label_radius: float = 1.5
    normalise_percentile: float = 95.0
    slab: int = 8
    max_fraction_outside: float = 0.5

    def __post_init__(self) -> None:
        for name in ("voxel_size", "label_radius", "normalise_percentile", "max_fraction_outside"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {v!r}")
        if not 0.2 <= self.voxel_size <= 10:
            raise ConfigError(f"voxel_size must be 0.2-10 Å, got {self.voxel_size:g}")
        if not 0 < self.label_radius <= 10:
            raise ConfigError(f"label_radius must be in (0, 10] Å, got {self.label_radius:g}")
        if not 0 < self.normalise_percentile <= 100:
            raise ConfigError(f"normalise_percentile must be in (0, 100], got {self.normalise_percentile:g}")
        if int(self.slab) != self.slab or self.slab < 1:
            raise ConfigError(f"slab must be a positive whole number of planes, got {self.slab!r}")
        if not 0 <= self.max_fraction_outside <= 1:
            raise ConfigError(f"max_fraction_outside must be in [0, 1], got {self.max_fraction_outside:g}")


@dataclass(frozen=True)
class VolumeGrid:
    """The resampled grid of a map.

    Attributes
    ----------
    origin:
        ``(x, y, z)`` Å, the centre of voxel ``[0, 0, 0]`` (the map's origin).
    shape:
        ``(D, H, W)`` voxels, z-y-x.
    voxel_size:
        Å, isotropic.
    """

    origin: tuple[float, float, float]
    shape: tuple[int, int, int]
    voxel_size: float

    def point(self, index_zyx) -> np.ndarray:
        """World position (Å, x-y-z) of voxel index ``(i, j, k)`` (z-y-x; ``(..., 3)``)."""
        return np.asarray(self.origin) + np.asarray(index_zyx, dtype=np.float64)[..., ::-1] * self.voxel_size


@dataclass(frozen=True, eq=False)
class LabelAtoms:
    """The atoms that label voxels, with the labels each gives (:func:`label_atoms`).

    Attributes
    ----------
    xyz:
        ``(N, 3)`` float64 Å, x-y-z.
    element, part, nucleotide:
        ``(N,)`` uint8.
    instance:
        ``(N,)`` uint16 or uint32 (:func:`instance_dtype`).
    rows:
        ``(N,)`` int64 each atom's row in ``model.atoms`` (ascending: ties by lower index).
    """

    xyz: np.ndarray
    element: np.ndarray
    part: np.ndarray
    nucleotide: np.ndarray
    instance: np.ndarray
    rows: np.ndarray


@dataclass(frozen=True, eq=False)
class LabelSlab:
    """Planes ``z0 .. z0 + len(density) - 1`` of the volumes, arrays ``(d, H, W)``
    z-y-x (dtypes as in the module docstring)."""

    z0: int
    density: np.ndarray
    element: np.ndarray
    part: np.ndarray
    nucleotide: np.ndarray
    instance: np.ndarray


@dataclass(frozen=True, eq=False)
class LabelVolumes:
    """A whole map's volumes (:func:`label_volumes`), arrays ``(D, H, W)`` z-y-x on
    ``grid``; ``stats`` the map statistics used to normalise."""

    grid: VolumeGrid
    density: np.ndarray
    element: np.ndarray
    part: np.ndarray
    nucleotide: np.ndarray
    instance: np.ndarray
    stats: MapStatistics


def instance_dtype(n_instances: int) -> type:
    """``np.uint16`` for up to 65,535 instances, else ``np.uint32``."""
    return np.uint16 if n_instances <= np.iinfo(np.uint16).max else np.uint32


def volume_grid(density_map: DensityMap, voxel_size: float = 1.0) -> VolumeGrid:
    """The grid of ``voxel_size`` Å covering the map's box of voxel centres, from its origin.

    ``n = floor((n_map - 1) * map_voxel / voxel_size + 1e-6) + 1`` points per axis.
    """
    extent = (np.asarray(density_map.shape[::-1], dtype=np.float64) - 1.0) * density_map.voxel_size  # x-y-z
    n_xyz = np.floor(extent / voxel_size + 1e-6).astype(np.int64) + 1
    ox, oy, oz = (float(v) for v in density_map.origin)
    return VolumeGrid(origin=(ox, oy, oz),
                      shape=(int(n_xyz[2]), int(n_xyz[1]), int(n_xyz[0])), voxel_size=float(voxel_size))


def label_atoms(model: Model, elements: ElementAssignment) -> LabelAtoms:
    """Every heavy atom of ``model`` but water's, with its element, part, nucleotide and
    instance (module docstring). Raises :class:`~rnamotif_data.errors.InputError` if
    ``elements`` is not the model's (another residue count)."""
    atoms = model.atoms
    if len(elements.element) != len(atoms.residues):
        raise InputError(f"{model.name}: the element assignment has {len(elements.element)} residues, "
                         f"the model {len(atoms.residues)}")
    water = np.array([n.strip().upper() in _WATER for n in atoms.residue_names], dtype=bool)
    rows = np.flatnonzero(~water[atoms.residue_index])
    ri = atoms.residue_index[rows]
    part = atoms.part[rows].copy()
    nonnt = part == 0
    element = elements.element[ri]
    part[nonnt] = np.where(element[nonnt] == 7, _PROTEIN_PART, _OTHER_PART)
    return LabelAtoms(xyz=atoms.xyz[rows], element=element.astype(np.uint8), part=part,
                      nucleotide=atoms.nucleotide[rows].astype(np.uint8),
                      instance=elements.instance[ri].astype(instance_dtype(len(elements.instances))),
                      rows=rows.astype(np.int64))


def nearest_labels(points: np.ndarray, tree, radius: float) -> np.ndarray:
    """``(P,)`` int64: the nearest atom (index into the tree's points) within ``radius``
    Å of each point ``(P, 3)``, -1 where none; ties go to the lower index.

    ``tree`` is a :class:`scipy.spatial.cKDTree` of the atoms.
    """
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    bound = radius * (1 + 1e-12) + 1e-12
    d, j = tree.query(points, k=2, distance_upper_bound=bound)
    best = np.where(d[:, 0] <= radius, j[:, 0], -1).astype(np.int64)
    tie = np.flatnonzero((d[:, 0] <= radius) & (d[:, 1] == d[:, 0]))
    for p in tie:  # rare: several atoms exactly as near; the lowest index wins
        near = np.asarray(tree.query_ball_point(points[p], d[p, 0] * (1 + 1e-12) + 1e-12), dtype=np.int64)
        dist = np.linalg.norm(tree.data[near] - points[p], axis=1)
        best[p] = int(near[dist == dist.min()].min())
    return best


def iter_label_slabs(density_map: DensityMap, model: Model, elements: ElementAssignment,
                     config: VolumeConfig = VolumeConfig(), *, stats: MapStatistics | None = None) -> Iterator[LabelSlab]:
    """The volumes of a map, ``config.slab`` z planes at a time, in z order.

    Parameters
    ----------
    density_map:
        The map, placed in the model's frame.
    model, elements:
        The fitted model and :func:`rnamotif_data.rna.elements.assign_elements` of it.
    config:
        Grid and labels.
    stats:
        The map's statistics (computed and cached on the map if omitted).

    Returns
    -------
    An iterator of :class:`LabelSlab`; the checks below run before it is returned.

    Raises
    ------
    NoRNAError
        The model has no nucleotide, or none of its nucleotide atoms lies in the map.
    ModelOutsideMapError
        More than ``config.max_fraction_outside`` of the model's heavy atoms lie outside
        the map's box.
    """
    from scipy.spatial import cKDTree  # here: importing the package needs no scipy

    _check_model_in_map(density_map, model, config)
    if stats is None:
        stats = density_map.statistics(config.normalise_percentile)
    grid = volume_grid(density_map, config.voxel_size)
    atoms = label_atoms(model, elements)
    tree = cKDTree(atoms.xyz)
    z_atoms = (atoms.xyz[:, 2] - grid.origin[2]) / grid.voxel_size
    order = np.argsort(z_atoms, kind="stable")
    return _slabs(density_map, grid, atoms, tree, z_atoms, order, config, stats)


def _slabs(density_map, grid: VolumeGrid, atoms: LabelAtoms, tree, z_atoms, order, config: VolumeConfig,
           stats: MapStatistics) -> Iterator[LabelSlab]:
    D, H, W = grid.shape
    reach = config.label_radius / grid.voxel_size
    z_sorted = z_atoms[order]
    for z0 in range(0, D, int(config.slab)):
        d = min(int(config.slab), D - z0)
        origin = grid.point((z0, 0, 0))
        raw, _ = density_map.sample_box(origin, (d, H, W), grid.voxel_size)
        density = normalise_density(raw, stats)
        del raw
        lo = np.searchsorted(z_sorted, z0 - reach, side="left")  # the atoms that can reach the slab
        hi = np.searchsorted(z_sorted, z0 + d - 1 + reach, side="right")
        near = order[lo:hi]
        slab = LabelSlab(z0=z0, density=density, element=np.zeros((d, H, W), np.uint8),
                         part=np.zeros((d, H, W), np.uint8), nucleotide=np.zeros((d, H, W), np.uint8),
                         instance=np.zeros((d, H, W), atoms.instance.dtype))
        if len(near):
            zone = within_radius((d, H, W), origin, grid.voxel_size, atoms.xyz[near], config.label_radius)
            flat = np.flatnonzero(zone)
            del zone
            k, j, i = np.unravel_index(flat, (d, H, W))
            points = np.asarray(origin) + np.stack([i, j, k], axis=1) * grid.voxel_size
            best = nearest_labels(points, tree, config.label_radius)
            hit = best >= 0
            flat, best = flat[hit], best[hit]
            for name in ("element", "part", "nucleotide", "instance"):
                getattr(slab, name).reshape(-1)[flat] = getattr(atoms, name)[best]
        yield slab


def label_volumes(density_map: DensityMap, model: Model, elements: ElementAssignment,
                  config: VolumeConfig = VolumeConfig(), *, stats: MapStatistics | None = None) -> LabelVolumes:
    """The whole map's volumes (:func:`iter_label_slabs` gathered): density and four label
    volumes of ``grid.shape``, 11 B per voxel of the 1 Å grid -- for small maps; a build
    should write :func:`iter_label_slabs`' slabs as they come. Raises what
    :func:`iter_label_slabs` raises."""
    if stats is None:
        stats = density_map.statistics(config.normalise_percentile)
    slabs = iter_label_slabs(density_map, model, elements, config, stats=stats)
    grid = volume_grid(density_map, config.voxel_size)
    dtype = instance_dtype(len(elements.instances))
    dtypes: dict[str, type] = {"density": np.float32, "element": np.uint8, "part": np.uint8,
                               "nucleotide": np.uint8, "instance": dtype}
    out: dict[str, np.ndarray] = {name: np.zeros(grid.shape, dt) for name, dt in dtypes.items()}
    for slab in slabs:
        for name, arr in out.items():
            part = getattr(slab, name)
            arr[slab.z0:slab.z0 + len(part)] = part
    return LabelVolumes(grid=grid, stats=stats, **out)


def _check_model_in_map(density_map: DensityMap, model: Model, config: VolumeConfig) -> None:
    atoms = model.atoms
    nt = atoms.nucleotide > 0
    if not nt.any():
        raise NoRNAError(f"{model.path}: the model has no RNA nucleotide; the map {density_map.path} "
                         "has nothing to label")
    inside = density_map.contains(atoms.xyz)
    outside = 1.0 - float(inside.mean())
    if outside > config.max_fraction_outside:
        lo = density_map.origin
        hi = density_map.index_to_world(np.asarray(density_map.shape, dtype=np.float64) - 1.0)
        raise ModelOutsideMapError(
            f"{model.path}: {outside:.0%} of the model's {len(atoms)} heavy atoms lie outside the map "
            f"{density_map.path} (box x-y-z {_fmt(lo)} to {_fmt(hi)} Å; allowed "
            f"{config.max_fraction_outside:.0%}): is it the map's model, placed in its frame?")
    if not inside[nt].any():
        raise NoRNAError(f"{density_map.path}: none of the {int(nt.sum())} nucleotide atoms of {model.path} "
                         "lies in the map; it has no RNA to label")


def check_tile_size(map_shape, tile, stride) -> tuple[int, int, int]:
    """Tiles per axis of a volume of ``map_shape`` cut into ``tile``-voxel tiles every
    ``stride`` voxels (Cryo2StructData: 32³ tiles; CryoREAD: 64³, stride 16).

    Tiles start at multiples of ``stride`` along each axis; there are
    ``ceil((n - tile) / stride) + 1`` per axis, the last one clipped at the map's edge
    unless ``n - tile`` is a multiple of ``stride``.

    Parameters
    ----------
    map_shape:
        ``(D, H, W)`` voxels of the volume (:attr:`VolumeGrid.shape`).
    tile, stride:
        Voxels, an int or ``(D, H, W)``.

    Returns
    -------
    ``(nz, ny, nx)`` tiles per axis.

    Raises
    ------
    TileSizeError
        A tile larger than the map along an axis, a size or stride below 1, or a stride
        larger than the tile (voxels between tiles would be skipped).
    """
    shape = tuple(int(n) for n in map_shape)
    t = tuple(int(v) for v in np.broadcast_to(np.asarray(tile), (3,)))
    s = tuple(int(v) for v in np.broadcast_to(np.asarray(stride), (3,)))
    if len(shape) != 3:
        raise TileSizeError(f"map shape must be (D, H, W), got {map_shape}")
    if min(t) < 1 or min(s) < 1:
        raise TileSizeError(f"tile {t} and stride {s} must be at least 1 voxel")
    if any(b > a for a, b in zip(t, s)):
        raise TileSizeError(f"stride {s} is larger than the tile {t}: voxels between tiles would be skipped")
    if any(a > n for a, n in zip(t, shape)):
        raise TileSizeError(f"tile {t} voxels is larger than the map's {shape} (z-y-x) voxels; "
                            "use a smaller tile")
    return tuple(-(-(n - a) // b) + 1 for n, a, b in zip(shape, t, s))  # type: ignore[return-value]


def _fmt(v) -> str:
    return "(" + ", ".join(f"{x:.1f}" for x in np.asarray(v)) + ")"
