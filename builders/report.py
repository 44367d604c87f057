"""QC report of a built store: a PNG of histograms and a Markdown page.

``python -m builders.report STORE [--out DIR]`` writes ``DIR/qc.png`` and ``DIR/qc.md``
(default DIR: ``STORE/../<store name>-report``):

* class counts (motifs and background) and failed manifest rows by stage;
* per class: histograms of Q-score, CC_mask and resolution;
* Q-score against resolution with the expected nucleic-acid line
  ``Q_exp = -0.1377 * resolution + 0.9973`` (Pintilie et al. 2020,
  doi:10.1038/s41592-020-0731-1);
* a table of per-class medians (Q-score, Q - Q_exp, CC_mask, fit_z, resolution).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.motifs import CLASS_NAMES
from rnamotif_data.evaluation import format_metric
from rnamotif_data.quality import expected_q_score
from rnamotif_data.store import StoreError, open_store

from .cli import run

log = logging.getLogger("builders.report")

_METRICS = (("q_score", "Q-score"), ("cc_mask", "CC_mask"), ("resolution", "resolution (Å)"))


def plot_qc(meta: pd.DataFrame, path: Path, title: str) -> None:
    """Write the QC figure (histograms per class, Q vs resolution, class counts) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    ax.set_xlabel("Q-score - Q_exp")
    ax.set_ylabel("samples")
    ax.set_title("Q-score relative to the resolution's expectation")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def report_markdown(meta: pd.DataFrame, failures: pd.DataFrame, store: str, png_name: str) -> str:
    """The QC page as Markdown (counts, per-class medians, failures by stage, the figure)."""
    lines = [f"# QC report: {store}", "",
             f"{len(meta)} samples ({int(meta['is_background'].sum())} background), "
             f"{meta['emdb_id'].nunique()} maps, {len(failures)} manifest rows failed.", "",
             f"![QC histograms]({png_name})", "",
             "## Per class", ""]
    lines += quality_table(meta)
    lines += ["", "## Failed manifest rows by stage", ""]
    lines += failures_table(failures)
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
    """Write ``qc.png`` and ``qc.md`` for a store into ``out_dir``; returns their paths.

    Raises
    ------
    rnamotif_data.store.StoreError
        If the store is missing, incomplete, or has no quality columns.
    """
    store = open_store(store_path)
    meta, failures = store.metadata, store.failures
    if "q_score" not in meta.columns:
        raise StoreError(f"{store_path}: store has no quality columns (format version < 2); rebuild it")
    out_dir.mkdir(parents=True, exist_ok=True)
    png, md = out_dir / "qc.png", out_dir / "qc.md"
    plot_qc(meta, png, f"{Path(str(store_path)).name}: {len(meta)} samples")
    md.write_text(report_markdown(meta, failures, str(store_path), png.name))
    return png, md


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m builders.report STORE [--out DIR]``."""
    p = argparse.ArgumentParser(prog="python -m builders.report", description=__doc__.split("\n")[0])
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument("--out", type=Path, help="output folder (default: <store>-report beside the store)")
    args = p.parse_args(argv)
    out = args.out or Path(str(args.store).rstrip("/")).with_name(Path(str(args.store).rstrip("/")).stem + "-report")
    png, md = write_report(args.store, out)
    log.info("wrote %s and %s", md, png)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
