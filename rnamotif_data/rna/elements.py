"""Every residue's secondary-structure element: stem, hairpin, bulge, internal loop,
multi-way junction, single strand; protein; other.

Where :mod:`rnamotif_data.rna.annotate` lists the motifs of a model (rows for a
manifest), this module labels **every residue** of every chain of a model with one
element, and every loop with an *instance* (its id, element, fine type and residues), so
that a voxel labelled from a residue (:mod:`rnamotif_data.samples.volumes`) can be traced
to the motif row a manifest would give for that loop.

Element ids (:data:`ELEMENT_NAMES`)
-----------------------------------
====  =============  ==========================================================
id    element        residues
====  =============  ==========================================================
0     none           (no residue; the background of a label volume)
1     stem           paired nucleotides (nested canonical pairs), closing pairs
                     of every loop included
2     hairpin        unpaired nucleotides of a loop closed by one pair
3     bulge          unpaired nucleotides of a two-strand loop with one side empty
4     internal       unpaired nucleotides of a two-strand loop, both sides unpaired
5     junction       unpaired nucleotides of a loop closed by three or more pairs
                     (a multi-way junction: one closing pair and two or more inner)
6     single_strand  unpaired nucleotides outside every closing pair (5′ and 3′
                     ends, linkers between the helices of the exterior loop), and
                     those of a loop that is open (a strand crosses two chains)
7     protein        amino-acid residues (gemmi's residue tables)
8     other          every other residue: ligands, ions, water, unknown residues
====  =============  ==========================================================

Conventions
-----------
* **Base pairs** are the build's (``rnamotif build --pairs``): ``"geometric"`` (default),
  the Watson-Crick N1-N3 rule with G·U wobbles of
  :func:`rnamotif_data.rna.pairs.watson_crick_partners`; ``"rnapolis"``, the canonical
  pairs of RNApolis Annotator's secondary structure
  (:func:`rnamotif_data.rna.annotate.rnapolis_mapping`, the loops ``rnamotif annotate``
  lists). A partner table can also be given directly (the build's cached one).
* **Pseudoknots** are removed before loops are read, as ``annotate`` does. With
  ``"rnapolis"``: RNApolis's own pseudoknot order (the pairs of its dot-bracket's first
  bracket level are kept), exactly as :func:`~rnamotif_data.rna.annotate.annotate_model`.
  Otherwise (:func:`remove_pseudoknots`): pairs are grouped into stems (runs of stacked
  pairs i-j, i+1-j-1); stems are kept longest first (ties: the stem starting first in
  model order), a stem is dropped if one of its pairs crosses a kept pair. Removed pairs
  are **unpaired** for the elements: their nucleotides take the element of the loop they
  sit in (a kissing-loop nucleotide is hairpin).
* **Loops** are read by :func:`rnamotif_data.rna.annotate.loops_from_pairs` over the
  model's nucleotides in model order (chains in file order, as RNApolis numbers them):
  a loop's *closing pairs* (the pair that closes it and the inner pairs it closes)
  belong to the **stem**; only its unpaired nucleotides carry the loop's element and
  instance id. So no nucleotide belongs to two instances (a pair closing a hairpin and
  the internal loop outside it is stem), and an instance's ``selection`` (closing pairs
  included, as ``annotate`` writes it) is the motif row's.
* **Fine types** are those of the cube dataset (:data:`rnamotif_data.rna.motifs.FINE_TYPES`:
  ``hairpin4``, ``bulge1``, ``2x3`` ...), None for a loop outside the 25 types
  (``hairpin9``, a junction) and for a broken loop.
* **Modified residues** are nucleotides (gemmi's tables, or C1′ and a phosphate/O3′) and
  pair as their parent (:mod:`rnamotif_data.rna.modified`): ``PSU`` pairs like U.
* **Unmodelled gaps**: consecutive nucleotides of one chain are linked when O3′-P <
  2.4 Å (RNApolis's covalent cut-off, 1.5 × 1.6 Å). A loop with an unlinked step inside
  a strand (unmodelled residues, a chain break) keeps its element -- its nucleotides are
  still unpaired in that loop -- but its instance is ``broken`` (the reason, as
  ``annotate`` gives it) and has no fine type, since its size is unknown (``annotate``
  makes no row of it either). A loop with a strand running from one chain into the next
  is *open*: its unpaired nucleotides are single strand and it is no instance.
* Only the first model of a file is read, hydrogens removed (:func:`read_model`).

Sources: the loop decomposition of nested secondary structure (hairpin, bulge, internal,
multi-branch and exterior loops) is the nearest-neighbour model's (Zuker & Sankoff 1984,
Bull. Math. Biol. 46:591, doi:10.1016/S0092-8240(84)80062-2); RNApolis Annotator: Zok et
al. 2018, Genes 9:281, doi:10.3390/genes9060281.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import gemmi
import numpy as np

from rnamotif_data.errors import ConfigError, InputError
from rnamotif_data.rna.annotate import Loop, loops_from_pairs, rnapolis_mapping
from rnamotif_data.rna.pairs import residue_atom_xyz, watson_crick_partners
from rnamotif_data.rna.structure import Model, format_residues

log = logging.getLogger(__name__)

__all__ = ["ELEMENT_NAMES", "ELEMENT_IDS", "PAIR_READERS", "LINK_CUTOFF", "LoopInstance", "ElementAssignment",
           "assign_elements", "elements_from_pairs", "remove_pseudoknots", "nucleotide_links", "residue_classes"]

#: Element names by id (the values of an element label volume).
ELEMENT_NAMES: tuple[str, ...] = ("none", "stem", "hairpin", "bulge", "internal", "junction", "single_strand",
                                  "protein", "other")
#: Element id of each name.
ELEMENT_IDS: dict[str, int] = {name: i for i, name in enumerate(ELEMENT_NAMES)}
#: The base-pair readers (the build's ``--pairs``).
PAIR_READERS = ("geometric", "rnapolis")
#: Å: consecutive nucleotides of a chain are linked when O3'-P is shorter (RNApolis's rule)
LINK_CUTOFF = 2.4

#: link codes between consecutive nucleotides (model order)
LINKED, GAP, CHAIN = 0, 1, 2
_WATER = frozenset({"HOH", "WAT", "DOD", "H2O"})


@dataclass(frozen=True)
class LoopInstance:
    """One loop of a model's nested secondary structure.

    Attributes
    ----------
    id:
        Instance id, 1-based in the order of the loops' closing pairs (0 means "no
        instance" in the label arrays).
    element:
        Element id (:data:`ELEMENT_IDS`: 2 hairpin, 3 bulge, 4 internal, 5 junction).
    kind:
        ``hairpin``, ``bulge``, ``internal`` or ``junction``.
    fine_type:
        The cube dataset's fine type (``hairpin4``, ``bulge1``, ``2x3``), None outside the
        25 types or for a broken loop.
    sizes:
        Unpaired nucleotides per strand, strands in model order (modelled ones only).
    strands:
        Per strand, the residue indices (into ``model.atoms.residues``) of its
        nucleotides, closing pairs included, in model order.
    residues:
        The unpaired residues (indices into ``model.atoms.residues``): those that carry the
        element and the instance id.
    selection:
        The strands as a selection string (``A:24-30,510-516``), as a manifest row.
    broken:
        Why a strand is not covalently continuous (None if it is).
    """

    id: int
    element: int
    kind: str
    fine_type: str | None
    sizes: tuple[int, ...]
    strands: tuple[tuple[int, ...], ...]
    residues: tuple[int, ...]
    selection: str
    broken: str | None = None


@dataclass(frozen=True, eq=False)
class ElementAssignment:
    """The element of every residue of a model (:func:`assign_elements`).

    Attributes
    ----------
    element:
        ``(R,)`` uint8 element id of each residue of ``model.atoms.residues``
        (:data:`ELEMENT_NAMES`).
    instance:
        ``(R,)`` uint32 loop instance id of each residue (0: none; stems, single
        strands, protein and other residues have none).
    partner:
        ``(R,)`` int64 the nested pairs the loops were read from (residue index of the
        partner, -1 unpaired); pseudoknot pairs removed.
    n_pseudoknot_pairs:
        Pairs removed as pseudoknots.
    instances:
        The loops, ``instances[k].id == k + 1``.
    pairs:
        The base-pair reader (:data:`PAIR_READERS`) or ``"given"``.
    """

    element: np.ndarray
    instance: np.ndarray
    partner: np.ndarray
    n_pseudoknot_pairs: int
    instances: tuple[LoopInstance, ...]
    pairs: str

    def instance_rows(self) -> list[dict]:
        """One dict per instance (a table's rows): ``instance`` id, ``element`` name,
        ``kind``, ``motif_type`` (fine type or None), ``sizes``, ``selection`` (closing
        pairs included), ``n_unpaired`` and ``broken`` (None or the reason)."""
        return [dict(instance=i.id, element=ELEMENT_NAMES[i.element], kind=i.kind, motif_type=i.fine_type,
                     sizes=list(i.sizes), selection=i.selection, n_unpaired=len(i.residues), broken=i.broken)
                for i in self.instances]

    def counts(self) -> dict[str, int]:
        """Residues per element name (every name, zeros included)."""
        n = np.bincount(self.element, minlength=len(ELEMENT_NAMES))
        return {name: int(n[i]) for i, name in enumerate(ELEMENT_NAMES)}


def assign_elements(model: Model, pairs: str = "geometric", *, partner: np.ndarray | None = None) -> ElementAssignment:
    """Element and loop instance of every residue of ``model`` (module docstring).

    Parameters
    ----------
    model:
        The model (:func:`rnamotif_data.rna.structure.read_model`).
    pairs:
        ``"geometric"`` (the build's default) or ``"rnapolis"`` (RNApolis Annotator, the
        ``[annotate]`` extra; reads ``model.path``).
    partner:
        ``(R,)`` partners already read (pseudoknots included, -1 unpaired), e.g. the
        build's per-model cache; then ``pairs`` only names them, and pseudoknots are
        removed by :func:`remove_pseudoknots`.

    Returns
    -------
    ElementAssignment

    Raises
    ------
    ConfigError
        For an unknown ``pairs``.
    AnnotationError
        With ``"rnapolis"``: RNApolis missing or unable to read the file.
    """
    if pairs not in PAIR_READERS:
        raise ConfigError(f"pairs must be one of {PAIR_READERS}, got {pairs!r}")
    atoms = model.atoms
    nt = np.flatnonzero(atoms.nucleotide_residues)
    how = pairs if partner is None else "given"
    if partner is None and pairs == "rnapolis":
        nested, n_pk = _rnapolis_nested(model)
    else:
        if partner is None:
            partner = watson_crick_partners(atoms, atoms.nucleotide_residues, wobble=True)
        nested, n_pk = remove_pseudoknots(np.asarray(partner, dtype=np.int64))
    position = np.full(len(atoms.residues), -1, dtype=np.int64)
    position[nt] = np.arange(len(nt))
    table = np.where(nested[nt] >= 0, position[np.maximum(nested[nt], 0)], -1)
    element = residue_classes(model)
    instance = np.zeros(len(atoms.residues), dtype=np.uint32)
    nt_element, nt_instance, loops = elements_from_pairs(table, nucleotide_links(model, nt))
    element[nt] = nt_element
    instance[nt] = nt_instance
    instances = tuple(_instance(k + 1, loop, nt, model) for k, loop in enumerate(loops))
    log.debug("%s: %d loops, %d pseudoknot pairs removed", model.name, len(instances), n_pk)
    return ElementAssignment(element=element, instance=instance, partner=nested, n_pseudoknot_pairs=n_pk,
                             instances=instances, pairs=how)


def elements_from_pairs(pair: np.ndarray, links: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Loop]]:
    """Elements of nucleotides ``0 .. n-1`` in model order, from a nested pair table.

    Parameters
    ----------
    pair:
        ``(n,)`` 0-based partner of each nucleotide, -1 unpaired; nested (no pseudoknot).
    links:
        ``(n - 1,)`` how nucleotide ``k`` is followed by ``k + 1``: 0 linked, 1 a gap in a
        chain (no O3'-P link), 2 the next chain (:func:`nucleotide_links`).

    Returns
    -------
    element:
        ``(n,)`` uint8 element ids (1 stem ... 6 single strand).
    instance:
        ``(n,)`` uint32 instance ids, 0 none.
    loops:
        The instances' loops, instance ``k + 1`` is ``loops[k]``
        (:class:`~rnamotif_data.rna.annotate.Loop`, ``broken`` set for gaps; loops open
        across chains are left out).

    Raises
    ------
    ValueError
        If the table is not symmetric or not nested (from
        :func:`~rnamotif_data.rna.annotate.loops_from_pairs`).
    InputError
        If ``links`` has the wrong length.
    """
    pair = np.asarray(pair, dtype=np.int64)
    n = len(pair)
    links = np.asarray(links)
    if links.shape != (max(n - 1, 0),):
        raise InputError(f"links must have {max(n - 1, 0)} entries (one per step), got {links.shape}")
    element = np.where(pair >= 0, ELEMENT_IDS["stem"], ELEMENT_IDS["single_strand"]).astype(np.uint8)
    instance = np.zeros(n, dtype=np.uint32)
    kept: list[Loop] = []
    for loop in loops_from_pairs(pair.tolist()):
        steps = np.concatenate([np.asarray(s[:-1], dtype=np.int64) for s in loop.strands])
        codes = links[steps] if steps.size else np.zeros(0, dtype=links.dtype)
        unpaired = np.concatenate([np.asarray(s[1:-1], dtype=np.int64) for s in loop.strands])
        if np.any(codes == CHAIN):
            continue  # open: its unpaired nucleotides stay single strand
        if np.any(codes == GAP):
            where = int(steps[np.flatnonzero(codes == GAP)[0]])
            loop = Loop(loop.kind, loop.sizes, loop.strands, None,
                        f"no covalent O3'-P link between nucleotides {where} and {where + 1}")
        kept.append(loop)
        element[unpaired] = ELEMENT_IDS[loop.kind]
        instance[unpaired] = len(kept)
    return element, instance, kept


def remove_pseudoknots(partner: np.ndarray) -> tuple[np.ndarray, int]:
    """The nested part of a pair table and the number of pairs removed.

    Stems (runs of stacked pairs i-j, i+1-(j-1)) are kept longest first, ties by the
    stem's first position; a stem with a pair crossing a kept pair is removed whole.

    Parameters
    ----------
    partner:
        ``(R,)`` int64 partner index, -1 unpaired (symmetric).

    Returns
    -------
    ``((R,) int64 nested partners, removed pair count)``.
    """
    partner = np.asarray(partner, dtype=np.int64)
    first = np.flatnonzero(partner > np.arange(len(partner)))
    stems: list[list[int]] = []
    for a in first.tolist():  # ascending: a pair stacks on the stem of (a - 1, partner + 1)
        if stems and stems[-1][-1] == a - 1 and partner[a - 1] == partner[a] + 1:
            stems[-1].append(a)
        else:
            stems.append([a])
    nested = np.full(len(partner), -1, dtype=np.int64)
    removed = 0
    for stem in sorted(stems, key=lambda s: (-len(s), s[0])):
        i, j = stem[0], int(partner[stem[0]])
        inside = nested[i + 1:j]  # a crossing pair has one end inside the outermost pair
        if np.any((inside >= 0) & ((inside < i) | (inside > j))):
            removed += len(stem)
            continue
        for a in stem:
            nested[a], nested[partner[a]] = partner[a], a
    return nested, removed


def nucleotide_links(model: Model, nt: np.ndarray) -> np.ndarray:
    """``(n - 1,)`` int8 link codes between consecutive nucleotides ``nt`` (residue
    indices in model order): 0 linked (same chain, O3'-P < :data:`LINK_CUTOFF`), 1 a gap
    (same chain, no such link: unmodelled residues or a break), 2 the next chain."""
    atoms = model.atoms
    if len(nt) < 2:
        return np.zeros(0, dtype=np.int8)
    o3, p = residue_atom_xyz(atoms, "O3'")[nt[:-1]], residue_atom_xyz(atoms, "P")[nt[1:]]
    with np.errstate(invalid="ignore"):
        linked = np.linalg.norm(o3 - p, axis=1) < LINK_CUTOFF  # NaN (missing atom) -> False
    chains = np.asarray([atoms.residues[i].chain for i in nt])
    codes = np.where(linked, LINKED, GAP).astype(np.int8)
    codes[chains[:-1] != chains[1:]] = CHAIN
    return codes


def residue_classes(model: Model) -> np.ndarray:
    """``(R,)`` uint8: 6 (single strand) for nucleotides, 7 protein, 8 other -- the
    elements before pairs are read."""
    atoms = model.atoms
    out = np.array([ELEMENT_IDS["protein"] if _is_amino_acid(n) else ELEMENT_IDS["other"]
                    for n in atoms.residue_names], dtype=np.uint8)
    out[atoms.nucleotide_residues] = ELEMENT_IDS["single_strand"]
    return out


@lru_cache(maxsize=None)
def _is_amino_acid(name: str) -> bool:
    if name.strip().upper() in _WATER:
        return False
    info = gemmi.find_tabulated_residue(name)
    return bool(info is not None and info.found() and info.is_amino_acid())


def _rnapolis_nested(model: Model) -> tuple[np.ndarray, int]:
    """RNApolis's nested canonical pairs (its pseudoknot order, as ``annotate``) on the
    model's residues, and the number of pseudoknot pairs it removed."""
    mapping = rnapolis_mapping(Path(os.fspath(model.path)))
    index = {(r.chain, r.seq_num, r.icode): i for i, r in reversed(list(enumerate(model.atoms.residues)))}
    res = mapping.bpseq_index_to_residue_map

    def at(k: int) -> int | None:
        r = res.get(k)
        return None if r is None else index.get((r.auth.chain, int(r.auth.number), (r.auth.icode or "").strip()))

    nested = np.full(len(model.atoms.residues), -1, dtype=np.int64)
    n_all = sum(1 for e in mapping.bpseq.entries if e.pair > e.index_)
    n_nested = 0
    for e in mapping.bpseq.without_pseudoknots().entries:
        if e.pair > e.index_:
            n_nested += 1
            a, b = at(e.index_), at(e.pair)
            if a is not None and b is not None:
                nested[a], nested[b] = b, a
    return nested, n_all - n_nested


def _instance(k: int, loop: Loop, nt: np.ndarray, model: Model) -> LoopInstance:
    strands = tuple(tuple(int(nt[i]) for i in s) for s in loop.strands)
    unpaired = tuple(r for s in strands for r in s[1:-1])
    residues = [model.atoms.residues[r] for s in strands for r in s]
    broken = loop.broken
    if broken:  # name the residues: no covalent O3'-P link between A:41 and A:63
        a = int(broken.split()[-3])
        broken = (f"no covalent O3'-P link between {model.atoms.residues[nt[a]]} and "
                  f"{model.atoms.residues[nt[a + 1]]} (unmodelled residues or a chain break)")
    return LoopInstance(id=k, element=ELEMENT_IDS[loop.kind], kind=loop.kind,
                        fine_type=None if loop.broken else loop.motif_type, sizes=loop.sizes, strands=strands,
                        residues=unpaired, selection=format_residues(residues), broken=broken)
