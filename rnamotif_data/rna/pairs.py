"""Base pairs read off a model, and the loop lengths they give a listed motif.

A motif listing names residues: a hairpin's one strand, or a bulge's or internal loop's
two strands, closing base pairs included. Sources differ in how many closing pairs they
list on each side: CoSSMos exports and the RNA 3D Motif Atlas list **one** (``hairpin3``
``GAAUC``), the upstream 3DEM benchmark lists **two** (its ``hairpin3`` ``GGUCUCC``, 6PJ6
J:85-91). The length of a strand cannot tell the two apart; the model's pairs can
(:func:`read_loops`).

Pairs: the geometric Watson-Crick rule of the structural negatives -- a purine's N1 and a
pyrimidine's N3 within ``cutoff`` Å (2.8-3.0 Å in Watson-Crick pairs; the hydrogen-bond
cut-off of 3.4 Å, Leontis & Westhof 2001, RNA 7:499, DOI 10.1017/S1355838201002515),
mutual nearest partners only. It sees canonical A-U and G-C pairs (and G-U wobbles whose
N1-N3 distance is within the cut-off); other closings (non-canonical, sheared) are not
read, and the row then falls back to its source's convention, which the row records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnamotif_data.errors import InputError
from rnamotif_data.rna.structure import AtomTable

__all__ = ["PAIR_CUTOFF", "residue_atom_xyz", "watson_crick_partners", "LoopReading", "read_loops", "loop_type"]

#: Å, purine N1 - pyrimidine N3
PAIR_CUTOFF = 3.4
_PURINES, _PYRIMIDINES = ("A", "G"), ("C", "U")


def residue_atom_xyz(atoms: AtomTable, name: str) -> np.ndarray:
    """``(R, 3)`` Å, x-y-z: each residue's atom ``name`` (the first copy), NaN where absent."""
    out = np.full((len(atoms.residues), 3), np.nan)
    rows = np.flatnonzero(np.asarray(atoms.atom_name) == name)
    out[atoms.residue_index[rows[::-1]]] = atoms.xyz[rows[::-1]]  # first copy wins
    return out


def watson_crick_partners(atoms: AtomTable, is_nt: np.ndarray, cutoff: float = PAIR_CUTOFF,
                          wobble: bool = False) -> np.ndarray:
    """``(R,)`` int64: each residue's Watson-Crick-like partner (residue index), -1 if none.

    ``is_nt`` ``(R,)`` marks the nucleotides; parents of modified residues are used
    (``atoms.parents``). Without parents every residue is unpaired. ``wobble``: also pair
    G·U wobbles, whose N1-N3 distance is too long for the rule (G N1 - U O2 ≤ ``cutoff``
    Å, mutual nearest, among residues left unpaired by the first pass).
    """
    from scipy.spatial import cKDTree  # here: importing the package needs no scipy

    n = len(atoms.residues)
    partner = np.full(n, -1, dtype=np.int64)
    parents = atoms.parents or ()
    if not parents:
        return partner
    n1, n3 = residue_atom_xyz(atoms, "N1"), residue_atom_xyz(atoms, "N3")
    par = np.asarray(parents)
    pur = np.flatnonzero(is_nt & np.isin(par, _PURINES) & np.isfinite(n1[:, 0]))
    pyr = np.flatnonzero(is_nt & np.isin(par, _PYRIMIDINES) & np.isfinite(n3[:, 0]))
    if len(pur) == 0 or len(pyr) == 0:
        return partner
    d, j = cKDTree(n3[pyr]).query(n1[pur], k=1, distance_upper_bound=cutoff)
    ok = np.isfinite(d)
    a, b = pur[ok], pyr[j[ok]]
    _, i2 = cKDTree(n1[pur]).query(n3[b], k=1)  # mutual nearest pairs only
    mutual = pur[i2] == a
    partner[a[mutual]] = b[mutual]
    partner[b[mutual]] = a[mutual]
    if wobble:
        o2 = residue_atom_xyz(atoms, "O2")
        free = partner < 0
        g = np.flatnonzero(free & is_nt & (par == "G") & np.isfinite(n1[:, 0]))
        u = np.flatnonzero(free & is_nt & (par == "U") & np.isfinite(o2[:, 0]))
        if len(g) and len(u):
            d, j = cKDTree(o2[u]).query(n1[g], k=1, distance_upper_bound=cutoff)
            ok = np.isfinite(d)
            a, b = g[ok], u[j[ok]]
            _, i2 = cKDTree(n1[g]).query(o2[b], k=1)
            mutual = g[i2] == a
            partner[a[mutual]] = b[mutual]
            partner[b[mutual]] = a[mutual]
    return partner


@dataclass(frozen=True)
class LoopReading:
    """What a listing's pairs say.

    Attributes
    ----------
    loop_lengths:
        Unpaired nucleotides per strand, strands in model order (one for a hairpin).
    flank_pairs:
        Closing pairs listed on each side (hairpin: one side; two strands: the outer side,
        then the inner), as read; where none was found, the fallback convention.
    pairs:
        The closing pairs read, as residue-index pairs.
    motif_type:
        The fine type the loop lengths make (``hairpinN``, ``bulgeN``, ``AxB`` with A ≤ B),
        or None where they make none (a stem, negative lengths).
    note:
        Why a side fell back to the convention (None when every side's pairs were read).
    """

    loop_lengths: tuple[int, ...]
    flank_pairs: tuple[int, ...]
    pairs: tuple[tuple[int, int], ...]
    motif_type: str | None
    note: str | None = None


def loop_type(loop_lengths: tuple[int, ...]) -> str | None:
    """The fine type name of unpaired runs: one strand ``hairpinN``; two strands
    ``bulgeN`` (one run empty) or ``AxB`` (A ≤ B); None for a stem or a negative run."""
    if any(n < 0 for n in loop_lengths) or not loop_lengths:
        return None
    if len(loop_lengths) == 1:
        return f"hairpin{loop_lengths[0]}"
    a, b = sorted(loop_lengths)
    if b == 0:
        return None
    return f"bulge{b}" if a == 0 else f"{a}x{b}"


def _stacked(first, second, partner: np.ndarray, limit: int) -> int:
    """How many pairs ``first[i]``-``second[i]`` hold from i = 0 on, at most ``limit``."""
    n = 0
    while n < limit and partner[first[n]] == second[n]:
        n += 1
    return n


def read_loops(strands: list[list[int]], partner: np.ndarray, fallback: int, max_flank: int = 2) -> LoopReading:
    """Read a listing's closing pairs and loop lengths off ``partner``
    (:func:`watson_crick_partners`).

    ``strands``: one or two strands (residue indices, each in model order, strands in model
    order). On each closing side, the pairs stacked from the outermost listed residues
    inward are counted (at most ``max_flank``); a listing carries one convention, so the
    larger count of the two sides holds for both; where no side shows a pair,
    ``fallback`` pairs (the source's convention) are used; ``note`` says either. A hairpin's loop is its strand
    minus 2 × its pairs; an internal loop's strands lose the outer and the inner side's
    pairs each.

    Raises
    ------
    InputError
        For no strand or more than two.
    """
    if len(strands) not in (1, 2):
        raise InputError(f"a listing has one or two strands, got {len(strands)}")
    notes = []
    if len(strands) == 1:
        s = list(strands[0])
        # a hairpin loop has at least 3 nucleotides: a pair that would leave fewer is the
        # loop's own (e.g. the trans U·G of a UUCG tetraloop), not a closing pair
        c = _stacked(s, s[::-1], partner, max(0, min(max_flank, (len(s) - 3) // 2)))
        if c == 0:
            c = fallback
            notes.append(f"no closing pair found; the source's convention of {fallback} pair(s) used")
        pairs = tuple((s[i], s[-1 - i]) for i in range(min(c, len(s) // 2)) if partner[s[i]] == s[-1 - i])
        lengths: tuple[int, ...] = (len(s) - 2 * c,)
        flanks: tuple[int, ...] = (c,)
    else:
        a, b = list(strands[0]), list(strands[1])
        limit = min(max_flank, len(a) // 2, len(b) // 2)  # each side keeps its half of a strand
        outer = _stacked(a, b[::-1], partner, limit)  # a[0]-b[-1], a[1]-b[-2], ...
        inner = _stacked(a[::-1], b, partner, limit)  # a[-1]-b[0], a[-2]-b[1], ...
        # one listing, one convention: the most pairs read on either side holds for both
        # (a side's second pair may be non-canonical, which the rule does not see)
        read = max(outer, inner)
        for side, value in (("outer", outer), ("inner", inner)):
            if value == 0:
                notes.append(f"no {side} closing pair found; " + (
                    f"{read} pair(s), as read on the other side" if read else
                    f"the source's convention of {fallback} pair(s) used"))
        outer = inner = read or fallback
        pairs = tuple([(a[i], b[-1 - i]) for i in range(min(outer, limit)) if partner[a[i]] == b[-1 - i]]
                      + [(a[-1 - i], b[i]) for i in range(min(inner, limit)) if partner[a[-1 - i]] == b[i]])
        lengths = (len(a) - outer - inner, len(b) - outer - inner)
        flanks = (outer, inner)
    return LoopReading(loop_lengths=lengths, flank_pairs=flanks, pairs=pairs, motif_type=loop_type(lengths),
                       note="; ".join(notes) or None)
