"""Segmentation metrics (issue 37): exact scores against scikit-learn, the 3 Å tolerance
against a brute-force KD-tree, Wilson intervals against a published value, and the
streaming accumulator, reference lines, chance flag, report and plot on label volumes
of real models with simulated maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from rnamotif_data.errors import InputError
from rnamotif_data.learn.metrics import wilson_interval
from rnamotif_data.learn.segmetrics import (
    LOOP_CLASSES,
    RNA_CLASSES,
    SegmentationMetrics,
    f1_scores,
    macro_f1,
    prior_prediction,
    voxel_counts,
    within_tolerance,
)
from rnamotif_data.learn.segreport import plot_tile_slice, segmentation_markdown

from ..conftest import shared
from .segdata import MODEL_6V5B, entry_volumes

C = 9


def _blobs(shape, seed, n_classes=C):
    """Spatially coherent random labels: the argmax of smoothed noise per class."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=(n_classes, *shape)), sigma=(0, 1.5, 1.5, 1.5))
    noise[0] += 0.15  # a background class, as maps have
    return np.argmax(noise, axis=0).astype(np.uint8)


def test_exact_scores_match_scikit_learn_on_random_labels():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    p_classes = np.array([0.5, 0.2, 0.05, 0.05, 0.08, 0.04, 0.03, 0.05, 0.0])  # "other" never occurs
    true = rng.choice(C, size=(12, 10, 14), p=p_classes).astype(np.int64)
    pred = rng.choice(C, size=true.shape, p=np.roll(p_classes, 1)).astype(np.int64)
    pred[true == 1] = np.where(rng.random(int((true == 1).sum())) < 0.6, 1, pred[true == 1])
    true[rng.random(true.shape) < 0.1] = 255  # outside the map: left out
    s = f1_scores(voxel_counts(pred, true).vector(), C)
    valid = true != 255
    t, p = true[valid], pred[valid]
    prec, rec, f1, support = sk.precision_recall_fscore_support(t, p, labels=list(range(C)), zero_division=0)
    assert np.array_equal(s["n_true"], support)
    for c in range(C):
        if s["n_pred"][c]:
            assert s["precision"][c] == pytest.approx(prec[c], abs=1e-12)
        if s["n_true"][c]:
            assert s["recall"][c] == pytest.approx(rec[c], abs=1e-12)
        if s["n_true"][c] + s["n_pred"][c]:
            assert s["f1"][c] == pytest.approx(f1[c], abs=1e-12)
        else:
            assert np.isnan(s["f1"][c])
    present = [c for c in RNA_CLASSES if (t == c).any() or (p == c).any()]
    assert float(macro_f1(s["f1"])) == pytest.approx(sk.f1_score(t, p, labels=present, average="macro"), abs=1e-12)
    assert 0.1 < float(macro_f1(s["f1"])) < 0.9  # a real mix of right and wrong


def _brute_tolerance(pred, true, spacing, tol):
    """Per class: predicted voxels with a true voxel of the class within ``tol`` Å, and true
    voxels with a predicted one, by a KD-tree over voxel centres in Å."""
    idx = np.indices(true.shape).reshape(3, -1).T * np.asarray(spacing, dtype=float)
    t, p = true.ravel(), pred.ravel()
    hit_p, hit_t = np.zeros(C, np.int64), np.zeros(C, np.int64)
    for c in range(C):
        a, b = idx[(p == c) & (t != 255)], idx[t == c]
        if len(a) and len(b):
            hit_p[c] = int((cKDTree(b).query(a, k=1)[0] <= tol + 1e-9).sum())
            hit_t[c] = int((cKDTree(a).query(b, k=1)[0] <= tol + 1e-9).sum())
    return hit_p, hit_t


@pytest.mark.parametrize("spacing", [1.0, (1.0, 0.8, 1.3)])
def test_tolerance_counts_match_a_brute_force_kd_tree(spacing):
    true = _blobs((18, 16, 14), 1).astype(np.int64)
    pred = _blobs((18, 16, 14), 2).astype(np.int64)
    true[:2] = 255
    counts = voxel_counts(pred, true, spacing=spacing, tolerance=3.0)
    hit_p, hit_t = _brute_tolerance(pred, true, spacing, 3.0)
    assert np.array_equal(counts.tol_pred_hit, hit_p)
    assert np.array_equal(counts.tol_true_hit, hit_t)
    # the tolerance really is looser than exact, and still misses some
    assert (hit_p >= np.diag(counts.confusion)).all() and hit_p.sum() > np.trace(counts.confusion)
    assert hit_p.sum() < counts.confusion.sum()


def test_tolerance_is_inclusive_at_exactly_three_angstrom():
    target = np.zeros((1, 1, 9), bool)
    target[0, 0, 0] = True
    near = within_tolerance(target, 1.0, 3.0)
    assert near[0, 0].tolist() == [True] * 4 + [False] * 5


def test_wilson_interval_matches_the_published_value_and_is_used_per_class():
    """Newcombe 1998, Stat. Med. 17:857, Table I, method 3 (score): 81/263 -> 0.2553-0.3662;
    0/20 -> 0-0.1611 (statsmodels' proportion_confint(method='wilson') when installed)."""
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert wilson_interval(0, 20) == pytest.approx((0.0, 0.1611), abs=5e-5)
    try:
        from statsmodels.stats.proportion import proportion_confint
    except ImportError:
        pass
    else:
        assert wilson_interval(81, 263) == pytest.approx(proportion_confint(81, 263, method="wilson"), abs=1e-9)
    true = np.full((1, 1, 300), 2, np.int64)
    true[0, 0, 263:] = 0
    pred = np.zeros_like(true)
    pred[0, 0, :81] = 2
    m = SegmentationMetrics(references=False)
    m.update(true, pred=pred)
    hp = m.result()["groups"]["all"]["predictors"]["network"]["per_class"]["hairpin"]
    assert (hp["tp"], hp["n_true"], hp["n_pred"]) == (81, 263, 81)
    assert hp["recall_wilson95"] == pytest.approx([0.2553, 0.3662], abs=5e-5)


@pytest.fixture(scope="module")
def vol6v5b():
    """6V5B chain D, a 3 Å map simulated and labelled at 1 Å (132 x 57 x 49 voxels)."""
    return entry_volumes(MODEL_6V5B, 3.0)


def _counts(*vols):
    return sum(np.bincount(v["element"].ravel(), minlength=C) for v in vols)


def _update(m, vol, pred, **kw):
    m.update(vol["element"], pred=pred, density=vol["density"], residue=vol["residue"], instance=vol["instance"], **kw)


def test_the_truth_scores_one_and_the_reference_lines_less(vol6v5b):
    m = SegmentationMetrics(_counts(vol6v5b))
    _update(m, vol6v5b, vol6v5b["element"], entry="6V5B", resolution=3.0, level="none")
    r = m.result()
    preds = r["groups"]["all"]["predictors"]
    net = preds["network"]
    assert net["macro_f1"] == net["macro_f1_tol"] == net["loop_macro_f1"] == 1.0
    assert net["residues"]["accuracy"] == 1.0 and net["residues"]["n"] == 78
    loops = net["instances"]["all loops"]
    assert loops["found"] == loops["instances"] == 8  # 6V5B's 9 loops, one (an empty hairpin) without voxels
    assert loops["true_sites"] == loops["sites"] > 0
    for ref in ("prior_drawn", "majority", "threshold"):
        assert preds[ref]["macro_f1"] < 0.5 and preds[ref]["macro_f1_tol"] < 0.5, ref
        assert preds[ref]["instances"]["all loops"]["found"] == 0
    # the threshold rule finds the stems (the density is the model's) and nothing else
    thr = preds["threshold"]["per_class"]
    assert thr["stem"]["recall"] > 0.7 and thr["stem"]["precision"] > 0.5
    assert all(thr[n]["n_pred"] == 0 for n in ("hairpin", "bulge", "internal", "junction"))
    assert preds["majority"]["per_class"]["none"]["n_pred"] == r["groups"]["all"]["n_voxels"]
    assert r["chance"]["at_chance"] is False and "above the reference lines" in r["chance"]["text"]
    md = segmentation_markdown(r)
    for words in ("this network", "class prior, drawn", "class prior, majority class", "density threshold rule",
                  "By resolution", "By similarity to training", "Per-residue accuracy"):
        assert words in md, words


def test_a_prediction_drawn_from_the_prior_is_flagged_at_chance(vol6v5b):
    counts = _counts(vol6v5b)
    m = SegmentationMetrics(counts, seed=1)
    guess = prior_prediction(vol6v5b["element"].shape, counts, np.random.default_rng(99))
    _update(m, vol6v5b, guess, entry="6V5B")
    r = m.result()
    assert r["chance"]["at_chance"] is True and r["chance"]["text"].startswith("at chance")
    assert "**At chance" in segmentation_markdown(r)


def test_a_shift_of_two_angstrom_is_wrong_exactly_and_right_within_three(vol6v5b):
    shifted = np.roll(vol6v5b["element"], 2, axis=2)  # 2 Å along x; the map's edges are empty
    m = SegmentationMetrics(references=False)
    m.update(vol6v5b["element"], pred=shifted)
    net = m.result()["groups"]["all"]["predictors"]["network"]
    assert net["macro_f1"] < 0.6
    assert net["macro_f1_tol"] == 1.0


def test_streaming_over_tiles_gives_the_whole_map_figures(vol6v5b):
    """Non-overlapping tiles of one entry: the same confusion counts, residue votes and
    instances as the whole map; tolerance hits can only be lost at tile edges."""
    pred = np.roll(vol6v5b["element"], 2, axis=0)
    pred[:, :, :20] = vol6v5b["element"][:, :, :20]  # part right, part 2 Å off
    whole = SegmentationMetrics(references=False)
    _update(whole, vol6v5b, pred, entry="6V5B")
    tiles = SegmentationMetrics(references=False)
    D, H, W = pred.shape
    for z in range(0, D, 40):
        for y in range(0, H, 40):
            box = (slice(z, z + 40), slice(y, y + 40), slice(None))
            tiles.update(vol6v5b["element"][box], pred=pred[box], entry="6V5B", residue=vol6v5b["residue"][box],
                         instance=vol6v5b["instance"][box])
    a = whole.result()["groups"]["all"]["predictors"]["network"]
    b = tiles.result()["groups"]["all"]["predictors"]["network"]
    assert a["confusion"] == b["confusion"] and a["macro_f1"] == b["macro_f1"]
    assert a["residues"] == b["residues"] and 0.3 < a["residues"]["accuracy"] < 1
    for name in ("hairpin", "bulge", "internal", "junction", "all loops"):
        assert (a["instances"][name]["found"], a["instances"][name]["instances"]) == \
            (b["instances"][name]["found"], b["instances"][name]["instances"])
    assert 0 < a["instances"]["all loops"]["found"] < a["instances"]["all loops"]["instances"]
    for cls in a["per_class"]:
        assert b["per_class"][cls]["tol_pred_hit"] <= a["per_class"][cls]["tol_pred_hit"]
    assert tiles.n_updates == 8 and len(tiles.entries) == 1


def _tile_scores(true, pred, edge, halo):
    """Network figures over non-overlapping ``edge``-voxel cores (z and y), each scored in a
    tile that adds ``halo`` voxels of context around it."""
    m = SegmentationMetrics(references=False)
    D, H, _ = true.shape
    for z0 in range(0, D, edge):
        for y0 in range(0, H, edge):
            lo, hi = (max(z0 - halo, 0), max(y0 - halo, 0)), (min(z0 + edge + halo, D), min(y0 + edge + halo, H))
            box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(None))
            count = np.zeros(true[box].shape, bool)
            count[z0 - lo[0]:z0 - lo[0] + edge, y0 - lo[1]:y0 - lo[1] + edge] = True
            m.update(true[box], pred=pred[box], entry="6V5B", count=count)
    return m.result()["groups"]["all"]["predictors"]["network"]


def test_tiles_with_a_three_voxel_halo_give_the_whole_map_counts_exactly(vol6v5b):
    true = vol6v5b["element"]
    pred = np.roll(true, 2, axis=0)
    pred[:, :, :20] = np.roll(true, 5, axis=1)[:, :, :20]  # part beyond the tolerance
    whole = SegmentationMetrics(references=False)
    whole.update(true, pred=pred)
    a = whole.result()["groups"]["all"]["predictors"]["network"]
    b = _tile_scores(true, pred, 30, 3)
    c = _tile_scores(true, pred, 30, 0)
    keys = ("n_true", "n_pred", "tp", "tol_pred_hit", "tol_true_hit")
    assert all([a["per_class"][n][k] for k in keys] == [b["per_class"][n][k] for k in keys] for n in a["per_class"])
    assert a["macro_f1_tol"] == b["macro_f1_tol"] < 1
    # without the halo, hits across the tile edges are lost
    assert sum(c["per_class"][n]["tol_pred_hit"] for n in c["per_class"]) < \
        sum(a["per_class"][n]["tol_pred_hit"] for n in a["per_class"])


def test_breakdowns_by_resolution_and_level_with_bootstrap_over_entries(vol6v5b):
    other = entry_volumes(shared("atlas-models", "4kqy.cif"), 4.5)
    counts = _counts(vol6v5b, other)
    m = SegmentationMetrics(counts, n_boot=200)
    _update(m, vol6v5b, np.roll(vol6v5b["element"], 1, axis=1), entry="6V5B", resolution=3.0, level="identity")
    _update(m, other, np.roll(other["element"], 1, axis=1), entry="4KQY", resolution=4.5, level="none")
    r = m.result()
    assert set(r["groups"]["resolution"]) == {"<= 3 Å", "> 4 Å"}
    assert set(r["groups"]["level"]) == {"identity", "none"}
    g = r["groups"]["all"]
    assert g["n_entries"] == 2 and g["n_voxels"] == vol6v5b["element"].size + other["element"].size
    net = g["predictors"]["network"]
    lo, hi = net["macro_f1_ci95"]
    assert lo <= net["macro_f1"] <= hi and lo < hi  # two entries: a bootstrap interval
    assert r["groups"]["level"]["none"]["predictors"]["network"]["macro_f1_ci95"] is None  # one entry: none
    per_level = r["groups"]["level"]["none"]["predictors"]["network"]
    assert per_level["residues"]["n"] > 100  # 4KQY's nucleotides
    with pytest.raises(InputError, match="4KQY"):
        _update(m, other, other["element"], entry="4KQY", resolution=3.0, level="none")
    md = segmentation_markdown(r)
    assert "| <= 3 Å | 1 |" in md and "| > 4 Å | 1 |" in md and "| identity | 1 |" in md


def test_the_threshold_rule_follows_the_contour(vol6v5b):
    m = SegmentationMetrics(_counts(vol6v5b))
    m.update(vol6v5b["element"], density=vol6v5b["density"], contour=2.0)  # above every voxel: all none
    p = m.result()["groups"]["all"]["predictors"]
    assert "network" not in p and m.result()["chance"]["at_chance"] is None
    assert p["threshold"]["confusion"] == p["majority"]["confusion"]


def test_bad_inputs_are_one_line_errors(vol6v5b):
    m = SegmentationMetrics(_counts(vol6v5b))
    with pytest.raises(InputError, match="density"):
        m.update(vol6v5b["element"], pred=vol6v5b["element"])
    with pytest.raises(InputError, match="same"):
        voxel_counts(np.zeros((2, 2, 2), int), np.zeros((2, 2, 3), int))
    with pytest.raises(InputError, match="outside"):
        voxel_counts(np.full((2, 2, 2), 9), np.zeros((2, 2, 2), int))
    with pytest.raises(InputError, match="train_counts"):
        SegmentationMetrics()


def test_the_slice_plot_shows_density_truth_and_prediction(vol6v5b, tmp_path):
    box = (slice(40, 72), slice(10, 42), slice(8, 40))
    el = vol6v5b["element"][box]
    index = plot_tile_slice(vol6v5b["density"][box], el, np.roll(el, 1, axis=1), tmp_path / "slice.png",
                            title="6V5B, 3 Å")
    rna = np.isin(el, RNA_CLASSES).sum(axis=(1, 2))
    assert index == int(np.argmax(rna)) and rna[index] > 0
    data = (tmp_path / "slice.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(InputError, match="outside"):
        plot_tile_slice(vol6v5b["density"][box], el, el, tmp_path / "x.png", index=99)
    assert LOOP_CLASSES == (2, 3, 4, 5)
