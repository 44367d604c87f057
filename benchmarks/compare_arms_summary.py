"""Per-arm summary of benchmarks/compare_arms.sh (issue 38, item 4), as Markdown.

``python benchmarks/compare_arms_summary.py RUNS [ARM ...]`` reads each ``RUNS/ARM/cv_summary.json``
(``rnamotif train --all-folds --seeds N``) and the runs' ``metrics.json`` and prints, per arm:
macro sensitivity and the motif-versus-unknown ROC AUC and balanced accuracy as mean ± sd over
folds × seeds with a 95 % percentile bootstrap interval of the mean (over runs, 2,000 resamples),
the AUC against 0.5 (one-sample t-test on the 5 fold means, seeds averaged: runs of one fold
share their test samples), the reference lines on the same test samples, constant predictors and
runs at chance, and where the selected (best) epoch lies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats


def _boot(v: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = [v[rng.integers(0, len(v), len(v))].mean() for _ in range(n)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _stat(runs: list[dict], key: str, count: bool = True) -> str:
    """mean ± sd (bootstrap interval of the mean[; runs]) of ``key`` over ``runs``."""
    v = np.asarray([r[key] for r in runs if r.get(key) is not None], float)
    if not len(v):
        return "–"
    lo, hi = _boot(v)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f} ({lo:.3f}–{hi:.3f}{f'; {len(v)} runs' if count else ''})"


def _auc_vs_half(runs: list[dict]) -> str:
    by_fold: dict[str, list[float]] = {}
    for r in runs:
        if r.get("motif_vs_unknown_auc") is not None:
            by_fold.setdefault(r["fold"], []).append(r["motif_vs_unknown_auc"])
    means = np.asarray([np.mean(v) for v in by_fold.values()])
    if len(means) < 2:
        return "–"
    p = stats.ttest_1samp(means, 0.5).pvalue
    excl = sum(1 for r in runs if r.get("motif_vs_unknown_auc_ci95") and
               (r["motif_vs_unknown_auc_ci95"][0] > 0.5 or r["motif_vs_unknown_auc_ci95"][1] < 0.5))
    return (f"fold means {', '.join(f'{m:.3f}' for m in means)}; against 0.5: t-test p = {p:.3f}; "
            f"{excl} of {len(runs)} runs have a per-run 95 % interval that excludes 0.5")


def _epochs(runs: list[dict]) -> str:
    """Where the trainer's best epoch lies: the first epoch of the highest validation macro sensitivity."""
    best, n_epochs = [], 0
    for r in runs:
        h = json.loads((Path(r["out"]) / "metrics.json").read_text())
        n_epochs = len(h)
        v = [row["val_macro_sensitivity"] for row in h]
        best.append(int(np.argmax(v)) + 1)
    last = sum(b == n_epochs for b in best)
    return (f"best epoch (of {n_epochs}) per run: {', '.join(map(str, best))}; the last epoch in {last} of "
            f"{len(best)}; epoch 1 in {sum(b == 1 for b in best)}")


def arm_markdown(name: str, summary: dict) -> str:
    """One arm's lines."""
    runs = summary["runs"]
    refs = summary["references"]

    def pm(d: dict) -> str:
        return "–" if d["mean"] is None else f"{d['mean']:.3f} ± {d['sd'] or 0:.3f}"

    return "\n".join([
        f"#### {name} (train fraction {summary.get('train_fraction', 1.0)})", "",
        f"- macro sensitivity: {_stat(runs, 'macro_sensitivity')}",
        f"- motif vs unknown ROC AUC: {_stat(runs, 'motif_vs_unknown_auc')}; {_auc_vs_half(runs)}",
        f"- motif vs unknown balanced accuracy: {_stat(runs, 'motif_vs_unknown_balanced_accuracy')}",
        f"- references on the same test samples: prior drawn {pm(refs['prior_drawn'])}, majority class "
        f"{pm(refs['prior_majority'])}, layout rule {pm(refs['layout_rule'])}, residue count {pm(refs['residue_count'])}",
        f"- constant predictors: {summary['n_constant_predictors']} of {len(runs)}; at chance: "
        f"{summary['n_at_chance']} of {len(runs)}",
        f"- {_epochs(runs)}", ""])


def table_markdown(root: Path, arms: list[str]) -> str:
    """One row per finished arm: the three scores (mean ± sd, bootstrap interval of the mean),
    constant predictors, runs at chance, runs whose best epoch is the last."""
    lines = ["| arm | runs | macro sensitivity | motif vs unknown AUC | motif vs unknown balanced accuracy | "
             "constant predictors | at chance | best epoch = last |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for arm in arms:
        path = root / arm / "cv_summary.json"
        if not path.is_file():
            continue
        s = json.loads(path.read_text())
        runs = s["runs"]
        last = 0
        for r in runs:
            v = [row["val_macro_sensitivity"] for row in json.loads((Path(r["out"]) / "metrics.json").read_text())]
            last += int(np.argmax(v)) == len(v) - 1
        lines.append(f"| {arm} | {len(runs)} | {_stat(runs, 'macro_sensitivity', False)} | {_stat(runs, 'motif_vs_unknown_auc', False)} | "
                     f"{_stat(runs, 'motif_vs_unknown_balanced_accuracy', False)} | {s['n_constant_predictors']} | "
                     f"{s['n_at_chance']} | {last} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Print the table and the summary of each arm named in ``argv[1:]`` under the runs folder ``argv[0]``."""
    root, arms = Path(argv[0]), argv[1:]
    print(table_markdown(root, arms))
    for arm in arms:
        path = root / arm / "cv_summary.json"
        if path.is_file():
            print(arm_markdown(arm, json.loads(path.read_text())))
        else:
            print(f"#### {arm}\n\nnot finished: {path} is missing\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
