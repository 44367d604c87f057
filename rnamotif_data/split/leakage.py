"""Leakage report of a split: per fold and relation, validation samples related to training.

For each fold k (validation/test = fold k minus removed samples, training = the other
folds minus the samples pruned from fold k's training) and each relation of :mod:`rnamotif_data.split.similarity` (``entry``: same EMDB map,
PDB entry or model coordinates; ``overlap``; ``canonical``; ``near_identical``;
``homolog``), the number of validation samples related to at least one training sample,
with its percentage; the number of fold k's samples removed from validation; the
validation samples' highest context identity to training (mean and maximum; the
per-sample value is the split file's ``max_identity_to_train``); how many samples of the
other folds each relation took out of fold k's training (``train_pruned_<relation>``; a
sample related in two ways counts under both) and in all (``train_pruned``), and the
training subset's share of the samples outside fold k; class counts. For
the default ``similarity`` scheme every relation count is 0 by construction, and the
report checks it rather than assumes it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnamotif_data.split.folds import hard_groups
from rnamotif_data.split.similarity import RELATIONS, Relations
from rnamotif_data.split.splits import Split
from rnamotif_data.storage.layout import join, url_to_fs

__all__ = ["leakage_report", "format_report", "compact_report", "report_location", "write_report"]


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
    column = "max_identity_to_train" if "max_identity_to_train" in split.table else "max_identity_other_folds"
    ident = split.table[column].to_numpy(dtype=float)
    mask = (split.table["train_exclusion"].to_numpy(dtype=np.int64) if "train_exclusion" in split.table
            else np.zeros(len(fold), np.int64))
    classes = meta["class_index"].to_numpy() if "class_index" in meta else None
    rows = []
    for k in range(1, split.config.k + 1):
        val = (fold == k) & ~removed
        outside = (fold != k) & (fold > 0)
        train = outside & (mask & (1 << (k - 1)) == 0)
        row = {"fold": f"fold{k}", "n_train": int(train.sum()), "n_val": int(val.sum()),
               "n_removed": int(((fold == k) & removed).sum()), "n_outside": int(outside.sum()),
               "train_pruned": int((outside & ~train).sum()),
               "train_share_pct": round(100.0 * train.sum() / max(outside.sum(), 1), 1)}
        in_k = fold == k
        for rel in ("canonical", "near_identical", "homolog"):
            cost = _related(relations.pairs[rel], outside, in_k)  # outside samples related to fold k
            row[f"train_pruned_{rel}"] = int((cost & ~train).sum())
        train_groups = set(hard[train])
        hits = {"entry": val & np.isin(hard, list(train_groups))}
        for rel in RELATIONS[1:]:
            hits[rel] = _related(relations.pairs[rel], val, train)
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


def _related(pairs, these: np.ndarray, those: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: samples of ``these`` related (a pair of ``pairs``) to one of ``those``."""
    hit = np.zeros(len(these), dtype=bool)
    for i, j in pairs:
        if these[i] and those[j]:
            hit[i] = True
        if these[j] and those[i]:
            hit[j] = True
    return hit


#: what the report calls a fold's samples, as ``rnamotif train`` and ``rnamotif evaluate`` do
#: (nested protocol: fold K is the test fold, fold K+1 selects the epoch)
TEST_NOTE = ("Each row is fold K as the test fold (as `rnamotif evaluate` calls it; the nested protocol selects "
             "the epoch on fold K+1); train = the other folds less the samples pruned for being related to fold K. "
             "Pruned counts are per relation and overlap (a sample related in two ways counts under both); "
             "'distinct' is the number of samples pruned.")


def format_report(report: pd.DataFrame, class_names) -> str:
    """The leakage report as a Markdown table (one row per fold, each fold as the test fold),
    preceded by :data:`TEST_NOTE`."""
    head = (["fold", "train (share of the other folds)", "test", "removed from test",
             "pruned from train, per relation (overlapping): canonical / near-identical / homolog; distinct"]
            + [f"test sharing {r.replace('_', '-')}" for r in RELATIONS]
            + ["test identity to train (mean / max)"] + [f"test {c}" for c in class_names])
    lines = [TEST_NOTE, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report.to_dict("records"):
        cells = [r["fold"], f"{r['n_train']} ({r['train_share_pct']:.1f}%)", str(r["n_val"]), str(r["n_removed"]),
                 f"{r['train_pruned_canonical']} / {r['train_pruned_near_identical']} / {r['train_pruned_homolog']}; "
                 f"{r['train_pruned']}"]
        cells += [f"{r[f'val_shared_{rel}']} ({r[f'val_shared_{rel}_pct']:.1f}%)" for rel in RELATIONS]
        cells.append(f"{r['val_max_identity_mean']:.2f} / {r['val_max_identity_max']:.2f}")
        cells += [str(r.get(f"val_{c}", "")) for c in class_names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compact_report(report: pd.DataFrame) -> str:
    """The report's headline columns as a Markdown table fit for a terminal: per fold (as the
    test fold) the train and test sizes, removed, distinct samples pruned from train, test
    samples related to train by any relation, identity to train (mean / max)."""
    head = ["fold", "train", "test", "removed from test", "pruned from train (distinct)",
            "test related to train (any relation)", "test identity to train (mean / max)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report.to_dict("records"):
        related = max(int(r[f"val_shared_{rel}"]) for rel in RELATIONS)
        lines.append("| " + " | ".join([r["fold"], str(r["n_train"]), str(r["n_val"]), str(r["n_removed"]),
                                        str(r["train_pruned"]), f"at least {related}" if related else "0",
                                        f"{r['val_max_identity_mean']:.2f} / {r['val_max_identity_max']:.2f}"]) + " |")
    return "\n".join(lines) + "\n"


def report_location(root: str, scheme: str) -> str:
    """Where ``rnamotif split --report`` saves a store's full report:
    ``STORE/splits/<scheme>-report.md`` (beside the split file; not in ``checksums.sha256``,
    accepted by ``rnamotif verify`` and by ``build --overwrite``)."""
    return join(str(root), "splits", f"{scheme}-report.md")


def write_report(root: str, scheme: str, text: str) -> str:
    """Write ``text`` to :func:`report_location`; returns the location."""
    url = report_location(root, scheme)
    fs, path = url_to_fs(url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, text.encode("utf-8"))
    return url
