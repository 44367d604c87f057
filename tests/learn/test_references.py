"""Reference lines, the chance flag, the motif-versus-unknown headline and paired comparisons
(issue 38, items 1-3), each on a tiny constructed case with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rnamotif_data.learn.metrics import markdown_report
from rnamotif_data.learn.references import (
    balanced_accuracy,
    chance_verdict,
    compare_runs,
    comparison_markdown,
    layout_rule,
    motif_vs_unknown,
    prior_reference,
    references,
    residue_count_reference,
    roc_auc,
    strand_layout,
)
from rnamotif_data.rna.motifs import CLASS_NAMES

# sym 0, bulge 1, hairpin 2, asym 3, unknown 4
_MOTIFS = pd.DataFrame({
    "strand_sequences": ["GAAC-GAAC", "GAC-GC", "GAAAAC", "GAAAC-GAC", "GAAAC-GAC", "GAAC-GAAC", "CAAAAG", None],
    "n_residues": [8, 5, 6, 8, 8, 8, 6, 0],
})
_TRUE = np.array([0, 1, 2, 3, 4, 4, 4, 4])


def test_layout_rule_gets_every_motif_and_no_unknown_with_strands():
    rule = layout_rule(_MOTIFS, CLASS_NAMES)
    np.testing.assert_array_equal(rule, [0, 1, 2, 3, 3, 0, 2, 4])  # no strand (density site) -> unknown
    motif = _TRUE < 4
    assert (rule[motif] == _TRUE[motif]).mean() == 1.0
    assert (rule[4:7] == _TRUE[4:7]).mean() == 0.0
    assert list(strand_layout(_MOTIFS)) == ["two strands"] * 2 + ["one strand"] + ["two strands"] * 3 + \
        ["one strand", "other"]
    refs = references(_MOTIFS, _TRUE, _MOTIFS.iloc[:7], _TRUE[:7], CLASS_NAMES)
    assert refs["layout_rule"]["macro_sensitivity"] == pytest.approx(0.8)  # 4 classes right, unknown 0
    assert refs["layout_rule"]["accuracy"] == pytest.approx(4 / 7)


def test_prior_reference_expected_and_majority():
    train = np.array([4, 4, 4, 4, 0, 1, 2, 3])  # p(unknown) = 0.5, others 0.125
    test = np.array([0, 4, 4, 4])
    p = prior_reference(train, test, 5)
    assert p["sampling"]["accuracy"] == pytest.approx(0.25 * 0.125 + 0.75 * 0.5)
    assert p["sampling"]["macro_sensitivity"] == pytest.approx((0.125 + 0.5) / 2)
    assert p["majority"] == {"class": 4, "accuracy": 0.75, "macro_sensitivity": 0.5}


def test_residue_count_model_learns_a_count_rule():
    pytest.importorskip("sklearn")
    meta = pd.DataFrame({"n_residues": [4, 4, 4, 12, 12, 12] * 3})
    y = np.array([2, 2, 2, 0, 0, 0] * 3)
    r = residue_count_reference(meta, y, meta.iloc[:6], y[:6], 5)
    assert r["macro_sensitivity"] == 1.0 and r["predictions"] == [2, 2, 2, 0, 0, 0]


def test_residue_count_degrades_to_a_note_without_sklearn(monkeypatch):
    import rnamotif_data.learn.references as refs
    from rnamotif_data.errors import MissingDependencyError

    def missing(*a, **k):
        raise MissingDependencyError("the residue-count reference needs scikit-learn, which is not installed")

    monkeypatch.setattr(refs, "require", missing)
    r = refs.residue_count_reference(_MOTIFS, _TRUE, _MOTIFS, _TRUE, 5)
    assert set(r) == {"note"} and "scikit-learn" in r["note"]
    res = {"n": 8, "accuracy": 0.5, "macro_sensitivity": 0.5, "macro_specificity": 0.5,
           "confusion_matrix": np.zeros((5, 5), int).tolist(),
           "per_class": {c: {"support": 0, "sensitivity": None, "specificity": None} for c in CLASS_NAMES},
           "references": refs.references(_MOTIFS, _TRUE, _MOTIFS, _TRUE, CLASS_NAMES)}
    assert "Residue-count reference not computed: the residue-count reference needs scikit-learn" in \
        markdown_report(res)


def _report(true, pred):
    from rnamotif_data.learn.metrics import class_metrics, confusion_matrix

    res = class_metrics(confusion_matrix(true, pred), CLASS_NAMES)
    res["chance"] = chance_verdict(true, pred, 5, prior_reference(true, true, 5))
    return res


def test_chance_flag_fires_for_a_constant_predictor_not_a_perfect_one():
    true = np.repeat(np.arange(5), 8)
    const = _report(true, np.full(40, 4))
    assert const["chance"]["at_chance"] is True and const["chance"]["p"] == 1.0
    md = markdown_report(const)
    assert "At chance: macro sensitivity 0.200" in md and "one class for every sample" in md
    assert "**Macro sensitivity" not in md  # no bold headline for a chance score
    perfect = _report(true, true)
    assert perfect["chance"]["at_chance"] is False and perfect["chance"]["p"] < 0.01
    assert "**Macro sensitivity 1.000, macro specificity 1.000 (5 classes)**" in markdown_report(perfect)


def test_auc_and_balanced_accuracy_match_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    score = np.round(rng.random(60) + 0.4 * y, 1)  # rounded: ties
    pred = score > 0.7
    assert roc_auc(y, score) == pytest.approx(sk.roc_auc_score(y, score))
    assert balanced_accuracy(y, pred) == pytest.approx(sk.balanced_accuracy_score(y, pred))
    assert roc_auc(np.ones(5), np.arange(5)) is None


def test_motif_vs_unknown_per_layout_against_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    meta = pd.DataFrame({"strand_sequences": ["GAAAAC", "CAAAAG", "GAAC-GAAC", "GAAC-GAAC", "GAAAAC", "GAC-GC",
                                              "GAAC-GAAC", "CAAAAG"]})
    true = np.array([2, 4, 0, 4, 2, 1, 4, 4])
    pred = np.array([2, 2, 0, 4, 2, 4, 4, 4])
    p_motif = np.array([0.9, 0.6, 0.8, 0.2, 0.7, 0.3, 0.1, 0.4])
    h = motif_vs_unknown(meta, true, pred, CLASS_NAMES, p_motif)
    assert set(h) == {"all", "one strand", "two strands"}
    y = true != 4
    assert h["all"]["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p_motif))
    assert h["all"]["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y, pred != 4))
    one = strand_layout(meta) == "one strand"
    assert h["one strand"]["roc_auc"] == pytest.approx(sk.roc_auc_score(y[one], p_motif[one]))
    assert h["one strand"]["n"] == 4 and h["one strand"]["n_unknown"] == 2
    # the layout rule calls every sample with strands a motif: balanced accuracy 0.5
    assert h["all"]["layout_rule"]["balanced_accuracy"] == 0.5
    lo, hi = h["all"]["roc_auc_ci95"]
    assert lo <= h["all"]["roc_auc"] <= hi
    assert h["all"]["auc_vs_chance"].startswith("too few samples")  # 4 unknown samples: no verdict
    # a perfectly separating score on many samples excludes 0.5 in words
    big = pd.concat([meta] * 10, ignore_index=True)
    t = np.tile(true, 10)
    perfect = motif_vs_unknown(big, t, t, CLASS_NAMES, (t != 4).astype(float))
    assert perfect["all"]["roc_auc"] == 1.0 and "excludes 0.5" in perfect["all"]["auc_vs_chance"]
    flat = motif_vs_unknown(big, t, np.full_like(t, 4), CLASS_NAMES, np.full(len(t), 0.5))
    assert flat["all"]["auc_vs_chance"].startswith("at chance")


def test_compare_runs_matches_scipy_on_a_constructed_pair():
    folds = [f"fold{k}" for k in range(1, 6)]
    a = [{"fold": f, "seed": s, "macro_sensitivity": 0.3 + 0.01 * k + 0.02 * s, "constant_predictor": False}
         for s in (0, 1) for k, f in enumerate(folds)]
    b = [{"fold": f, "seed": s, "macro_sensitivity": 0.25 + 0.013 * k * k / 4 + 0.005 * s,
          "constant_predictor": (f, s) == ("fold3", 1)} for s in (0, 1) for k, f in enumerate(folds)]
    b.append({"fold": "fold1", "seed": 7, "macro_sensitivity": 0.2})  # no partner
    c = compare_runs(a, {"runs": b})
    assert c["n_pairs"] == 10 and c["unpaired"] == [("fold1", 7)]
    xa = np.array([r["macro_sensitivity"] for r in sorted(a, key=lambda r: (r["fold"], r["seed"]))])
    xb = np.array([r["macro_sensitivity"] for r in sorted(b[:10], key=lambda r: (r["fold"], r["seed"]))])
    assert c["mean_difference"] == pytest.approx(np.mean(xa - xb))
    assert c["t_test_p"] == pytest.approx(stats.ttest_rel(xa, xb).pvalue)
    assert c["wilcoxon_p"] == pytest.approx(stats.wilcoxon(xa, xb).pvalue)
    lo, hi = c["difference_ci95"]
    assert lo <= c["mean_difference"] <= hi
    assert c["a"]["sd"] == pytest.approx(np.std(xa, ddof=1))
    assert c["constant_predictors"] == {"a": [], "b": [("fold3", 1)]}
    md = comparison_markdown(c, ("one-hot", "density"))
    assert "Constant predictors in density" in md and "fold3 seed 1" in md and "paired t-test p =" in md
    same = compare_runs(a, a)
    assert same["mean_difference"] == 0 and same["t_test_p"] is None and same["wilcoxon_p"] is None
    assert "No difference shown" in comparison_markdown(same)
