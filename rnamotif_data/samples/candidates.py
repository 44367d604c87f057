"""Candidate residue sets for background samples (:mod:`rnamotif_data.samples.background`).

Per-residue arrays of a model (chain runs split at unmodelled gaps, nucleotide and
amino-acid flags, Watson-Crick-like partners, distance to the listed motifs) and the
enumeration of every run or pair of runs with a given strand layout. The rules are
documented in :mod:`rnamotif_data.samples.background`.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from rnamotif_data.rna.structure import AtomTable, Model

__all__ = ["Residues", "candidates"]

_LINK = 2.0  # Å, O3'-P or C-N of linked residues
_PURINES, _PYRIMIDINES = frozenset("AG"), frozenset("CU")


class Residues:
    """Per-residue arrays of a model: chain runs, nucleotide/protein flags, links, pairs,
    distance to the listed motifs."""

    def __init__(self, model: Model, motif_xyz: np.ndarray, config):
        atoms = model.atoms
        n = len(atoms.residues)
        ri = atoms.residue_index
        self.n = n
        self.is_nt = np.zeros(n, dtype=bool)
        self.is_nt[ri[atoms.nucleotide > 0]] = True
        names = np.asarray(atoms.atom_name)
        self.is_aa = np.zeros(n, dtype=bool)
        self.is_aa[ri[names == "CA"]] = True
        self.is_aa &= ~self.is_nt
        # distance of each residue to the nearest listed-motif atom
        self.far = np.ones(n, dtype=bool)
        if len(motif_xyz):
            d, _ = cKDTree(np.asarray(motif_xyz, dtype=np.float64).reshape(-1, 3)).query(atoms.xyz, k=1)
            near = np.zeros(n, dtype=bool)
            near[ri[d < config.min_distance]] = True
            self.far = ~near
        self.c1 = self._atom(atoms, "C1'")
        # chain runs: positions in model order, and links to the next residue
        self.runs = []  # list of arrays of residue indices, each a linked run in model order
        o3, p = self._atom(atoms, "O3'"), self._atom(atoms, "P")
        c, nn = self._atom(atoms, "C"), self._atom(atoms, "N")
        for order, _ in model.chain_index.values():
            order = np.asarray(order, dtype=np.int64)
            if len(order) == 0:
                continue
            a, b = order[:-1], order[1:]
            link_nt = np.linalg.norm(o3[a] - p[b], axis=1) <= _LINK
            link_aa = np.linalg.norm(c[a] - nn[b], axis=1) <= _LINK
            linked = np.where(self.is_nt[a] & self.is_nt[b], link_nt, self.is_aa[a] & self.is_aa[b] & link_aa)
            breaks = np.flatnonzero(~linked) + 1
            self.runs += [r for r in np.split(order, breaks) if len(r)]
        self.run_of = np.full(n, -1, dtype=np.int64)
        self.pos = np.full(n, -1, dtype=np.int64)
        for k, r in enumerate(self.runs):
            self.run_of[r] = k
            self.pos[r] = np.arange(len(r))
        self.partner = self._pairs(atoms, config.pair_distance)

    @staticmethod
    def _atom(atoms: AtomTable, name: str) -> np.ndarray:
        out = np.full((len(atoms.residues), 3), np.nan)
        rows = np.flatnonzero(np.asarray(atoms.atom_name) == name)
        out[atoms.residue_index[rows[::-1]]] = atoms.xyz[rows[::-1]]  # first copy wins
        return out

    def _pairs(self, atoms: AtomTable, cutoff: float) -> np.ndarray:
        """Watson-Crick-like partner of each residue (-1 if none): purine N1 - pyrimidine N3."""
        parents = atoms.parents or ()
        n1, n3 = self._atom(atoms, "N1"), self._atom(atoms, "N3")
        partner = np.full(self.n, -1, dtype=np.int64)
        if not parents:
            return partner
        par = np.asarray(parents)
        pur = np.flatnonzero(self.is_nt & np.isin(par, list(_PURINES)) & np.isfinite(n1[:, 0]))
        pyr = np.flatnonzero(self.is_nt & np.isin(par, list(_PYRIMIDINES)) & np.isfinite(n3[:, 0]))
        if len(pur) == 0 or len(pyr) == 0:
            return partner
        d, j = cKDTree(n3[pyr]).query(n1[pur], k=1, distance_upper_bound=cutoff)
        ok = np.isfinite(d)
        a, b = pur[ok], pyr[j[ok]]
        # keep mutual nearest pairs only (one partner per residue)
        d2, i2 = cKDTree(n1[pur]).query(n3[b], k=1)
        mutual = pur[i2] == a
        partner[a[mutual]] = b[mutual]
        partner[b[mutual]] = a[mutual]
        return partner

    def window(self, start: int, length: int, step: int = 1) -> np.ndarray | None:
        """``length`` residues of ``start``'s run from ``start`` forwards (step 1) or
        ending at ``start`` (step -1), in model order; None past the run's end."""
        run = self.runs[self.run_of[start]] if self.run_of[start] >= 0 else None
        if run is None:
            return None
        p = self.pos[start]
        lo, hi = (p, p + length) if step > 0 else (p - length + 1, p + 1)
        if lo < 0 or hi > len(run):
            return None
        return run[lo:hi]


def candidates(res: Residues, kind: str, lengths: tuple[int, ...], config) -> list[np.ndarray]:
    """Every candidate residue set of ``kind`` with strand ``lengths`` (strand order as given)."""
    out: list[np.ndarray] = []
    if kind == "protein":
        total = int(sum(lengths))
        for run in res.runs:
            if res.is_aa[run[0]]:
                for p in range(0, len(run) - total + 1):
                    w = run[p:p + total]
                    if res.far[w].all():
                        out.append(w)
        return out
    ok = res.is_nt & res.far
    if kind == "stem":
        ok &= res.partner >= 0
    if len(lengths) == 1:
        (length,) = lengths
        for run in res.runs:
            if not res.is_nt[run[0]]:
                continue
            for p in range(0, len(run) - length + 1):
                w = run[p:p + length]
                # never a closed loop (an unlisted hairpin): no residue pairs inside the run
                if ok[w].all() and not np.isin(res.partner[w], w).any():
                    out.append(w)
        return out
    l1, l2 = lengths[0], lengths[1]
    if kind == "stem":
        starts = np.flatnonzero(ok)
        ends = res.partner[starts]
    else:
        pts = np.flatnonzero(ok & np.isfinite(res.c1[:, 0]))
        if len(pts) < 2:
            return out
        pairs = cKDTree(res.c1[pts]).query_pairs(config.neighbour_distance, output_type="ndarray")
        starts = np.concatenate([pts[pairs[:, 0]], pts[pairs[:, 1]]])
        ends = np.concatenate([pts[pairs[:, 1]], pts[pairs[:, 0]]])
    for i, j in zip(starts, ends):
        w1, w2 = res.window(int(i), l1, +1), res.window(int(j), l2, -1)
        if w1 is None or w2 is None or not set(w1.tolist()).isdisjoint(w2.tolist()):
            continue
        if not (ok[w1].all() and ok[w2].all()):
            continue
        both = np.concatenate([w1, w2])
        out.append(both if w1[0] < w2[0] else np.concatenate([w2, w1]))
    return out
