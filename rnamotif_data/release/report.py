"""QC report of a built store: a PNG of histograms and a Markdown page.

``rnamotif report STORE [--out DIR]`` writes ``DIR/qc.png`` and ``DIR/qc.md``
(default DIR: ``STORE/../<store name>-report``):

* class counts (motifs and background) and failed manifest rows by stage;
* per class: histograms of Q-score, CC_mask and resolution;
* Q-score against resolution with the expected nucleic-acid line
  ``Q_exp = -0.1377 * resolution + 0.9973`` (Pintilie et al. 2020,
  doi:10.1038/s41592-020-0731-1);
* a table of per-class medians (Q-score, Q - Q_exp, CC_mask, fit_z, resolution);
* per-motif placement (``placement.png``): the distributions of motif fit_z and of the
  fraction of heavy atoms above map mean + 1 sd, for kept motifs and for those rejected
  at stage ``placement``, with the build's thresholds;
* background cubes requested and placed (entries short of sites named) and the map
  files' header anomalies (``map_warnings``);
* the shortcut audit (:mod:`rnamotif_data.release.audit`, ``audit.png``): can structure-free features
  tell "unknown" from motifs? (needs scikit-learn, the ``audit`` extra; without it the
  section says how to get it);
* for a store built with ``--tiles``: the volumes and tiles (:mod:`rnamotif_data.release.tiles_report`,
  ``tile.png``: one tile's density and element labels).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.common.extras import require
from rnamotif_data.em.quality import expected_q_score
from rnamotif_data.errors import RNAMotifError, StoreError
from rnamotif_data.inputs.demo import simulated_maps_note
from rnamotif_data.learn.metrics import format_metric
from rnamotif_data.release.audit import audit_lines, audit_store, plot_audit
from rnamotif_data.release.tiles_report import has_tiles, tiles_section
from rnamotif_data.rna.motifs import CLASS_NAMES
from rnamotif_data.storage.store import open_store

log = logging.getLogger("rnamotif_data.release.report")

_METRICS = (("q_score", "Q-score"), ("cc_mask", "CC_mask"), ("resolution", "resolution (Å)"))


def plot_qc(meta: pd.DataFrame, path: Path, title: str) -> None:
    """Write the QC figure (histograms per class, Q vs resolution, class counts) to ``path``."""
    matplotlib = require("matplotlib", "the QC report")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "the QC report")

    fig, axes = plt.subplots(2, 3, figsize=(15, 9))
    colours = dict(zip(CLASS_NAMES, plt.get_cmap("tab10").colors))
    classes = [c for c in CLASS_NAMES if (meta["motif_class"] == c).any()]
    for ax, (col, label) in zip(axes[0], _METRICS):
        values = meta[col].dropna().to_numpy(dtype=float)
        if values.size == 0:
            ax.text(0.5, 0.5, f"no {label} values", ha="center", va="center", transform=ax.transAxes)
        else:
            lo, hi = float(values.min()), float(values.max())
            if hi - lo < 1e-6:  # one value (e.g. a single map): a bar centred on it
                lo, hi = lo - 0.5, hi + 0.5
            bins = np.linspace(lo, hi, 21)
            for c in classes:
                v = meta.loc[meta["motif_class"] == c, col].dropna().to_numpy(dtype=float)
                if v.size:
                    ax.hist(v, bins=bins, histtype="step", lw=1.6, color=colours[c], label=f"{c} ({v.size})")
        ax.set_xlabel(label)
        ax.set_ylabel("samples")
        ax.set_title(f"{label} per class")
        ax.legend(fontsize=8)
    ax = axes[1][0]
    for c in classes:
        sub = meta[meta["motif_class"] == c]
        ax.scatter(sub["resolution"], sub["q_score"], s=12, alpha=0.7, color=colours[c], label=c)
    res = meta["resolution"].dropna().to_numpy(dtype=float)
    if res.size:
        x = np.linspace(min(1.5, res.min()), max(5.0, res.max()), 50)
        ax.plot(x, [expected_q_score(v) for v in x], "k--", label="Q_exp (nucleic acids, σ 0.6)")
    ax.set_xlabel("resolution (Å)")
    ax.set_ylabel("Q-score (motif mean)")
    ax.set_title("Q-score vs resolution")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    counts = meta["motif_class"].value_counts().reindex(CLASS_NAMES, fill_value=0)
    bars = ax.bar(range(len(CLASS_NAMES)), counts.to_numpy(), color=[colours[c] for c in CLASS_NAMES])
    ax.bar_label(bars)
    ax.set_xticks(range(len(CLASS_NAMES)), [c.replace("_", "\n") for c in CLASS_NAMES])
    ax.set_ylabel("samples")
    ax.set_title("class counts")
    ax = axes[1][2]
    d = (meta["q_score_minus_expected"]).dropna().to_numpy(dtype=float)
    if d.size:
        ax.hist(d, bins=20, color="grey")
        ax.axvline(0, color="k", ls="--")
    else:  # say why the panel is empty rather than leave it blank
        ax.text(0.5, 0.5, "no sample has Q_exp:\nthe expected Q-score is defined\nfor resolutions of 1.5-5 Å\n"
                "(sigma 0.6 Å) only", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("Q-score - Q_exp")
    ax.set_ylabel("samples")
    ax.set_title("Q-score relative to the resolution's expectation")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


_PLACEMENT = (("fit_z", "motif fit_z (map sd above the map mean)", "min_motif_fit_z"),
              ("frac_atoms_above_1sd", "fraction of heavy atoms above mean + 1 sd", "min_motif_frac_above_1sd"))


def plot_placement(meta: pd.DataFrame, failures: pd.DataFrame, config: dict, path: Path, title: str) -> None:
    """Write the per-motif placement figure: for each criterion, histograms of kept motifs
    and of motifs rejected at stage ``placement``, with the threshold as a dashed line."""
    matplotlib = require("matplotlib", "the QC report")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "the QC report")

    kept = meta[~meta["is_background"]]
    rejected = failures[failures["stage"] == "placement"] if "fit_z" in failures.columns else failures.iloc[:0]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (col, label, key) in zip(axes, _PLACEMENT):
        a = kept[col].dropna().to_numpy(dtype=float)
        b = rejected[col].dropna().to_numpy(dtype=float) if col in rejected.columns else np.zeros(0)
        both = np.concatenate([a, b])
        if both.size:
            lo, hi = float(both.min()), float(both.max())
            bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
            ax.hist([a, b], bins=bins, stacked=True, color=["tab:blue", "tab:red"],
                    label=[f"kept ({a.size})", f"rejected: placement ({b.size})"])
        limit = config.get(key)
        if limit is not None:
            ax.axvline(limit, color="k", ls="--", label=f"{key} = {limit:g}")
        ax.set_xlabel(label)
        ax.set_ylabel("motifs")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def placement_lines(meta: pd.DataFrame, failures: pd.DataFrame, config: dict, png_name: str) -> list[str]:
    """The per-motif placement section: thresholds, counts kept and rejected, the figure."""
    n_kept = int((~meta["is_background"]).sum())
    n_rej = int((failures["stage"] == "placement").sum()) if len(failures) else 0
    limits = ", ".join(f"`{key}` = {config.get(key)}" for _, _, key in _PLACEMENT)
    return [f"Thresholds: {limits} (docs/placement.md). {n_kept} motifs kept, {n_rej} rejected as sitting "
            "in empty density.", "", f"![per-motif placement]({png_name})"]


def background_lines(attrs: dict) -> list[str]:
    """Background cubes requested and placed, naming the entries short of sites."""
    bg = attrs.get("background")
    if not bg:
        return ["Not recorded (store built before format 3)."]
    lines = [f"{bg.get('placed', 0)} of {bg.get('requested', 0)} requested background cubes placed."]
    short = bg.get("short") or {}
    if short:
        lines += ["", "| entry | placed | requested |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {p} | {a} |" for k, (p, a) in sorted(short.items())]
    return lines


def map_warning_lines(attrs: dict) -> list[str]:
    """Header anomalies of the entries' map files, one row per entry and warning."""
    warnings = attrs.get("map_warnings") or {}
    if not warnings:
        return ["None."]
    return ["| entry | warning |", "| --- | --- |"] + [f"| {k} | {w} |" for k, ws in sorted(warnings.items())
                                                        for w in ws]


def quality_table(meta: pd.DataFrame) -> list[str]:
    """Per-class sample counts and median Q-score, Q - Q_exp, CC_mask, fit_z and resolution,
    as Markdown table lines."""
    lines = ["| class | samples | Q-score (median) | Q - Q_exp (median) | CC_mask (median) | fit_z (median) "
             "| resolution Å (median) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in CLASS_NAMES:
        sub = meta[meta["motif_class"] == c]
        med = {k: (float(sub[k].median()) if sub[k].notna().any() else None)
               for k in ("q_score", "q_score_minus_expected", "cc_mask", "fit_z", "resolution")}
        lines.append(f"| {c} | {len(sub)} | {format_metric(med['q_score'])} | {format_metric(med['q_score_minus_expected'])} | "
                     f"{format_metric(med['cc_mask'])} | {format_metric(med['fit_z'])} | {format_metric(med['resolution'])} |")
    return lines


def failures_table(failures: pd.DataFrame) -> list[str]:
    """Failed manifest rows per stage as Markdown table lines ("None." if there are none)."""
    if not len(failures):
        return ["None."]
    return ["| stage | rows |", "| --- | ---: |"] + [f"| {k} | {v} |" for k, v in failures["stage"].value_counts().items()]


def report_markdown(meta: pd.DataFrame, failures: pd.DataFrame, store: str, png_name: str,
                    attrs: dict | None = None, placement_png: str = "placement.png",
                    audit: list[str] | None = None, tiles: list[str] | None = None) -> str:
    """The QC page as Markdown (counts, per-class medians, failures by stage, per-motif
    placement, background cubes, map warnings, the shortcut audit's lines, the figures)."""
    attrs = attrs or {}
    lines = [f"# QC report: {store}", "",
             f"{len(meta)} samples ({int(meta['is_background'].sum())} background), "
             f"{meta['emdb_id'].nunique()} maps, {len(failures)} manifest rows failed.", "",
             *([note, ""] if (note := simulated_maps_note(attrs)) else []),
             f"![QC histograms]({png_name})", "",
             "## Per class", ""]
    lines += quality_table(meta)
    lines += ["", "## Failed manifest rows by stage", ""]
    lines += failures_table(failures)
    lines += ["", "## Per-motif placement", ""]
    lines += placement_lines(meta, failures, attrs.get("build_config", {}), placement_png)
    lines += ["", "## Background cubes", ""]
    lines += background_lines(attrs)
    lines += ["", "## Map warnings", ""]
    lines += map_warning_lines(attrs)
    lines += ["", "## Shortcut audit", ""] + (audit or ["Not run."])
    if tiles:
        lines += ["", "## Volumes and tiles", ""] + tiles
    low = meta[(~meta["is_background"]) & (meta["q_score_minus_expected"] < -0.2)]
    lines += ["", "## Motifs more than 0.2 below the expected Q-score", ""]
    if len(low):
        lines += ["| sample_id | Q-score | Q_exp | CC_mask |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {r.sample_id} | {format_metric(r.q_score)} | {format_metric(r.q_expected)} | {format_metric(r.cc_mask)} |"
                  for r in low.itertuples()]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def write_report(store_path: str, out_dir: Path) -> tuple[Path, Path]:
    """Write ``qc.png``, ``placement.png`` and ``qc.md`` for a store into ``out_dir``;
    returns the paths of ``qc.png`` and ``qc.md``.

    Raises
    ------
    rnamotif_data.storage.store.StoreError
        If the store is missing, incomplete, holds no samples, or has no quality columns.
    """
    store = open_store(store_path)
    if len(store) == 0:
        raise StoreError(f"{store_path}: the store has no samples (all {store.attrs.get('n_failed_rows', 0)} manifest "
                         f"rows failed); nothing to report: see its failures.parquet")
    meta, failures = store.metadata, store.failures
    if "q_score" not in meta.columns:
        raise StoreError(f"{store_path}: store has no quality columns (format version < 2); rebuild it")
    out_dir.mkdir(parents=True, exist_ok=True)
    png, md, placement = out_dir / "qc.png", out_dir / "qc.md", out_dir / "placement.png"
    name = Path(str(store_path)).name
    plot_qc(meta, png, f"{name}: {len(meta)} samples")
    plot_placement(meta, failures, store.attrs.get("build_config", {}), placement, f"{name}: per-motif placement")
    tiles = tiles_section(store.root, out_dir / "tile.png") if has_tiles(store.root) else None
    md.write_text(report_markdown(meta, failures, str(store_path), png.name, store.attrs, placement.name,
                                  audit_section(store, out_dir / "audit.png"), tiles))
    return png, md


def audit_section(store, png: Path | None) -> list[str]:
    """Markdown lines of the shortcut audit of ``store`` (and its plot at ``png``); a line
    saying why when it cannot run (no scikit-learn, or no unknown samples or no motifs)."""

    try:
        result, features = audit_store(store)
    except ImportError:
        return ["Not run: needs scikit-learn (pip install 'rnamotif-data[audit]')."]
    except RNAMotifError as exc:
        return [f"Not run: {exc}."]
    if png is not None:
        plot_audit(features, result, png)
    return audit_lines(result, png.name if png is not None else None)
