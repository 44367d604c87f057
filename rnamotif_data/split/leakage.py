"""Leakage report of a split: per fold and relation, validation samples related to training.

For each fold k (validation/test = fold k minus removed samples, training = the other
folds) and each relation of :mod:`rnamotif_data.split.similarity` (``entry``: same EMDB map,
PDB entry or model coordinates; ``overlap``; ``canonical``; ``near_identical``;
``homolog``), the number of validation samples related to at least one training sample,
with its percentage; the number of fold k's samples removed from validation; the
validation samples' highest context identity to training (mean and maximum; the
per-sample value is the split file's ``max_identity_other_folds``); class counts. For
the default ``similarity`` scheme every relation count is 0 by construction, and the
report checks it rather than assumes it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnamotif_data.split.similarity import RELATIONS, Relations
from rnamotif_data.split.splits import Split, hard_groups

__all__ = ["leakage_report", "format_report"]


def leakage_report(meta: pd.DataFrame, split: Split, relations: Relations, class_names) -> pd.DataFrame:
    """One row per fold (columns in the module docstring: ``fold``, ``n_train``,
    ``n_val``, ``n_removed``, ``val_shared_<relation>`` and ``..._pct`` for every
    relation, ``val_max_identity_mean``, ``val_max_identity_max``, ``train_<class>`` and
    ``val_<class>``).

    ``meta`` is the store's metadata or the manifest the split was made from, rows in
    split order.
    """
    meta = meta.reset_index(drop=True)
    hard = hard_groups(meta, relations)
    fold = split.table["fold"].fillna(0).to_numpy()
    removed = split.table["removed"].to_numpy(dtype=bool)
    ident = split.table["max_identity_other_folds"].to_numpy(dtype=float)
    classes = meta["class_index"].to_numpy() if "class_index" in meta else None
    rows = []
    for k in range(1, split.config.k + 1):
        val = (fold == k) & ~removed
        train = (fold != k) & (fold > 0)
        row = {"fold": f"fold{k}", "n_train": int(train.sum()), "n_val": int(val.sum()),
               "n_removed": int(((fold == k) & removed).sum())}
        train_groups = set(hard[train])
        hits = {"entry": val & np.isin(hard, list(train_groups))}
        for rel in RELATIONS[1:]:
            hit = np.zeros(len(meta), dtype=bool)
            for i, j in relations.pairs[rel]:
                if val[i] and train[j]:
                    hit[i] = True
                if val[j] and train[i]:
                    hit[j] = True
            hits[rel] = hit
        for rel in RELATIONS:
            n = int(hits[rel].sum())
            row[f"val_shared_{rel}"] = n
            row[f"val_shared_{rel}_pct"] = round(100.0 * n / row["n_val"], 1) if row["n_val"] else 0.0
        row["val_max_identity_mean"] = float(ident[val].mean()) if val.any() else 0.0
        row["val_max_identity_max"] = float(ident[val].max()) if val.any() else 0.0
        if classes is not None:
            for ci, cname in enumerate(class_names):
                row[f"train_{cname}"] = int((train & (classes == ci)).sum())
                row[f"val_{cname}"] = int((val & (classes == ci)).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def format_report(report: pd.DataFrame, class_names) -> str:
    """The leakage report as a Markdown table (one row per fold)."""
    head = (["fold", "train", "val", "removed"] + [f"val sharing {r.replace('_', '-')}" for r in RELATIONS]
            + ["val identity to train (mean / max)"] + [f"val {c}" for c in class_names])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report.to_dict("records"):
        cells = [r["fold"], str(r["n_train"]), str(r["n_val"]), str(r["n_removed"])]
        cells += [f"{r[f'val_shared_{rel}']} ({r[f'val_shared_{rel}_pct']:.1f}%)" for rel in RELATIONS]
        cells.append(f"{r['val_max_identity_mean']:.2f} / {r['val_max_identity_max']:.2f}")
        cells += [str(r.get(f"val_{c}", "")) for c in class_names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
