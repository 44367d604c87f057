"""Relations between samples that must not sit on both sides of a fold.

Used by :mod:`rnamotif_data.split.splits`. Every function works on a metadata table (a store's
``metadata.parquet`` or a manifest), so a manifest can be split before anything is built.

Relations (names used in split files and leakage reports):

``entry``
    The same EMDB map or the same PDB entry (one model fitted to several maps is one
    entry).
``overlap``
    A shared residue (PDB ID, chain, residue number, insertion code), or, for stores,
    zones of the same map that overlap (a voxel inside both zones).
``canonical``
    The same motif: same fine type and the same canonical strand sequences. Canonical:
    strands in model order, then the lexicographically smallest cyclic rotation of the
    strand list, so ``A:9-11,37-38`` and ``A:37-38,9-11`` (or the two strands of a loop
    listed from either chain) have one key.
``near_identical``
    Same fine type and canonical strand sequences within Levenshtein distance 1 (one
    substitution, insertion or deletion), any rotation of one against the other.
``homolog``
    Homologous contexts: the strands with their chain neighbours (``context_sequence``,
    8 nt each side) aligned globally with parasail (Needleman-Wunsch; Daily 2016, BMC
    Bioinformatics 17:81, DOI 10.1186/s12859-016-0930-z; NUC.4.4 scores, gap open 5,
    extend 2); identity = matches / alignment length, best over the strand rotations; related when ≥ ``identity`` and the shorter context has
    ≥ ``min_context`` nt. Pairs are pre-filtered by the cosine of their 3-mer profiles
    (≥ 0.5: 15 % of the fixture's pairs pass; its pairs of identity ≥ 0.8 have cosines
    above 0.9 and no pair below 0.5 reaches 0.66). Cost: N² profile products and ~45 µs
    per aligned pair, minutes for 10,000 samples; far larger stores need a k-mer index
    search (MMseqs2), not available here.

The first two are *hard* (never split); the last three are *soft*: grouped where the
groups stay small, otherwise pruned (see :mod:`rnamotif_data.split.splits`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rnamotif_data.common.extras import require
from rnamotif_data.errors import SelectionSyntaxError
from rnamotif_data.rna.structure import parse_selection

__all__ = ["HARD_RELATIONS", "SOFT_RELATIONS", "RELATIONS", "canonical_strands", "canonical_key",
           "strands_from_selection", "selection_residues", "within_one_edit", "near_identical_pairs", "context_identity",
           "homolog_pairs", "shared_residue_pairs", "zone_overlap_pairs", "entry_groups", "find_relations",
           "strand_column", "selection_texts", "Relations"]

HARD_RELATIONS = ("entry", "overlap")
SOFT_RELATIONS = ("canonical", "near_identical", "homolog")
RELATIONS = HARD_RELATIONS + SOFT_RELATIONS



def _rotations(strands: list[str]) -> list[list[str]]:
    return [strands[i:] + strands[:i] for i in range(len(strands))] or [strands]


def canonical_strands(strand_sequences: str | None) -> str | None:
    """Canonical form of ``'-'``-joined strand sequences: the smallest cyclic rotation.

    ``"UCC-GUG"`` and ``"GUG-UCC"`` both give ``"GUG-UCC"``; None stays None.
    """
    if strand_sequences is None or (isinstance(strand_sequences, float) and np.isnan(strand_sequences)):
        return None
    strands = str(strand_sequences).split("-")
    return min("-".join(r) for r in _rotations(strands))


def canonical_key(motif_type: str, strand_sequences: str | None) -> str | None:
    """``"<type>:<canonical strands>"`` (None when there are no sequences)."""
    c = canonical_strands(strand_sequences)
    return None if c is None else f"{motif_type}:{c}"


def selection_residues(selection: str) -> list[tuple[str, int, str]] | None:
    """Residues of a selection without a model: :func:`rnamotif_data.rna.structure.parse_selection`
    items, ranges expanded by number (``A:9-11`` -> A9, A10, A11); None for a selection
    that does not parse or a range with insertion codes (only the model can count it)."""
    try:
        items = parse_selection(selection).items
    except SelectionSyntaxError:
        return None
    out: list[tuple[str, int, str]] = []
    for it in items:
        a, b = it.start, it.end
        if b is None:
            out.append((a.chain, a.seq_num, a.icode))
        elif a.icode or b.icode or b.seq_num < a.seq_num:
            return None
        else:
            out += [(a.chain, n, "") for n in range(a.seq_num, b.seq_num + 1)]
    return out


def strands_from_selection(selection: str, sequence: str | None) -> str | None:
    """Strand sequences of a manifest row: its selection split into runs of consecutive
    residue numbers of one chain, in chain and number order, with ``sequence`` (in
    selection order) cut accordingly; None if the counts disagree or a part is missing.

    Without the model, "consecutive" means residue numbers that follow each other
    (insertion codes start a new run); :func:`canonical_strands` makes the chain order
    irrelevant.
    """
    if not selection or not sequence or not isinstance(sequence, str):
        return None
    residues = selection_residues(selection)
    if residues is None:
        return None
    if len(residues) != len(sequence):
        return None
    order = sorted(range(len(residues)), key=lambda i: residues[i])
    strands: list[str] = []
    prev = None
    for i in order:
        r = residues[i]
        if prev is not None and r[0] == prev[0] and r[1] == prev[1] + 1 and not r[2] and not prev[2]:
            strands[-1] += sequence[i]
        else:
            strands.append(sequence[i])
        prev = r
    return "-".join(strands)


def within_one_edit(a: str, b: str) -> bool:
    """True when Levenshtein(a, b) ≤ 1."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        return sum(x != y for x, y in zip(a, b)) == 1
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def _deletions(s: str) -> set[str]:
    return {s} | {s[:i] + s[i + 1:] for i in range(len(s))}


def near_identical_pairs(types, strands) -> set[tuple[int, int]]:
    """Index pairs ``(i, j)``, i < j, of the same type whose canonical strands are within
    one edit (any rotation of i against the canonical j). Candidates come from a
    single-deletion index (FastSS), each checked exactly."""
    index: dict[tuple[str, str], list[int]] = {}
    canon = [canonical_strands(s) for s in strands]
    for j, (t, c) in enumerate(zip(types, canon)):
        if c is None:
            continue
        for d in _deletions(c):
            index.setdefault((t, d), []).append(j)
    pairs: set[tuple[int, int]] = set()
    for i, (t, s) in enumerate(zip(types, strands)):
        if canon[i] is None or s is None:
            continue
        rots = ["-".join(r) for r in _rotations(str(s).split("-"))]
        for rot in rots:
            for d in _deletions(rot):
                for j in index.get((t, d), ()):
                    if j != i and (cj := canon[j]) is not None and within_one_edit(rot, cj):
                        pairs.add((min(i, j), max(i, j)))
    return pairs


def _profiles(seqs: list[str], k: int = 3) -> np.ndarray:
    """``(N, 4**k)`` L2-normalised k-mer count profiles over ACGU (other letters skipped)."""
    code = {c: i for i, c in enumerate("ACGU")}
    out = np.zeros((len(seqs), 4 ** k), dtype=np.float32)
    for n, s in enumerate(seqs):
        for part in s.split("-"):
            v = [code.get(c, -1) for c in part]
            for i in range(len(v) - k + 1):
                w = v[i:i + k]
                if min(w) >= 0:
                    out[n, sum(x * 4 ** (k - 1 - p) for p, x in enumerate(w))] += 1
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norm, 1e-9)


def context_identity(a: str, b: str) -> float:
    """Identity of two contexts (``'-'``-joined strands): global (Needleman-Wunsch)
    parasail alignment, matches / alignment length (gaps included), best over the
    rotations of ``a``'s strands. Unrelated RNA contexts of 30-50 nt score about 0.4-0.6."""
    parasail = require("parasail", "the homology relation of similarity splits")

    tb = b.replace("-", "").replace("U", "T")
    best = 0.0
    for rot in _rotations(a.split("-")):
        ta = "".join(rot).replace("U", "T")
        if not ta or not tb:
            continue
        r = parasail.nw_stats_striped_16(ta, tb, 5, 2, parasail.nuc44)
        best = max(best, r.matches / max(r.length, 1))
    return best


def homolog_pairs(contexts, identity: float, min_context: int, prefilter: float = 0.5,
                  skip=None) -> tuple[set[tuple[int, int]], dict[tuple[int, int], float]]:
    """Pairs of homologous contexts, and the identity of every pair aligned.

    Parameters
    ----------
    contexts:
        ``(N,)`` context sequences (None where unknown).
    identity:
        Threshold (0-1) of a homolog pair.
    min_context:
        Shorter context below this many nt: never aligned.
    prefilter:
        Pairs whose 3-mer profile cosine is below this are not aligned (their identity
        counts as 0).
    skip:
        Optional ``(N,)`` group labels: pairs within one group are not aligned (they are
        together anyway).

    Returns
    -------
    (homolog pairs ``{(i, j)}`` with i < j, ``{(i, j): identity}`` of every aligned pair)
    """
    ok = np.array([isinstance(c, str) and len(c.replace("-", "")) >= min_context for c in contexts], dtype=bool)
    idx = np.flatnonzero(ok)
    aligned: dict[tuple[int, int], float] = {}
    if len(idx) < 2:
        return set(), aligned
    seqs = [contexts[i] for i in idx]
    prof = _profiles(seqs)
    groups = None if skip is None else np.asarray(skip)[idx]
    block = 2048
    for s0 in range(0, len(idx), block):
        sim = prof[s0:s0 + block] @ prof.T
        for a_local, b in zip(*np.nonzero(sim >= prefilter)):
            a = s0 + a_local
            if b <= a or (groups is not None and groups[a] == groups[b]):
                continue
            aligned[(int(idx[a]), int(idx[b]))] = context_identity(seqs[a], seqs[b])
    return {p for p, v in aligned.items() if v >= identity}, aligned


def zone_overlap_pairs(store) -> set[tuple[int, int]]:
    """Index pairs of samples of one EMDB map whose zones overlap: a zone voxel centre of
    each falls in the same cell of a world grid of the store's voxel size (so cubes cut
    on different grids compare in world coordinates). Only pairs whose cubes intersect
    are compared; each zone is read once."""
    meta = store.metadata
    if len(meta) < 2:
        return set()
    vs = float(store.voxel_size)
    extent = np.asarray(store.cube_shape, dtype=float)[::-1] * vs
    origin = np.stack(meta["origin_xyz"].to_numpy()).astype(float)  # x-y-z Å
    cells: dict[int, np.ndarray] = {}

    def keys(i: int) -> np.ndarray:
        if i not in cells:
            z = store.read_batch(slice(i, i + 1), arrays=("zone",))["zone"][0].astype(bool)
            xyz = origin[i] + (np.argwhere(z)[:, ::-1] + 0.5) * vs  # z-y-x indices -> x-y-z Å
            c = np.floor(xyz / vs).astype(np.int64) + (1 << 20)
            cells[i] = np.unique((c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2])
        return cells[i]

    pairs: set[tuple[int, int]] = set()
    for _, sub in meta.groupby(meta["emdb_id"].astype(str)):
        rows = sub.index.to_numpy()
        for a_pos, i in enumerate(rows):
            near = rows[a_pos + 1:]
            near = near[np.all(np.abs(origin[near] - origin[i]) < extent, axis=1)]
            for j in near:
                if np.intersect1d(keys(int(i)), keys(int(j)), assume_unique=True).size:
                    pairs.add((int(min(i, j)), int(max(i, j))))
    return pairs


def shared_residue_pairs(pdb_ids, residues) -> set[tuple[int, int]]:
    """Index pairs of samples that share a residue (PDB ID, chain, number, insertion code)."""
    owner: dict[tuple, list[int]] = {}
    for i, (p, r) in enumerate(zip(pdb_ids, residues)):
        found = selection_residues(r) if isinstance(r, str) else None
        for res in set(found or ()):
            owner.setdefault((str(p).upper(), *res), []).append(i)
    pairs = set()
    for members in owner.values():
        for a, b in itertools.combinations(sorted(set(members)), 2):
            pairs.add((a, b))
    return pairs


@dataclass
class Relations:
    """The relations of a table of samples.

    Attributes
    ----------
    entry_group:
        ``(N,)`` int: samples with equal values share an EMDB map or PDB entry
        (transitively).
    pairs:
        relation name -> set of index pairs ``(i, j)``, i < j (``overlap``, ``canonical``,
        ``near_identical``, ``homolog``).
    aligned:
        ``{(i, j): identity}`` of every context pair aligned (pairs of different entries
        that passed the 3-mer pre-filter).
    has_contexts:
        Whether flanking contexts were available (stores), or the strands stood in for
        them (manifests).
    """

    entry_group: np.ndarray
    pairs: dict[str, set[tuple[int, int]]]
    aligned: dict[tuple[int, int], float]
    has_contexts: bool


def entry_groups(emdb_ids, pdb_ids) -> np.ndarray:
    """``(N,)`` union-find labels joining samples of one EMDB map or one PDB entry."""
    n = len(pdb_ids)
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for col in (emdb_ids, pdb_ids):
        first: dict[str, int] = {}
        for i, v in enumerate(col):
            if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
                continue
            key = str(v).upper()
            if key in first:
                ra, rb = find(i), find(first[key])
                if ra != rb:
                    parent[ra] = rb
            else:
                first[key] = i
    return np.array([find(i) for i in range(n)])


def selection_texts(meta: pd.DataFrame) -> list:
    """Each row's residues as selection text: a store's ``residues`` string, a manifest's
    ``selection``, or a manifest's ``residues`` list (``chain``/``seq_num``/``icode``)."""
    out = []
    for i in range(len(meta)):
        text = None
        for col in ("residues", "selection"):
            v = meta[col].iloc[i] if col in meta else None
            if isinstance(v, str) and v:
                text = v
                break
            if isinstance(v, (list, tuple, np.ndarray)) and len(v):
                text = " ".join(f"{r['chain']}:{r['seq_num']}{r.get('icode') or ''}" for r in v)
                break
        out.append(text)
    return out


def strand_column(meta: pd.DataFrame) -> list:
    """Strand sequences of every row: ``strand_sequences`` where present, else derived from
    the residues (:func:`selection_texts`) and ``sequence`` (:func:`strands_from_selection`)."""
    texts = selection_texts(meta)
    out: list[str | None] = []
    for i in range(len(meta)):
        s = meta["strand_sequences"].iloc[i] if "strand_sequences" in meta else None
        if isinstance(s, str) and s:
            out.append(s)
            continue
        seq = meta["sequence"].iloc[i] if "sequence" in meta else None
        strands = strands_from_selection(texts[i], seq) if isinstance(texts[i], str) else None
        if strands is None and texts[i] is None and isinstance(seq, str) and seq:
            strands = seq  # no residues to cut it by: the sequence as one strand
        out.append(strands)
    return out


def find_relations(meta: pd.DataFrame, identity: float = 0.8, min_context: int = 12,
                   zone_overlaps: set[tuple[int, int]] | None = None) -> Relations:
    """All relations of a metadata table (rows in table order).

    Columns used: ``pdb_id``, ``emdb_id`` (optional), ``motif_type``, ``residues`` or
    ``selection``, ``sequence``, ``strand_sequences`` and ``context_sequence`` (optional).
    ``zone_overlaps``: pairs whose zones overlap (stores; :mod:`rnamotif_data.split.splits`).
    """
    pdb = meta["pdb_id"].astype(str).str.upper().tolist()
    emdb = meta["emdb_id"].tolist() if "emdb_id" in meta else [None] * len(meta)
    groups = entry_groups(emdb, pdb)
    types = meta["motif_type"].astype(str).tolist()
    strands = strand_column(meta)
    # background samples are not motifs: related by context homology only
    canon = [canonical_key(t, s) if t != "unknown" else None for t, s in zip(types, strands)]
    motif_strands = [s if t != "unknown" else None for t, s in zip(types, strands)]
    by_key: dict[str, list[int]] = {}
    for i, k in enumerate(canon):
        if k is not None:
            by_key.setdefault(k, []).append(i)
    canonical_pairs = {(a, b) for m in by_key.values() if len(m) > 1 for a, b in itertools.combinations(m, 2)}
    overlap = shared_residue_pairs(pdb, selection_texts(meta)) | set(zone_overlaps or ())
    contexts = meta["context_sequence"].tolist() if "context_sequence" in meta else [None] * len(meta)
    has_contexts = any(isinstance(c, str) for c in contexts)
    if not has_contexts:  # metadata only: the strands are the context
        contexts = strands
    homologs, aligned = homolog_pairs(contexts, identity, min_context, skip=groups)
    pairs = {"overlap": overlap, "canonical": canonical_pairs,
             "near_identical": near_identical_pairs(types, motif_strands) - canonical_pairs,
             "homolog": set(homologs)}
    return Relations(entry_group=groups, pairs=pairs, aligned=aligned, has_contexts=has_contexts)
