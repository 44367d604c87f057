"""Classification metrics in the upstream benchmark's layout.

Confusion matrix rows are true classes, columns predicted, in the order sym, bul, hp,
asymm, unk (:data:`rnamotif_data.rna.motifs.CLASS_NAMES`). For class c:
sensitivity = TP / (TP + FN) (recall), specificity = TN / (TN + FP); macro figures are
the unweighted means over classes where they are defined (a class without true samples
has no sensitivity and is left out of the macro sensitivity; specificity is defined
whenever some sample is not of the class); accuracy = trace / total. Breakdowns
by resolution bin (<= 3 Å, 3-4 Å, > 4 Å) and by fine motif type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnamotif_data.common.extras import require
from rnamotif_data.errors import InputError
from rnamotif_data.rna.motifs import CLASS_NAMES

__all__ = ["SHORT_NAMES", "RESOLUTION_BINS", "IDENTITY_BINS", "RELATED_LEVELS", "confusion_matrix", "class_metrics",
           "breakdown", "wilson_interval", "bootstrap_macro_sensitivity", "level_metrics", "markdown_report",
           "plot_confusion", "format_metric", "reference_lines"]

#: The upstream README's column labels.
SHORT_NAMES = ("sym", "bul", "hp", "asymm", "unk")
#: (label, low exclusive, high inclusive) in Å.
RESOLUTION_BINS = (("<= 3 Å", -np.inf, 3.0), ("3-4 Å", 3.0, 4.0), ("> 4 Å", 4.0, np.inf))


def confusion_matrix(y_true, y_pred, n_classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """``(n, n)`` int64 counts, rows true, columns predicted.

    Raises
    ------
    InputError
        If the inputs differ in length or hold a class outside ``[0, n_classes)``.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise InputError(f"y_true has {t.size} labels, y_pred {p.size}")
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise InputError(f"{name} holds a class outside [0, {n_classes})")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def class_metrics(cm: np.ndarray, class_names=CLASS_NAMES) -> dict:
    """Per-class and macro sensitivity/specificity and accuracy of a confusion matrix.

    Returns a JSON-serialisable dict: ``per_class`` {name: {support, sensitivity,
    specificity}} (None where undefined), ``macro_sensitivity``, ``macro_specificity``,
    ``accuracy``, ``n``, ``confusion_matrix``.
    """
    cm = np.asarray(cm, dtype=np.int64)
    total = int(cm.sum())
    per, sens, spec = {}, [], []
    for i, name in enumerate(class_names):
        tp = int(cm[i, i])
        fn = int(cm[i].sum()) - tp
        fp = int(cm[:, i].sum()) - tp
        tn = total - tp - fn - fp
        se = tp / (tp + fn) if tp + fn else None
        sp = tn / (tn + fp) if tn + fp else None
        per[name] = {"support": tp + fn, "sensitivity": se, "specificity": sp}
        if se is not None:
            sens.append(se)
        if sp is not None:
            spec.append(sp)
    return {"per_class": per,
            "macro_sensitivity": float(np.mean(sens)) if sens else None,
            "macro_specificity": float(np.mean(spec)) if spec else None,
            "accuracy": float(np.trace(cm) / total) if total else None,
            "n": total, "confusion_matrix": cm.tolist()}


#: bins of a sample's highest context identity to its fold's training set (split column
#: ``max_identity_to_train``): (label, low, high], 0 = no aligned relative in training
IDENTITY_BINS = (("0 (none aligned)", -1.0, 0.0), ("(0, 0.5]", 0.0, 0.5), ("(0.5, 0.7]", 0.5, 0.7),
                 ("(0.7, 0.8]", 0.7, 0.8), ("(0.8, 1]", 0.8, 1.0))


#: a validation sample's strictest relation to its fold's training set (split column
#: ``related_level``, :mod:`rnamotif_data.split.homology`), strictest first
RELATED_LEVELS = ("identity", "family", "none", "unknown")


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval (95 % for z = 1.96) of a proportion; None for n = 0
    (Wilson 1927, JASA 22:209, DOI 10.1080/01621459.1927.10502953)."""
    if n <= 0:
        return None
    p = successes / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return float(max(0.0, c - h)), float(min(1.0, c + h))


def bootstrap_macro_sensitivity(y_true, y_pred, n_classes: int, n_boot: int = 1000,
                                seed: int = 0) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of the macro sensitivity (samples resampled with
    replacement, ``n_boot`` times, seeded: deterministic); None for no samples."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if t.size == 0:
        return None
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, t.size, t.size)
        cm = np.zeros((n_classes, n_classes), dtype=np.int64)
        np.add.at(cm, (t[idx], p[idx]), 1)
        support = cm.sum(axis=1)
        ok = support > 0
        vals.append(float(np.mean(np.diag(cm)[ok] / support[ok])))
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def level_metrics(levels, y_true, y_pred, class_names=CLASS_NAMES) -> dict:
    """Accuracy and macro sensitivity per related level (:data:`RELATED_LEVELS`; the split
    column ``related_level``), with counts, a Wilson interval of the accuracy and a
    bootstrap interval of the macro sensitivity: PLINDER's stratified view (Durairaj et al.
    2024, DOI 10.1101/2024.07.17.603955). Levels without samples are left out."""
    lv = np.asarray([str(x) if x is not None and x == x else "unknown" for x in levels], dtype=object)
    t, p = np.asarray(y_true), np.asarray(y_pred)
    out = {}
    for level in RELATED_LEVELS:
        m = lv == level
        if not m.any():
            continue
        d = class_metrics(confusion_matrix(t[m], p[m], len(class_names)), class_names)
        correct = int((t[m] == p[m]).sum())
        out[level] = {"n": int(m.sum()), "correct": correct, "accuracy": d["accuracy"],
                      "accuracy_ci95": wilson_interval(correct, int(m.sum())),
                      "macro_sensitivity": d["macro_sensitivity"],
                      "macro_sensitivity_ci95": bootstrap_macro_sensitivity(t[m], p[m], len(class_names))}
    return out


def breakdown(meta: pd.DataFrame, y_true, y_pred, class_names=CLASS_NAMES) -> dict:
    """Metrics per resolution bin (``resolution`` column, Å), per fine ``motif_type``
    (count, correct, sensitivity) and, when ``meta`` has ``max_identity_to_train`` (the
    split file's, e.g. from :attr:`RNAMotifDataset.split_columns`), per bin of it
    (:data:`IDENTITY_BINS`): how performance falls with novelty; when it has
    ``related_level`` (the split file's), per related level (:func:`level_metrics`)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out: dict[str, dict] = {"resolution": {}, "motif_type": {}}
    if "related_level" in meta:
        out["related_level"] = level_metrics(meta["related_level"].tolist(), y_true, y_pred, class_names)
    if "max_identity_to_train" in meta:
        out["identity_to_train"] = {}
        ident = meta["max_identity_to_train"].to_numpy(dtype=float)
        for label, lo, hi in IDENTITY_BINS:
            m = (ident > lo) & (ident <= hi)
            if m.any():
                d = class_metrics(confusion_matrix(y_true[m], y_pred[m], len(class_names)), class_names)
                out["identity_to_train"][label] = {"n": int(m.sum()), "accuracy": d["accuracy"],
                                                   "macro_sensitivity": d["macro_sensitivity"]}
    res = meta["resolution"].to_numpy(dtype=float)
    for label, lo, hi in RESOLUTION_BINS:
        m = (res > lo) & (res <= hi)
        if m.any():
            out["resolution"][label] = class_metrics(confusion_matrix(y_true[m], y_pred[m], len(class_names)),
                                                     class_names)
    for t, idx in meta.groupby("motif_type").indices.items():
        n = len(idx)
        correct = int((y_true[idx] == y_pred[idx]).sum())
        out["motif_type"][str(t)] = {"n": n, "correct": correct, "sensitivity": correct / n}
    return out


def format_metric(v) -> str:
    """A metric with 3 decimals, or "–" when undefined (None or NaN)."""
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


def _ci(v) -> str:
    return "" if not v else f" ({v[0]:.3f}–{v[1]:.3f})"


def reference_lines(metrics: dict) -> list[str]:
    """Markdown lines for the chance verdict, the reference lines and the motif-versus-unknown
    headline of an evaluation dict (keys ``chance``, ``references``, ``motif_vs_unknown``
    made by :mod:`rnamotif_data.learn.references`); none for a dict without them."""
    lines: list[str] = []
    chance = metrics.get("chance")
    if chance and chance.get("text"):
        lines += [chance["text"][0].upper() + chance["text"][1:] + ".", ""]
    refs = metrics.get("references")
    if refs:
        prior, rule, rc = refs["prior"], refs["layout_rule"], refs["residue_count"]
        lines += ["Reference lines on the same samples (macro sensitivity / accuracy):", "",
                  "| predictor | macro sensitivity | accuracy |", "|---|---:|---:|",
                  f"| this model | {format_metric(metrics.get('macro_sensitivity'))} | "
                  f"{format_metric(metrics.get('accuracy'))} |",
                  f"| class prior, drawn (expected) | {format_metric(prior['sampling']['macro_sensitivity'])} | "
                  f"{format_metric(prior['sampling']['accuracy'])} |",
                  f"| class prior, majority class | {format_metric(prior['majority']['macro_sensitivity'])} | "
                  f"{format_metric(prior['majority']['accuracy'])} |",
                  f"| layout rule (strands only, no density, no training) | "
                  f"{format_metric(rule['macro_sensitivity'])} | {format_metric(rule['accuracy'])} |"]
        if "note" in rc:
            lines += ["", f"Residue-count reference not computed: {rc['note']}"]
        else:
            lines.append(f"| residue count only (logistic regression) | {format_metric(rc['macro_sensitivity'])} | "
                         f"{format_metric(rc['accuracy'])} |")
        lines.append("")
    mvu = metrics.get("motif_vs_unknown")
    if mvu:
        lines += ["Motif versus unknown (what the selection does not give away; P(not unknown) for the AUC):", "",
                  "| layout | n (motif / unknown) | ROC AUC (95 % CI) | balanced accuracy (95 % CI) | "
                  "5-class macro sensitivity | layout rule: balanced accuracy / macro sensitivity |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, b in mvu.items():
            lines.append(f"| {name} | {b['n']} ({b['n_motif']} / {b['n_unknown']}) | "
                         f"{format_metric(b['roc_auc'])}{_ci(b['roc_auc_ci95'])} | "
                         f"{format_metric(b['balanced_accuracy'])}{_ci(b['balanced_accuracy_ci95'])} | "
                         f"{format_metric(b['macro_sensitivity'])} | "
                         f"{format_metric(b['layout_rule']['balanced_accuracy'])} / "
                         f"{format_metric(b['layout_rule']['macro_sensitivity'])} |")
        lines += [""] + [f"- {name}: {b['auc_vs_chance']}." for name, b in mvu.items()] + [""]
    return lines


def markdown_report(metrics: dict, class_names=CLASS_NAMES, title: str = "Evaluation") -> str:
    """Confusion matrix and per-class figures as Markdown (the upstream README's layout)."""
    short = SHORT_NAMES if len(class_names) == len(SHORT_NAMES) else class_names
    cm = metrics["confusion_matrix"]
    headline = (f"Macro sensitivity {format_metric(metrics['macro_sensitivity'])}, macro specificity "
                f"{format_metric(metrics['macro_specificity'])} ({len(class_names)} classes)")
    chance = metrics.get("chance") or {}
    # a score at chance is never a bold headline; the reference lines come first, beside it
    lines = [f"## {title}", "", f"n = {metrics['n']}, accuracy {format_metric(metrics['accuracy'])}", "",
             headline if chance.get("at_chance") else f"**{headline}**", ""]
    lines += reference_lines(metrics)
    lines += ["| true \\ predicted | " + " | ".join(short) + " |", "|---|" + "---:|" * len(short)]
    lines += [f"| {short[i]} | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(cm)]
    lines += ["", "| class | support | sensitivity | specificity |", "|---|---:|---:|---:|"]
    for s, name in zip(short, class_names):
        d = metrics["per_class"][name]
        lines.append(f"| {s} | {d['support']} | {format_metric(d['sensitivity'])} | {format_metric(d['specificity'])} |")
    lines.append("")
    bd = metrics.get("breakdown") or {}
    if bd.get("identity_to_train"):
        lines += ["By highest context identity to the fold's training set (novelty):", "",
                  "| identity to train | n | accuracy | macro sensitivity |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {v['n']} | {format_metric(v['accuracy'])} | {format_metric(v['macro_sensitivity'])} |"
                  for k, v in bd["identity_to_train"].items()]
        lines.append("")
    if bd.get("related_level"):
        def ci(v):
            return "–" if v is None else f"{v[0]:.3f}–{v[1]:.3f}"
        lines += ["By strictest homology to the fold's training set (chain class / family):", "",
                  "| related to training by | n | accuracy (95 % CI) | macro sensitivity (95 % CI) |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {k} | {v['n']} | {format_metric(v['accuracy'])} ({ci(v['accuracy_ci95'])}) | "
                  f"{format_metric(v['macro_sensitivity'])} ({ci(v['macro_sensitivity_ci95'])}) |"
                  for k, v in bd["related_level"].items()]
        lines.append("")
    if bd.get("motif_type"):
        lines += ["By fine motif type:", "", "| motif type | n | correct | sensitivity |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {v['n']} | {v['correct']} | {format_metric(v['sensitivity'])} |"
                  for k, v in sorted(bd["motif_type"].items())]
        lines.append("")
    return "\n".join(lines)


def plot_confusion(cm, path, class_names=CLASS_NAMES, title: str = "") -> None:
    """Write a confusion-matrix PNG (counts, row-normalised colour)."""
    matplotlib = require("matplotlib", "the confusion-matrix plot")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "the confusion-matrix plot")

    cm = np.asarray(cm)
    short = SHORT_NAMES if len(class_names) == len(SHORT_NAMES) else class_names
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(short)), short)
    ax.set_yticks(range(len(short)), short)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(title, 48)), fontsize=10)  # long titles wrap, never clip
    fig.colorbar(im, ax=ax, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
