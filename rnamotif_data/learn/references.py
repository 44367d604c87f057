"""Reference lines for a score, and what the selection does not give away (issue 38).

A score means little without the scores of trivial predictors on the same samples. This
module computes them, without torch (numpy, pandas and scipy; scikit-learn, the
``[audit]`` extra, for the residue-count model):

* **class prior** (:func:`prior_reference`): predicting the training subset's class
  frequencies -- the expected accuracy and macro sensitivity of drawing each prediction
  from the prior (for a class c present in the test samples, the expected sensitivity is
  the prior's p(c)), and those of the majority-class rule;
* **layout rule** (:func:`layout_rule`): a fixed rule on the strand layout (metadata
  column ``strand_sequences``: the sample's strands, ``-``-joined), no density and no
  training: one strand -> hairpin; two strands, one of 2 nucleotides (its two closing
  pairs' residues, nothing unpaired) -> bulge; two strands of equal length -> symmetric
  loop; any other strands -> asymmetric loop; no strand (an unmodelled density site) ->
  unknown. The four motif classes are a function of the layout; the "unknown" samples
  share the motifs' layouts by design, so the rule gets every motif right and every
  "unknown" wrong (0.800 macro sensitivity on the five classes);
* **residue count** (:func:`residue_count_reference`): a logistic regression on the
  number of residues (``n_residues``) alone, fitted on the training subset;
* **chance band** (:func:`chance_verdict`): the model's macro sensitivity against those of
  its own predictions permuted over the samples (1000 permutations, seeded): at or below
  the band's 95th percentile (one-sided permutation p >= 0.05) it is "at chance";
* **motif versus unknown** (:func:`motif_vs_unknown`): the part of the task the selection
  does not give away. Binary target "any motif class" vs "unknown", overall and per
  strand layout (one strand, two strands): ROC AUC of the network's P(not unknown) and
  balanced accuracy of its argmax, with 95 % percentile bootstrap intervals, beside the
  5-class macro sensitivity and the layout rule's figures on the same samples;
* **paired comparison of two arms** (:func:`compare_runs`, :func:`comparison_markdown`):
  per-(fold, seed) scores paired, mean difference, bootstrap interval, paired t-test and
  Wilcoxon signed-rank test (scipy.stats), constant predictors named.

References: Efron & Tibshirani 1993 (bootstrap, ch. 13); Good 2005, *Permutation,
Parametric and Bootstrap Tests of Hypotheses* (permutation band); Hanley & McNeil 1982,
Radiology 143:29 (ROC AUC as the Mann-Whitney statistic); Brodersen et al. 2010, ICPR,
DOI 10.1109/ICPR.2010.764 (balanced accuracy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from rnamotif_data.common.extras import require
from rnamotif_data.errors import MissingDependencyError
from rnamotif_data.learn.metrics import class_metrics, confusion_matrix

log = logging.getLogger(__name__)

__all__ = ["LAYOUTS", "strand_layout", "layout_rule", "prior_reference", "residue_count_reference",
           "permutation_band", "chance_verdict", "roc_auc", "balanced_accuracy", "bootstrap_interval",
           "motif_vs_unknown", "references", "constant_predictor", "compare_runs", "comparison_markdown"]

#: strand layouts the binary headline is broken down by (``other``: none, or three or more strands)
LAYOUTS = ("one strand", "two strands", "other")
_UNKNOWN = "unknown"
#: fewer motif or unknown samples than this: the AUC is not compared with 0.5 in words
_MIN_PER_SIDE = 5


def _strands(meta: pd.DataFrame) -> list[list[int]]:
    """Strand lengths (nucleotides, model order) of each row, from ``strand_sequences``."""
    if "strand_sequences" not in meta:
        return [[] for _ in range(len(meta))]
    return [[len(s) for s in str(v).split("-") if s] if isinstance(v, str) and v else []
            for v in meta["strand_sequences"].tolist()]


def strand_layout(meta: pd.DataFrame) -> np.ndarray:
    """``(N,)`` object array of each row's layout (:data:`LAYOUTS`) from ``strand_sequences``."""
    return np.asarray([LAYOUTS[0] if len(s) == 1 else LAYOUTS[1] if len(s) == 2 else LAYOUTS[2]
                       for s in _strands(meta)], dtype=object)


def layout_rule(meta: pd.DataFrame, class_names: Sequence[str]) -> np.ndarray:
    """``(N,)`` int64 class indices the layout rule predicts (module docstring) for the rows
    of ``meta`` (metadata rows, column ``strand_sequences``); classes are found by name in
    ``class_names`` (``hairpin``, ``bulge``, ``symmetric_loop``, ``asymmetric_loop``,
    ``unknown``); a name the scheme lacks falls back to ``unknown``, then to class 0."""
    names = list(class_names)
    fallback = names.index(_UNKNOWN) if _UNKNOWN in names else 0

    def idx(name: str) -> int:
        return names.index(name) if name in names else fallback

    out = []
    for s in _strands(meta):
        if len(s) == 1:
            out.append(idx("hairpin"))
        elif len(s) == 2 and min(s) == 2:
            out.append(idx("bulge"))
        elif len(s) == 2 and s[0] == s[1]:
            out.append(idx("symmetric_loop"))
        elif s:
            out.append(idx("asymmetric_loop"))
        else:
            out.append(fallback)
    return np.asarray(out, dtype=np.int64)


def _scores(y_true, y_pred, n_classes: int) -> dict:
    m = class_metrics(confusion_matrix(y_true, y_pred, n_classes), [str(i) for i in range(n_classes)])
    return {"accuracy": m["accuracy"], "macro_sensitivity": m["macro_sensitivity"]}


def prior_reference(train_targets, test_targets, n_classes: int) -> dict:
    """The class prior of ``train_targets`` scored on ``test_targets`` (both ``(N,)`` class
    indices): ``sampling`` (expected accuracy sum_c q(c) p(c), q the test and p the training
    frequencies; expected macro sensitivity: mean of p(c) over classes present in the test
    samples) and ``majority`` (always the most frequent training class: its ``class``
    index, accuracy and macro sensitivity). Figures are None without test samples."""
    tr = np.bincount(np.asarray(train_targets, np.int64), minlength=n_classes).astype(float)
    te = np.bincount(np.asarray(test_targets, np.int64), minlength=n_classes).astype(float)
    p = tr / tr.sum() if tr.sum() else np.full(n_classes, 1.0 / n_classes)
    present = te > 0
    n = te.sum()
    major = int(np.argmax(tr))
    return {"train_frequencies": p.round(6).tolist(),
            "sampling": {"accuracy": float((te / n) @ p) if n else None,
                         "macro_sensitivity": float(p[present].mean()) if n else None},
            "majority": {"class": major, "accuracy": float(te[major] / n) if n else None,
                         "macro_sensitivity": float(present[major] / present.sum()) if n else None}}


def residue_count_reference(train_meta: pd.DataFrame, train_targets, test_meta: pd.DataFrame, test_targets,
                            n_classes: int) -> dict:
    """A logistic regression (scikit-learn, default settings; features: ``n_residues`` and
    its square, standardised) fitted on the training rows and scored on the test rows:
    ``{"accuracy", "macro_sensitivity", "predictions"}``; ``{"note": ...}`` (one line) when
    scikit-learn is not installed or the training rows hold one class."""
    try:
        lm = require("sklearn.linear_model", "the residue-count reference")
    except MissingDependencyError as exc:
        return {"note": str(exc)}
    y = np.asarray(train_targets, np.int64)
    test_y = np.asarray(test_targets, np.int64)
    if len(np.unique(y)) < 2:
        pred = np.full(len(test_y), int(y[0]) if len(y) else 0, dtype=np.int64)
    else:
        def feats(meta):
            r = meta["n_residues"].to_numpy(dtype=float)
            return np.stack([r, r * r], axis=1)

        x = feats(train_meta)
        mu, sd = x.mean(axis=0), x.std(axis=0)
        sd[sd == 0] = 1.0
        model = lm.LogisticRegression(max_iter=1000).fit((x - mu) / sd, y)
        pred = model.predict((feats(test_meta) - mu) / sd).astype(np.int64) if len(test_y) else np.zeros(0, np.int64)
    return {**_scores(test_y, pred, n_classes), "predictions": pred.tolist()}


def _macro_sens_many(t: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro sensitivity of each row of ``preds`` ``(B, N)`` against ``t`` ``(N,)``."""
    support = np.bincount(t, minlength=n_classes)
    present = np.flatnonzero(support)
    hits = np.stack([((preds == c) & (t == c)).sum(axis=1) for c in present], axis=1)
    return (hits / support[present]).mean(axis=1)


def permutation_band(y_true, y_pred, n_classes: int, n_perm: int = 1000, seed: int = 0) -> dict:
    """The model's macro sensitivity against its predictions permuted over the samples
    (``n_perm`` seeded permutations): ``{"band95": 95th percentile, "p": one-sided p =
    (1 + #permuted >= observed) / (1 + n_perm)}``; None values without samples."""
    t, p = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if t.size == 0:
        return {"band95": None, "p": None}
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(p) for _ in range(n_perm)])
    null = _macro_sens_many(t, perms, n_classes)
    obs = float(_macro_sens_many(t, p[None], n_classes)[0])
    return {"band95": float(np.percentile(null, 95)), "p": float((1 + (null >= obs - 1e-12).sum()) / (1 + n_perm))}


def chance_verdict(y_true, y_pred, n_classes: int, prior: dict | None = None, seed: int = 0) -> dict:
    """``{"at_chance", "text", "band95", "p"}``: at chance when the permutation p
    (:func:`permutation_band`) is >= 0.05; ``text`` says so in words ("at chance: ..."),
    naming the prior's expected macro sensitivity when ``prior`` (:func:`prior_reference`)
    is given."""
    band = permutation_band(y_true, y_pred, n_classes, seed=seed)
    obs = _scores(y_true, y_pred, n_classes)["macro_sensitivity"]
    if band["p"] is None or obs is None:
        return {"at_chance": None, "text": "no samples: no chance band", **band}
    at = band["p"] >= 0.05
    prior_txt = ""
    if prior and prior["sampling"]["macro_sensitivity"] is not None:
        prior_txt = f"; drawing from the training prior expects {prior['sampling']['macro_sensitivity']:.3f}"
    if len(np.unique(np.asarray(y_pred))) == 1:
        prior_txt += "; the model predicts one class for every sample"
    verb = "at chance: macro sensitivity" if at else "above chance: macro sensitivity"
    where = "inside" if at else "above"
    text = (f"{verb} {obs:.3f} is {where} the 95 % permutation band (<= {band['band95']:.3f}, "
            f"permutation p = {band['p']:.3f}){prior_txt}")
    return {"at_chance": bool(at), "text": text, **band}


def roc_auc(y, score) -> float | None:
    """ROC AUC of ``score`` for binary ``y`` (1 positive): the Mann-Whitney statistic with
    tied scores counted one half (Hanley & McNeil 1982); None unless both classes occur."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=float)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return None
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def balanced_accuracy(y, pred) -> float | None:
    """Mean of the two classes' recalls for binary ``y`` and ``pred`` (1 positive); None
    unless both classes occur in ``y``."""
    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)
    if y.all() or not y.any():
        return None
    return float(((pred[y]).mean() + (~pred[~y]).mean()) / 2)


def bootstrap_interval(stat: Callable[..., float | None], *arrays, n_boot: int = 1000,
                       seed: int = 0) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of ``stat(*arrays)`` (samples resampled with
    replacement, ``n_boot`` times, seeded); resamples where ``stat`` is None are skipped;
    None when no resample gives a value."""
    arrs = [np.asarray(a) for a in arrays]
    n = len(arrs[0])
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        k = rng.integers(0, n, n)
        v = stat(*(a[k] for a in arrs))
        if v is not None:
            vals.append(v)
    if not vals:
        return None
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def _binary_block(y, p_motif, pred_motif, rule_motif, y5, pred5, rule5, n_classes: int, seed: int) -> dict:
    auc = roc_auc(y, p_motif) if p_motif is not None else None
    auc_ci = bootstrap_interval(roc_auc, y, p_motif, seed=seed) if auc is not None else None
    bal = balanced_accuracy(y, pred_motif)
    n_small = int(min(np.sum(y), len(y) - np.sum(y)))
    if auc is None:
        words = "AUC undefined (one of motif / unknown has no sample)"
    elif n_small < _MIN_PER_SIDE:
        words = (f"too few samples to compare the AUC with 0.5 ({n_small} on one side, fewer than "
                 f"{_MIN_PER_SIDE}; its interval is not trustworthy)")
    elif auc_ci is not None and auc_ci[0] > 0.5:
        words = "AUC above 0.5: its 95 % interval excludes 0.5"
    elif auc_ci is not None and auc_ci[1] < 0.5:
        words = "AUC below 0.5: its 95 % interval excludes 0.5"
    else:
        words = "at chance: the AUC's 95 % interval includes 0.5"
    return {"n": int(len(y)), "n_motif": int(np.sum(y)), "n_unknown": int(len(y) - np.sum(y)),
            "roc_auc": auc, "roc_auc_ci95": auc_ci, "auc_vs_chance": words,
            "balanced_accuracy": bal,
            "balanced_accuracy_ci95": bootstrap_interval(balanced_accuracy, y, pred_motif, seed=seed)
            if bal is not None else None,
            "macro_sensitivity": _scores(y5, pred5, n_classes)["macro_sensitivity"],
            "layout_rule": {"balanced_accuracy": balanced_accuracy(y, rule_motif),
                            "macro_sensitivity": _scores(y5, rule5, n_classes)["macro_sensitivity"]}}


def motif_vs_unknown(meta: pd.DataFrame, y_true, y_pred, class_names: Sequence[str], p_motif=None,
                     seed: int = 0) -> dict:
    """The binary headline (module docstring) for the rows of ``meta`` (test samples;
    ``strand_sequences``), their 5-class truths and predictions ``(N,)`` and the network's
    P(not unknown) ``p_motif`` ``(N,)`` (None: no AUC). Returns ``{"all": block, "one
    strand": block, "two strands": block, ...}`` (layouts without samples left out); each
    block: ``n``, ``n_motif``, ``n_unknown``, ``roc_auc`` and ``roc_auc_ci95``,
    ``auc_vs_chance`` (words: whether the AUC's interval excludes 0.5; "too few samples"
    with fewer than 5 motif or unknown samples), ``balanced_accuracy`` and ``balanced_accuracy_ci95``, the
    5-class ``macro_sensitivity`` and the ``layout_rule``'s balanced accuracy and macro
    sensitivity on the same samples. None when the scheme has no ``unknown`` class."""
    names = list(class_names)
    if _UNKNOWN not in names:
        return {}
    unk = names.index(_UNKNOWN)
    t, p = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    rule = layout_rule(meta, names)
    pm = None if p_motif is None else np.asarray(p_motif, dtype=float)
    layouts = strand_layout(meta)
    out = {}
    for name in ("all",) + LAYOUTS:
        m = np.ones(len(t), bool) if name == "all" else layouts == name
        if not m.any():
            continue
        out[name] = _binary_block(t[m] != unk, None if pm is None else pm[m], p[m] != unk, rule[m] != unk,
                                  t[m], p[m], rule[m], len(names), seed)
    return out


def constant_predictor(y_pred) -> bool:
    """True when ``y_pred`` holds one class for every sample (and there are samples)."""
    p = np.asarray(y_pred)
    return bool(p.size) and len(np.unique(p)) == 1


def references(train_meta: pd.DataFrame, train_targets, test_meta: pd.DataFrame, test_targets,
               class_names: Sequence[str]) -> dict:
    """The three reference lines on the test rows (module docstring): ``{"n", "prior",
    "layout_rule", "residue_count"}``. ``train_meta``/``test_meta``: metadata rows
    (``strand_sequences``, ``n_residues``), targets ``(N,)`` class indices."""
    k = len(class_names)
    test_y = np.asarray(test_targets, np.int64)
    rule = layout_rule(test_meta, class_names)
    return {"n": int(len(test_y)), "prior": prior_reference(train_targets, test_y, k),
            "layout_rule": _scores(test_y, rule, k),
            "residue_count": {key: v for key, v in
                              residue_count_reference(train_meta, train_targets, test_meta, test_y, k).items()
                              if key != "predictions"}}


def _runs_of(arm) -> list[dict]:
    if isinstance(arm, dict):
        arm = arm.get("runs", arm.get("folds", []))
    return list(arm)


def compare_runs(a, b, metric: str = "macro_sensitivity", n_boot: int = 2000, seed: int = 0) -> dict:
    """Pair two arms' runs by ``(fold, seed)`` and compare ``metric``.

    ``a``, ``b``: lists of run records (dicts with ``fold``, ``seed``, ``metric`` and
    optionally ``constant_predictor``), or summaries of
    :func:`rnamotif_data.learn.train.train_all_folds` (their ``runs``). Returns
    ``n_pairs``, ``pairs`` [(fold, seed, a, b)], per-arm ``mean``/``sd`` over the pairs,
    ``mean_difference`` (a − b), its 95 % percentile bootstrap interval over pairs
    (``difference_ci95``), the paired t-test p (``t_test_p``, scipy.stats.ttest_rel) and
    the Wilcoxon signed-rank p (``wilcoxon_p``, scipy.stats.wilcoxon; None when every
    difference is 0), ``unpaired`` keys, and each arm's ``constant_predictors`` (runs that
    predict one class for a whole fold). Runs without a value are left out.
    """
    from scipy import stats

    def index(arm):
        return {(str(r["fold"]), int(r.get("seed", 0))): r for r in _runs_of(arm) if r.get(metric) is not None}

    ra, rb = index(a), index(b)
    keys = sorted(set(ra) & set(rb))
    xa = np.asarray([ra[k][metric] for k in keys], float)
    xb = np.asarray([rb[k][metric] for k in keys], float)
    d = xa - xb
    out: dict = {"metric": metric, "n_pairs": len(keys),
                 "pairs": [(f, s, float(u), float(v)) for (f, s), u, v in zip(keys, xa, xb)],
                 "unpaired": sorted(set(ra) ^ set(rb)),
                 "constant_predictors": {"a": [k for k, r in ra.items() if r.get("constant_predictor")],
                                         "b": [k for k, r in rb.items() if r.get("constant_predictor")]}}
    for name, x in (("a", xa), ("b", xb)):
        out[name] = {"mean": float(x.mean()) if len(x) else None,
                     "sd": float(x.std(ddof=1)) if len(x) > 1 else None}
    out["mean_difference"] = float(d.mean()) if len(d) else None
    out["difference_ci95"] = bootstrap_interval(lambda x: float(x.mean()), d, n_boot=n_boot, seed=seed) \
        if len(d) > 1 else None
    out["t_test_p"] = float(stats.ttest_rel(xa, xb).pvalue) if len(d) > 1 and d.std() > 0 else None
    out["wilcoxon_p"] = float(stats.wilcoxon(xa, xb).pvalue) if len(d) > 0 and np.any(d != 0) else None
    return out


def comparison_markdown(cmp: dict, names: tuple[str, str] = ("a", "b")) -> str:
    """:func:`compare_runs`'s result as Markdown: the per-pair table, the arms' mean ± sd, the
    difference with its interval and p-values in words, constant predictors named."""
    def f(v):
        return "–" if v is None else f"{v:.3f}"

    na, nb = names
    lines = [f"### {na} versus {nb} ({cmp['metric']}, paired by fold and seed)", "",
             f"| fold | seed | {na} | {nb} | {na} − {nb} |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {fo} | {s} | {u:.3f} | {v:.3f} | {u - v:+.3f} |" for fo, s, u, v in cmp["pairs"]]

    def pm(d):
        return "–" if d["mean"] is None else f"{d['mean']:.3f}" + ("" if d["sd"] is None else f" ± {d['sd']:.3f}")

    ci = cmp["difference_ci95"]
    lines += ["", f"{cmp['n_pairs']} pairs. {na}: {pm(cmp['a'])}; {nb}: {pm(cmp['b'])} (mean ± sd over folds × seeds).",
              f"Mean difference {na} − {nb}: {f(cmp['mean_difference'])}"
              + ("" if ci is None else f" (95 % bootstrap interval {ci[0]:+.3f} to {ci[1]:+.3f})")
              + f"; paired t-test p = {f(cmp['t_test_p'])}, Wilcoxon signed-rank p = {f(cmp['wilcoxon_p'])}."]
    p = cmp["t_test_p"]
    lines.append("The difference is significant at p < 0.05 (paired t-test)." if p is not None and p < 0.05 else
                 "No difference shown: the paired t-test gives p >= 0.05 (or cannot be computed).")
    for arm, label in (("a", na), ("b", nb)):
        const = cmp["constant_predictors"][arm]
        if const:
            lines.append(f"Constant predictors in {label} (one class for a whole fold): "
                         + ", ".join(f"{fo} seed {s}" for fo, s in const) + ".")
    if cmp["unpaired"]:
        lines.append("Runs without a partner (left out): " + ", ".join(f"{fo} seed {s}" for fo, s in cmp["unpaired"]) + ".")
    return "\n".join(lines) + "\n"
