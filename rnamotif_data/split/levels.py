"""Fold assignment at a chain-homology level (``identity`` or ``family``;
:mod:`rnamotif_data.split.homology`).

Every sample carries labels: its chains' identity classes or families. The rule is the
one the similarity scheme applies to motif relations (:mod:`rnamotif_data.split.splits`):
validation sets stay whole, and fold k's training subset leaves out every sample of
another fold that shares a label with a sample of fold k, so no validation sample has a
chain of its class (family) in its fold's training. What the assignment decides is how
much that pruning costs:

1. Independent groups (same map / entry / model / residue) are never divided. Groups
   joined by labels (and by shared canonical motifs) form components; a component no larger
   than ``max_group_share`` × N / k is one unit.
2. A larger component is divided into units by each group's *dominant* label (the
   label most of its samples carry): all ribosomes whose samples lie mostly on the
   *E. coli* 23S class are one unit at the identity level, all large-subunit rRNAs one
   unit at the family level.
3. Units are placed largest first, each in the fold where it costs least: the samples
   that would leave some training set because its labels (or canonical motifs) then sit
   in two folds, plus the samples by which the fold would exceed N / k. So a family that
   carries a third of the data fills one fold beyond N / k rather than leave every
   training set; the fold sizes say so.
4. The largest units are then moved, one at a time, where that most raises the smallest
   training share (samples of the other folds kept in a fold's training), while it is
   below ``goal``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import sparse

log = logging.getLogger(__name__)

__all__ = ["label_matrix", "label_exclusion", "level_shares", "label_assignment", "joins_groups"]


def label_matrix(labels) -> sparse.csr_matrix:
    """``(N, L)`` 0/1 sparse incidence of samples and their labels (``labels``: N tuples)."""
    codes: dict[str, int] = {}
    rows, cols = [], []
    for i, ls in enumerate(labels):
        for lab in ls:
            rows.append(i)
            cols.append(codes.setdefault(lab, len(codes)))
    return sparse.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(len(labels), max(len(codes), 1)))


def joins_groups(labels, hard: np.ndarray) -> bool:
    """True if some label is carried by samples of two independent groups."""
    owner: dict[str, int] = {}
    for ls, g in zip(labels, hard):
        for lab in ls:
            if owner.setdefault(lab, int(g)) != int(g):
                return True
    return False


def label_exclusion(m: sparse.csr_matrix, fold: np.ndarray, k: int, pairs: np.ndarray | None = None) -> np.ndarray:
    """``(N, k)`` bool: sample j leaves fold f's training (column f-1) because it shares a
    label (``m``, :func:`label_matrix`) with a sample of fold f, or is paired (``pairs``,
    ``(P, 2)``) with one; never for a sample of fold f itself. ``fold``: ``(N,)`` 1..k, 0 = unplaced."""
    n = len(fold)
    onehot = sparse.csr_matrix((np.ones(int((fold > 0).sum())), (np.flatnonzero(fold > 0), fold[fold > 0] - 1)),
                               shape=(n, k))
    present = (m.T @ onehot) > 0  # (L, k): label occurs in fold
    excluded = np.asarray(((m @ present) > 0).todense())
    if pairs is not None and len(pairs):
        i, j = pairs[:, 0], pairs[:, 1]
        cross = (fold[i] != fold[j]) & (fold[i] > 0) & (fold[j] > 0)
        excluded[j[cross], fold[i[cross]] - 1] = True
        excluded[i[cross], fold[j[cross]] - 1] = True
    excluded[np.flatnonzero(fold > 0), fold[fold > 0] - 1] = False
    excluded[fold == 0] = False
    return excluded


def level_shares(excluded: np.ndarray, fold: np.ndarray, k: int) -> np.ndarray:
    """``(k,)``: share of the placed samples outside fold f kept in its training subset."""
    out = np.zeros(k)
    for f in range(1, k + 1):
        outside = (fold != f) & (fold > 0)
        out[f - 1] = (outside & ~excluded[:, f - 1]).sum() / max(int(outside.sum()), 1)
    return out


def _union(n_nodes: int, edges) -> np.ndarray:
    parent = np.arange(n_nodes)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n_nodes)])


def label_assignment(labels, hard: np.ndarray, k: int, seed: int = 0, *, extra_labels=None,
                     pairs: np.ndarray | None = None, max_group_share: float = 0.5, goal: float = 0.5,
                     candidates: int = 16, rounds: int = 20) -> tuple[np.ndarray, dict]:
    """Fold (1..k) of every sample at a chain-homology level (module docstring).

    Parameters
    ----------
    labels:
        ``(N,)`` tuples of the sample's identity classes or families.
    hard:
        ``(N,)`` independent-group labels (:func:`rnamotif_data.split.folds.hard_groups`).
    k, seed:
        Folds; seed of the order of equal-size units.
    extra_labels:
        ``(N,)`` tuples of further shared keys that prune (canonical motif keys), or None.
    pairs:
        ``(P, 2)`` further pruning relations (near-identical, homologous contexts), used
        for the training shares.
    max_group_share, goal:
        Component size (× N / k) above which a component is divided; smallest training
        share the moves aim for.

    Returns
    -------
    ``(fold, info)``: ``(N,)`` int64 folds and ``{"units", "divided", "shares"}``.
    """
    n = len(hard)
    all_labels = [tuple(a) + tuple(extra_labels[i] if extra_labels is not None else ()) for i, a in enumerate(labels)]
    m = label_matrix(all_labels)
    u_codes, n_units, divided = _units(labels, m, hard, max_group_share * n / k)
    um = (sparse.csr_matrix((np.ones(n), (u_codes, np.arange(n))), shape=(n_units, n)) @ m).tocsr()  # unit x label
    size = np.bincount(u_codes, minlength=n_units)
    unit_fold = _greedy_place(um, size, m.shape[1], k, n / k, seed)
    unit_fold, shares = _improve_shares(unit_fold, u_codes, size, m, k, pairs, goal, candidates, rounds)
    info = {"units": n_units, "divided": divided, "shares": shares.tolist()}
    return unit_fold[u_codes].astype(np.int64), info


def _units(labels, m, hard: np.ndarray, cap: float) -> tuple[np.ndarray, int, int]:
    """``(unit code (N,), units, components divided)``: groups joined by shared labels form
    components; a component of at most ``cap`` samples is one unit, a larger one is divided
    by each group's dominant chain label."""
    n = len(hard)
    g_codes, g_uniq = pd.factorize(pd.Series(hard), sort=True)
    n_groups = len(g_uniq)
    group_of = sparse.csr_matrix((np.ones(n), (g_codes, np.arange(n))), shape=(n_groups, n))
    gl = (group_of @ m).tocsc()
    edges = []
    for lab in range(gl.shape[1]):
        members = gl.indices[gl.indptr[lab]:gl.indptr[lab + 1]]
        edges += [(members[0], b) for b in members[1:]]
    comp = _union(n_groups, edges)
    comp_size = np.bincount(comp, weights=np.bincount(g_codes, minlength=n_groups), minlength=n_groups)
    gl_chain = (group_of @ label_matrix(labels)).tocsr()
    unit_of_group = np.empty(n_groups, dtype=object)
    divided = set()
    for g in range(n_groups):
        c = comp[g]
        if comp_size[c] <= cap:
            unit_of_group[g] = ("c", int(c))
            continue
        divided.add(int(c))
        row = gl_chain.getrow(g)
        unit_of_group[g] = ("l", int(row.indices[np.lexsort((row.indices, -row.data))[0]])) if row.nnz else ("g", g)
    u_codes, _ = pd.factorize(pd.Series([unit_of_group[g] for g in g_codes]), sort=False)
    return u_codes, (int(u_codes.max()) + 1 if n else 0), len(divided)


def _greedy_place(um, size: np.ndarray, n_labels: int, k: int, target: float, seed: int) -> np.ndarray:
    """Fold (1..k) of each unit, largest first: the fold where its labels are least present
    elsewhere and that stays under ``target`` samples (ties by a seeded order)."""
    n_units = len(size)
    tiebreak = np.random.default_rng(seed).permutation(n_units)
    placed = np.zeros((n_labels, k))  # label x fold sample counts
    fsize = np.zeros(k)
    unit_fold = np.zeros(n_units, dtype=np.int64)
    for u in np.lexsort((tiebreak, -size)):
        row = um.getrow(u)
        labs, cnt = row.indices, row.data
        tot = placed[labs].sum(axis=1)
        cost = np.zeros(k)
        for f in range(k):
            other = tot - placed[labs, f]
            cost[f] = other.sum() + (cnt * (other > 0)).sum() + max(0.0, fsize[f] + size[u] - target) \
                + 1e-6 * fsize[f]
        f = int(np.argmin(cost))
        unit_fold[u] = f + 1
        placed[labs, f] += cnt
        fsize[f] += size[u]
    return unit_fold


def _improve_shares(unit_fold: np.ndarray, u_codes: np.ndarray, size: np.ndarray, m, k: int, pairs,
                    goal: float, candidates: int, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """Move the largest units between folds while the smallest training share is below
    ``goal`` and a move raises it (never emptying a fold); ``(unit folds, shares)``."""
    unit_fold = unit_fold.copy()
    fold = unit_fold[u_codes]
    shares = level_shares(label_exclusion(m, fold, k, pairs), fold, k)
    movable = [int(u) for u in np.argsort(-size, kind="stable")[:candidates] if size[u] > 0]
    for _ in range(rounds):
        if shares.min() >= goal:
            break
        best = (shares.min(), shares.mean(), -1, -1)
        for u in movable:
            cur = unit_fold[u]
            for f in range(1, k + 1):
                if f == cur or np.bincount(fold, minlength=k + 1)[cur] == size[u]:
                    continue  # never empty a fold
                trial = fold.copy()
                trial[u_codes == u] = f
                sh = level_shares(label_exclusion(m, trial, k, pairs), trial, k)
                if (sh.min(), sh.mean()) > best[:2]:
                    best = (sh.min(), sh.mean(), u, f)
        if best[2] < 0:
            break
        unit_fold[best[2]] = best[3]
        fold = unit_fold[u_codes]
        shares = level_shares(label_exclusion(m, fold, k, pairs), fold, k)
    return unit_fold, shares
