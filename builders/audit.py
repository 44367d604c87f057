"""Shortcut audit of a store: can a model tell the classes apart without structure?

``python -m builders.audit STORE [--out DIR]`` writes ``DIR/audit.md``, ``audit.json`` and
``audit.png`` (default DIR: ``<store>-audit`` beside the store).

Features that carry no structural information, per sample: zone voxel count, heavy-atom
count, residue count, fraction of the cube outside the map, fraction of zero voxels
(unmasked and masked density), masked density mean / sd / 50th / 95th percentile inside
the zone, resolution, fit_z, Q-score, and the distance of the cube's centre from the
centroid of its entry's samples (a stand-in for "near the map's centre"). A simple
classifier (scikit-learn random forest, 100 shallow trees) is cross-validated -- grouped
by EMDB map where the store has at least 3 maps, else stratified and said so -- for
unknown-vs-motif and for the 5 classes; each feature alone is scored too.

The unknown-vs-motif balanced accuracy must stay near chance (0.5) for "unknown" to be
an honest negative class; differences between motif classes (a 5×5 loop is larger than a
1×1) are structural and are reported, not failed. This module reports; the negatives
themselves are built by :mod:`rnamotif_data.background`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.motifs import CLASS_NAMES
from rnamotif_data.store import open_store

from .cli import run

log = logging.getLogger("builders.audit")

__all__ = ["FEATURES", "audit_features", "run_audit", "main"]

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


def _cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0) -> tuple[float, str]:
    """Cross-validated balanced accuracy and how the folds were made."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict

    n_groups = len(np.unique(groups))
    counts = np.bincount(np.unique(y, return_inverse=True)[1])
    if n_groups >= 3:
        cv, how = GroupKFold(n_splits=min(5, n_groups)), f"grouped by EMDB map ({n_groups} maps)"
    else:
        k = int(max(2, min(5, counts.min())))
        cv, how = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed), \
            f"stratified, not grouped (only {n_groups} map(s))"
    clf = RandomForestClassifier(n_estimators=100, max_depth=4, random_state=seed, class_weight="balanced")
    pred = cross_val_predict(clf, x, y, cv=cv, groups=groups if n_groups >= 3 else None)
    return float(balanced_accuracy_score(y, pred)), how


def run_audit(store_path: str, out_dir: Path, seed: int = 0) -> dict:
    """Audit a store (module docstring); writes ``audit.{md,json,png}`` into ``out_dir``.

    Raises
    ------
    rnamotif_data.store.StoreError
        If the store cannot be opened.
    RNAMotifError
        If the store has no "unknown" samples or no motifs (nothing to tell apart).
    """
    from rnamotif_data.errors import RNAMotifError

    store = open_store(store_path)
    f = audit_features(store)
    if f["is_unknown"].all() or not f["is_unknown"].any():
        raise RNAMotifError(f"{store_path}: the audit needs both 'unknown' samples and motifs")
    x, groups = f[list(FEATURES)].to_numpy(dtype=float), f["group"].to_numpy()
    binary, how = _cv(x, f["is_unknown"].to_numpy(), groups, seed)
    five, _ = _cv(x, f["class_index"].to_numpy(), groups, seed)
    single = {name: _cv(f[[name]].to_numpy(dtype=float), f["is_unknown"].to_numpy(), groups, seed)[0]
              for name in FEATURES}
    top = sorted(single.items(), key=lambda kv: -kv[1])
    result = {"store": str(store_path), "n": int(len(f)), "n_unknown": int(f["is_unknown"].sum()), "cv": how,
              "unknown_vs_motif_balanced_accuracy": binary, "five_class_balanced_accuracy": five,
              "single_feature_unknown_vs_motif": dict(top), "verdict": _verdict(binary)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "audit.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Shortcut audit: {store_path}", "",
             f"{len(f)} samples ({result['n_unknown']} unknown); cross-validation {how}.", "",
             f"* unknown vs motif, all structure-free features: balanced accuracy **{binary:.3f}** "
             f"(chance 0.5) -- {result['verdict']}",
             f"* 5 classes, same features: balanced accuracy {five:.3f} (chance 0.2; size differences between "
             "motif classes are structural)", "", "| feature alone | unknown-vs-motif balanced accuracy |",
             "| --- | ---: |"] + [f"| {k} | {v:.3f} |" for k, v in top] + ["", "![audit](audit.png)"]
    (out_dir / "audit.md").write_text("\n".join(lines) + "\n")
    _plot(f, top, out_dir / "audit.png", f"{Path(str(store_path)).name}: unknown vs motif {binary:.2f}")
    return result


def _verdict(score: float) -> str:
    return ("near chance: no structure-free shortcut found" if score <= 0.6 else
            "SHORTCUT: 'unknown' can be told from motifs without structure")


def _plot(f: pd.DataFrame, top, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m builders.audit STORE [--out DIR]``; 0 when the audit ran."""
    p = argparse.ArgumentParser(prog="python -m builders.audit", description=__doc__.split("\n")[0])
    p.add_argument("store")
    p.add_argument("--out", type=Path, help="output folder (default: <store>-audit beside the store)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    base = Path(str(args.store).rstrip("/"))
    res = run_audit(args.store, args.out or base.with_name(base.stem + "-audit"), args.seed)
    log.info("%s: unknown vs motif balanced accuracy %.3f (%s); 5 classes %.3f; strongest single feature %s "
             "%.3f", args.store, res["unknown_vs_motif_balanced_accuracy"], res["verdict"],
             res["five_class_balanced_accuracy"], *next(iter(res["single_feature_unknown_vs_motif"].items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
