"""Background ("unknown") samples: real structure that is not a listed motif, shaped like one.

The upstream dataset's "unknown" class was random cubes of the map; our first release
used the atoms within 6 Å of one residue. Both are separable from motifs without any
structure (emptiness; zone size: 2,400-3,900 zone voxels against 5,800-10,000). Here a
background sample is chosen so that nothing but structure tells it apart:

* **Same shape.** Each sample copies the layout (strand count and strand lengths,
  nucleotides per strand) of one of the entry's kept motifs, drawn at random, and of the
  candidates with that layout takes the one closest to that motif in radius of gyration,
  heavy-atom count, distance from the model's centre and zone volume (Å³ within 5 Å of
  the atoms); so nucleotide and atom counts, compactness
  (and with them the zone size) and position follow the motifs', entry by entry, and the
  whole class follows the store's motifs. Without kept motifs the layout is drawn from
  the manifest's motifs (:class:`ShapeDistribution`).
* **Same zoning and centring.** Given the segment config, the selection cuts each
  candidate with the same call as a motif (:func:`rnamotif_data.samples.cubes.cut_model_motif`,
  model atoms within the zone radius of the selected residues, cube centred on their
  centroid); a candidate that cannot be cut is not taken, and a site carries its cube.
* **Same placement criterion.** Given :class:`~rnamotif_data.samples.rules.PlacementRules`,
  the selection applies the per-motif placement check
  (:func:`~rnamotif_data.samples.rules.check_placement`: fit_z, fraction of atoms above
  1 sd), so background does not sit in empty density any more than motifs do.
* **Away from every listed motif.** No heavy atom of a chosen residue is within
  ``min_distance`` Å of a heavy atom of a listed motif of the entry.

Kinds (``BackgroundConfig.kinds``, tried in the order given; recorded in the metadata
column ``background_kind``):

``stem``
    Helical stems. Residues are paired by a geometric Watson-Crick criterion: the base's
    N1 (purines, A/G) and N3 (pyrimidines, C/U) of two residues within ``pair_distance``
    Å (2.8-3.0 Å in Watson-Crick and G·U pairs; the standard hydrogen-bond distance cut-off
    of 3.4-3.5 Å, e.g. Leontis & Westhof 2001, RNA 7:499, DOI 10.1017/S1355838201002515).
    A one-strand shape is a run of consecutive, covalently linked residues that are all
    paired, none with each other (one strand of a helix, never a closed loop); a two-strand
    shape is two such runs whose ends pair (strand 1 starts where strand 2 ends, like a
    loop's closing pair), so the sample is a stretch of double helix.
``rna``
    Other RNA stretches: the same runs without the pairing requirement (two-strand shapes:
    runs whose end residues' C1' atoms are within ``neighbour_distance`` Å).
``protein``
    Runs of linked amino-acid residues with as many residues as the drawn shape has
    nucleotides (optional; only for entries with protein).
``density``
    Unmodelled density: map voxels above mean + ``density_threshold_sd`` sd within
    ``density_radius`` Å of a grid point away from every model atom, as pseudo-atoms
    (optional; these are the only samples whose zone is not made of model atoms).

Residue links: O3'-P ≤ 2.0 Å (nucleotides) or C-N ≤ 2.0 Å (amino acids), so a run never
spans an unmodelled gap. Chosen samples share no residue, and their centroids are at
least ``spacing`` Å apart.

Deterministic: one :class:`numpy.random.Generator` per entry, seeded by
``BackgroundConfig.seed`` and the entry key; the same inputs give the same samples.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from rnamotif_data.em.maps import DensityMap, MapStatistics
from rnamotif_data.errors import ConfigError
from rnamotif_data.rna.motifs import strand_lengths
from rnamotif_data.rna.structure import AtomTable, Model, ResidueId
from rnamotif_data.samples.candidates import Residues, candidates
from rnamotif_data.samples.cubes import KeptResults, MotifCube, SegmentConfig, cut_model_motif
from rnamotif_data.samples.rules import PlacementRules, check_placement

__all__ = ["BackgroundConfig", "BackgroundPool", "BackgroundSite", "KINDS", "ShapeDistribution", "background_count",
           "background_pool", "select_background_sites"]

KINDS = ("stem", "rna", "protein", "density")


@dataclass(frozen=True)
class BackgroundConfig:
    """How background ("unknown") samples are chosen (module docstring).

    Attributes
    ----------
    per_entry:
        Samples per entry; ``None`` chooses ``ceil(n_motifs / 4)`` for an entry with
        ``n_motifs`` motif samples, so the unknown class is about as large as each of the
        four motif classes. ``0`` disables background samples.
    kinds:
        Comma-separated kinds in order of preference (:data:`KINDS`); a later kind is used
        only when the earlier ones run out of candidates.
    min_distance:
        Å; no heavy atom of a background residue lies closer than this to a heavy atom of
        a listed motif, so with the default 5 Å (the zone radius) no motif atom is inside a
        background sample's zone.
    pair_distance:
        Å; N1/N3 distance of a Watson-Crick-paired residue pair (kind ``stem``).
    neighbour_distance:
        Å; C1'-C1' distance of the end residues of the two strands of a two-strand ``rna``
        sample.
    spacing:
        Å; minimum distance between the centroids of two background samples.
    density_radius, density_threshold_sd:
        Kind ``density``: radius (Å) of a site and the density threshold (map mean + this
        × sd).
    max_tries:
        Candidates tried (placement checks) per sample before a kind is given up.
    seed:
        Seed (combined with the entry key).
    """

    per_entry: int | None = None
    kinds: str = "stem,rna"
    min_distance: float = 5.0
    pair_distance: float = 3.4
    neighbour_distance: float = 12.0
    spacing: float = 10.0
    density_radius: float = 6.0
    density_threshold_sd: float = 1.0
    max_tries: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.per_entry is not None and (int(self.per_entry) != self.per_entry or self.per_entry < 0):
            raise ConfigError(f"background per_entry must be None or an integer >= 0, got {self.per_entry}")
        bad = [k for k in self.kind_list if k not in KINDS]
        if bad or not self.kind_list:
            raise ConfigError(f"background kinds {self.kinds!r}: choose from {', '.join(KINDS)} (comma-separated)")
        for name in ("min_distance", "pair_distance", "neighbour_distance", "spacing", "density_radius"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"background {name} must be a finite number > 0 Å, got {v}")
        if int(self.max_tries) != self.max_tries or self.max_tries < 1:
            raise ConfigError(f"background max_tries must be an integer >= 1, got {self.max_tries}")

    @property
    def kind_list(self) -> tuple[str, ...]:
        """``kinds`` as a tuple."""
        return tuple(k.strip() for k in str(self.kinds).split(",") if k.strip())

    def to_dict(self) -> dict:
        """JSON-serialisable dict of the fields."""
        return asdict(self)


@dataclass(frozen=True)
class ShapeDistribution:
    """Strand layouts of a store's listed motifs, with their counts.

    Attributes
    ----------
    shapes:
        ``((lengths, count), ...)``: ``lengths`` is a sorted tuple of strand lengths
        (nucleotides, closing pairs included; :func:`rnamotif_data.rna.motifs.strand_lengths`).
    """

    shapes: tuple[tuple[tuple[int, ...], int], ...]

    @classmethod
    def from_types(cls, motif_types) -> "ShapeDistribution":
        """The distribution of the given fine types (``unknown`` and unparsable types skipped)."""
        counts: dict[tuple[int, ...], int] = {}
        for t in motif_types:
            try:
                lengths = strand_lengths(str(t))
            except Exception:  # noqa: BLE001 - 'unknown' or a type validation reports elsewhere
                continue
            counts[lengths] = counts.get(lengths, 0) + 1
        return cls(tuple(sorted(counts.items())))

    def draw(self, rng: np.random.Generator) -> tuple[int, ...]:
        """One layout, with probability proportional to its count; strand order random."""
        weights = np.array([c for _, c in self.shapes], dtype=np.float64)
        lengths = self.shapes[int(rng.choice(len(self.shapes), p=weights / weights.sum()))][0]
        return tuple(lengths) if len(lengths) < 2 or rng.random() < 0.5 else tuple(reversed(lengths))


@dataclass(frozen=True, eq=False)
class BackgroundSite:
    """One background sample.

    Attributes
    ----------
    kind:
        One of :data:`KINDS`.
    residue_indices:
        ``(R,)`` indices into the model's residues, strands in model order (empty for
        ``density``).
    strands:
        Strand lengths in model order (``()`` for ``density``).
    atoms:
        The sample's atoms (:meth:`AtomTable.subset` of ``residue_indices``; pseudo-atoms
        for ``density``).
    cube:
        Its cube, when the selection cut it to test it (modelled kinds, with a segment
        config); None otherwise.
    """

    kind: str
    residue_indices: np.ndarray
    strands: tuple[int, ...]
    atoms: AtomTable
    cube: MotifCube | None = None

    @cached_property
    def centre(self) -> np.ndarray:
        """``(3,)`` Å, x-y-z: the heavy-atom centroid (computed once)."""
        return self.atoms.xyz.mean(axis=0)


def background_count(n_motifs: int, config: BackgroundConfig) -> int:
    """Number of background samples wanted for an entry with ``n_motifs`` motif samples."""
    if config.per_entry is not None:
        return int(config.per_entry)
    return int(math.ceil(n_motifs / 4))


def _rng(config: BackgroundConfig, key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{config.seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def select_background_sites(
    model: Model,
    density_map: DensityMap,
    motif_xyz: np.ndarray,
    n: int,
    shapes: ShapeDistribution,
    config: BackgroundConfig = BackgroundConfig(),
    *,
    placement: PlacementRules | None = None,
    segment: SegmentConfig | None = None,
    kept: KeptResults | None = None,
    targets: list[tuple[tuple[int, ...], np.ndarray]] | None = None,
    stats: MapStatistics | None = None,
    key: str = "",
    pool: BackgroundPool | None = None,
) -> list[BackgroundSite]:
    """Choose up to ``n`` background samples of one entry (algorithm in the module docstring).

    Parameters
    ----------
    model:
        The entry's model.
    density_map:
        The entry's map, placed in the model's frame (kind ``density`` only).
    motif_xyz:
        ``(M, 3)`` Å, x-y-z: the heavy atoms of every listed motif of the entry (all rows
        that resolved, whether or not they were kept).
    n:
        Samples wanted; fewer are returned when the entry runs out of candidates.
    shapes:
        Strand layouts to draw from (the store's listed motifs). An empty distribution
        gives no samples.
    config:
        Kinds, distances and seed.
    placement:
        The per-motif placement rules a candidate must pass in ``density_map``
        (:func:`~rnamotif_data.samples.rules.check_placement` with ``stats``); None: no
        placement check.
    segment:
        Cube config: a candidate is cut
        (:func:`~rnamotif_data.samples.cubes.cut_model_motif`, the model's atoms as context)
        and refused when that fails; a chosen site carries its cube. None: not cut.
    kept:
        The model's kept cube labels (another map of the same model), passed to
        :func:`~rnamotif_data.samples.cubes.cut_model_motif`; None: labels made afresh.
    targets:
        The entry's kept motifs as ``(strand lengths, (R,) residue indices)`` into the
        model's residues (their heavy atoms are the motif's). When
        given, each sample copies the layout of a motif drawn from them and takes the
        candidate closest to it in radius of gyration, heavy-atom count and distance from
        the centroid of the model's nucleotides (relative differences summed), so compactness -- and
        with it zone size -- and position follow the entry's motifs. Without targets the
        layout is drawn from ``shapes`` and candidates are taken in random order.
    stats:
        Map statistics (kind ``density``).
    key:
        Entry key mixed into the seed (e.g. ``"6PJ6/EMD-20353"``).
    pool:
        :func:`background_pool` of this ``model``, ``motif_xyz`` and ``config``, when one
        was made for an earlier map of the model (it is a pure function of them); made
        here if omitted.

    Returns
    -------
    list of :class:`BackgroundSite` in the order chosen.
    """
    if n <= 0 or not (shapes.shapes or targets):
        return []
    rng = _rng(config, key)
    pool = pool or background_pool(model, motif_xyz, config)
    check = _SiteCheck(density_map, model.atoms, stats, placement, segment, kept)
    chosen = _modelled_sites(model, pool, n, shapes, list(targets or ()), check, rng)
    if "density" in config.kind_list and len(chosen) < n:
        chosen += _density_sites(density_map, model, motif_xyz, n - len(chosen), config, stats, rng, chosen)
    return chosen


@dataclass(frozen=True, eq=False)
class _SiteCheck:
    """What a modelled candidate must pass (:func:`select_background_sites`'s ``placement``
    and ``segment``); called with its atoms, gives ``(taken, its cube or None)``."""

    density_map: DensityMap
    model_atoms: AtomTable
    stats: MapStatistics | None
    placement: PlacementRules | None
    segment: SegmentConfig | None
    kept: KeptResults | None

    @cached_property
    def placement_stats(self) -> MapStatistics:
        return self.stats if self.stats is not None else self.density_map.statistics()

    def __call__(self, atoms: AtomTable) -> tuple[bool, MotifCube | None]:
        try:
            if self.placement is not None:
                check_placement(self.density_map, atoms, self.placement_stats, self.placement, "background")
            cube = None if self.segment is None else cut_model_motif(
                self.density_map, atoms, self.segment, model_atoms=self.model_atoms, stats=self.stats,
                description="background", kept=self.kept)
        except Exception:  # noqa: BLE001 - a candidate that fails a check is simply not taken
            return False, None
        return True, cube


def _modelled_sites(model: Model, pool: BackgroundPool, n: int, shapes: ShapeDistribution,
                    targets: list[tuple[tuple[int, ...], np.ndarray]], check: _SiteCheck,
                    rng: np.random.Generator) -> list[BackgroundSite]:
    """Up to ``n`` sites of the modelled kinds: one layout (and target) drawn per sample,
    then the pool's best candidate for it (:meth:`BackgroundPool.best`)."""
    config = pool.config
    used = np.zeros(pool.res.n, dtype=bool)
    chosen: list[BackgroundSite] = []
    kinds = [k for k in config.kind_list if k != "density"]
    wanted: dict[int, tuple] = {}  # a target's shape and zone volume, when it is first drawn

    def target(i: int) -> tuple[tuple[int, ...], tuple]:
        if i not in wanted:
            residue_indices = np.asarray(targets[i][1], dtype=np.int64)
            xyz = model.atoms.xyz[model.atoms.residue_rows(residue_indices)]
            wanted[i] = (*_shape_of(xyz, pool.centre), pool.zone_volume(residue_indices))
        return tuple(targets[i][0]), wanted[i]

    misses = 0
    # one layout (and target) per sample, drawn before the kind, so layouts that are hard to
    # place are not replaced by easy (small) ones
    while kinds and len(chosen) < n and misses < config.max_tries:
        if targets:
            lengths, want = target(int(rng.integers(len(targets))))
            if len(lengths) == 2 and rng.random() < 0.5:
                lengths = lengths[::-1]
        else:
            lengths, want = shapes.draw(rng), None
        site = pool.best(kinds, lengths, want, used, chosen, check, rng)
        if site is None:
            misses += 1
            continue
        chosen.append(site)
        used[site.residue_indices] = True
    return chosen


def _shape_of(xyz: np.ndarray, centre: np.ndarray) -> tuple[float, float, float]:
    """(radius of gyration Å, distance of the centroid from ``centre`` Å, heavy atoms)."""
    c = xyz.mean(axis=0)
    return (float(np.sqrt(((xyz - c) ** 2).sum(axis=1).mean())), float(np.linalg.norm(c - centre)),
            float(len(xyz)))


def _zone_volume(xyz: np.ndarray, radius: float = 5.0, step: float = 1.5) -> float:
    """Å³ within ``radius`` of any atom, counted on a ``step`` Å grid (the zone's size).

    ``xyz`` is ``(N, 3)`` Å, x-y-z. The grid spans the atoms' bounding box grown by
    ``radius`` (``lo + k * step`` on each axis); a point counts when its distance to some
    atom is < ``radius``. Counted line by line: for each atom and each grid line along z
    within reach, the ball covers one interval of the line; the intervals of a line are
    merged with a difference array. The count equals a nearest-neighbour query of every
    grid point (tested against :class:`scipy.spatial.cKDTree`) at a fraction of its cost.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    if len(xyz) == 0:
        return 0.0
    lo, hi = xyz.min(axis=0) - radius, xyz.max(axis=0) + radius
    axes = [np.arange(lo[a], hi[a] + step, step) for a in range(3)]
    nx, ny, nz = (len(a) for a in axes)
    reach = int(np.ceil(radius / step + 0.5))  # |grid - atom| < radius: at most radius/step + 1/2 lines off
    off = np.arange(-reach, reach + 1)
    gx = np.rint((xyz[:, 0] - lo[0]) / step).astype(np.int64)[:, None, None] + off[None, :, None]  # (N, k, 1)
    gy = np.rint((xyz[:, 1] - lo[1]) / step).astype(np.int64)[:, None, None] + off[None, None, :]  # (N, 1, k)
    dx = axes[0][np.clip(gx, 0, nx - 1)] - xyz[:, 0, None, None]
    dy = axes[1][np.clip(gy, 0, ny - 1)] - xyz[:, 1, None, None]
    w2 = radius * radius - dx * dx - dy * dy  # (N, k, k)
    inside = (w2 > 0) & ((gx >= 0) & (gx < nx)) & ((gy >= 0) & (gy < ny))
    half = np.sqrt(w2[inside])
    zc = np.broadcast_to(xyz[:, 2, None, None], inside.shape)[inside]
    first = np.maximum(np.floor((zc - half - lo[2]) / step).astype(np.int64) + 1, 0)
    last = np.minimum(np.ceil((zc + half - lo[2]) / step).astype(np.int64) - 1, nz - 1)
    keep = last >= first
    line = (gx * ny + gy)[inside][keep] * (nz + 1)
    size = nx * ny * (nz + 1)
    diff = np.bincount(line + first[keep], minlength=size) - np.bincount(line + last[keep] + 1, minlength=size)
    covered = np.cumsum(diff.reshape(nx * ny, nz + 1), axis=1)[:, :nz] > 0
    return float(covered.sum()) * step ** 3


def background_pool(model: Model, motif_xyz: np.ndarray, config: BackgroundConfig) -> BackgroundPool:
    """The background candidates of ``model`` away from the listed motifs' heavy atoms
    ``motif_xyz`` ``(M, 3)`` Å: a pure function of the model's atoms, ``motif_xyz`` and
    ``config`` (never of a map), so the same model fitted to several maps (a cryoDRGN
    ensemble, one model in many EMDB maps) can be searched once and the pool passed to
    :func:`select_background_sites` for each map. Its candidates, shapes and zone volumes
    are filled as the selections ask for them."""
    res = Residues(model, motif_xyz, config)
    nt_xyz = model.atoms.xyz[model.atoms.nucleotide > 0]
    centre = nt_xyz.mean(axis=0) if len(nt_xyz) else model.atoms.xyz.mean(axis=0)
    return BackgroundPool(model, res, config, centre)


class BackgroundPool:
    """Candidates per (kind, layout), with their shape, ranked against a target
    (:func:`background_pool`)."""

    def __init__(self, model: Model, res: Residues, config: BackgroundConfig, centre: np.ndarray):
        self.model, self.res, self.config, self.centre = model, res, config, centre
        self.cache: dict[tuple, tuple[list[np.ndarray], np.ndarray, np.ndarray]] = {}
        self.zone_volumes: dict[tuple[int, ...], float] = {}  # residues -> zone volume (Å³)

    def zone_volume(self, residue_indices: np.ndarray) -> float:
        """:func:`_zone_volume` of a candidate's or a target's atoms, computed once per model
        (a listed motif is a target in every map of its model)."""
        key = tuple(int(i) for i in residue_indices)
        if key not in self.zone_volumes:
            self.zone_volumes[key] = _zone_volume(self.model.atoms.xyz[self.model.atoms.residue_rows(residue_indices)])
        return self.zone_volumes[key]

    def get(self, kind: str, lengths: tuple[int, ...]):
        """Candidates of ``kind`` with strand ``lengths``, once per entry and layout:
        ``(candidates, (C, L) residue indices, (C, 3) shape)``; shape as :func:`_shape_of`."""
        ck = (kind, lengths)
        if ck not in self.cache:
            cands = candidates(self.res, kind, lengths, self.config)
            idx = np.array(cands, dtype=np.int64).reshape(len(cands), int(sum(lengths)))
            keep = self.strand_counts(idx) == len(lengths)  # strands as the motifs' rule counts them
            idx = idx[keep]
            self.cache[ck] = ([cands[i] for i in np.flatnonzero(keep)], idx, self.shapes(idx))
        return self.cache[ck]

    @cached_property
    def _model_position(self) -> np.ndarray:
        """``(R,)`` int64: each residue's chain rank × 2^32 + position in the chain's model
        order (consecutive residues of a chain differ by 1)."""
        key = np.full(len(self.model.atoms.residues), -1, dtype=np.int64)
        for rank, (order, _) in enumerate(self.model.chain_index.values()):
            key[np.asarray(order, dtype=np.int64)] = (rank << 32) + np.arange(len(order), dtype=np.int64)
        return key

    def strand_counts(self, idx: np.ndarray) -> np.ndarray:
        """``(C,)`` strand count of each row of ``idx`` (C, L): the number of runs of
        residues consecutive in model order (:meth:`Model.strands`, vectorised)."""
        if idx.size == 0:
            return np.zeros(len(idx), dtype=np.int64)
        key = np.sort(self._model_position[idx], axis=1)
        return 1 + (np.diff(key, axis=1) != 1).sum(axis=1)

    @cached_property
    def _residue_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per residue: heavy-atom count ``(R,)``, coordinate sum ``(R, 3)`` and sum of squared
        norms ``(R,)``, coordinates taken relative to the model's nucleotide centre (Å)."""
        atoms = self.model.atoms
        n_res = len(atoms.residues)
        xyz = atoms.xyz - self.centre
        ri = np.asarray(atoms.residue_index, dtype=np.int64)
        count = np.bincount(ri, minlength=n_res).astype(np.float64)
        total = np.stack([np.bincount(ri, weights=xyz[:, a], minlength=n_res) for a in range(3)], axis=1)
        square = np.bincount(ri, weights=(xyz ** 2).sum(axis=1), minlength=n_res)
        return count, total, square

    def shapes(self, idx: np.ndarray) -> np.ndarray:
        """``(C, 3)`` (radius of gyration Å, centroid distance from the centre Å, heavy atoms)
        of each row of residue indices ``idx`` (C, L), from per-residue sums: the same values
        as :func:`_shape_of` of the rows' atoms, without gathering them."""
        if idx.size == 0:
            return np.zeros((0, 3))
        count, total, square = self._residue_sums
        n = count[idx].sum(axis=1)
        c = total[idx].sum(axis=1) / n[:, None]
        rg2 = square[idx].sum(axis=1) / n - (c ** 2).sum(axis=1)
        return np.stack([np.sqrt(np.maximum(rg2, 0.0)), np.linalg.norm(c, axis=1), n], axis=1)

    def _by_zone_volume(self, ranked: list, want_zone: float):
        """``ranked`` (sorted by shape cost) re-ordered by cost + 2 × the relative zone-volume
        difference (what the zone mask shows), lazily: a candidate's zone volume is computed
        only once no candidate already computed can come before it (the zone term is >= 0, so
        a candidate whose shape cost exceeds the best pending total cannot). The order is the
        one a full sort gives (equal totals keep the shape order), at a fraction of the zone
        volumes."""
        pending: list[tuple[float, int]] = []
        i = 0
        while i < len(ranked) or pending:
            while i < len(ranked) and (not pending or ranked[i][0] <= pending[0][0]):
                total = ranked[i][0] + 2.0 * abs(self.zone_volume(ranked[i][2]) - want_zone) / max(want_zone, 1.0)
                heapq.heappush(pending, (total, i))
                i += 1
            _, k = heapq.heappop(pending)
            yield ranked[k]

    def best(self, kinds, lengths, want, used, chosen, accept, rng) -> BackgroundSite | None:
        """The acceptable unused candidate closest to ``want`` (random order without one);
        earlier kinds are preferred by a cost of 0.1 per rank. ``accept(atoms)`` gives
        ``(taken, cube)``."""
        ranked = []
        for rank, kind in enumerate(kinds):
            cands, idx, shape = self.get(kind, lengths)
            if not cands:
                continue
            free = ~used[idx].any(axis=1)
            if want is None:
                cost = rng.random(len(cands))
            else:
                cost = (np.abs(shape[:, 0] - want[0]) / max(want[0], 1.0)
                        + np.abs(shape[:, 1] - want[1]) / max(want[1], 10.0)
                        + np.abs(shape[:, 2] - want[2]) / max(want[2], 1.0) + 0.1 * rank
                        + 1e-3 * rng.random(len(cands)))
            ranked += [(float(cost[i]), kind, cands[i]) for i in np.flatnonzero(free)]
        ranked.sort(key=lambda t: t[0])
        ranked = ranked[: self.config.max_tries]
        order = ranked if want is None else self._by_zone_volume(ranked, want[3])
        for _, kind, c in order:
            atoms = self.model.atoms.subset(c)
            centre = atoms.xyz.mean(axis=0)
            if any(np.linalg.norm(s.centre - centre) < self.config.spacing for s in chosen):
                continue
            taken, cube = accept(atoms)
            if taken:
                return BackgroundSite(kind=kind, residue_indices=c,
                                      strands=tuple(len(s) for s in self.model.strands(c)), atoms=atoms, cube=cube)
        return None


def _pseudo_atoms(xyz: np.ndarray) -> AtomTable:
    n = len(xyz)
    return AtomTable(
        xyz=np.asarray(xyz, dtype=np.float64).reshape(-1, 3),
        element=np.full(n, "X"), atom_name=np.full(n, "X"),
        residue_index=np.zeros(n, dtype=np.int32),
        part=np.zeros(n, dtype=np.uint8), nucleotide=np.zeros(n, dtype=np.uint8),
        residues=(ResidueId("?", 0, ""),), residue_names=("UNK",),
    )


def _density_sites(density_map, model, motif_xyz, n, config, stats, rng, chosen) -> list[BackgroundSite]:
    """Kind ``density``: unmodelled density above the threshold, away from atoms and motifs."""
    if n <= 0:
        return []
    from scipy.spatial import cKDTree  # here: importing the package needs no scipy

    stats = stats or density_map.statistics()
    threshold = stats.mean + config.density_threshold_sd * stats.sd
    r = config.density_radius
    lo = density_map.index_to_world(np.zeros(3))
    hi = density_map.index_to_world(np.asarray(density_map.shape, dtype=np.float64) - 1.0)
    axes = [np.arange(lo[a] + r, hi[a] - r + 1e-9, config.spacing) for a in range(3)]
    if not all(len(ax) for ax in axes):
        return []
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    grid = grid[density_map.interpolate(grid) > threshold]
    if len(model.atoms) and len(grid):
        d, _ = cKDTree(model.atoms.xyz).query(grid, k=1)
        grid = grid[d > r]
    if len(motif_xyz) and len(grid):
        d, _ = cKDTree(np.asarray(motif_xyz).reshape(-1, 3)).query(grid, k=1)
        grid = grid[d >= config.min_distance]
    out: list[BackgroundSite] = []
    for c in grid[rng.permutation(len(grid))]:
        if len(out) >= n:
            break
        if any(np.linalg.norm(s.centre - c) < config.spacing for s in chosen + out):
            continue
        pts = _density_points(density_map, c, r, threshold)
        if pts is not None:
            out.append(BackgroundSite(kind="density", residue_indices=np.zeros(0, dtype=np.int64), strands=(),
                                      atoms=pts))
    return out


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
