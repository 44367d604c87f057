"""Map-model quality metrics for a motif.

``fit_z`` (design §2): how far above the map's mean the density at the motif's
heavy atoms lies, in map standard deviations,

    fit_z = (mean over heavy atoms of the trilinearly interpolated raw map value
             - map mean) / map sd.

A correctly placed model on a real map sits several sd above the mean (the upstream
seed-sample hairpin of EMD-20353 gives about +3.3); the same atoms shifted by 8 Å give
under +1. It is a placement check, not a resolution-aware fit score (Q-score and CC_mask
measure that).

**Q-score** (Pintilie et al., Nat. Methods 17:328, 2020; doi:10.1038/s41592-020-0731-1):
per heavy atom, the Pearson correlation between map values (trilinear) at points on
shells R = 0, 0.1, ..., 2.0 Å around the atom and a reference Gaussian
``g(R) = A exp(-R² / (2σ²)) + B`` (σ = 0.6 Å; A = maxD - minD, B = minD with
maxD = min(mean + 10 sd, max) and minD = max(mean - sd, min) of the whole map, computed
once per map). Q is a correlation about the mean, so it does not depend on A and B
(A > 0); they are computed as MapQ does for parity.

Sampling variant: **MapQ's retry spiral** (the original plugin, used for EMDB validation
reports), not ChimeraX's sphere + k-means. On each shell, N + 2t points of a
Saff-Kuijlaars spiral (t = 0, 1, ...) are tried; points closer to another heavy atom of
the *whole model* than to the atom are dropped; the first try that keeps at least N = 8
points is used (all its kept points); R = 0 contributes the atom centre N times.
Differences from MapQ's ``QscorePt3``, and what they do to the motif mean:

* **Exclusion rule.** MapQ's code drops a point only if another atom is within 0.9 R of
  it; we use the paper's rule (closer to another atom than to its own, i.e. within R).
  Ours drops more points between bonded atoms, the points that read the neighbour's
  density, so it **raises** Q by about 0.02 relative to MapQ (cctbx ``calc_qscore`` uses
  MapQ's 0.9 R as ``rtol``).
* **Tries.** MapQ tries up to 50 spirals per shell (8, 10, ..., 106 points) and a shell
  where no try keeps 8 points contributes nothing; we stop after ``q_max_tries`` = 24
  (8 ... 54 points) and keep the last try's points (possibly fewer than 8). Shells that
  need more tries are the outer shells of buried atoms; per-atom Q differs by 0.002-0.004
  on average, motif means by < 0.004.
* ChimeraX ``qscore`` puts 8 points per shell chosen by k-means from a larger sphere set,
  with the paper's exclusion rule.

Measured on the real seed hairpin box of EMD-20353 (6PJ6 J:85-91, σ 0.6 Å, motif mean;
references in ``../shared/data/README.md``): ours 0.753; ChimeraX ``qscore`` 0.758,
MapQ ``QscorePt3`` 0.731, cctbx ``calc_qscore`` 0.718. The references themselves span
0.04; ours lies inside that span, 0.005 from ChimeraX, whose exclusion rule it shares
(``tests/test_quality.py`` holds the comparison).

The "closer to another atom" test is exact and analytic (see :func:`shell_points`), so
no KD-tree query per point is needed: ~90 µs per atom on one core, against ~1 ms per
atom quoted for ChimeraX.

**CC_mask** (Afonine et al. 2018) and the local sphere CC ``cc_local`` are in
:mod:`rnamotif_data.em.correlation`.

The builder records all of them per sample (``metadata.parquet``: ``q_score``,
``q_score_min_residue``, ``cc_mask``, ``cc_local``, ``fit_z``, ``frac_atoms_above_1sd``,
``q_expected``, ``q_score_minus_expected``).

**Q_exp**: the expected Q-score of nucleic acids at a resolution, the line Pintilie et al.
(2020, Fig. 4) fit to EMDB maps with σ = 0.6 Å: ``-0.1377 * resolution + 0.9973``. It is
defined only for the σ it was fit with and inside the resolution range of the fit
(:data:`Q_EXPECTED_LINES`); elsewhere ``q_expected`` is null rather than an extrapolation
(a 13 Å map would get -0.81). MapQ also prints a line for σ = 0.4 that we have not
reproduced against its source, so σ = 0.4 gives null too.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the trees are built by callers; importing this module needs no scipy
    from scipy.spatial import cKDTree

from rnamotif_data.em.correlation import ModelBox, cc_local_box, cc_mask_box, correlate_box
from rnamotif_data.em.maps import DensityMap, MapStatistics
from rnamotif_data.errors import ConfigError, MapFormatError, StructureError
from rnamotif_data.rna.structure import AtomTable

__all__ = ["fit_z", "QualityConfig", "QScoreReference", "MotifQuality", "ShellPointCache", "q_reference", "q_scores", "shell_points",
           "expected_q_score", "Q_EXPECTED_LINES", "fraction_above", "motif_quality", "correlation_boxes"]

#: σ (Å) -> (slope, intercept, lowest and highest resolution in Å of the fit) of the
#: expected nucleic-acid Q-score line of Pintilie et al. 2020 (Fig. 4).
Q_EXPECTED_LINES: dict[float, tuple[float, float, float, float]] = {
    0.6: (-0.1377, 0.9973, 1.5, 5.0),
}


@dataclass(frozen=True)
class QualityConfig:
    """Parameters of the quality metrics (recorded in the build config).

    Attributes
    ----------
    q_sigma:
        Å, width of the Q-score reference Gaussian (0.6 as in Pintilie 2020).
    q_points_per_shell:
        N, points per shell (8, as MapQ and ChimeraX ``qscore``).
    q_shell_step, q_max_radius:
        Å; shells R = 0, step, ..., max radius (0.1 and 2.0).
    q_max_tries:
        Tries with N, N+2, N+4, ... spiral points per shell before keeping fewer than N
        (MapQ ``QscorePt3``: 50).
    cc_local_radius:
        Å, mask radius of ``cc_local``; None: ``max(3, min(resolution, 10))``.
    cc_mask_padding:
        Å of map around the atoms in the local box of CC_mask's model map.
    """

    q_sigma: float = 0.6
    q_points_per_shell: int = 8
    q_shell_step: float = 0.1
    q_max_radius: float = 2.0
    q_max_tries: int = 24
    cc_local_radius: float | None = None
    cc_mask_padding: float = 10.0

    def __post_init__(self) -> None:
        for name in ("q_sigma", "q_shell_step", "q_max_radius", "cc_mask_padding"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive finite number (Å), got {v}")
        if self.cc_local_radius is not None and not (math.isfinite(self.cc_local_radius) and self.cc_local_radius > 0):
            raise ConfigError(f"cc_local_radius must be a positive finite number (Å), got {self.cc_local_radius}")
        if self.q_points_per_shell < 1 or self.q_max_tries < 1:
            raise ConfigError("q_points_per_shell and q_max_tries must be >= 1")

    def to_dict(self) -> dict:
        """JSON-serialisable dict of the fields."""
        return asdict(self)

    @property
    def shells(self) -> np.ndarray:
        """Shell radii in Å, ``(S,)``."""
        n = int(round(self.q_max_radius / self.q_shell_step))
        return np.arange(n + 1) * self.q_shell_step


@dataclass(frozen=True)
class QScoreReference:
    """Reference Gaussian height ``A`` and offset ``B`` of a map (computed once per map)."""

    A: float
    B: float


@dataclass(frozen=True)
class MotifQuality:
    """Quality of one motif: Q-score (mean over atoms, lowest residue mean), CC_mask,
    CC_local, fit_z, fraction of atoms above mean + 1 sd, and per-atom Q ``(N,)``."""

    q_score: float
    q_score_min_residue: float
    cc_mask: float
    cc_local: float
    fit_z: float
    frac_atoms_above_1sd: float
    atom_q: np.ndarray


def q_reference(stats: MapStatistics) -> QScoreReference:
    """Reference Gaussian parameters from whole-map statistics (Pintilie 2020):
    maxD = min(mean + 10 sd, max), minD = max(mean - sd, min), A = maxD - minD, B = minD."""
    max_d = min(stats.mean + 10.0 * stats.sd, stats.maximum)
    min_d = max(stats.mean - stats.sd, stats.minimum)
    return QScoreReference(A=float(max_d - min_d), B=float(min_d))


def expected_q_score(resolution: float | None, sigma: float = 0.6) -> float:
    """Expected Q-score of nucleic acids at ``resolution`` Å for reference width ``sigma``
    (Pintilie 2020; :data:`Q_EXPECTED_LINES`): ``-0.1377 * resolution + 0.9973`` for
    σ = 0.6 Å. NaN when the resolution is unknown, when no published line exists for
    ``sigma``, or outside the resolution range the line was fit on."""
    line = Q_EXPECTED_LINES.get(round(float(sigma), 3))
    if resolution is None or line is None or not np.isfinite(resolution):
        return float("nan")
    slope, intercept, lo, hi = line
    if not lo <= resolution <= hi:
        return float("nan")
    return float(slope * resolution + intercept)


def _spiral(n: int) -> np.ndarray:
    """``(n, 3)`` unit vectors on a Saff-Kuijlaars spiral (evenly spread over the sphere;
    Saff & Kuijlaars, Math. Intelligencer 19:5, 1997), the point set MapQ uses."""
    if n == 1:
        return np.array([[0.0, 0.0, 1.0]])
    k = np.arange(n)
    h = -1.0 + 2.0 * k / (n - 1)
    theta = np.arccos(np.clip(h, -1, 1))
    step = np.zeros(n)
    step[1:n - 1] = 3.6 / np.sqrt(n * (1.0 - h[1:n - 1] ** 2))
    phi = np.cumsum(step) % (2 * np.pi)
    phi[-1] = 0.0
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)


_SPIRALS: dict[int, np.ndarray] = {}
#: first try of each block of tries (see shell_points)
_TRY_EDGES = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80)


def _spiral_cached(n: int) -> np.ndarray:
    if n not in _SPIRALS:
        _SPIRALS[n] = _spiral(n)
    return _SPIRALS[n]


def _neighbours(xyz: np.ndarray, model_tree: cKDTree, reach: float,
                atom_rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Vectors from each atom to every other model atom within ``reach`` Å.

    Returns ``v`` ``(A, K, 3)`` (Å) and ``valid`` ``(A, K)`` (False for padding). The atom
    itself is recognised by its tree row when ``atom_rows`` is given, else by distance
    < 1e-6 Å. One counting query sizes K, one k-nearest query fills it (no per-atom loop;
    the neighbours come nearest first, which the callers' maxima do not see).
    """
    data = model_tree.data
    n = len(data)
    if len(xyz) == 0:
        return np.zeros((0, 1, 3)), np.zeros((0, 1), dtype=bool)
    k = max(1, int(np.max(model_tree.query_ball_point(xyz, r=reach, return_length=True))))
    dist, rows = model_tree.query(xyz, k=k, distance_upper_bound=reach)
    rows = np.asarray(rows, dtype=np.int64).reshape(len(xyz), k)
    dist = np.asarray(dist).reshape(len(xyz), k)
    valid = rows < n
    if atom_rows is not None:
        valid &= rows != np.asarray(atom_rows, dtype=np.int64)[:, None]
    else:
        valid &= dist > 1e-6
    safe = np.where(valid, rows, 0)
    v = np.where(valid[:, :, None], data[safe] - xyz[:, None, :], 0.0)
    # drop the columns no atom uses (the self match, removed, leaves one)
    width = max(1, int(valid.sum(axis=1).max()))
    order = np.argsort(~valid, axis=1, kind="stable")[:, :width]
    return np.take_along_axis(v, order[:, :, None], axis=1), np.take_along_axis(valid, order, axis=1)


def _directions(config: QualityConfig) -> tuple[np.ndarray, np.ndarray]:
    """Every try's spiral back to back, ``(sum of N + 2t over t < q_max_tries, 3)`` unit
    vectors, and the row where try ``t`` starts ``(q_max_tries,)``."""
    return _direction_table(config.q_points_per_shell, config.q_max_tries)


@lru_cache(maxsize=8)
def _direction_table(n: int, tries: int) -> tuple[np.ndarray, np.ndarray]:
    sizes = n + 2 * np.arange(tries)
    table = np.concatenate([_spiral_cached(int(k)) for k in sizes])
    table.flags.writeable = False
    return table, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def _sample_indices(
    xyz: np.ndarray, model_tree: cKDTree, config: QualityConfig, atom_rows: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`shell_points` as indices: ``owner`` (P,) atom, ``direction`` (P,) row of
    :func:`_directions`' table, ``shell`` (P,) index into ``config.shells`` (0: the atom
    centre). Atom by atom; an atom's points in the order centre, then the tries' blocks."""
    A = len(xyz)
    N = config.q_points_per_shell
    Rs = config.shells[config.shells > 0]
    v, valid = _neighbours(xyz, model_tree, 2.0 * config.q_max_radius + 1e-6, atom_rows)
    d2 = np.where(valid, (v * v).sum(-1), 1.0)
    # float32: the test only decides on which side of a bisector plane a point lies
    w = np.where(valid[:, :, None], 2.0 * v / d2[:, :, None], 0.0).astype(np.float32)  # (A, K, 3), 1/Å
    table, try_start = _directions(config)
    owner = [np.repeat(np.arange(A), N)]
    direction = [np.zeros(A * N, dtype=np.int64)]
    shell = [np.zeros(A * N, dtype=np.int64)]
    S = len(Rs)
    dR = config.q_shell_step
    pending = np.ones((A, S), dtype=bool)  # (atom, shell) pairs still without points
    T = config.q_max_tries
    # tries are processed in blocks: one vectorised pass decides, for every (atom, shell)
    # still pending, the first try of the block that accepts >= N points
    edges = [t for t in _TRY_EDGES if t < T] + [T]
    for t0, t1 in zip(edges[:-1], edges[1:]):
        atoms = np.nonzero(pending.any(axis=1))[0]
        if atoms.size == 0:
            break
        sizes = N + 2 * np.arange(t0, t1)
        first_row = int(try_start[t0])
        U = table[first_row:first_row + int(sizes.sum())]  # (P, 3): the block's tries back to back
        U32 = U.astype(np.float32)
        seg = np.repeat(np.arange(t1 - t0), sizes)  # (P,) try of each point
        start = try_start[t0:t1] - first_row
        k = np.empty((atoms.size, len(U)), dtype=np.int64)
        step = max(1, int(2e6 // (w.shape[1] * len(U))))
        for c in range(0, atoms.size, step):  # bounded temporaries (a, K, P)
            m = (w[atoms[c:c + step]] @ U32.T).max(axis=1)  # (a, P) 1/Å
            # the point is accepted on every shell R <= 1/m, i.e. on the first k shells
            inv = 1.0 / np.maximum(m, 1e-12)  # Å; m <= 0: no neighbour ever closer
            k[c:c + step] = np.minimum(np.floor(inv / dR + 1e-9), S).astype(np.int64)
        n_try = t1 - t0
        flat = (np.arange(atoms.size)[:, None] * n_try + seg[None, :]) * (S + 1) + k
        hist = np.bincount(flat.ravel(), minlength=atoms.size * n_try * (S + 1))
        hist = hist.reshape(atoms.size, n_try, S + 1)
        count = hist[:, :, ::-1].cumsum(axis=2)[:, :, ::-1][:, :, 1:]  # (a, tries, S)
        enough = count >= N
        if t1 == T:
            enough[:, -1, :] = True  # last try: keep what it accepted
        has = enough.any(axis=1) & pending[atoms]  # (a, S)
        first = np.argmax(enough, axis=1)  # (a, S) first sufficient try in the block
        i, s = np.nonzero(has)
        if i.size == 0:
            continue
        tt = first[i, s]
        n_max = int(sizes.max())
        j = start[tt][:, None] + np.arange(n_max)[None, :]  # (pairs, n_max) point indices
        inside = np.arange(n_max)[None, :] < sizes[tt][:, None]
        j = np.where(inside, j, 0)
        take = inside & (k[i[:, None], j] > s[:, None])
        p, q = np.nonzero(take)
        owner.append(atoms[i[p]])
        direction.append(first_row + j[p, q])  # the point's row of the direction table
        shell.append(s[p] + 1)
        pending[atoms[i], s] = False
    owner_all = np.concatenate(owner)
    order = np.argsort(owner_all, kind="stable")  # atom by atom, each atom's order kept
    return owner_all[order], np.concatenate(direction)[order], np.concatenate(shell)[order]


def _assemble(xyz: np.ndarray, owner: np.ndarray, direction: np.ndarray, shell: np.ndarray,
              config: QualityConfig) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(P, 3)`` Å and radii ``(P,)`` Å of sample indices (:func:`_sample_indices`)."""
    table, _ = _directions(config)
    radius = config.shells[shell]
    return xyz[owner] + radius[:, None] * table[direction], radius


def shell_points(
    atom_xyz: np.ndarray,
    model_tree: cKDTree,
    config: QualityConfig = QualityConfig(),
    atom_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q-score sample points around atoms (MapQ retry sampling, vectorised).

    For each atom and each shell radius R > 0: put ``N + 2t`` spiral points on the sphere
    (t = 0, 1, ...), drop every point that is closer to another model atom than to its own
    atom, and keep *all* accepted points of the first try that accepts at least ``N``;
    after ``q_max_tries`` tries the last try's accepted points are kept (possibly fewer
    than N, possibly none). R = 0 contributes the atom centre N times (as MapQ).

    The distance test is analytic: a point ``a + R u`` (``|u| = 1``) is closer to a
    neighbour at ``a + v`` than to ``a`` iff ``R * (u . w) > 1`` with ``w = 2 v / |v|^2``.
    So per atom and spiral one matrix product gives ``m(u) = max_k u . w_k``, and the
    point is accepted on every shell with ``R * m(u) <= 1`` -- no KD-tree query per point
    and no per-shell work.

    Parameters
    ----------
    atom_xyz:
        ``(A, 3)`` Å, x-y-z: atoms to sample around.
    model_tree:
        KD-tree of every heavy atom of the model.
    config:
        Shells, N, tries.
    atom_rows:
        ``(A,)`` row of each atom in the tree's data (else found by distance).

    Returns
    -------
    points ``(P, 3)`` Å, owner ``(P,)`` atom index, shell ``(P,)`` radius in Å; atom by
    atom (each atom's centre first, then its shells).
    """
    xyz = np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3)
    owner, direction, shell = _sample_indices(xyz, model_tree, config, atom_rows)
    pts, radius = _assemble(xyz, owner, direction, shell, config)
    return pts, owner, radius


class ShellPointCache:
    """Q-score sample points (:func:`shell_points`) of one model's atoms, each atom's made once.

    The points depend on the model's atoms and the config, never on the map: one model
    fitted to several maps (a cryoDRGN ensemble, a model in several EMDB maps) samples each
    atom once, and every later map only interpolates. Kept compactly, 3 bytes a point (its
    spiral direction, uint16, and its shell, uint8; ~170 points per RNA heavy atom); the
    points are rebuilt with the arithmetic of :func:`shell_points`, so the Q-scores are the
    same to the last bit. Threads may share one cache (a Dask worker with several threads
    runs entries of one model at once): a lock guards its arrays.

    Parameters
    ----------
    model_xyz:
        ``(M, 3)`` Å, x-y-z: every heavy atom of the model (the rows of ``model_tree``).
    model_tree:
        KD-tree of ``model_xyz``.
    config:
        Shells, N, tries.
    """

    def __init__(self, model_xyz: np.ndarray, model_tree: cKDTree, config: QualityConfig = QualityConfig()):
        self.xyz = np.asarray(model_xyz, dtype=np.float64).reshape(-1, 3)
        self.tree, self.config = model_tree, config
        n = len(self.xyz)
        self._start = np.full(n, -1, dtype=np.int64)
        self._count = np.zeros(n, dtype=np.int64)
        self._direction = np.empty(1 << 16, dtype=np.uint16)
        self._shell = np.empty(1 << 16, dtype=np.uint8)
        self._size = 0
        self._lock = threading.Lock()
        if len(_directions(config)[0]) > np.iinfo(np.uint16).max or len(config.shells) > np.iinfo(np.uint8).max:
            raise ConfigError("ShellPointCache needs under 65,536 spiral directions and 256 shells")

    @property
    def nbytes(self) -> int:
        """Bytes held for the points made so far."""
        return 3 * self._size + self._start.nbytes + self._count.nbytes

    def _add(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample the atoms ``rows`` (distinct, none sampled yet), keep their points and
        return their :func:`_sample_indices`."""
        owner, direction, shell = _sample_indices(self.xyz[rows], self.tree, self.config, rows)
        n = len(owner)
        if self._size + n > len(self._direction):
            cap = max(2 * len(self._direction), self._size + n)
            self._direction = np.resize(self._direction, cap)
            self._shell = np.resize(self._shell, cap)
        self._direction[self._size:self._size + n] = direction
        self._shell[self._size:self._size + n] = shell
        count = np.bincount(owner, minlength=len(rows))
        self._start[rows] = self._size + np.concatenate([[0], np.cumsum(count)[:-1]])
        self._count[rows] = count
        self._size += n
        return owner, direction, shell

    def points(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample points of the model atoms ``rows`` ``(A,)``: as :func:`shell_points` of
        ``model_xyz[rows]``, points ``(P, 3)`` Å, owner ``(P,)`` index into ``rows``, radius
        ``(P,)`` Å."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        with self._lock:  # threads of one Dask worker share the model's cache
            missing = self._start[rows] < 0
            if missing.all() and np.unique(rows).size == rows.size:  # all new: no gather
                owner, direction, shell = self._add(rows)
            else:
                if missing.any():
                    self._add(np.unique(rows[missing]))
                count = self._count[rows]
                owner = np.repeat(np.arange(len(rows)), count)
                first = np.concatenate([[0], np.cumsum(count)[:-1]])
                flat = np.repeat(self._start[rows] - first, count) + np.arange(int(count.sum()))
                direction = self._direction[flat].astype(np.int64)
                shell = self._shell[flat].astype(np.int64)
        pts, radius = _assemble(self.xyz[rows], owner, direction, shell, self.config)
        return pts, owner, radius


def _correlate(density_map: DensityMap, pts: np.ndarray, owner: np.ndarray, radius: np.ndarray,
               n_atoms: int, reference: QScoreReference, sigma: float) -> np.ndarray:
    """Per-atom Pearson correlation of map values at the points with the reference Gaussian."""
    v = reference.A * np.exp(-0.5 * (radius / sigma) ** 2) + reference.B
    u = density_map.interpolate(pts)
    count = np.bincount(owner, minlength=n_atoms).astype(np.float64)
    mu = np.bincount(owner, u, n_atoms) / count
    mv = np.bincount(owner, v, n_atoms) / count
    du, dv = u - mu[owner], v - mv[owner]
    cov = np.bincount(owner, du * dv, n_atoms)
    var_u = np.bincount(owner, du * du, n_atoms)
    var_v = np.bincount(owner, dv * dv, n_atoms)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.sqrt(var_u * var_v)


def q_scores(
    density_map: DensityMap,
    atom_xyz: np.ndarray,
    model_tree: cKDTree,
    reference: QScoreReference,
    config: QualityConfig = QualityConfig(),
    atom_rows: np.ndarray | None = None,
    points: ShellPointCache | None = None,
) -> np.ndarray:
    """Per-atom Q-scores (Pintilie 2020; MapQ retry sampling, see :func:`shell_points`).

    Parameters
    ----------
    density_map:
        The map, in the model's frame (values read by trilinear interpolation; points
        outside the box read 0).
    atom_xyz:
        ``(N, 3)`` Å, x-y-z: the atoms to score.
    model_tree:
        KD-tree of **all** heavy atoms of the model (sample points must be closer to the
        scored atom than to any of these).
    reference:
        :func:`q_reference` of the map.
    config:
        Shells, points per shell, σ.
    atom_rows:
        ``(N,)`` index of each scored atom in the tree's data (so the atom itself is not
        counted as "another atom"); if omitted, an atom is recognised by distance.
    points:
        The model's :class:`ShellPointCache` (same tree and config): sample points made
        once per atom and model; needs ``atom_rows``.

    Returns
    -------
    ``(N,)`` float64 Q-scores in [-1, 1]; NaN for an atom whose sampled map values are
    constant (e.g. entirely outside the map).
    """
    xyz = np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3)
    n_atoms = len(xyz)
    if n_atoms == 0:
        return np.zeros(0)
    if points is not None:
        if atom_rows is None:
            # a missing argument, as Python's own TypeError: a bug of the caller, not bad input
            raise TypeError("q_scores: a ShellPointCache needs atom_rows")
        pts, owner, radius = points.points(atom_rows)
    else:
        pts, owner, radius = shell_points(xyz, model_tree, config, atom_rows)
    return _correlate(density_map, pts, owner, radius, n_atoms, reference, config.q_sigma)


def fraction_above(density_map: DensityMap, atom_xyz: np.ndarray, stats: MapStatistics,
                   n_sd: float = 1.0) -> float:
    """Fraction of atoms whose map value (trilinear) exceeds mean + ``n_sd`` × sd."""
    v = density_map.interpolate(np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3))
    return float(np.mean(v > stats.mean + n_sd * stats.sd))


def _residue_means(q: np.ndarray, residue_index: np.ndarray) -> list[float]:
    """``np.nanmean`` of ``q`` ``(N,)`` per residue (``residue_index`` ``(N,)``), for the
    residues with a finite value, in residue order: the same sums as ``np.nanmean`` (NaN
    read as 0, each residue's values in atom order), without a mask per residue."""
    residue_index = np.asarray(residue_index)
    order = np.argsort(residue_index, kind="stable")
    grouped = np.where(np.isnan(q), 0.0, q)[order]
    finite = np.isfinite(q)[order]
    cut = np.flatnonzero(np.diff(residue_index[order])) + 1
    out = []
    for lo, hi in zip(np.concatenate([[0], cut]).tolist(), np.concatenate([cut, [len(q)]]).tolist()):
        n = int(np.count_nonzero(finite[lo:hi]))
        if n:
            out.append(float(np.sum(grouped[lo:hi]) / n))
    return out


def correlation_boxes(density_map: DensityMap, motif: AtomTable, resolution: float,
                      config: QualityConfig = QualityConfig()) -> tuple[ModelBox, ModelBox]:
    """The model sides of the motif's CC_mask and CC_local on ``density_map``'s grid
    (:func:`~rnamotif_data.em.correlation.cc_mask_box`,
    :func:`~rnamotif_data.em.correlation.cc_local_box`, with ``config``'s padding and
    radius): no map value is read. Raises as those do."""
    return (cc_mask_box(density_map, motif, resolution, config.cc_mask_padding),
            cc_local_box(density_map, motif, resolution, config.cc_local_radius))


def motif_quality(
    density_map: DensityMap,
    motif: AtomTable,
    model_tree: cKDTree,
    stats: MapStatistics,
    resolution: float | None,
    config: QualityConfig = QualityConfig(),
    reference: QScoreReference | None = None,
    atom_rows: np.ndarray | None = None,
    points: ShellPointCache | None = None,
    boxes: tuple[ModelBox, ModelBox] | None = None,
) -> MotifQuality:
    """All quality metrics of one motif (Q-score, CC_mask, fit_z, fraction above 1 sd).

    ``model_tree`` is a KD-tree of every heavy atom of the model; ``resolution`` (Å) may
    be None, in which case ``cc_mask`` and ``cc_local`` are NaN. ``points``: the model's
    :class:`ShellPointCache` (with ``atom_rows``), see :func:`q_scores`. ``boxes``: the
    motif's :func:`correlation_boxes` on this map's grid, if already made (another map of
    the same model and grid); made here if omitted.
    """
    reference = reference or q_reference(stats)
    q = q_scores(density_map, motif.xyz, model_tree, reference, config, atom_rows, points)
    res_q = _residue_means(q, motif.residue_index)
    if resolution:
        mask_box, local_box = boxes or correlation_boxes(density_map, motif, resolution, config)
        cc, cl = correlate_box(density_map, mask_box), correlate_box(density_map, local_box)
    else:
        cc = cl = float("nan")
    return MotifQuality(
        q_score=float(np.nanmean(q)) if np.isfinite(q).any() else float("nan"),
        q_score_min_residue=float(min(res_q)) if res_q else float("nan"),
        cc_mask=cc,
        cc_local=cl,
        fit_z=fit_z(density_map, motif.xyz, stats),
        frac_atoms_above_1sd=fraction_above(density_map, motif.xyz, stats),
        atom_q=q,
    )


def fit_z(density_map: DensityMap, atom_xyz: np.ndarray, stats: MapStatistics | None = None) -> float:
    """Map-model fit z-score of a set of atoms.

    Parameters
    ----------
    density_map:
        The map, in the model's frame.
    atom_xyz:
        ``(N, 3)`` heavy-atom coordinates, Å, x-y-z.
    stats:
        Whole-map statistics (computed and cached on the map if omitted).

    Returns
    -------
    float
        ``(mean map value at the atoms - map mean) / map sd``; atoms outside the map's
        box read as zero (zero padding), never as wrapped density.

    Raises
    ------
    StructureError, MapFormatError
        If ``atom_xyz`` is empty; if the map has zero standard deviation.
    """
    atom_xyz = np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3)
    if atom_xyz.shape[0] == 0:
        raise StructureError("fit_z needs at least one atom")
    if stats is None:
        stats = density_map.statistics()
    if stats.sd == 0:
        raise MapFormatError(f"{density_map.path}: map is constant (sd = 0); fit_z is undefined")
    values = density_map.interpolate(atom_xyz)
    return float((values.mean() - stats.mean) / stats.sd)
