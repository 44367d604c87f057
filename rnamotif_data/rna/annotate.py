"""Motifs read off a model's secondary structure: hairpins, bulges, internal loops.

Base pairs come from a recognised annotator, not our own geometry: **RNApolis Annotator**
(Zok et al., Bioinformatics 2018 / the ``rnapolis`` package; optional dependency, ``pip
install rnapolis``). From its canonical pairs (Watson-Crick and G·U wobble; one pair per
nucleotide, as RNApolis resolves conflicts) the pseudoknots are removed by RNApolis's
pseudoknot order (its dot-bracket's first bracket level), leaving the nested secondary
structure. The loops of that structure are then read here (:func:`loops_from_pairs`):

* a pair closing no inner pair closes a **hairpin** of N unpaired nucleotides
  (``hairpinN``, one strand of N + 2 with the closing pair);
* a pair closing exactly one inner pair closes a **bulge** (one side unpaired:
  ``bulgeN``, strands of N + 2 and 2) or an **internal loop** (``AxB`` with A, B ≥ 1
  unpaired on the two sides, strands of A + 2 and B + 2; symmetric when A = B; fine
  types name the smaller side first) -- or nothing, when both sides are 0 (a stacked
  pair in a helix);
* a pair closing two or more inner pairs closes a **multi-way junction**.

Rows are made for the 25 fine types (design §4); every other loop (junctions,
hairpins of < 3 or > 7, bulges > 5, internal loops with a side > 5) is returned as an
"other" loop with its kind and sizes, never dropped silently. A loop whose strand is not
covalently continuous in the model (an unmodelled residue, a chain break: O3'-P longer
than RNApolis's covalent cut-off, or two chains) makes no row either: it is returned as
broken, with the reason.

Residue order is the model's (RNApolis numbers the nucleotides of all chains in file
order); only the first model of a file is annotated, as everywhere in this package.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnamotif_data.common.extras import require
from rnamotif_data.errors import AnnotationError, MissingFileError
from rnamotif_data.rna.motifs import FINE_TYPES
from rnamotif_data.rna.pairs import loop_type as fine_type_of
from rnamotif_data.rna.structure import ResidueId, format_residues

log = logging.getLogger(__name__)

__all__ = ["Loop", "Annotation", "loops_from_pairs", "loop_type", "annotate_model", "rnapolis_mapping",
           "rnapolis_partners"]

_FINE = frozenset(FINE_TYPES)


@dataclass(frozen=True)
class Loop:
    """One loop of the nested secondary structure.

    Attributes
    ----------
    kind:
        ``hairpin``, ``bulge``, ``internal`` or ``junction``.
    sizes:
        Unpaired nucleotides on each strand, strands in model order.
    strands:
        Per strand, the indices (0-based positions in the annotated nucleotide order) of
        its nucleotides, closing pairs included, in model order.
    motif_type:
        The fine type (``hairpin5``, ``bulge1``, ``2x3``...) or None outside the 25 types.
    broken:
        Why a strand is not covalently continuous (None if it is).
    """

    kind: str
    sizes: tuple[int, ...]
    strands: tuple[tuple[int, ...], ...]
    motif_type: str | None
    broken: str | None = None


def loop_type(kind: str, sizes: tuple[int, ...]) -> str | None:
    """Fine type of a loop (:mod:`rnamotif_data.rna.motifs`), or None outside the 25 types
    (the name itself from :func:`rnamotif_data.rna.pairs.loop_type`)."""
    if kind not in ("hairpin", "bulge", "internal"):
        return None
    name = fine_type_of(tuple(sizes))
    return name if name in _FINE else None


def loops_from_pairs(pair: list[int]) -> list[Loop]:
    """Loops closed by the pairs of a nested secondary structure.

    Parameters
    ----------
    pair:
        ``pair[i]`` is the 0-based partner of nucleotide ``i``, or -1 if unpaired; the
        pairs must be nested (no pseudoknot) and symmetric.

    Returns
    -------
    Loops in the order of their closing pair's first nucleotide (stacked pairs give no
    loop). ``broken`` is not set here (see :func:`annotate_model`).

    Raises
    ------
    AnnotationError
        If the pairing is not symmetric or not nested.
    """
    n = len(pair)
    for i, j in enumerate(pair):
        if j >= 0 and (j >= n or pair[j] != i or j == i):
            raise AnnotationError(f"pair table is not symmetric at {i} <-> {j}")
    loops = []
    for i in range(n):
        j = pair[i]
        if j <= i:
            continue
        inner, k = [], i + 1
        while k < j:
            if pair[k] > k:
                if pair[k] > j:
                    raise AnnotationError(f"pairs {i}-{j} and {k}-{pair[k]} cross: remove pseudoknots first")
                inner.append((k, pair[k]))
                k = pair[k] + 1
            elif pair[k] >= 0:
                raise AnnotationError(f"pairs {i}-{j} and {pair[k]}-{k} cross: remove pseudoknots first")
            else:
                k += 1
        if not inner:
            strands: tuple[tuple[int, ...], ...] = (tuple(range(i, j + 1)),)
            loops.append(Loop("hairpin", (j - i - 1,), strands, loop_type("hairpin", (j - i - 1,))))
            continue
        bounds = [i] + [x for p, q in inner for x in (p, q)] + [j]
        strands = tuple(tuple(range(bounds[2 * s], bounds[2 * s + 1] + 1)) for s in range(len(inner) + 1))
        sizes = tuple(len(s) - 2 for s in strands)
        if len(inner) == 1:
            if sizes == (0, 0):
                continue  # a stacked pair inside a helix
            kind = "bulge" if 0 in sizes else "internal"
        else:
            kind = "junction"
        loops.append(Loop(kind, sizes, strands, loop_type(kind, sizes)))
    return loops


@dataclass
class Annotation:
    """The motifs of one model.

    Attributes
    ----------
    path, pdb_id:
        The model file and its entry.
    annotator:
        ``"RNApolis Annotator <version>"``.
    residues:
        Annotated nucleotides in model order (``None`` where RNApolis marks an
        unmodelled gap).
    loops:
        Every loop of the nested structure (:class:`Loop`), broken ones included.
    n_pairs, n_pseudoknot_pairs:
        Canonical pairs, and those removed as pseudoknots.
    """

    path: str
    pdb_id: str
    annotator: str
    residues: list[ResidueId | None]
    loops: list[Loop] = field(default_factory=list)
    n_pairs: int = 0
    n_pseudoknot_pairs: int = 0

    def residue_ids(self, loop: Loop) -> list[ResidueId]:
        """The loop's residues (closing pairs included) in model order; unmodelled
        positions of a broken loop are left out."""
        return [r for s in loop.strands for k in s if (r := self.residues[k]) is not None]

    def selection(self, loop: Loop) -> str:
        """The loop's residues as a selection string (``A:24-30,510-516``)."""
        return format_residues(self.residue_ids(loop))


def annotator_version() -> str:
    """``RNApolis Annotator <version>``; raises :class:`AnnotationError` if not installed."""
    try:
        from importlib.metadata import version

        return f"RNApolis Annotator {version('rnapolis')}"
    except Exception:  # noqa: BLE001 - PackageNotFoundError and broken installs alike
        raise AnnotationError("motif annotation needs RNApolis: pip install rnapolis "
                              "(or pip install 'rnamotif-data[annotate]')") from None


def rnapolis_mapping(path: Path):
    """RNApolis's secondary-structure mapping of the first model of a PDB/mmCIF file (gzip
    allowed): ``mapping.bpseq`` (pairs, pseudoknots included) and
    ``mapping.bpseq_index_to_residue_map``.

    Raises
    ------
    AnnotationError
        If RNApolis is missing or the file has no nucleotides; RNApolis's own errors pass.
    """
    require("rnapolis", "base-pair annotation")
    from rnapolis.annotator import extract_base_interactions
    from rnapolis.parser import read_3d_structure

    with tempfile.TemporaryDirectory() as tmp:
        plain = path
        if path.read_bytes()[:2] == b"\x1f\x8b":  # RNApolis's mmCIF reader opens the file by name
            plain = Path(tmp) / path.name.removesuffix(".gz")
            plain.write_bytes(gzip.decompress(path.read_bytes()))
        with open(plain, encoding="utf-8", errors="replace") as fh:
            s3 = read_3d_structure(fh, None, nucleic_acid_only=True)  # None: the first model
    if not s3.residues:
        raise AnnotationError(f"{path}: no nucleotides for RNApolis to annotate")
    _, mapping = s3.extract_secondary_structure(extract_base_interactions(s3), True)
    return mapping


def rnapolis_partners(path: str | os.PathLike, model) -> np.ndarray:
    """``(R,)`` int64: each residue of ``model`` (read from ``path``) paired by RNApolis's
    canonical base pairs (Watson-Crick and G·U cWW of its secondary structure, pseudoknots
    included; Zok et al. 2018, doi:10.3390/genes9060281), -1 if none: the same form as
    :func:`rnamotif_data.rna.pairs.watson_crick_partners`. Residues are matched by chain,
    number and insertion code.

    Raises
    ------
    AnnotationError
        If RNApolis is missing or the file has no nucleotides.
    """
    mapping = rnapolis_mapping(Path(path))
    index = {(r.chain, r.seq_num, r.icode): i for i, r in enumerate(model.atoms.residues)}
    partner = np.full(len(model.atoms.residues), -1, dtype=np.int64)
    for e in mapping.bpseq.entries:
        if e.pair > e.index_:
            a, b = mapping.bpseq_index_to_residue_map[e.index_], mapping.bpseq_index_to_residue_map[e.pair]
            ia = index.get((a.auth.chain, int(a.auth.number), (a.auth.icode or "").strip()))
            ib = index.get((b.auth.chain, int(b.auth.number), (b.auth.icode or "").strip()))
            if ia is not None and ib is not None:
                partner[ia], partner[ib] = ib, ia
    return partner


def annotate_model(path: str | os.PathLike, pdb_id: str | None = None) -> Annotation:
    """Annotate the loops of the first model of a PDB/mmCIF file (gzip allowed).

    Parameters
    ----------
    path:
        Model file.
    pdb_id:
        Entry name for the rows (default: the file name's stem).

    Returns
    -------
    Annotation

    Raises
    ------
    MissingFileError
        If the file does not exist.
    AnnotationError
        If RNApolis is missing, cannot read the file, or finds no nucleotide.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such model file")
    name = annotator_version()
    require("rnapolis", "base-pair annotation")  # a missing extra is said as such, not as a parse failure
    try:
        mapping = rnapolis_mapping(path)
    except AnnotationError:
        raise
    except Exception as exc:  # noqa: BLE001 - a third-party parser: name the file
        raise AnnotationError(f"{path}: RNApolis could not annotate the model ({type(exc).__name__}: {exc})") from None
    bpseq = mapping.bpseq
    index_map = mapping.bpseq_index_to_residue_map
    entries = bpseq.entries
    nested = {e.index_: e.pair for e in bpseq.without_pseudoknots().entries}
    residues: list[ResidueId | None] = []
    res3d = []
    for e in entries:
        r = index_map.get(e.index_)
        res3d.append(r)
        residues.append(None if r is None else ResidueId(r.auth.chain, int(r.auth.number), (r.auth.icode or "").strip()))
    pair = [nested.get(e.index_, 0) - 1 for e in entries]
    n_all = sum(1 for e in entries if e.pair > e.index_)
    ann = Annotation(path=str(path), pdb_id=pdb_id or path.name.split(".")[0].upper(), annotator=name,
                     residues=residues, n_pairs=n_all, n_pseudoknot_pairs=n_all - sum(1 for p in pair if p >= 0) // 2)
    for loop in loops_from_pairs(pair):
        ann.loops.append(_with_continuity(loop, res3d, residues))
    return ann


def _with_continuity(loop: Loop, res3d, residues) -> Loop:
    """The loop with ``broken`` set if a strand has a gap, a chain change or a long O3'-P."""
    for strand in loop.strands:
        for a, b in zip(strand, strand[1:]):
            ra, rb = res3d[a], res3d[b]
            if ra is None or rb is None:
                where = residues[a] or residues[b]
                return Loop(loop.kind, loop.sizes, loop.strands, loop.motif_type,
                            f"unmodelled residues next to {where}")
            if residues[a].chain != residues[b].chain:
                return Loop(loop.kind, loop.sizes, loop.strands, loop.motif_type,
                            f"strand crosses chains {residues[a]} -> {residues[b]}")
            if not ra.is_connected(rb):
                return Loop(loop.kind, loop.sizes, loop.strands, loop.motif_type,
                            f"no covalent O3'-P link between {residues[a]} and {residues[b]}")
    return loop
