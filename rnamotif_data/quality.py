"""Map-model quality metrics for a motif.

``fit_z`` (DESIGN.md section 2): how far above the map's mean the density at the motif's
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
maxD = min(mean + 10 sd, max) and minD = max(mean - sd, min) of the whole map). Sampling
is the **ChimeraX ``qscore`` variant**: on each shell, 128 evenly spread sphere points
(Saff-Kuijlaars spiral) are tested, those closer to another heavy atom of the whole model
than to the atom are dropped, and 8 of the rest are chosen by k-means (5 iterations; the
accepted point nearest each centre; all of them when 8 or fewer remain). R = 0
contributes the atom centre 8 times. MapQ (the original, used in EMDB validation
reports) instead grows a spiral N + t points at a time until 8 are accepted; both keep
8 well-spread points closer to the atom than to any other, and differ by a few
hundredths of Q on single atoms and less on residue or motif means. The sphere variant
vectorises (no per-atom retry loop), which is what makes it fast here.

**CC_mask** (Afonine et al., Acta Cryst. D74:814, 2018; doi:10.1107/S2059798318009324):
Pearson correlation between the experimental map and a model map of the motif's atoms
(gemmi's electron-scattering calculator at the entry's resolution, on the experimental
map's own grid) over the mask of grid points within the mask radius of any motif atom.
The mask radius defaults to ``max(3.0, min(resolution, 10.0))`` Å, the resolution-dependent
automatic radius of Phenix ``map_model_cc`` without its atom-image term (which is below
the resolution for B-factors under ~100 Å²).

Status: Q-score and CC_mask are implemented here but not yet validated against the
published behaviour nor wired into the builder (issue 5); ``fit_z`` is what the builder
records today.

**Q_exp** for nucleic acids at σ 0.6: ``-0.1377 * resolution + 0.9973`` (Pintilie 2020).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from .errors import ConfigError
from .labels import within_radius
from .maps import DensityMap, MapStatistics
from .simulate import simulate_on_grid
from .structure import AtomTable

__all__ = ["fit_z", "QualityConfig", "QScoreReference", "MotifQuality", "q_reference", "q_scores",
           "expected_q_score", "cc_mask", "fraction_above", "motif_quality"]


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
    q_test_points:
        Points tried on each shell sphere before clustering (128, as ChimeraX).
    q_kmeans_iterations:
        k-means iterations choosing the N points among the accepted ones (5).
    cc_mask_radius:
        Å, mask radius for CC_mask; None: ``max(3, min(resolution, 10))``.
    """

    q_sigma: float = 0.6
    q_points_per_shell: int = 8
    q_shell_step: float = 0.1
    q_max_radius: float = 2.0
    q_test_points: int = 128
    q_kmeans_iterations: int = 5
    cc_mask_radius: float | None = None

    def __post_init__(self) -> None:
        if self.q_sigma <= 0 or self.q_shell_step <= 0 or self.q_max_radius <= 0:
            raise ConfigError("q_sigma, q_shell_step and q_max_radius must be > 0 Å")
        if self.q_points_per_shell < 1 or self.q_test_points < self.q_points_per_shell:
            raise ConfigError("need 1 <= q_points_per_shell <= q_test_points")

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
    fit_z, fraction of atoms above mean + 1 sd, and per-atom Q ``(N,)``."""

    q_score: float
    q_score_min_residue: float
    cc_mask: float
    fit_z: float
    frac_atoms_above_1sd: float
    atom_q: np.ndarray


def q_reference(stats: MapStatistics) -> QScoreReference:
    """Reference Gaussian parameters from whole-map statistics (Pintilie 2020):
    maxD = min(mean + 10 sd, max), minD = max(mean - sd, min), A = maxD - minD, B = minD."""
    max_d = min(stats.mean + 10.0 * stats.sd, stats.maximum)
    min_d = max(stats.mean - stats.sd, stats.minimum)
    return QScoreReference(A=float(max_d - min_d), B=float(min_d))


def expected_q_score(resolution: float | None) -> float:
    """Expected Q-score of nucleic acids at ``resolution`` Å (σ 0.6; Pintilie 2020):
    ``-0.1377 * resolution + 0.9973``; NaN when the resolution is unknown."""
    if resolution is None or not np.isfinite(resolution):
        return float("nan")
    return float(-0.1377 * resolution + 0.9973)


def _spiral(n: int) -> np.ndarray:
    """``(n, 3)`` unit vectors on a Saff-Kuijlaars spiral (evenly spread over the sphere)."""
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


def _spiral_cached(n: int) -> np.ndarray:
    if n not in _SPIRALS:
        _SPIRALS[n] = _spiral(n)
    return _SPIRALS[n]


def _kmeans_pick(cand: np.ndarray, ok: np.ndarray, n: int, iterations: int) -> np.ndarray:
    """Pick ``n`` well-spread accepted points per row by batched k-means (ChimeraX style).

    ``cand`` ``(A, P, 3)``, ``ok`` ``(A, P)``. Rows with at most ``n`` accepted points keep
    all of them; others are clustered into ``n`` groups (deterministic start: accepted
    points evenly spaced in spiral order), and the accepted point nearest each centre is
    taken. Returns ``(A, n)`` point indices, -1 where a row has fewer than ``n``.
    """
    A, P, _ = cand.shape
    out = np.full((A, n), -1, dtype=np.int64)
    n_ok = ok.sum(axis=1)
    order = np.argsort(~ok, axis=1, kind="stable")  # accepted indices first, in spiral order
    few = n_ok <= n
    for i in np.nonzero(few)[0]:
        out[i, :n_ok[i]] = order[i, :n_ok[i]]
    many = np.nonzero(~few)[0]
    if many.size == 0:
        return out
    pts, acc, k_ok = cand[many], ok[many], n_ok[many]
    pos = np.floor(np.linspace(0, 1, n, endpoint=False)[None, :] * k_ok[:, None]).astype(np.int64)
    init = np.take_along_axis(order[many], pos, axis=1)  # (M, n)
    centres = np.take_along_axis(pts, init[:, :, None], axis=1)  # (M, n, 3)
    big = np.float64(1e18)
    for _ in range(iterations):
        d = ((pts[:, :, None, :] - centres[:, None, :, :]) ** 2).sum(-1)  # (M, P, n)
        lab = np.argmin(d, axis=2)
        onehot = (lab[:, :, None] == np.arange(n)[None, None, :]) & acc[:, :, None]
        cnt = onehot.sum(axis=1)  # (M, n)
        sums = np.einsum("mpk,mpc->mkc", onehot.astype(np.float64), pts)
        centres = np.where(cnt[:, :, None] > 0, sums / np.maximum(cnt, 1)[:, :, None], centres)
    d = ((pts[:, :, None, :] - centres[:, None, :, :]) ** 2).sum(-1)
    d = np.where(acc[:, :, None], d, big)
    out[many] = np.argmin(d, axis=1)
    return out


def q_scores(
    density_map: DensityMap,
    atom_xyz: np.ndarray,
    model_tree: cKDTree,
    reference: QScoreReference,
    config: QualityConfig = QualityConfig(),
    atom_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Per-atom Q-scores (ChimeraX-style sphere sampling; see the module docstring).

    Parameters
    ----------
    density_map:
        The map, in the model's frame.
    atom_xyz:
        ``(N, 3)`` Å, x-y-z: the atoms to score.
    model_tree:
        KD-tree of **all** heavy atoms of the model (points must be closer to the scored
        atom than to any of these).
    reference:
        :func:`q_reference` of the map.
    config:
        Shells, points per shell, σ.
    atom_rows:
        ``(N,)`` index of each scored atom in the tree's data (so the atom itself is not
        counted as "another atom"); if omitted, found as each atom's nearest tree point.

    Returns
    -------
    ``(N,)`` float64 Q-scores in [-1, 1]; NaN for an atom whose sampled values are constant.
    """
    xyz = np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3)
    n_atoms = len(xyz)
    N = config.q_points_per_shell
    # only atoms within 2 R_max can take points of a shell of radius <= R_max of a shell of radius <= R_max
    near = model_tree.query_ball_point(xyz, r=2.0 * config.q_max_radius + 1e-6)
    data = model_tree.data
    nb_lists = []
    for i, rows in enumerate(near):
        rows = np.asarray(rows, dtype=np.int64)
        if atom_rows is not None:
            rows = rows[rows != atom_rows[i]]
        else:
            rows = rows[np.linalg.norm(data[rows] - xyz[i], axis=1) > 1e-6]
        nb_lists.append(rows)
    K = max(1, max((len(r) for r in nb_lists), default=1))
    nb = np.full((n_atoms, K, 3), 1e9)
    for i, rows in enumerate(nb_lists):
        nb[i, :len(rows)] = data[rows]
    sphere = _spiral_cached(config.q_test_points)  # (P, 3) unit vectors
    pts_list, owner_list, ref_list = [], [], []
    for R in config.shells:
        g = reference.A * np.exp(-0.5 * (R / config.q_sigma) ** 2) + reference.B
        if R == 0:
            pts_list.append(np.repeat(xyz, N, axis=0))
            owner_list.append(np.repeat(np.arange(n_atoms), N))
            ref_list.append(np.full(n_atoms * N, g))
            continue
        cand = xyz[:, None, :] + R * sphere[None]  # (A, P, 3)
        d2 = ((cand[:, :, None, :] - nb[:, None, :, :]) ** 2).sum(-1)  # (A, P, K)
        ok = np.all(d2 >= R * R - 1e-9, axis=2)  # no other atom strictly closer
        n_ok = ok.sum(axis=1)
        chosen = _kmeans_pick(cand, ok, N, config.q_kmeans_iterations)  # (A, N) indices or -1
        valid = chosen >= 0
        rows = np.nonzero(valid)
        pts_list.append(cand[rows[0], chosen[valid]])
        owner_list.append(rows[0])
        ref_list.append(np.full(len(rows[0]), g))
        del n_ok
    pts = np.concatenate(pts_list)
    owner = np.concatenate(owner_list)
    v = np.concatenate(ref_list)
    u = density_map.interpolate(pts)
    count = np.bincount(owner, minlength=n_atoms).astype(np.float64)
    mu = np.bincount(owner, u, n_atoms) / count
    mv = np.bincount(owner, v, n_atoms) / count
    du, dv = u - mu[owner], v - mv[owner]
    cov = np.bincount(owner, du * dv, n_atoms)
    var_u = np.bincount(owner, du * du, n_atoms)
    var_v = np.bincount(owner, dv * dv, n_atoms)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = cov / np.sqrt(var_u * var_v)
    return q


def cc_mask(density_map: DensityMap, atoms: AtomTable, resolution: float,
            radius: float | None = None) -> float:
    """CC_mask of a set of atoms (Afonine 2018; see the module docstring).

    Parameters
    ----------
    density_map:
        The experimental map, in the model's frame (isotropic voxels).
    atoms:
        The motif's heavy atoms.
    resolution:
        Å, the map's resolution (sets the model map's blur).
    radius:
        Å, mask radius; None: ``max(3, min(resolution, 10))``.

    Returns
    -------
    float
        Pearson correlation over the mask; NaN if the mask has fewer than 2 points inside
        the map or either map is constant on it.

    Raises
    ------
    ValueError
        If ``resolution`` is not positive or the map's voxels are not isotropic.
    """
    if resolution is None or not resolution > 0:
        raise ValueError(f"CC_mask needs a positive resolution, got {resolution}")
    vs = density_map.voxel_size
    if not np.allclose(vs, vs[0], rtol=1e-4):
        raise ValueError(f"{density_map.path}: CC_mask needs isotropic voxels, got {tuple(vs)} Å")
    r = radius if radius is not None else max(3.0, min(float(resolution), 10.0))
    idx = density_map.world_to_index(atoms.xyz)  # z-y-x
    reach = r / vs[::-1]
    lo = np.maximum(np.floor(idx.min(axis=0) - reach).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(axis=0) + reach).astype(int) + 1, np.asarray(density_map.shape))
    if np.any(hi - lo < 1):
        return float("nan")
    shape = tuple(int(v) for v in hi - lo)
    origin = density_map.index_to_world(lo.astype(np.float64))
    mask = within_radius(shape, origin, float(vs[0]), atoms.xyz, r)
    if mask.sum() < 2:
        return float("nan")
    model = simulate_on_grid(atoms, shape, origin, float(vs[0]), float(resolution))
    exp = density_map.data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    a = exp[mask].astype(np.float64)
    b = model[mask].astype(np.float64)
    a -= a.mean()
    b -= b.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def fraction_above(density_map: DensityMap, atom_xyz: np.ndarray, stats: MapStatistics,
                   n_sd: float = 1.0) -> float:
    """Fraction of atoms whose map value (trilinear) exceeds mean + ``n_sd`` × sd."""
    v = density_map.interpolate(np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3))
    return float(np.mean(v > stats.mean + n_sd * stats.sd))


def motif_quality(
    density_map: DensityMap,
    motif: AtomTable,
    model_tree: cKDTree,
    stats: MapStatistics,
    resolution: float | None,
    config: QualityConfig = QualityConfig(),
    reference: QScoreReference | None = None,
) -> MotifQuality:
    """All quality metrics of one motif (Q-score, CC_mask, fit_z, fraction above 1 sd).

    ``model_tree`` is a KD-tree of every heavy atom of the model; ``resolution`` (Å) may
    be None, in which case ``cc_mask`` is NaN.
    """
    reference = reference or q_reference(stats)
    q = q_scores(density_map, motif.xyz, model_tree, reference, config)
    res_q = [np.nanmean(q[motif.residue_index == r]) for r in np.unique(motif.residue_index)
             if np.isfinite(q[motif.residue_index == r]).any()]
    cc = cc_mask(density_map, motif, resolution, config.cc_mask_radius) if resolution else float("nan")
    return MotifQuality(
        q_score=float(np.nanmean(q)) if np.isfinite(q).any() else float("nan"),
        q_score_min_residue=float(min(res_q)) if res_q else float("nan"),
        cc_mask=cc,
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
    ValueError
        If ``atom_xyz`` is empty or the map has zero standard deviation.
    """
    atom_xyz = np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3)
    if atom_xyz.shape[0] == 0:
        raise ValueError("fit_z needs at least one atom")
    if stats is None:
        stats = density_map.statistics()
    if stats.sd == 0:
        raise ValueError(f"{density_map.path}: map is constant (sd = 0); fit_z is undefined")
    values = density_map.interpolate(atom_xyz)
    return float((values.mean() - stats.mean) / stats.sd)
