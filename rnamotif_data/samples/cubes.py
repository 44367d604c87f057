"""Motif cubes: cutting a fixed-size, labelled density cube around one motif (:func:`cut_motif`).

For each motif (design §1 and §3):

1. the cube is centred on the centroid (unweighted mean) of the motif's heavy atoms,
   ``cube_size`` voxels of ``voxel_size`` Å along each axis;
2. raw density is trilinearly interpolated from the original map at the cube's points
   only (:meth:`DensityMap.sample_box`); points outside the map are zero (zero padding,
   never periodic wrap-around) and their fraction is reported;
3. density is normalised by the map's 95th percentile of positive voxels and clipped to
   [0, 1] (Cryo2StructData: Giri et al., Sci. Data 11:458, 2024;
   doi:10.1038/s41597-024-03299-9);
4. the zone is every voxel within ``zone_radius`` of a motif heavy atom (the upstream
   pipeline's ChimeraX ``volume zone``);
5. each voxel within ``label_radius`` of a labelled atom takes the label part and
   nucleotide id of the nearest such atom.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypeVar

import numpy as np

from rnamotif_data.em.maps import DensityMap, MapStatistics
from rnamotif_data.errors import ConfigError, MotifOutsideMapError, StructureError
from rnamotif_data.rna.labels import nearest_atom, nucleotide_id, within_radius
from rnamotif_data.rna.structure import AtomTable

__all__ = ["SegmentConfig", "MotifCube", "CubeLabels", "cut_motif", "cut_model_motif", "label_cube", "labelled_atoms",
           "cube_origin", "zone_crop", "atoms_key", "KeptResults"]

T = TypeVar("T")

_LABEL_SCOPES = ("motif", "all")


@dataclass(frozen=True)
class SegmentConfig:
    """Every preprocessing and labelling choice, with the design §3 defaults.

    Attributes
    ----------
    voxel_size:
        Cube voxel size in Å (Cryo2StructData convention: 1 Å).
    cube_size:
        Cube edge in voxels; the cube is ``(cube_size,) * 3``, z-y-x.
    zone_radius:
        Å; voxels within this distance of a motif heavy atom form the zone.
    label_radius:
        Å; a voxel takes the label of its nearest labelled atom within this distance.
    normalise_percentile:
        Percentile of the map's positive voxels that density is divided by.
    interpolation:
        Only ``"trilinear"`` is implemented.
    label_scope:
        ``"motif"`` labels the motif's atoms only (as upstream); ``"all"`` also labels
        every other nucleotide atom of the model that falls in the cube.
    modified_as_parent:
        Modified nucleotides take their parent's nucleotide id (``PSU`` -> U) if true,
        else "other" (5).
    max_fraction_atoms_outside:
        Largest fraction of motif heavy atoms allowed outside the map's box before
        :class:`MotifOutsideMapError` is raised.
    """

    voxel_size: float = 1.0
    cube_size: int = 40
    zone_radius: float = 5.0
    label_radius: float = 1.5
    normalise_percentile: float = 95.0
    interpolation: str = "trilinear"
    label_scope: str = "motif"
    modified_as_parent: bool = True
    max_fraction_atoms_outside: float = 0.0
    _version: int = field(default=1, repr=False)

    #: limits that keep one cube and its label work within memory (Å, voxels)
    MIN_VOXEL_SIZE = 0.2
    MAX_CUBE_SIZE = 256
    MAX_RADIUS = 50.0

    def __post_init__(self) -> None:
        import math

        for name in ("voxel_size", "zone_radius", "label_radius", "normalise_percentile"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {v}")
        if not self.voxel_size >= self.MIN_VOXEL_SIZE:
            raise ConfigError(f"voxel_size must be >= {self.MIN_VOXEL_SIZE} Å (cryo-EM maps are sampled at 0.3-7 Å), "
                              f"got {self.voxel_size:g}")
        if int(self.cube_size) != self.cube_size or not 2 <= self.cube_size <= self.MAX_CUBE_SIZE:
            raise ConfigError(f"cube_size must be an integer from 2 to {self.MAX_CUBE_SIZE} voxels, got {self.cube_size}")
        if self.zone_radius <= 0 or self.label_radius <= 0:
            raise ConfigError("zone_radius and label_radius must be > 0 Å")
        if self.zone_radius > self.MAX_RADIUS or self.label_radius > self.MAX_RADIUS:
            raise ConfigError(f"zone_radius {self.zone_radius:g} Å and label_radius {self.label_radius:g} Å must be "
                              f"at most {self.MAX_RADIUS:g} Å (a zone is a few Å around the motif's atoms)")
        if not 0 < self.normalise_percentile <= 100:
            raise ConfigError(
                f"normalise_percentile must be in (0, 100], got {self.normalise_percentile}"
            )
        if self.interpolation != "trilinear":
            raise ConfigError(f"interpolation {self.interpolation!r} is not implemented; use 'trilinear'")
        if self.label_scope not in _LABEL_SCOPES:
            raise ConfigError(f"label_scope must be one of {_LABEL_SCOPES}, got {self.label_scope!r}")
        if not 0 <= self.max_fraction_atoms_outside <= 1:
            raise ConfigError("max_fraction_atoms_outside must be in [0, 1]")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Cube shape ``(D, H, W)`` in voxels."""
        n = int(self.cube_size)
        return (n, n, n)

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every field (including the config format version)."""
        return asdict(self)

    def config_hash(self) -> str:
        """Stable sha256 (hex, first 16 characters) of the canonical JSON of the fields."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class MotifCube:
    """A segmented, labelled cube around one motif.

    Attributes
    ----------
    density:
        ``(D, H, W)`` float32, z-y-x, normalised to [0, 1], unmasked context.
    zone:
        ``(D, H, W)`` bool, voxels within ``zone_radius`` of a motif heavy atom.
    labels:
        ``(D, H, W)`` uint8 label parts (0 none, 1 backbone, 2 sugar, 3 base).
    nucleotide:
        ``(D, H, W)`` uint8 nucleotide ids (0 none, 1 A, 2 C, 3 G, 4 U, 5 other).
    origin:
        ``(3,)`` world position (Å, x-y-z) of voxel ``[0, 0, 0]``.
    voxel_size:
        Å (isotropic).
    centroid:
        ``(3,)`` motif heavy-atom centroid, Å, x-y-z (the cube's centre).
    fraction_outside:
        Fraction of cube voxels outside the map (zero-padded).
    n_atoms:
        Number of motif heavy atoms.
    """

    density: np.ndarray
    zone: np.ndarray
    labels: np.ndarray
    nucleotide: np.ndarray
    origin: np.ndarray
    voxel_size: float
    centroid: np.ndarray
    fraction_outside: float
    n_atoms: int


@dataclass(frozen=True, eq=False)
class CubeLabels:
    """The part of a motif cube that no map changes (:func:`label_cube`): where the cube
    sits, its zone and its labels, all from the motif's atoms and the config alone.

    Attributes
    ----------
    origin, centroid:
        ``(3,)`` Å, x-y-z, as in :class:`MotifCube`.
    zone, labels, nucleotide:
        ``(D, H, W)`` z-y-x, as in :class:`MotifCube`.
    n_atoms:
        Number of motif heavy atoms.
    """

    origin: np.ndarray
    centroid: np.ndarray
    zone: np.ndarray
    labels: np.ndarray
    nucleotide: np.ndarray
    n_atoms: int

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays."""
        return sum(a.nbytes for a in (self.origin, self.centroid, self.zone, self.labels, self.nucleotide))


def label_cube(motif: AtomTable, config: SegmentConfig = SegmentConfig(), *, context: AtomTable | None = None,
               description: str = "motif") -> CubeLabels:
    """Place the cube of one motif and paint its zone and labels (steps 1, 4 and 5 of the
    module docstring); no map is read, so one model's motifs are labelled once for every
    map the model is fitted to (a cryoDRGN ensemble).

    Parameters are those of :func:`cut_motif`. Raises ``StructureError`` for a motif without
    atoms, ``ConfigError`` for ``label_scope="all"`` without ``context``.
    """
    if len(motif) == 0:
        raise StructureError(f"{description}: motif has no heavy atoms")
    centroid = motif.xyz.mean(axis=0)
    origin = cube_origin(centroid, config)
    shape = config.shape
    zone = within_radius(shape, origin, config.voxel_size, motif.xyz, config.zone_radius)
    labelled, keep, idx = labelled_atoms(shape, origin, motif, config, context, description)
    part = np.concatenate([[0], labelled.part[keep]]).astype(np.uint8)
    nuc_ids = labelled.nucleotide[keep]
    if not config.modified_as_parent:
        nuc_ids = _modified_as_other(labelled, keep)
    nuc = np.concatenate([[0], nuc_ids]).astype(np.uint8)
    return CubeLabels(origin=origin, centroid=centroid, zone=zone, labels=part[idx + 1], nucleotide=nuc[idx + 1],
                      n_atoms=len(motif))


def cube_origin(centroid: np.ndarray, config: SegmentConfig) -> np.ndarray:
    """World position (Å, x-y-z) of voxel ``[0, 0, 0]`` of the cube centred on ``centroid``.

    The cube's centre, ``origin + (cube_size - 1) / 2 * voxel_size``, equals the centroid
    exactly (for an even cube size it lies between the two middle voxels).
    """
    return np.asarray(centroid, dtype=np.float64) - (config.cube_size - 1) / 2.0 * config.voxel_size


def cut_motif(
    density_map: DensityMap,
    motif: AtomTable,
    config: SegmentConfig = SegmentConfig(),
    *,
    context: AtomTable | None = None,
    stats: MapStatistics | None = None,
    description: str = "motif",
    labels: CubeLabels | None = None,
) -> MotifCube:
    """Cut, normalise and label the cube around one motif.

    Parameters
    ----------
    density_map:
        The entry's map, placed in the model's frame.
    motif:
        Heavy atoms of the motif's residues (:meth:`Model.select`).
    config:
        Preprocessing choices.
    context:
        All atoms of the model; required when ``config.label_scope == "all"``.
    stats:
        Precomputed map statistics (computed and cached on the map if omitted).
    description:
        Names the motif in error messages (e.g. ``"6PJ6 J:85-91"``).
    labels:
        :func:`label_cube` of this motif, config and context, if already made (another
        map of the same model); made here if omitted.

    Returns
    -------
    MotifCube

    Raises
    ------
    MotifOutsideMapError
        If more than ``config.max_fraction_atoms_outside`` of the motif's atoms lie
        outside the map's box; the message names the map and the motif.
    StructureError, ConfigError
        If the motif has no atoms, or ``label_scope == "all"`` without ``context``.
    """
    if len(motif) == 0:
        raise StructureError(f"{description}: motif has no heavy atoms")
    inside = density_map.contains(motif.xyz)
    frac_out = 1.0 - float(inside.mean())
    if frac_out > config.max_fraction_atoms_outside:
        raise MotifOutsideMapError(
            f"{density_map.path}: {int((~inside).sum())} of {len(motif)} atoms of "
            f"{description} lie outside the map box "
            f"(x-y-z {_fmt(density_map.origin)} to "
            f"{_fmt(density_map.index_to_world(np.asarray(density_map.shape) - 1.0))} Å)"
        )
    if stats is None:
        stats = density_map.statistics(config.normalise_percentile)
    if labels is None:
        labels = label_cube(motif, config, context=context, description=description)
    raw, fraction_outside = density_map.sample_box(labels.origin, config.shape, config.voxel_size)
    density = np.clip(raw / np.float32(stats.percentile_value), 0.0, 1.0).astype(np.float32)
    return MotifCube(
        density=density,
        zone=labels.zone,
        labels=labels.labels,
        nucleotide=labels.nucleotide,
        origin=labels.origin,
        voxel_size=float(config.voxel_size),
        centroid=labels.centroid,
        fraction_outside=float(fraction_outside),
        n_atoms=labels.n_atoms,
    )


def atoms_key(xyz: np.ndarray) -> bytes:
    """Key of a set of atoms of one model: the BLAKE2b digest of their coordinates
    (``(N, 3)`` Å, in order) and their count; within one model it names the atoms and
    their order."""
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    return hashlib.blake2b(xyz.tobytes(), digest_size=16).digest() + len(xyz).to_bytes(4, "little")


class KeptResults(Protocol):
    """Where results that depend on one model alone are kept between its maps (the
    build's per-model memo): ``get(key, make)`` returns the value kept under ``key`` or
    ``make()``."""

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value kept under ``key``, or ``make()``."""
        ...


def cut_model_motif(density_map: DensityMap, motif: AtomTable, config: SegmentConfig, *, model_atoms: AtomTable,
                    stats: MapStatistics | None = None, description: str = "motif",
                    kept: KeptResults | None = None) -> MotifCube:
    """:func:`cut_motif` of ``motif``, a set of atoms of the model whose atoms are
    ``model_atoms`` (the labels' context); with ``kept``, the cube's labels
    (:func:`label_cube`, which depend on the model alone) are taken from it under
    ``("cube", atoms_key(motif.xyz), config)``, or made and offered to it. Raises what
    :func:`cut_motif` raises."""
    labels = None if kept is None else kept.get(
        ("cube", atoms_key(motif.xyz), config),
        lambda: label_cube(motif, config, context=model_atoms, description=description))
    return cut_motif(density_map, motif, config, context=model_atoms, stats=stats, description=description,
                     labels=labels)


def labelled_atoms(shape: tuple[int, int, int], origin: np.ndarray, motif: AtomTable, config: SegmentConfig,
                   context: AtomTable | None = None, description: str = "motif") -> tuple[AtomTable, np.ndarray, np.ndarray]:
    """The atoms that label a cube and each voxel's nearest one: ``(labelled, keep, index)``.

    ``labelled`` is ``motif`` (``label_scope="motif"``) or ``context`` (``"all"``); ``keep``
    ``(N,)`` bool marks its atoms with a label part; ``index`` ``(D, H, W)`` int64 is the
    nearest kept atom within ``label_radius`` of each voxel (an index into the kept atoms,
    -1 for none; :func:`rnamotif_data.rna.labels.nearest_atom`). ``origin`` is voxel
    ``[0, 0, 0]`` in Å (x-y-z). :func:`cut_motif` paints ``labels`` and ``nucleotide`` from
    it; the sequence features paint residue slots from it, so both mark the same voxels.

    Raises
    ------
    ConfigError
        For ``label_scope="all"`` without ``context``.
    """
    if config.label_scope == "all":
        if context is None:
            raise ConfigError(f"{description}: label_scope='all' needs the model's atoms as context")
        labelled = context
    else:
        labelled = motif
    keep = labelled.part > 0
    idx, _ = nearest_atom(shape, origin, config.voxel_size, labelled.xyz[keep], config.label_radius)
    return labelled, keep, idx


def _modified_as_other(atoms: AtomTable, keep: np.ndarray) -> np.ndarray:
    per_res = np.array(
        [nucleotide_id(n, modified_as_parent=False) for n in atoms.residue_names], dtype=np.uint8
    )
    return per_res[atoms.residue_index[keep]]


def _fmt(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.1f}" for x in np.asarray(v)) + ")"


def zone_crop(density_map: DensityMap, atom_xyz: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Upstream-style masked map: map voxels within ``radius`` of the atoms, on the original grid.

    Reproduces the upstream pipeline's ChimeraX ``volume zone`` + crop: voxels of the
    original map whose centre lies within ``radius`` Å of any atom keep their raw value,
    all others are zero, and the array is cropped to the zone's bounding box. No
    resampling and no normalisation.

    Parameters
    ----------
    density_map:
        The map.
    atom_xyz:
        ``(N, 3)`` atoms, Å, x-y-z.
    radius:
        Zone radius in Å.

    Returns
    -------
    data:
        ``(d, h, w)`` float32 raw values, z-y-x, on the map's own voxel size.
    origin:
        ``(3,)`` world position (Å, x-y-z) of ``data[0, 0, 0]``.

    Raises
    ------
    MotifOutsideMapError
        If no map voxel lies within ``radius`` of the atoms.
    """
    idx = density_map.world_to_index(np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3))
    reach = radius / density_map.voxel_size[::-1]
    lo = np.maximum(np.floor(idx.min(axis=0) - reach).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(axis=0) + reach).astype(int) + 1, np.asarray(density_map.shape))
    if np.any(hi <= lo):
        raise MotifOutsideMapError(f"{density_map.path}: no voxel lies within {radius} Å of the motif")
    sub_origin = density_map.index_to_world(lo.astype(np.float64))
    zone = within_radius(tuple(hi - lo), sub_origin, density_map.voxel_size, atom_xyz, radius)
    if not zone.any():
        raise MotifOutsideMapError(f"{density_map.path}: no voxel lies within {radius} Å of the motif")
    nz = [np.nonzero(zone.any(axis=tuple(a for a in range(3) if a != ax)))[0] for ax in range(3)]
    c0 = np.array([n[0] for n in nz])
    c1 = np.array([n[-1] + 1 for n in nz])
    sl = tuple(slice(lo[a] + c0[a], lo[a] + c1[a]) for a in range(3))
    zsl = tuple(slice(c0[a], c1[a]) for a in range(3))
    data = np.where(zone[zsl], density_map.data[sl], np.float32(0.0)).astype(np.float32)
    return data, density_map.index_to_world((lo + c0).astype(np.float64))

