"""Shortcut audit of a store: can a model tell the classes apart without structure?

``rnamotif audit STORE [--out DIR]`` writes ``DIR/audit.md``, ``audit.json`` and
``audit.png`` (default DIR: ``<store>-audit`` beside the store).

Features that carry no structural information, per sample: zone voxel count, heavy-atom
count, residue count, fraction of the cube outside the map, fraction of zero voxels
(unmasked and masked density), masked density mean / sd / 50th / 95th percentile inside
the zone, resolution, fit_z, Q-score, and the distance of the cube's centre from the
centroid of its entry's samples (a stand-in for "near the map's centre"). A simple
classifier (scikit-learn random forest: 100 trees of depth 4 (30 for one feature), leaves of at least 10
samples, so it finds rules that hold for many samples rather than memorised duplicates)
is cross-validated -- grouped by the split's independent groups (EMDB map, PDB entry or
model, shared residues, overlapping zones) where there are at least 3, else by the
sample's structure (model coordinates + residues: one model fitted to many maps gives the
same residues in every map, and grouping by map would let the forest meet them on both
sides), else stratified, and the output says which -- for unknown-vs-motif and for the 5
classes; each feature alone is scored too.

The unknown-vs-motif balanced accuracy must stay near chance (0.5) for "unknown" to be
an honest negative class; differences between motif classes (a 5×5 loop is larger than a
1×1) are structural and are reported, not failed. This module reports; the negatives
themselves are built by :mod:`rnamotif_data.samples.background`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.common.extras import require
from rnamotif_data.errors import ConfigError, InputError, StoreError
from rnamotif_data.rna.motifs import CLASS_NAMES
from rnamotif_data.split.folds import independent_groups
from rnamotif_data.storage.store import open_store

log = logging.getLogger("rnamotif_data.release.audit")

__all__ = ["FEATURES", "audit_features", "audit_store", "structure_groups", "audit_lines", "plot_audit", "run_audit"]

#: The structure-free features, in table order.
FEATURES = ("zone_voxels", "n_atoms", "n_residues", "fraction_outside", "zero_fraction", "masked_zero_fraction",
            "zone_density_mean", "zone_density_sd", "zone_density_p50", "zone_density_p95", "resolution",
            "fit_z", "q_score", "distance_from_entry_centroid")


def audit_features(store) -> pd.DataFrame:
    """``(N, len(FEATURES))`` structure-free features of every sample, in sample order,
    plus ``class_index``, ``is_unknown`` and ``group`` (EMDB map)."""
    meta = store.metadata
    rows = []
    for start, stop in store.shard_ranges():
        b = store.read_batch(slice(start, stop), arrays=("density", "zone"))
        for k in range(stop - start):
            d = b["density"][k].astype(np.float32)
            z = b["zone"][k].astype(bool)
            inside = d[z] if z.any() else np.zeros(1, np.float32)
            rows.append({"zone_voxels": int(z.sum()), "zero_fraction": float((d == 0).mean()),
                         "masked_zero_fraction": float(((d * z) == 0).mean()),
                         "zone_density_mean": float(inside.mean()), "zone_density_sd": float(inside.std()),
                         "zone_density_p50": float(np.percentile(inside, 50)),
                         "zone_density_p95": float(np.percentile(inside, 95))})
    f = pd.DataFrame(rows)
    for col in ("n_atoms", "n_residues", "fraction_outside", "resolution", "fit_z", "q_score"):
        f[col] = pd.to_numeric(meta[col], errors="coerce").to_numpy(dtype=float)
    centre = np.stack(meta["centroid_xyz"].to_numpy())
    group = meta["emdb_id"].astype(str).to_numpy()
    dist = np.zeros(len(meta))
    for g in np.unique(group):
        sel = group == g
        dist[sel] = np.linalg.norm(centre[sel] - centre[sel].mean(axis=0), axis=1)
    f["distance_from_entry_centroid"] = dist
    f = f[list(FEATURES)].fillna(-1.0)
    f["class_index"] = meta["class_index"].to_numpy(dtype=int)
    f["is_unknown"] = f["class_index"] == CLASS_NAMES.index("unknown")
    f["group"] = group
    return f


def _cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0, label: str = "EMDB map",
        trees: int = 100) -> tuple[float, str]:
    """Cross-validated balanced accuracy and how the folds were made."""
    require("sklearn", "the shortcut audit")
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict

    n_groups = len(np.unique(groups))
    counts = np.bincount(np.unique(y, return_inverse=True)[1])
    if n_groups >= 3:
        cv, how = GroupKFold(n_splits=min(5, n_groups)), f"grouped by {label} ({n_groups} groups)"
    else:
        k = int(max(2, min(5, counts.min())))
        cv, how = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed), \
            f"stratified, not grouped (only {n_groups} {label}(s))"
    # leaves of >= 10 samples: rules that hold for many samples (a shift in distribution),
    # not memorised duplicates (one motif in several maps; the split handles those)
    clf = RandomForestClassifier(n_estimators=trees, max_depth=4, min_samples_leaf=10, random_state=seed,
                                 class_weight="balanced")
    pred = cross_val_predict(clf, x, y, cv=cv, groups=groups if n_groups >= 3 else None)
    return float(balanced_accuracy_score(y, pred)), how


def structure_groups(meta: pd.DataFrame) -> np.ndarray:
    """``(N,)`` group label of each sample's structure: its model's coordinate hash and its
    residues, so the same residues of one model are one group whatever map they were cut
    from; samples without residues (unmodelled density) are their own group."""
    model = meta["model_hash"].astype(str) if "model_hash" in meta else meta["pdb_id"].astype(str)
    residues = meta["residues"] if "residues" in meta else pd.Series([None] * len(meta))
    ids = meta["sample_id"].astype(str)
    return np.array([f"{m}|{r}" if isinstance(r, str) and r else f"sample|{i}"
                     for m, r, i in zip(model, residues, ids)])


def audit_store(store, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """Run the audit on an open store: ``(result, features)``; ``result`` holds ``n``,
    ``n_unknown``, ``cv`` (how the folds were grouped), the two balanced accuracies,
    ``single_feature_unknown_vs_motif`` (feature -> score, best first) and ``verdict``.

    Cross-validation is grouped by the split's independent groups (same EMDB map, PDB
    entry or model coordinates, shared residues or overlapping zones;
    :func:`rnamotif_data.split.splits.hard_groups`) where there are at least 3, else by the
    sample's structure (``model_hash`` + ``residues``; unmodelled-density samples alone),
    else stratified (and said so).

    Raises
    ------
    InputError
        If the store has fewer than 5 "unknown" samples or 5 motifs.
    ConfigError
        If ``seed`` is not an integer from 0 to 2**32 - 1 (scikit-learn's range).
    """
    if not (isinstance(seed, (int, np.integer)) and 0 <= seed < 2**32):
        raise ConfigError(f"--seed {seed}: the audit's seed is an integer from 0 to 4294967295")
    f = audit_features(store)
    n_unknown = int(f["is_unknown"].sum())
    if min(n_unknown, len(f) - n_unknown) < 5:
        raise InputError(f"{store.root}: the audit needs at least 5 'unknown' samples and 5 motifs to "
                     f"cross-validate (the store has {n_unknown} and {len(f) - n_unknown})")
    meta = store.metadata
    independent = independent_groups(meta)
    if len(np.unique(independent)) >= 3:
        groups, label = independent.astype(str), "independent group"
    else:
        groups, label = structure_groups(meta), "structure (model coordinates + residues)"
    x = f[list(FEATURES)].to_numpy(dtype=float)
    binary, how = _cv(x, f["is_unknown"].to_numpy(), groups, seed, label)
    five, _ = _cv(x, f["class_index"].to_numpy(), groups, seed, label)
    single = {name: _cv(f[[name]].to_numpy(dtype=float), f["is_unknown"].to_numpy(), groups, seed, label, 30)[0]
              for name in FEATURES}
    top = dict(sorted(single.items(), key=lambda kv: -kv[1]))
    result = {"store": str(store.root), "n": int(len(f)), "n_unknown": int(f["is_unknown"].sum()), "cv": how,
              "unknown_vs_motif_balanced_accuracy": binary, "five_class_balanced_accuracy": five,
              "single_feature_unknown_vs_motif": top, "verdict": _verdict(binary),
              "background_kinds": {str(k): int(v) for k, v in meta["background_kind"].value_counts().items()}}
    return result, f


def audit_lines(result: dict, image: str | None = "audit.png", n_top: int | None = None) -> list[str]:
    """The audit as Markdown lines (for audit.md, the QC report and the dataset card)."""
    top = list(result["single_feature_unknown_vs_motif"].items())[:n_top]
    kinds = ", ".join(f"{k} {v}" for k, v in result.get("background_kinds", {}).items())
    lines = [f"{result['n']} samples ({result['n_unknown']} unknown{': ' + kinds if kinds else ''}); "
             f"cross-validation {result['cv']}; random forest (100 trees, depth 4, leaves of 10 or more) on "
             "structure-free features only.", "",
             f"* unknown vs motif: balanced accuracy **{result['unknown_vs_motif_balanced_accuracy']:.3f}** "
             f"(chance 0.5) -- {result['verdict']}",
             f"* 5 classes, same features: balanced accuracy {result['five_class_balanced_accuracy']:.3f} (chance "
             "0.2; size differences between motif classes are structural)", "",
             "| feature alone | unknown-vs-motif balanced accuracy |", "| --- | ---: |"]
    lines += [f"| {k} | {v:.3f} |" for k, v in top]
    if image:
        lines += ["", f"![shortcut audit]({image})"]
    return lines


def run_audit(store_path: str, out_dir: Path, seed: int = 0) -> dict:
    """Audit a store (module docstring); writes ``audit.{md,json,png}`` into ``out_dir``.

    Raises
    ------
    rnamotif_data.storage.store.StoreError
        If the store cannot be opened or holds no samples.
    InputError
        If the store has no "unknown" samples or no motifs (nothing to tell apart).
    """
    if not (isinstance(seed, int) and 0 <= seed < 2**32):  # before any reading (audit_store says it too)
        raise ConfigError(f"--seed {seed}: the audit's seed is an integer from 0 to 4294967295")
    store = open_store(store_path)
    if len(store) == 0:
        raise StoreError(f"{store_path}: the store has no samples; nothing to audit")
    result, f = audit_store(store, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "audit.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Shortcut audit: {store_path}", ""] + audit_lines(result)
    (out_dir / "audit.md").write_text("\n".join(lines) + "\n")
    plot_audit(f, result, out_dir / "audit.png")
    log.info("audit written to %s (audit.md, audit.json, audit.png)", out_dir)
    return result


def plot_audit(f: pd.DataFrame, result: dict, path: Path) -> None:
    """Bar chart of the single-feature scores and the histogram of the strongest feature."""
    title = f"{Path(result['store']).name}: unknown vs motif {result['unknown_vs_motif_balanced_accuracy']:.2f}"
    _plot(f, list(result["single_feature_unknown_vs_motif"].items()), path, title)


def _verdict(score: float) -> str:
    return ("near chance: no structure-free shortcut found" if score <= 0.6 else
            "SHORTCUT: 'unknown' can be told from motifs without structure")


def _plot(f: pd.DataFrame, top, path: Path, title: str) -> None:
    matplotlib = require("matplotlib", "the audit figure")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "the audit figure")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    names, vals = zip(*top[:8])
    axes[0].barh(range(len(names))[::-1], vals, color="grey")
    axes[0].set_yticks(range(len(names))[::-1], names)
    axes[0].axvline(0.5, color="k", ls="--")
    axes[0].set_xlabel("unknown-vs-motif balanced accuracy, feature alone")
    feat = names[0]
    for unknown, label in ((False, "motifs"), (True, "unknown")):
        axes[1].hist(f.loc[f["is_unknown"] == unknown, feat], bins=25, alpha=0.6, label=label)
    axes[1].set_xlabel(feat)
    axes[1].set_ylabel("samples")
    axes[1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
