"""Background ("unknown") sites: map regions away from every listed motif.

The upstream dataset's "unknown" class was random cubes of the map, which a classifier
separates from motifs by their emptiness alone. Here a background site looks like a motif
sample: it is centred on modelled structure (an RNA stem, protein, other RNA) or, where
the model has none, on unmodelled density, and it has its own zone, so masked inputs of
both kinds are alike.

Algorithm (deterministic given ``BackgroundConfig.seed`` and the entry's key):

1. **Atom candidates**: the centroid of each residue of the model (any polymer), kept when
   it lies at least ``min_distance`` Å from every atom of every listed motif of the entry
   and at least ``central_radius`` Å inside the map box.
2. **Density candidates**: points of a grid with ``spacing`` Å steps inside the map box,
   kept when the interpolated density there exceeds the map's mean +
   ``density_threshold_sd`` × sd, no model atom lies within ``central_radius`` Å (so they
   are unmodelled density) and they are ``min_distance`` Å from every motif atom.
3. Candidates are shuffled with a seeded generator (atom candidates first, then density
   candidates) and taken greedily, skipping any within ``spacing`` Å of a site already
   taken, until ``n`` sites are chosen.
4. A site's **zone atoms** are the model's heavy atoms within ``central_radius`` Å of its
   centre (atom sites), or the map's voxel centres within ``central_radius`` Å whose
   density exceeds the threshold (density sites, as pseudo-atoms without labels).

Because ``min_distance`` must exceed ``central_radius``, no atom of a listed motif is a
zone atom of a background site.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from .errors import ConfigError
from .maps import DensityMap, MapStatistics
from .structure import AtomTable, ResidueId

__all__ = ["BackgroundConfig", "BackgroundSite", "background_count", "select_background_sites"]


@dataclass(frozen=True)
class BackgroundConfig:
    """How background ("unknown") sites are chosen.

    Attributes
    ----------
    per_entry:
        Sites per entry; ``None`` chooses ``ceil(n_motifs / 4)`` for an entry with
        ``n_motifs`` listed motifs, so the unknown class is about as large as each of the
        four motif classes. ``0`` disables background samples.
    min_distance:
        Å; a site's centre is at least this far from every listed motif atom.
    central_radius:
        Å; model atoms within this distance of the centre form the site's zone atoms.
    spacing:
        Å; minimum distance between two sites' centres, and the step of the density
        candidate grid.
    density_threshold_sd:
        Density candidates need map value > mean + this × sd at their centre.
    seed:
        Seed of the candidate shuffle (combined with the entry's key).
    """

    per_entry: int | None = None
    min_distance: float = 12.0
    central_radius: float = 6.0
    spacing: float = 10.0
    density_threshold_sd: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.per_entry is not None and (int(self.per_entry) != self.per_entry or self.per_entry < 0):
            raise ConfigError(f"background per_entry must be None or an integer >= 0, got {self.per_entry}")
        if self.central_radius <= 0 or self.spacing <= 0:
            raise ConfigError("background central_radius and spacing must be > 0 Å")
        if self.min_distance <= self.central_radius:
            raise ConfigError(
                f"background min_distance ({self.min_distance} Å) must exceed central_radius "
                f"({self.central_radius} Å), or motif atoms could enter a background zone"
            )

    def to_dict(self) -> dict:
        """JSON-serialisable dict of the fields."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class BackgroundSite:
    """One background site.

    Attributes
    ----------
    centre:
        ``(3,)`` Å, x-y-z, model frame.
    kind:
        ``"atoms"`` (modelled structure) or ``"density"`` (unmodelled density).
    atoms:
        The site's zone atoms as an :class:`AtomTable` (pseudo-atoms with label part 0
        and nucleotide id 0 for density sites).
    """

    centre: np.ndarray
    kind: str
    atoms: AtomTable


def background_count(n_motifs: int, config: BackgroundConfig) -> int:
    """Number of background sites wanted for an entry with ``n_motifs`` listed motifs."""
    if config.per_entry is not None:
        return int(config.per_entry)
    return int(math.ceil(n_motifs / 4))


def _seed(config: BackgroundConfig, key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{config.seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _inside(density_map: DensityMap, xyz: np.ndarray, margin: float) -> np.ndarray:
    idx = density_map.world_to_index(xyz)  # z-y-x
    m = margin / density_map.voxel_size[::-1]
    hi = np.asarray(density_map.shape) - 1.0 - m
    return np.all((idx >= m) & (idx <= hi), axis=1)


def _pseudo_atoms(xyz: np.ndarray) -> AtomTable:
    n = len(xyz)
    return AtomTable(
        xyz=np.asarray(xyz, dtype=np.float64).reshape(-1, 3),
        element=np.full(n, "X"), atom_name=np.full(n, "X"),
        residue_index=np.zeros(n, dtype=np.int32),
        part=np.zeros(n, dtype=np.uint8), nucleotide=np.zeros(n, dtype=np.uint8),
        residues=(ResidueId("?", 0, ""),), residue_names=("UNK",),
    )


def select_background_sites(
    density_map: DensityMap,
    atoms: AtomTable,
    motif_xyz: np.ndarray,
    n: int,
    config: BackgroundConfig = BackgroundConfig(),
    *,
    stats: MapStatistics | None = None,
    key: str = "",
) -> list[BackgroundSite]:
    """Choose up to ``n`` background sites of one entry (algorithm in the module docstring).

    Parameters
    ----------
    density_map:
        The entry's map, placed in the model's frame.
    atoms:
        Every heavy atom of the model (:attr:`Model.atoms`).
    motif_xyz:
        ``(M, 3)`` Å, x-y-z: the atoms of every listed motif of the entry.
    n:
        Sites wanted; fewer are returned when the entry has fewer candidates.
    config:
        Distances, threshold and seed.
    stats:
        Precomputed map statistics (mean and sd are used).
    key:
        Entry key (e.g. ``"6PJ6/EMD-20353"``) mixed into the seed, so entries differ but
        each is reproducible.

    Returns
    -------
    list of :class:`BackgroundSite`, in the order chosen.
    """
    if n <= 0:
        return []
    stats = stats or density_map.statistics()
    motif_tree = cKDTree(np.asarray(motif_xyz, dtype=np.float64).reshape(-1, 3)) if len(motif_xyz) else None

    def far_from_motifs(pts: np.ndarray) -> np.ndarray:
        if motif_tree is None or len(pts) == 0:
            return np.ones(len(pts), dtype=bool)
        d, _ = motif_tree.query(pts, k=1)
        return d >= config.min_distance

    rng = _seed(config, key)
    # 1. atom candidates: residue centroids
    atom_tree = cKDTree(atoms.xyz) if len(atoms) else None
    if len(atoms):
        n_res = len(atoms.residues)
        sums = np.zeros((n_res, 3))
        np.add.at(sums, atoms.residue_index, atoms.xyz)
        counts = np.bincount(atoms.residue_index, minlength=n_res)
        present = counts > 0
        cent = sums[present] / counts[present, None]
        ok = far_from_motifs(cent) & _inside(density_map, cent, config.central_radius)
        atom_cands = cent[ok][rng.permutation(int(ok.sum()))]
    else:
        atom_cands = np.zeros((0, 3))
    # 2. density candidates: coarse grid over the map box
    lo = density_map.index_to_world(np.zeros(3))
    hi = density_map.index_to_world(np.asarray(density_map.shape, dtype=np.float64) - 1.0)
    axes = [np.arange(lo[a] + config.central_radius, hi[a] - config.central_radius + 1e-9, config.spacing)
            for a in range(3)]
    if all(len(ax) for ax in axes):
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        threshold = stats.mean + config.density_threshold_sd * stats.sd
        ok = density_map.interpolate(grid) > threshold
        grid = grid[ok]
        if atom_tree is not None and len(grid):
            d, _ = atom_tree.query(grid, k=1)
            grid = grid[d > config.central_radius]
        grid = grid[far_from_motifs(grid)]
        dens_cands = grid[rng.permutation(len(grid))]
    else:
        dens_cands = np.zeros((0, 3))
        threshold = np.inf

    chosen: list[BackgroundSite] = []
    centres: list[np.ndarray] = []
    for kind, cands in (("atoms", atom_cands), ("density", dens_cands)):
        for c in cands:
            if len(chosen) >= n:
                return chosen
            if centres and np.min(np.linalg.norm(np.asarray(centres) - c, axis=1)) < config.spacing:
                continue
            if kind == "atoms":
                rows = np.sort(np.asarray(atom_tree.query_ball_point(c, config.central_radius), dtype=np.int64))
                if rows.size == 0:
                    continue
                site_atoms = atoms.take(rows)
            else:
                site_atoms = _density_points(density_map, c, config.central_radius, threshold)
                if site_atoms is None:
                    continue
            chosen.append(BackgroundSite(centre=np.asarray(c, dtype=np.float64), kind=kind, atoms=site_atoms))
            centres.append(c)
    return chosen


def _density_points(density_map: DensityMap, centre: np.ndarray, radius: float, threshold: float) -> AtomTable | None:
    idx = density_map.world_to_index(centre[None, :])[0]
    reach = radius / density_map.voxel_size[::-1]
    lo = np.maximum(np.floor(idx - reach).astype(int), 0)
    hi = np.minimum(np.ceil(idx + reach).astype(int) + 1, np.asarray(density_map.shape))
    zz, yy, xx = np.meshgrid(*[np.arange(lo[a], hi[a]) for a in range(3)], indexing="ij")
    ijk = np.stack([zz, yy, xx], axis=-1).reshape(-1, 3)
    xyz = density_map.index_to_world(ijk.astype(np.float64))
    vals = density_map.data[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
    keep = (np.linalg.norm(xyz - centre, axis=1) <= radius) & (vals > threshold)
    if not keep.any():
        return None
    return _pseudo_atoms(xyz[keep])
