"""Candidate residue sets for background samples (:mod:`rnamotif_data.samples.background`).

Per-residue arrays of a model (chain runs split at unmodelled gaps, nucleotide and
amino-acid flags, Watson-Crick-like partners, distance to the listed motifs) and the
enumeration of every run or pair of runs with a given strand layout. The rules are
documented in :mod:`rnamotif_data.samples.background`.
"""

from __future__ import annotations

import numpy as np

from rnamotif_data.rna.pairs import residue_atom_xyz, watson_crick_partners
from rnamotif_data.rna.structure import Model

__all__ = ["Residues", "candidates"]

_LINK = 2.0  # Å, O3'-P or C-N of linked residues


class Residues:
    """Per-residue arrays of a model: chain runs, nucleotide/protein flags, links, pairs,
    distance to the listed motifs."""

    def __init__(self, model: Model, motif_xyz: np.ndarray, config):
        from scipy.spatial import cKDTree  # here: importing the package needs no scipy

        atoms = model.atoms
        n = len(atoms.residues)
        ri = atoms.residue_index
        self.n = n
        self.is_nt = atoms.nucleotide_residues.copy()
        names = np.asarray(atoms.atom_name)
        self.is_aa = np.zeros(n, dtype=bool)
        self.is_aa[ri[names == "CA"]] = True
        self.is_aa &= ~self.is_nt
        # distance of each residue to the nearest listed-motif atom
        self.far = np.ones(n, dtype=bool)
        if len(motif_xyz):
            d, _ = cKDTree(np.asarray(motif_xyz, dtype=np.float64).reshape(-1, 3)).query(
                atoms.xyz, k=1, distance_upper_bound=config.min_distance)  # inf beyond: only "near" matters
            near = np.zeros(n, dtype=bool)
            near[ri[d < config.min_distance]] = True
            self.far = ~near
        self.c1 = residue_atom_xyz(atoms, "C1'")
        # chain runs: positions in model order, and links to the next residue
        self.runs = []  # list of arrays of residue indices, each a linked run in model order
        o3, p = residue_atom_xyz(atoms, "O3'"), residue_atom_xyz(atoms, "P")
        c, nn = residue_atom_xyz(atoms, "C"), residue_atom_xyz(atoms, "N")
        for chain_order, _ in model.chain_index.values():
            order = np.asarray(chain_order, dtype=np.int64)
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
        # every run end to end, with each run's offset and length (vectorised windows)
        self.flat = np.concatenate(self.runs) if self.runs else np.zeros(0, dtype=np.int64)
        self.run_len = np.array([len(r) for r in self.runs], dtype=np.int64)
        self.run_start = np.concatenate(([0], np.cumsum(self.run_len)[:-1])).astype(np.int64)
        # Watson-Crick-like partners: purine N1 - pyrimidine N3 (rna.pairs)
        self.partner = watson_crick_partners(atoms, self.is_nt, config.pair_distance)

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
    """Every candidate residue set of ``kind`` with strand ``lengths`` (strand order as given),
    in a fixed order (runs in model order, windows by start; pairs of runs in the order of
    their end pairs). Windows are taken with array operations over whole runs."""
    out: list[np.ndarray] = []
    if kind == "protein":
        total = int(sum(lengths))
        for run in res.runs:
            if res.is_aa[run[0]] and len(run) >= total:
                w = np.lib.stride_tricks.sliding_window_view(run, total)
                out += list(w[res.far[w].all(axis=1)])
        return out
    ok = res.is_nt & res.far
    if kind == "stem":
        ok &= res.partner >= 0
    if len(lengths) == 1:
        (length,) = lengths
        for k, run in enumerate(res.runs):
            if not res.is_nt[run[0]] or len(run) < length:
                continue
            w = np.lib.stride_tricks.sliding_window_view(run, length)  # (windows, length)
            start = np.arange(len(w))[:, None]
            mate = res.partner[w]
            mate_pos = res.pos[np.maximum(mate, 0)]
            # never a closed loop (an unlisted hairpin): no residue pairs inside the window
            inside = (mate >= 0) & (res.run_of[np.maximum(mate, 0)] == k) & (mate_pos >= start) & (
                mate_pos < start + length)
            out += list(w[ok[w].all(axis=1) & ~inside.any(axis=1)])
        return out
    l1, l2 = lengths[0], lengths[1]
    from scipy.spatial import cKDTree

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
    starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    if len(starts) == 0:
        return out
    run1, run2 = res.run_of[starts], res.run_of[ends]
    p1, p2 = res.pos[starts], res.pos[ends]
    # strand 1: l1 residues from the start forwards; strand 2: l2 residues ending at the end
    valid = (run1 >= 0) & (run2 >= 0)
    n1 = np.where(valid, res.run_len[np.maximum(run1, 0)], 0)
    valid &= (p1 + l1 <= n1) & (p2 - l2 + 1 >= 0)
    # the two windows share no residue (only possible within one run)
    valid &= ~((run1 == run2) & (p1 <= p2) & (p2 - l2 + 1 < p1 + l1))
    valid &= ~((run1 == run2) & (p2 - l2 + 1 <= p1) & (p1 < p2 + 1))
    starts_at = res.run_start[np.maximum(run1, 0)] + p1
    ends_at = res.run_start[np.maximum(run2, 0)] + p2 - l2 + 1
    keep = np.flatnonzero(valid)
    if len(keep) == 0:
        return out
    w1 = res.flat[starts_at[keep, None] + np.arange(l1)]
    w2 = res.flat[ends_at[keep, None] + np.arange(l2)]
    good = ok[w1].all(axis=1) & ok[w2].all(axis=1)
    w1, w2 = w1[good], w2[good]
    first = (w1[:, 0] < w2[:, 0])[:, None]
    both = np.where(first, np.concatenate([w1, w2], axis=1), np.concatenate([w2, w1], axis=1))
    return list(both)
