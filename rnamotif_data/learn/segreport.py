"""The report of a segmentation's metrics: Markdown tables with every score beside its
reference lines (:func:`segmentation_markdown`) and a slice of a tile with its true and
predicted labels (:func:`plot_tile_slice`), from :meth:`SegmentationMetrics.result
<rnamotif_data.learn.segmetrics.SegmentationMetrics.result>`. Imports no torch.
"""

from __future__ import annotations

import numpy as np

from rnamotif_data.common.extras import require
from rnamotif_data.errors import InputError
from rnamotif_data.learn.metrics import format_metric
from rnamotif_data.learn.segmetrics import PREDICTOR_WORDS, RNA_CLASSES, ci_text
from rnamotif_data.rna.elements import ELEMENT_NAMES

__all__ = ["segmentation_markdown", "plot_tile_slice", "ELEMENT_COLOURS"]


def _cell(v, ci=None) -> str:
    return format_metric(v) + ci_text(ci)


def _pair(p: dict, key: str) -> str:
    return f"{format_metric(p[key])} / {format_metric(p[key + '_tol'])}"


def _headline_table(group: dict) -> list[str]:
    lines = ["| predictor | macro F1, exact (95 % CI) | macro F1, 3 Å (95 % CI) | loop macro F1, exact / 3 Å | "
             "residue accuracy (95 % CI) | loop instances found | loop sites right |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, p in group["predictors"].items():
        r, inst = p["residues"], p["instances"]["all loops"]
        found = "–" if inst["instances"] is None else f"{inst['found']}/{inst['instances']}"
        lines.append(f"| {PREDICTOR_WORDS[name]} | {_cell(p['macro_f1'], p['macro_f1_ci95'])} | "
                     f"{_cell(p['macro_f1_tol'], p['macro_f1_tol_ci95'])} | {_pair(p, 'loop_macro_f1')} | "
                     f"{'–' if r is None else _cell(r['accuracy'], r['accuracy_wilson95'])} | {found} | "
                     f"{inst['true_sites']}/{inst['sites']} |")
    return lines + [""]


def _class_table(group: dict, class_names) -> list[str]:
    preds = group["predictors"]
    main = "network" if "network" in preds else next(iter(preds))
    refs = [n for n in preds if n != main]
    lines = [f"Per class ({PREDICTOR_WORDS[main]}; precision and recall with Wilson intervals over voxels, F1 with "
             "bootstrap intervals; reference lines' F1 exact / 3 Å):", "",
             "| class | true voxels | predicted | precision | recall | F1 | precision 3 Å | recall 3 Å | F1 3 Å | "
             + " | ".join(PREDICTOR_WORDS[n] for n in refs) + " |", "|---|" + "---:|" * (8 + len(refs))]
    for cname in class_names:
        d = preds[main]["per_class"][cname]
        if not d["n_true"] and not d["n_pred"]:
            continue
        lines.append(f"| {cname} | {d['n_true']} | {d['n_pred']} | {_cell(d['precision'], d['precision_wilson95'])} | "
                     f"{_cell(d['recall'], d['recall_wilson95'])} | {_cell(d['f1'], d['f1_ci95'])} | "
                     f"{_cell(d['precision_tol'], d['precision_tol_wilson95'])} | "
                     f"{_cell(d['recall_tol'], d['recall_tol_wilson95'])} | {_cell(d['f1_tol'], d['f1_tol_ci95'])} | "
                     + " | ".join(_pair(preds[n]["per_class"][cname], "f1") for n in refs) + " |")
    return lines + [""]


def _loop_table(group: dict) -> list[str]:
    preds = group["predictors"]
    names = list(preds)
    lines = ["Loop instances found (recall; an instance is found when its class covers at least half its voxels) and "
             "predicted sites that are right (precision; a 26-connected component at least half on its class), with "
             "Wilson intervals:", "",
             "| loop class | " + " | ".join(f"{PREDICTOR_WORDS[n]}: found / sites right" for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for cname in preds[names[0]]["instances"]:
        cells = []
        for n in names:
            d = preds[n]["instances"][cname]
            rec = "–" if d["instances"] is None else \
                f"{d['found']}/{d['instances']} {_cell(d['recall'], d['recall_wilson95'])}"
            cells.append(f"{rec}; {d['true_sites']}/{d['sites']} {_cell(d['precision'], d['precision_wilson95'])}")
        lines.append(f"| {cname} | " + " | ".join(cells) + " |")
    return lines + [""]


def _residue_table(group: dict) -> list[str]:
    preds = {n: p for n, p in group["predictors"].items() if p["residues"] is not None}
    if not preds:
        return []
    names = list(preds)
    classes = list(next(iter(preds.values()))["residues"]["per_class"])
    lines = ["Per-residue accuracy by majority vote of each residue's voxels, by true class (correct / residues):", "",
             "| true class | residues | " + " | ".join(PREDICTOR_WORDS[n] for n in names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for c in classes:
        first = preds[names[0]]["residues"]["per_class"][c]
        lines.append(f"| {c} | {first['n']} | " + " | ".join(
            f"{preds[n]['residues']['per_class'][c]['correct']} ({format_metric(preds[n]['residues']['per_class'][c]['accuracy'])})"
            for n in names) + " |")
    return lines + [""]


def _breakdown_table(groups: dict, what: str) -> list[str]:
    if not groups:
        return []
    names = list(next(iter(groups.values()))["predictors"])
    lines = [f"By {what} (macro F1 exact / 3 Å of each predictor; residue accuracy, loop instances found and loop "
             "sites right of each):", "",
             f"| {what} | entries | voxels | " + " | ".join(PREDICTOR_WORDS[n] for n in names) + " |",
             "|---|---:|---:|" + "---:|" * len(names)]
    for label, g in groups.items():
        lines.append(f"| {label} | {g['n_entries']} | {g['n_voxels']} | " + " | ".join(
            _group_cell(g["predictors"][n]) if n in g["predictors"] else "–" for n in names) + " |")
    return lines + [""]


def _group_cell(p: dict) -> str:
    """One predictor's figures in a breakdown row."""
    r, inst = p["residues"], p["instances"]["all loops"]
    cell = _pair(p, "macro_f1")
    if r is not None:
        cell += f"; residues {format_metric(r['accuracy'])}"
    if inst["instances"] is not None:
        cell += f"; found {inst['found']}/{inst['instances']}"
    return cell + f"; sites {inst['true_sites']}/{inst['sites']}"


def segmentation_markdown(result: dict, title: str = "Segmentation") -> str:
    """:meth:`SegmentationMetrics.result` as Markdown: the chance verdict in words, then
    the headline table (each predictor a row: the network beside its reference lines),
    per-class precision/recall/F1 exact and 3 Å with intervals and the references' F1,
    per-residue accuracy, loop instances and sites, and macro F1 by resolution bin and
    by similarity level -- every score beside its reference lines."""
    g = result["groups"]["all"]
    chance = result.get("chance") or {}
    lines = [f"## {title}", "",
             f"{result['n_entries']} entries, {result['n_updates']} volumes or tiles, {g['n_voxels']} voxels scored. "
             f"Tolerance {result['tolerance']:g} Å (Emap2sec+: a voxel counts when its class lies within it). "
             f"Macro F1 over the RNA classes ({', '.join(result['rna_classes'])}) present; loop macro F1 over "
             f"{', '.join(result['loop_classes'])}. F1 intervals: percentile bootstrap over "
             f"{'entries' if result['unit'] == 'entry' else 'volumes or tiles'}.", ""]
    if chance.get("text"):
        text = chance["text"][0].upper() + chance["text"][1:] + "."
        lines += [f"**{text}**" if chance.get("at_chance") else text, ""]
    if not g["predictors"]:
        return "\n".join(lines + ["Nothing scored."]) + "\n"
    lines += _headline_table(g) + _class_table(g, result["classes"]) + _residue_table(g) + _loop_table(g)
    lines += _breakdown_table(result["groups"]["resolution"], "resolution")
    lines += _breakdown_table(result["groups"]["level"], "similarity to training")
    return "\n".join(lines)


#: one colour per element class (none transparent-grey), for the slice plot
#: a colour per element id (rna.elements.ELEMENT_NAMES), for every picture of labels
ELEMENT_COLOURS = ("#f0f0f0", "#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f", "#17becf")


def plot_tile_slice(density, true, pred, path, *, axis: int = 0, index: int | None = None,
                    class_names=ELEMENT_NAMES, title: str = "") -> int:
    """Write a PNG of one slice of a tile: density, true labels, predicted labels side by side.

    Parameters
    ----------
    density, true, pred:
        ``(D, H, W)`` z-y-x: normalised density, true and predicted classes (true
        ``ignore_index`` voxels shown white).
    path:
        The PNG to write (matplotlib, Agg backend).
    axis, index:
        The slice: plane ``index`` along ``axis`` (0 z, 1 y, 2 x); by default the plane
        with the most true RNA voxels.

    Returns the plane's index. Raises InputError for volumes of different shapes or an
    index outside the tile; MissingDependencyError without matplotlib.
    """
    density, true, pred = np.asarray(density), np.asarray(true), np.asarray(pred)
    if not (density.shape == true.shape == pred.shape) or density.ndim != 3:
        raise InputError(f"density {density.shape}, truth {true.shape} and prediction {pred.shape} must be one "
                         "(D, H, W) shape")
    if index is None:
        rna = np.isin(true, RNA_CLASSES)
        index = int(np.argmax(rna.sum(axis=tuple(a for a in range(3) if a != axis))))
    if not 0 <= index < density.shape[axis]:
        raise InputError(f"slice {index} is outside the tile's {density.shape[axis]} planes along axis {axis}")
    matplotlib = require("matplotlib", "the tile slice plot")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "the tile slice plot")
    colors = require("matplotlib.colors", "the tile slice plot")
    patches = require("matplotlib.patches", "the tile slice plot")
    cmap = colors.ListedColormap(ELEMENT_COLOURS[:len(class_names)])
    fig, axes = plt.subplots(1, 3, figsize=(11, 4))
    axes[0].imshow(np.take(density, index, axis=axis), cmap="gray", vmin=0, vmax=1, origin="lower")
    for ax, lab, name in ((axes[1], true, "true labels"), (axes[2], pred, "predicted labels")):
        sl = np.take(lab, index, axis=axis).astype(float)
        ax.imshow(np.ma.masked_where((sl < 0) | (sl >= len(class_names)), sl), cmap=cmap, vmin=-0.5,
                  vmax=len(class_names) - 0.5, origin="lower", interpolation="nearest")
        ax.set_title(name)
    axes[0].set_title("density (normalised)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [patches.Patch(color=ELEMENT_COLOURS[i], label=n) for i, n in enumerate(class_names)]
    fig.legend(handles=handles, loc="lower center", ncol=len(class_names), fontsize=8, frameon=False)
    where = f"plane {index} along {'zyx'[axis]}"
    fig.suptitle(f"{title} ({where})" if title else where, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return index
