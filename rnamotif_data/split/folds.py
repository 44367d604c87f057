"""Assigning samples to folds: independent groups, class-stratified assignment, division
of large related components with label-propagation refinement (:mod:`rnamotif_data.split.splits`
documents the schemes that use them).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from rnamotif_data.split.similarity import Relations, entry_groups, selection_texts, shared_residue_pairs

log = logging.getLogger(__name__)

__all__ = ["assign_folds", "hard_groups", "independent_groups", "soft_assignment"]


def assign_folds(units: np.ndarray, classes: np.ndarray, k: int, seed: int, n_classes: int = 5,
                 affinity=None) -> np.ndarray:
    """Class-stratified assignment of units (groups of samples) to folds (deterministic).

    Parameters
    ----------
    units:
        ``(N,)`` unit label of each sample; samples of a unit share a fold.
    classes:
        ``(N,)`` class index of each sample (0 .. n_classes-1).
    k:
        Number of folds.
    seed:
        Seed of the order of equal-size units.
    affinity:
        Optional ``{unit: {other unit: weight}}``: a unit prefers (by up to 1 in cost)
        the fold holding most of the weight of its already-assigned partners.

    Returns
    -------
    ``(N,)`` int fold of each sample, 1..k.
    """
    codes, uniques = pd.factorize(pd.Series(units), sort=True)
    n_units = len(uniques)
    counts = np.zeros((n_units, n_classes), dtype=np.int64)
    np.add.at(counts, (codes, np.asarray(classes, dtype=np.int64)), 1)
    size = counts.sum(axis=1)
    tiebreak = np.random.default_rng(seed).permutation(n_units)
    order = np.lexsort((tiebreak, -size))  # largest first, seeded order among equals
    totals = np.maximum(counts.sum(axis=0), 1).astype(np.float64)
    fold_counts = np.zeros((k, n_classes), dtype=np.float64)
    unit_fold = np.full(n_units, -1, dtype=np.int64)
    position = {u: i for i, u in enumerate(uniques)}
    for g in order:
        c = counts[g]
        cost = ((fold_counts + c) / totals * (c > 0)).sum(axis=1) + 1e-9 * fold_counts.sum(axis=1)
        if affinity is not None and uniques[g] in affinity:
            pull = np.zeros(k)
            for other, w in affinity[uniques[g]].items():
                f = unit_fold[position[other]]
                if f >= 0:
                    pull[f] += w
            if pull.sum() > 0:
                cost = cost - pull / pull.sum()
        f = int(np.argmin(cost))
        unit_fold[g] = f
        fold_counts[f] += c
    return unit_fold[codes] + 1


def independent_groups(meta: pd.DataFrame) -> np.ndarray:
    """:func:`hard_groups` from the metadata alone (EMDB map, PDB entry, model coordinates,
    shared residues; no zones, no sequence relations): cheap, for audits."""

    pdb = meta["pdb_id"].astype(str).str.upper().tolist()
    emdb = meta["emdb_id"].tolist() if "emdb_id" in meta else [None] * len(meta)
    rel = Relations(entry_group=entry_groups(emdb, pdb),
                    pairs={"overlap": shared_residue_pairs(pdb, selection_texts(meta))}, aligned={},
                    has_contexts=False)
    return hard_groups(meta, rel)


def hard_groups(meta: pd.DataFrame, relations: Relations) -> np.ndarray:
    """``(N,)`` independent-group label: samples joined by a hard relation (same EMDB map,
    PDB entry or model coordinates, a shared residue, overlapping zones)."""
    model = meta["model_hash"].tolist() if "model_hash" in meta else [None] * len(meta)
    base = entry_groups([str(g) for g in relations.entry_group],
                        [m if isinstance(m, str) else None for m in model])
    return _union(base, relations.pairs["overlap"])


def _union(labels: np.ndarray, pairs) -> np.ndarray:
    parent = {int(x): int(x) for x in np.unique(labels)}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        a, b = find(int(labels[i])), find(int(labels[j]))
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([find(int(x)) for x in labels])


def soft_assignment(meta: pd.DataFrame, relations: Relations, hard: np.ndarray, config) -> np.ndarray:
    """Fold of every sample under the ``similarity`` scheme (before pruning); ``config``
    is a :class:`rnamotif_data.split.splits.SplitConfig`."""
    soft = set().union(*(relations.pairs[r] for r in ("canonical", "near_identical", "homolog")))
    cross = [(i, j) for i, j in soft if hard[i] != hard[j]]
    comp = _union(hard, cross)
    n = len(meta)
    cap = config.max_group_share * n / config.k
    sizes = pd.Series(comp).value_counts()
    big = set(sizes.index[sizes > cap])
    units = np.where(np.isin(comp, list(big)), hard, -1 - comp)  # big components: by independent group
    deg = np.zeros(n)
    for i, j in cross:
        deg[i] += 1
        deg[j] += 1
    affinity: dict = {}
    for i, j in cross:
        if comp[i] in big:  # weight 1/degree per end: a sample's relations weigh 1 in all
            a, b, w = int(units[i]), int(units[j]), 1.0 / deg[i] + 1.0 / deg[j]
            affinity.setdefault(a, {}).setdefault(b, 0.0)
            affinity[a][b] += w
            affinity.setdefault(b, {}).setdefault(a, 0.0)
            affinity[b][a] += w
    if big:
        log.info("%d component(s) of related samples exceed %.0f samples (%s); divided by independent group "
                 "and pruned", len(big), cap, ", ".join(str(int(sizes[b])) for b in sorted(big)))
    fold = assign_folds(units, meta["class_index"].to_numpy(), config.k, config.seed, affinity=affinity)
    fold = _refine(units, fold, affinity, config) if affinity else fold
    if affinity and getattr(config, "prune", "val") == "train":
        fold = _balance_training(units, fold, soft, config.k)
    return fold


def training_shares(fold: np.ndarray, pairs: np.ndarray, k: int) -> np.ndarray:
    """``(k,)``: for each fold, the share of the samples outside it that stay in its
    training subset when every sample related (``pairs``, ``(P, 2)`` sample indices) to a
    sample of the fold is pruned from it. ``fold`` is ``(N,)``, 1..k."""
    n = len(fold)
    excluded = np.zeros((n, k + 1), dtype=bool)
    if len(pairs):
        i, j = pairs[:, 0], pairs[:, 1]
        cross = fold[i] != fold[j]
        excluded[j[cross], fold[i[cross]]] = True
        excluded[i[cross], fold[j[cross]]] = True
    out = np.zeros(k)
    for f in range(1, k + 1):
        outside = fold != f
        out[f - 1] = (outside & ~excluded[:, f]).sum() / max(int(outside.sum()), 1)
    return out


def _balance_training(units: np.ndarray, fold: np.ndarray, soft: set, k: int, goal: float = 0.5,
                      candidates: int = 24, rounds: int = 30, slack: float = 0.5) -> np.ndarray:
    """Training-side pruning costs most in the fold holding the hubs of a divided
    component (e.g. several ribosomes' motifs): move the largest independent groups of
    divided components, one at a time, to the fold that most raises the smallest training
    share (:func:`training_shares`), keeping every fold within ``slack`` of N / k, until
    every share reaches ``goal`` or no move helps. Deterministic."""
    pairs = np.array(sorted(soft), dtype=np.int64).reshape(-1, 2)
    fold = fold.copy()
    n = len(fold)
    uniq, codes = np.unique(units, return_inverse=True)
    sizes = np.bincount(codes)
    movable = [int(u) for u in np.argsort(-sizes, kind="stable")[:candidates] if sizes[u] > 1]
    shares = training_shares(fold, pairs, k)
    for _ in range(rounds):
        if shares.min() >= goal:
            break
        best: tuple[float, float, int | None, int | None] = (shares.min(), shares.mean(), None, None)
        fsize = np.bincount(fold - 1, minlength=k)
        for u in movable:
            members = codes == u
            cur = int(fold[members][0])
            for f in range(1, k + 1):
                if f == cur or fsize[f - 1] + sizes[u] > (1 + slack) * n / k or \
                        fsize[cur - 1] - sizes[u] < (1 - slack) * n / k:
                    continue
                trial = fold.copy()
                trial[members] = f
                sh = training_shares(trial, pairs, k)
                if (sh.min(), sh.mean()) > best[:2]:
                    best = (sh.min(), sh.mean(), u, f)
        if best[2] is None:
            break
        fold[codes == best[2]] = best[3]
        shares = training_shares(fold, pairs, k)
    return fold


def _refine(units: np.ndarray, fold: np.ndarray, affinity: dict, config, passes: int = 20,
            slack: float = 0.15) -> np.ndarray:
    """Move independent groups of divided components to the fold holding most of their
    relations (label propagation), keeping every fold within ``slack`` of N / k samples;
    fewer relations cross folds, so fewer samples are removed."""
    uniq, codes = np.unique(units, return_inverse=True)
    ufold = np.zeros(len(uniq), dtype=np.int64)
    ufold[codes] = fold
    usize = np.bincount(codes, minlength=len(uniq))
    pos = {int(u): i for i, u in enumerate(uniq)}
    k = config.k
    fsize = np.bincount(fold - 1, minlength=k).astype(np.int64)
    target = len(units) / k
    hi, lo = (1 + slack) * target, (1 - slack) * target
    movable = [u for u in affinity if u in pos]
    rng = np.random.default_rng(config.seed)
    for _ in range(passes):
        moved = 0
        for u in (movable[i] for i in rng.permutation(len(movable))):
            i = pos[u]
            pull = np.zeros(k + 1)
            for v, w in affinity[u].items():
                pull[ufold[pos[v]]] += w
            cur, best = ufold[i], int(np.argmax(pull[1:])) + 1
            if best != cur and pull[best] > pull[cur] and fsize[best - 1] + usize[i] <= hi \
                    and fsize[cur - 1] - usize[i] >= lo:
                ufold[i] = best
                fsize[best - 1] += usize[i]
                fsize[cur - 1] -= usize[i]
                moved += 1
        if not moved:
            break
    return ufold[codes]
