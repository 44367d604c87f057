"""Q-score, CC_mask and fit metrics against the published behaviour (issue 5).

Maps are simulated from the real 6V5B chain D model (demo/mirror/pdb/6v5b.pdb, byte for
byte ../shared/data/rna-models/6v5b_drna.pdb) with gemmi at 3 Å; the real case is the
upstream EMD-20353 hairpin box."""

from __future__ import annotations

import sys
import threading
from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from rnamotif_data.em.correlation import cc_mask, model_map
from rnamotif_data.em.maps import DensityMap, read_map
from rnamotif_data.em.quality import (
    QualityConfig,
    ShellPointCache,
    _spiral,
    expected_q_score,
    motif_quality,
    q_reference,
    q_scores,
    shell_points,
)
from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.errors import ConfigError, InputError
from rnamotif_data.rna.structure import read_model

from ..conftest import MOTIFS_6V5B

Q_EXP_3A = expected_q_score(3.0)  # 0.584


@pytest.fixture(scope="module")
def map3(rna_model) -> DensityMap:
    """Noise-free 3 Å map of 6V5B chain D on 1 Å voxels."""
    return simulate_map(rna_model.atoms, resolution=3.0, voxel_size=1.0, padding=8.0)


def _motif(model, selection):
    rows = model.atoms.residue_rows(model.resolve(selection))
    return rows, model.atoms.take(rows)


def _mean_q(dmap, model, rows, xyz_all=None):
    xyz_all = model.atoms.xyz if xyz_all is None else xyz_all
    ref = q_reference(dmap.statistics())
    return float(np.nanmean(q_scores(dmap, xyz_all[rows], cKDTree(xyz_all), ref, atom_rows=rows)))


def test_expected_q_score_line():
    assert expected_q_score(3.0) == pytest.approx(0.5842)
    assert expected_q_score(2.0) == pytest.approx(0.7219)
    assert np.isnan(expected_q_score(None))
    # undefined outside the resolutions the line was fit on (a 13.1 Å map would get -0.81)
    assert np.isnan(expected_q_score(13.1)) and np.isnan(expected_q_score(0.8))
    # the line belongs to sigma 0.6 A; another reference width has no published line here
    assert np.isnan(expected_q_score(3.0, sigma=0.4))
    assert expected_q_score(3.0, sigma=0.6) == pytest.approx(0.5842)


@pytest.mark.parametrize("selection", list(MOTIFS_6V5B))
def test_correct_model_scores_at_or_above_expected_and_cc_local_above_0_8(rna_model, map3, selection):
    """A noise-free map at 3 Å is at least as good as a typical real 3 Å map (measured:
    Q 0.87-0.88, CC_local 0.86-0.95 for the five motifs). CC_mask against this molmap-style
    map is lower (0.62-0.78; cctbx gives the same, benchmarks/RESULTS.md): the map ignores
    B-factors and is a Gaussian blur, not a resolution cut-off."""
    rows, motif = _motif(rna_model, selection)
    stats = map3.statistics()
    mq = motif_quality(map3, motif, cKDTree(rna_model.atoms.xyz), stats, 3.0, atom_rows=rows)
    assert mq.q_score >= Q_EXP_3A
    assert mq.q_score_min_residue >= Q_EXP_3A - 0.05
    assert mq.cc_local > 0.8
    assert 0.55 < mq.cc_mask < mq.cc_local
    assert mq.fit_z > 3 and mq.frac_atoms_above_1sd > 0.9
    assert mq.atom_q.shape == (len(motif),) and np.all(np.isfinite(mq.atom_q))


def test_atoms_shifted_by_1_5_angstrom_drop_below_0_3(rna_model, map3):
    """The model moved rigidly by 1.5 Å (26 evenly spread directions): the motif's mean Q
    over directions drops below 0.3 (measured 0.26; single directions 0.1-0.45, highest
    where the shift lands atoms near other atoms' density), each far below the correct 0.88."""
    rows, _ = _motif(rna_model, "D:19-22,82-85")
    q0 = _mean_q(map3, rna_model, rows)
    shifted = [_mean_q(map3, rna_model, rows, rna_model.atoms.xyz + 1.5 * d) for d in _spiral(26)]
    assert np.mean(shifted) < 0.3
    assert max(shifted) < q0 - 0.3


def test_model_in_another_frame_scores_about_zero(rna_model):
    """A model deposited in a different frame (30 Å off, atoms in the map's solvent; the
    map has noise at 0.2 sd as real maps do): Q is about 0."""
    dmap = simulate_map(rna_model.atoms, resolution=3.0, voxel_size=1.0, padding=40.0, noise_sd=0.2, seed=3)
    moved = rna_model.atoms.xyz + np.array([0.0, 30.0, 0.0])
    assert dmap.contains(moved).all()
    rows, _ = _motif(rna_model, "D:19-22,82-85")
    q = _mean_q(dmap, rna_model, rows, moved)
    assert abs(q) < 0.1
    assert _mean_q(dmap, rna_model, rows) > 0.8  # the same map, the right frame


def test_q_score_decreases_monotonically_with_blur(rna_model, map3):
    """B-factor series: the 3 Å map blurred by B = 0 ... 300 Å² (Gaussian sigma =
    sqrt(B / 8 pi^2) Å) gives strictly decreasing motif Q."""
    rows, _ = _motif(rna_model, "D:3-9,95-100")
    qs = []
    for b in (0, 25, 50, 100, 200, 300):
        sigma = np.sqrt(b / (8 * np.pi ** 2)) / float(map3.voxel_size[0])
        data = gaussian_filter(map3.data, sigma) if b else map3.data
        qs.append(_mean_q(DensityMap(data=data, voxel_size=map3.voxel_size, origin=map3.origin), rna_model, rows))
    assert all(a > b for a, b in zip(qs, qs[1:])), qs
    assert qs[-1] < qs[0] - 0.2


#: Reference values for the seed hairpin box (../shared/data/README.md, computed with the
#: reference programs on this box, motif atoms, 2.2 Å, sigma 0.6 Å).
SEED_Q_REFERENCES = {"ChimeraX qscore": 0.758, "MapQ QscorePt3": 0.731, "cctbx calc_qscore": 0.718}
SEED_CC_MASK_PHENIX = 0.797


def test_seed_sample_hairpin_matches_the_reference_programs(seed_map_path, seed_model_path):
    """Real EMD-20353 (E. coli 50S, 6PJ6, 2.2 Å) box around J:85-91, against ChimeraX,
    MapQ, cctbx and Phenix's engine on the same box.

    Q-score tolerance: the three references span 0.718-0.758 (0.04) on this motif
    because they differ in sampling and in the exclusion rule (MapQ and cctbx drop points
    within 0.9 R of another atom, ChimeraX and we drop points closer to another atom,
    which raises Q by ~0.02). So ours must lie inside that span widened by 0.01, and
    within 0.01 of ChimeraX, which shares our rule (measured 0.753). CC_mask: within 0.03
    of Phenix's 0.797, the issue's tolerance (measured 0.796).
    """
    model = read_model(seed_model_path)
    dmap = read_map(seed_map_path)
    stats = dmap.statistics()
    rows = np.arange(len(model.atoms))
    mq = motif_quality(dmap, model.atoms, cKDTree(model.atoms.xyz), stats, 2.2, atom_rows=rows)
    lo, hi = min(SEED_Q_REFERENCES.values()), max(SEED_Q_REFERENCES.values())
    assert lo - 0.01 <= mq.q_score <= hi + 0.01
    assert abs(mq.q_score - SEED_Q_REFERENCES["ChimeraX qscore"]) <= 0.01
    assert 0.45 < mq.q_score_min_residue < mq.q_score  # the loop is the weakest residue
    assert mq.cc_mask == pytest.approx(SEED_CC_MASK_PHENIX, abs=0.03)
    assert mq.cc_local < mq.cc_mask - 0.05  # the old sphere CC (0.695) is not Phenix's number
    assert mq.fit_z > 2.5


def test_cc_mask_of_a_map_made_the_phenix_way_is_one(rna_model):
    """A map computed from the motif's atoms the way Phenix computes its model map
    (B-factors, Fourier cut at d_min), in a box of another size than CC_mask's own, gives
    CC_mask 1, as in cctbx's test (mmtbx/maps/tst_correlation.py); the whole model's map
    (neighbours' density inside the mask) and a 2 Å shift give less."""
    _, motif = _motif(rna_model, "D:19-22,82-85")

    def map_of(atoms):
        lo = np.floor(atoms.xyz.min(axis=0)) - 17.0
        shape = tuple(int(v) for v in (np.ceil(atoms.xyz.max(axis=0) - lo) + 17)[::-1])
        return DensityMap(data=model_map(atoms, shape, lo, np.ones(3), 3.0), voxel_size=np.ones(3), origin=lo)

    own = cc_mask(map_of(motif), motif, 3.0)
    assert own > 0.99
    assert cc_mask(map_of(rna_model.atoms), motif, 3.0) < own - 0.05
    shifted = replace(motif, xyz=motif.xyz + np.array([2.0, 0, 0]))
    assert cc_mask(map_of(motif), shifted, 3.0) < own - 0.3


def _gaussian_map(centres, shape=(24, 24, 24), voxel=0.5, width=0.6):
    origin = np.array([-6.0, -6.0, -6.0])
    z, y, x = np.indices(shape, dtype=np.float64) * voxel
    grid = np.stack([x + origin[0], y + origin[1], z + origin[2]], axis=-1)
    data = np.zeros(shape)
    for c in centres:
        data += np.exp(-0.5 * ((grid - c) ** 2).sum(-1) / width ** 2)
    return DensityMap(data=data.astype(np.float32), voxel_size=np.full(3, voxel), origin=origin), grid


def test_points_closer_to_a_near_neighbour_are_ignored():
    """Two atoms 2 Å apart: every sample point of atom 0 is at least as close to it as to
    atom 1 (none beyond the bisector plane x = 1 Å), inner shells still get 8 points, and
    whatever the map holds beyond the bisector does not change atom 0's Q."""
    atoms = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    tree = cKDTree(atoms)
    pts, owner, radius = shell_points(atoms[:1], tree, atom_rows=np.array([0]))
    assert np.all(owner == 0)
    d0 = np.linalg.norm(pts - atoms[0], axis=1)
    d1 = np.linalg.norm(pts - atoms[1], axis=1)
    assert np.all(d0 <= d1 + 1e-9) and pts[:, 0].max() <= 1.0 + 1e-9
    assert np.allclose(d0, radius)
    for r in (0.1, 0.5, 1.0):  # shells inside the bisector keep all 8 points
        assert np.sum(np.isclose(radius, r)) == 8
    assert np.sum(radius > 1.0) > 0 and np.sum(np.isclose(radius, 2.0)) >= 8  # retries found 8 on the far side
    dmap, grid = _gaussian_map(atoms)
    ref = q_reference(dmap.statistics())
    q = q_scores(dmap, atoms[:1], tree, ref, atom_rows=np.array([0]))
    noisy = dmap.data.copy()
    beyond = grid[..., 0] > 1.0 + dmap.voxel_size[0]  # one voxel past the plane: trilinear reads stay clean
    noisy[beyond] = np.random.default_rng(0).normal(0, 5, size=int(beyond.sum()))
    q2 = q_scores(DensityMap(data=noisy, voxel_size=dmap.voxel_size, origin=dmap.origin), atoms[:1], tree, ref,
                  atom_rows=np.array([0]))
    assert q == pytest.approx(q2, abs=1e-12)
    # without the neighbour in the model, points beyond the plane are used and Q changes
    q3 = q_scores(DensityMap(data=noisy, voxel_size=dmap.voxel_size, origin=dmap.origin), atoms[:1],
                  cKDTree(atoms[:1]), ref, atom_rows=np.array([0]))
    assert abs(q3[0] - q2[0]) > 0.05


def test_isolated_atom_on_its_own_gaussian_scores_near_one():
    """A lone atom in a map that is exactly the σ = 0.6 Å reference Gaussian: Q ≈ 1."""
    atom = np.zeros((1, 3))
    dmap, _ = _gaussian_map(atom, width=0.6)
    q = q_scores(dmap, atom, cKDTree(atom), q_reference(dmap.statistics()), atom_rows=np.array([0]))
    assert q[0] > 0.99


def test_atoms_outside_the_map_give_nan_not_wrapped_density(map3):
    far = np.array([[1e4, 1e4, 1e4]])
    q = q_scores(map3, far, cKDTree(far), q_reference(map3.statistics()), atom_rows=np.array([0]))
    assert np.isnan(q[0])


def test_more_tries_changes_q_little(rna_model, map3):
    """The documented deviation of the 24-try default from MapQ's 96 tries."""
    rows, _ = _motif(rna_model, "D:19-22,82-85")
    ref = q_reference(map3.statistics())
    tree = cKDTree(rna_model.atoms.xyz)
    xyz = rna_model.atoms.xyz[rows]
    a = q_scores(map3, xyz, tree, ref, QualityConfig(), atom_rows=rows)
    b = q_scores(map3, xyz, tree, ref, QualityConfig(q_max_tries=96), atom_rows=rows)
    assert np.mean(np.abs(a - b)) < 0.005 and abs(np.mean(a) - np.mean(b)) < 0.005


def test_cc_mask_needs_a_resolution(rna_model, map3):
    _, motif = _motif(rna_model, "D:19-22,82-85")
    with pytest.raises(InputError, match="resolution"):
        cc_mask(map3, motif, 0.0)
    shifted = replace(motif, xyz=motif.xyz + np.array([3.0, 0, 0]))
    assert cc_mask(map3, shifted, 3.0) < cc_mask(map3, motif, 3.0) - 0.3


def test_quality_config_is_validated():
    with pytest.raises(ConfigError):
        QualityConfig(q_sigma=0)
    with pytest.raises(ConfigError):
        QualityConfig(q_max_tries=0)


def test_shell_point_cache_gives_the_same_q_scores_in_every_map(rna_model, map3):
    """The cached sample points are those of :func:`shell_points`: per-atom Q-scores equal
    to the last bit, in two different maps, for overlapping motifs asked in any order; the
    second map samples no atom again."""
    tree = cKDTree(rna_model.atoms.xyz)
    cache = ShellPointCache(rna_model.atoms.xyz, tree)
    blurred = DensityMap(data=gaussian_filter(map3.data, 1.5), voxel_size=map3.voxel_size, origin=map3.origin)
    motifs = [_motif(rna_model, sel)[0] for sel in MOTIFS_6V5B]
    motifs.append(np.concatenate([motifs[0][::-1], motifs[1][:5]]))  # reversed, overlapping
    made = None
    for dmap in (map3, blurred):
        ref = q_reference(dmap.statistics())
        for rows in motifs:
            xyz = rna_model.atoms.xyz[rows]
            direct = q_scores(dmap, xyz, tree, ref, atom_rows=rows)
            cached = q_scores(dmap, xyz, tree, ref, atom_rows=rows, points=cache)
            np.testing.assert_array_equal(cached, direct)
        if made is None:
            made = cache.nbytes
        assert cache.nbytes == made  # the second map reused every point
    pts, owner, radius = shell_points(rna_model.atoms.xyz[motifs[0]], tree, atom_rows=motifs[0])
    cpts, cowner, cradius = cache.points(motifs[0])
    np.testing.assert_array_equal(cpts, pts)
    np.testing.assert_array_equal(cowner, owner)
    np.testing.assert_array_equal(cradius, radius)
    with pytest.raises(TypeError, match="atom_rows"):
        q_scores(map3, rna_model.atoms.xyz[:3], tree, q_reference(map3.statistics()), points=cache)


def test_threads_that_share_a_shell_point_cache_get_the_points_of_a_serial_one(rna_model):
    """A Dask worker with several threads runs entries of one model at once, on one
    cache: every thread gets the points a cache used by one thread makes, never another
    atom's points or a broken cache (without the lock, this failed with a shape error)."""
    xyz = rna_model.atoms.xyz
    tree = cKDTree(xyz)
    rng = np.random.default_rng(7)
    blocks = [np.sort(rng.choice(len(xyz), 40, replace=False)) for _ in range(120)]
    serial = ShellPointCache(xyz, tree)
    want = [serial.points(b)[0] for b in blocks]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        shared = ShellPointCache(xyz, tree)
        got: list = [None] * len(blocks)
        errors: list = []

        def work(ids):
            try:
                for i in ids:
                    got[i] = shared.points(blocks[i])[0]
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(range(k, len(blocks), 4),)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_correlation_boxes_read_no_map_value(rna_model, map3):
    """The model side of CC_mask and CC_local depends on the map's grid alone: boxes made
    on one map give, on another map of the same grid, that map's own CC_mask and CC_local
    to the last bit (what lets a build make them once per model and grid)."""
    from rnamotif_data.em.correlation import cc_local, correlate_box
    from rnamotif_data.em.quality import correlation_boxes

    other = DensityMap(data=gaussian_filter(map3.data, 1.5), voxel_size=map3.voxel_size, origin=map3.origin)
    for sel in MOTIFS_6V5B:
        motif = _motif(rna_model, sel)[1]
        mask_box, local_box = correlation_boxes(map3, motif, 3.0)
        got = (correlate_box(other, mask_box), correlate_box(other, local_box))
        assert got == (cc_mask(other, motif, 3.0), cc_local(other, motif, 3.0))
        assert got != (cc_mask(map3, motif, 3.0), cc_local(map3, motif, 3.0))
