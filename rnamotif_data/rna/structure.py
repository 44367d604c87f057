"""Atomic models: reading mmCIF/PDB with gemmi, residue selections, atom tables.

* Only the first model of a file is used.
* Hydrogens (H and D) are removed on reading and ignored everywhere.
* Alternate locations: for each atom, the first conformer listed in the file is kept
  (gemmi's ``Structure.remove_alternative_conformations``); for most deposited models this
  is altloc ``A``. Occupancies are not used to choose.
* Residue identity follows the author numbering (``auth_asym_id``, ``auth_seq_id``,
  ``pdbx_PDB_ins_code``), as in PDB-format files and the upstream selections.

Selection syntax (the upstream CLI syntax, design §5)
-------------------------------------------------------------
``CHAIN:SPEC[,SPEC...]`` with several chain groups separated by whitespace, where ``SPEC``
is a residue ``85`` / ``189K`` (number plus optional insertion code) or an inclusive range
``85-91`` / ``189K-192``. Examples: ``J:85-91``, ``A:1490-1495,1424-1429``,
``A:10-12 B:40-42``. Negative residue numbers are written as ``-3`` (range ``-3--1``).
A range runs over residues in the order they appear in the model's chain, from the
residue matching its start to the residue matching its end, so insertion codes inside
the range are included without guessing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import gemmi
import numpy as np

from rnamotif_data.errors import MissingFileError, SelectionError, SelectionSyntaxError, StructureError
from rnamotif_data.rna.labels import NUCLEOTIDE_IDS, residue_parts, standard_part
from rnamotif_data.rna.modified import parent_letter, parents_from_structure

log = logging.getLogger(__name__)

__all__ = [
    "ResidueId",
    "ResidueRange",
    "Selection",
    "parse_selection",
    "format_residues",
    "coordinates_hash",
    "Model",
    "AtomTable",
    "read_model",
]


@dataclass(frozen=True, order=True)
class ResidueId:
    """A residue of a model: chain id, author residue number and insertion code."""

    chain: str
    seq_num: int
    icode: str = ""

    def __str__(self) -> str:
        return f"{self.chain}:{self.seq_num}{self.icode}"

    def matches(self, chain: str, seq_num: int, icode: str) -> bool:
        """True if this id names the residue (chain, seq_num, icode)."""
        return self.chain == chain and self.seq_num == seq_num and self.icode == icode


@dataclass(frozen=True)
class ResidueRange:
    """One item of a selection: a single residue (``end is None``) or an inclusive range."""

    start: ResidueId
    end: ResidueId | None = None

    def __str__(self) -> str:
        if self.end is None:
            return str(self.start)
        return f"{self.start}-{self.end.seq_num}{self.end.icode}"


@dataclass(frozen=True)
class Selection:
    """A parsed residue selection; ``text`` is the normalised selection string."""

    text: str
    items: tuple[ResidueRange, ...]

    def __str__(self) -> str:
        return self.text


_SPEC = re.compile(r"^(-?\d+)([A-Za-z]?)(?:-(-?\d+)([A-Za-z]?))?$")
_CHAIN = re.compile(r"^[A-Za-z0-9_]{1,4}$")


def parse_selection(text: str | list[str] | tuple[str, ...]) -> Selection:
    """Parse a selection in the upstream syntax into residue ranges.

    Parameters
    ----------
    text:
        A selection string (``"J:85-91"``, ``"A:1490-1495,1424-1429"``,
        ``"A:189K-192 B:5"``) or a list of chain groups (as given on a command line).

    Returns
    -------
    Selection
        Items in the order written; ``text`` is the groups joined by single spaces.

    Raises
    ------
    SelectionSyntaxError
        If a group is not ``CHAIN:SPEC[,SPEC...]`` or a residue spec is malformed; the
        message quotes the offending part and gives an example.
    """
    if isinstance(text, (list, tuple)):
        text = " ".join(text)
    groups = text.split()
    if not groups:
        raise SelectionSyntaxError("empty selection; expected CHAIN:RESIDUES such as J:85-91")
    items: list[ResidueRange] = []
    for group in groups:
        chain, sep, specs = group.partition(":")
        if not sep or not _CHAIN.match(chain) or not specs:
            raise SelectionSyntaxError(
                f"bad selection {group!r} in {text!r}: expected CHAIN:RESIDUES such as "
                "J:85-91 or A:1490-1495,1424-1429"
            )
        for spec in specs.split(","):
            m = _SPEC.match(spec)
            if not m:
                raise SelectionSyntaxError(
                    f"bad residue spec {spec!r} in selection {text!r}: expected a residue "
                    "number with optional insertion code (189K) or a range (85-91, 189K-192)"
                )
            start = ResidueId(chain, int(m.group(1)), m.group(2))
            end = ResidueId(chain, int(m.group(3)), m.group(4)) if m.group(3) else None
            items.append(ResidueRange(start, end))
    return Selection(" ".join(groups), tuple(items))


@dataclass(frozen=True, eq=False)
class AtomTable:
    """Heavy atoms of a set of residues, as parallel arrays (one row per atom).

    Attributes
    ----------
    xyz:
        ``(N, 3)`` float64 Cartesian coordinates in Å, x-y-z, model frame.
    element:
        ``(N,)`` element symbols (str).
    atom_name:
        ``(N,)`` atom names (``"C1'"``; legacy ``*`` replaced by ``'``).
    residue_index:
        ``(N,)`` int32 index of each atom's residue in ``residues``.
    part:
        ``(N,)`` uint8 label part (0 none, 1 backbone, 2 sugar, 3 base; see
        :mod:`rnamotif_data.rna.labels`).
    nucleotide:
        ``(N,)`` uint8 nucleotide id (0 none, 1 A, 2 C, 3 G, 4 U, 5 other/modified).
    residues:
        ``(R,)`` residue ids, in table order.
    residue_names:
        ``(R,)`` residue names (``"G"``, ``"PSU"``, ...).
    b_iso:
        ``(N,)`` float64 isotropic B-factors in Å² as in the file, or None (tables made
        without a model file); used by CC_mask's model map.
    parents:
        ``(R,)`` parent nucleotide of each residue (``"A"``/``"C"``/``"G"``/``"U"`` or
        ``"N"``; :mod:`rnamotif_data.rna.modified`), or None: then gemmi's tables decide.
    """

    xyz: np.ndarray
    element: np.ndarray
    atom_name: np.ndarray
    residue_index: np.ndarray
    part: np.ndarray
    nucleotide: np.ndarray
    residues: tuple[ResidueId, ...]
    residue_names: tuple[str, ...]
    b_iso: np.ndarray | None = None
    parents: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    @property
    def residue_name(self) -> np.ndarray:
        """``(N,)`` residue name of each atom."""
        return np.asarray(self.residue_names)[self.residue_index]

    def residue_rows(self, residue_indices: np.ndarray | list[int]) -> np.ndarray:
        """Row indices of the atoms of the given residues, residues in the order given.

        Uses the table's residue spans, computed once per table (:attr:`residue_spans`), so
        a call costs O(atoms of the residues asked for), not O(atoms of the model).
        """
        residue_indices = np.asarray(residue_indices, dtype=np.int64)
        order, starts, stops = self.residue_spans
        if residue_indices.size == 0:
            return np.zeros(0, dtype=np.int64)
        a, b = starts[residue_indices], stops[residue_indices]
        n = b - a
        # concatenated aranges a[i]..b[i]: a running count with jumps at each residue's start
        flat = np.repeat(a - np.concatenate(([0], np.cumsum(n)[:-1])), n) + np.arange(int(n.sum()))
        return flat if order is None else order[flat]

    @cached_property
    def nucleotide_residues(self) -> np.ndarray:
        """``(R,)`` bool: the residues with at least one nucleotide atom."""
        out = np.zeros(len(self.residues), dtype=bool)
        out[np.asarray(self.residue_index)[self.nucleotide > 0]] = True
        return out

    @cached_property
    def residue_spans(self) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """``(order, starts, stops)``: the atoms of residue ``r`` are rows
        ``order[starts[r]:stops[r]]`` (``order`` None when the atoms are grouped by residue,
        as read: then rows ``starts[r]:stops[r]``). Arrays ``(R,)`` int64, R residues."""
        ri = np.asarray(self.residue_index, dtype=np.int64)
        every = np.arange(len(self.residues), dtype=np.int64)
        if ri.size == 0 or bool(np.all(ri[1:] >= ri[:-1])):
            return None, np.searchsorted(ri, every, side="left"), np.searchsorted(ri, every, side="right")
        order = np.argsort(ri, kind="stable")
        return order, np.searchsorted(ri[order], every, side="left"), np.searchsorted(ri[order], every, side="right")

    def take(self, rows: np.ndarray | list[int]) -> "AtomTable":
        """The given atom rows (indices into this table), residues table unchanged."""
        rows = np.asarray(rows, dtype=np.int64)
        return AtomTable(
            xyz=self.xyz[rows], element=self.element[rows], atom_name=self.atom_name[rows],
            residue_index=self.residue_index[rows], part=self.part[rows],
            nucleotide=self.nucleotide[rows], residues=self.residues, residue_names=self.residue_names,
            b_iso=None if self.b_iso is None else self.b_iso[rows], parents=self.parents,
        )

    def subset(self, residue_indices: np.ndarray | list[int]) -> "AtomTable":
        """Atoms of the given residues (indices into ``residues``), in the order given."""
        residue_indices = np.asarray(residue_indices, dtype=np.int64)
        rows = self.residue_rows(residue_indices)
        remap = np.full(len(self.residues), -1, dtype=np.int64)
        remap[residue_indices] = np.arange(len(residue_indices))
        return AtomTable(
            xyz=self.xyz[rows],
            element=self.element[rows],
            atom_name=self.atom_name[rows],
            residue_index=remap[self.residue_index[rows]].astype(np.int32),
            part=self.part[rows],
            nucleotide=self.nucleotide[rows],
            residues=tuple(self.residues[i] for i in residue_indices),
            residue_names=tuple(self.residue_names[i] for i in residue_indices),
            b_iso=None if self.b_iso is None else self.b_iso[rows],
            parents=None if self.parents is None else tuple(self.parents[i] for i in residue_indices),
        )

    def sequence(self, modified_as_parent: bool = True) -> str:
        """One-letter sequence of the residues in table order.

        Modified nucleotides are written as their parent (``PSU`` -> ``U``; from the model
        file, gemmi's tables or :data:`rnamotif_data.rna.modified.SHIPPED_PARENTS`) when
        ``modified_as_parent``, else as ``N``; residues without a parent ``N``.
        """
        parents = self.parents or tuple(parent_letter(n) for n in self.residue_names)
        if modified_as_parent:
            return "".join(parents)
        return "".join(n if n in ("A", "C", "G", "U") else "N" for n in self.residue_names)


@dataclass(frozen=True, eq=False)
class Model:
    """An atomic model: the first model of a PDB/mmCIF file, hydrogens removed.

    Attributes
    ----------
    name:
        Entry name (PDB ID where the file has one, else the file stem).
    path:
        The file it was read from.
    atoms:
        :class:`AtomTable` of every heavy atom of the model (all polymers and ligands).
    """

    name: str
    path: str
    atoms: AtomTable

    def chains(self) -> list[str]:
        """Chain ids in model order."""
        seen: dict[str, None] = {}
        for r in self.atoms.residues:
            seen.setdefault(r.chain, None)
        return list(seen)

    def resolve(self, selection: Selection | str, *, nucleotides_only: bool = True) -> np.ndarray:
        """Residue indices (into ``atoms.residues``) of a selection, in selection order.

        ``nucleotides_only=False`` also takes amino acids and other residues (a protein
        background site's ``residues``).

        Raises
        ------
        SelectionSyntaxError
            If ``selection`` is a string that does not parse.
        SelectionError
            If a chain or residue is not in the model, a range ends before it starts,
            a residue is selected twice, or a selected residue is not a nucleotide. The
            message names the entry, chain, residue and selection, e.g.
            ``6PJ6 chain J has no residue 92 (selection J:85-92)``.
        """
        if isinstance(selection, str):
            selection = parse_selection(selection)
        chosen: list[int] = []
        for item in selection.items:
            chain = item.start.chain
            if chain not in self.chain_index:
                raise SelectionError(
                    f"{self.name} has no chain {chain} (selection {selection}); chains: "
                    + " ".join(self.chains())
                )
            order, position = self.chain_index[chain]
            i0 = self._position(position, item.start, selection)
            i1 = i0 if item.end is None else self._position(position, item.end, selection)
            if i1 < i0:
                raise SelectionError(
                    f"{self.name} chain {chain}: range {item} ends before it starts in the "
                    f"model's residue order (selection {selection})"
                )
            chosen.extend(order[i0:i1 + 1])
        if len(set(chosen)) != len(chosen):
            dup = sorted({str(self.atoms.residues[i]) for i in chosen if chosen.count(i) > 1})
            raise SelectionError(
                f"{self.name}: residue(s) {', '.join(dup)} selected more than once "
                f"(selection {selection})"
            )
        for i in chosen if nucleotides_only else ():
            if not np.any(self.atoms.part[self.atoms.residue_rows([i])] > 0):
                raise SelectionError(
                    f"{self.name} residue {self.atoms.residues[i]} is "
                    f"{self.atoms.residue_names[i]}, not a nucleotide (selection {selection})"
                )
        return np.asarray(chosen, dtype=np.int64)

    def strands(self, residue_indices: np.ndarray | list[int]) -> list[list[int]]:
        """Split residues (indices into ``atoms.residues``) into strands: runs of residues
        that follow each other in their chain's model order. Strands are returned in model
        order (chain order, then position), each in model order.

        Whether consecutive residues are also covalently linked (an unmodelled gap keeps
        its neighbours adjacent in model order) is not checked here.
        """
        pos = self._model_positions
        keys = sorted(pos[int(i)] for i in residue_indices)
        runs: list[list[tuple[int, int]]] = []
        for key in keys:
            if runs and runs[-1][-1][0] == key[0] and runs[-1][-1][1] + 1 == key[1]:
                runs[-1].append(key)
            else:
                runs.append([key])
        chains = list(self.chain_index.values())
        return [[chains[c][0][k] for c, k in run] for run in runs]

    @cached_property
    def _model_positions(self) -> dict[int, tuple[int, int]]:
        """Residue index -> (chain rank, position in the chain's model order)."""
        pos = {}
        for chain_rank, (order, _) in enumerate(self.chain_index.values()):
            for k, i in enumerate(order):
                pos[i] = (chain_rank, k)
        return pos

    @cached_property
    def chain_index(self) -> dict[str, tuple[list[int], dict[ResidueId, int]]]:
        """Per chain ID: ``(residue indices into atoms.residues in model order, residue id ->
        its position in that order)``; a repeated residue id resolves to its first copy."""
        out: dict[str, tuple[list[int], dict[ResidueId, int]]] = {}
        for i, r in enumerate(self.atoms.residues):
            order, position = out.setdefault(r.chain, ([], {}))
            position.setdefault(r, len(order))  # a repeated id resolves to its first copy
            order.append(i)
        return out

    def _position(self, position: dict[ResidueId, int], rid: ResidueId, sel: Selection) -> int:
        try:
            return position[rid]
        except KeyError:
            raise SelectionError(
                f"{self.name} chain {rid.chain} has no residue {rid.seq_num}{rid.icode} "
                f"(selection {sel})"
            ) from None

    def select(self, selection: Selection | str) -> AtomTable:
        """Heavy atoms of a selection's residues, residues in selection order.

        Raises the same errors as :meth:`resolve`.
        """
        return self.atoms.subset(self.resolve(selection))


@lru_cache(maxsize=None)
def _atom_part(atom_name: str) -> int:
    """Part of a standard nucleotide atom name; 0 for a name no standard nucleotide has."""
    return standard_part(atom_name)


def read_model(path: str | os.PathLike, name: str | None = None) -> Model:
    """Read the first model of a PDB or mmCIF file (optionally gzipped) with gemmi.

    Parameters
    ----------
    path:
        ``.cif``, ``.mmcif``, ``.pdb``, ``.ent`` (``.gz`` allowed).
    name:
        Entry name for messages; defaults to the file's PDB ID, else its stem.

    Returns
    -------
    Model
        Heavy atoms only; first alternate conformer kept.

    Raises
    ------
    MissingFileError
        If the file does not exist.
    StructureError
        If gemmi cannot parse the file or it has no atoms.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such model file")
    try:
        block = None
        if path.name.lower().removesuffix(".gz").endswith((".cif", ".mmcif")):
            block = gemmi.cif.read(str(path)).sole_block()
            st = gemmi.make_structure_from_block(block)
            st.merge_chain_parts()
        else:
            st = gemmi.read_structure(str(path), merge_chain_parts=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise StructureError(f"{path}: cannot read model ({exc})") from None
    if len(st) == 0:
        raise StructureError(f"{path}: the file has no models")
    st.remove_hydrogens()
    st.remove_alternative_conformations()
    # PDB ID from _entry.id (mmCIF) or the HEADER idcode (PDB), else the file name
    entry = name or (st.info["_entry.id"] if "_entry.id" in st.info else "") or path.name.split(".")[0]
    file_parents = parents_from_structure(st, block)
    return Model(name=entry, path=str(path), atoms=_atom_table(st[0], str(path), file_parents))


def _atom_table(model: gemmi.Model, path: str, file_parents: dict[str, str] | None = None) -> AtomTable:
    xyz: list[tuple[float, float, float]] = []
    b_iso: list[float] = []
    element: list[str] = []
    atom_name: list[str] = []
    part: list[int] = []
    parents: list[str] = []
    residues: list[ResidueId] = []
    names: list[str] = []
    counts: list[int] = []  # heavy atoms per residue
    nids: list[int] = []  # nucleotide id per residue
    for chain in model:
        cname = chain.name
        for res in chain:
            seqid = res.seqid
            # gemmi's stubs: SeqId.num is None only for an unset id; a residue read from a file has one
            residues.append(ResidueId(cname, int(seqid.num), seqid.icode.strip()))  # type: ignore[arg-type]
            names.append(res.name)
            is_nuc = _is_nucleotide(res)
            parent = parent_letter(res.name, file_parents)
            parents.append(parent)
            nids.append(NUCLEOTIDE_IDS.get(parent, 5) if is_nuc else 0)
            start = len(atom_name)
            for atom in res:
                an = atom.name
                p = atom.pos
                xyz.append((p.x, p.y, p.z))
                b_iso.append(atom.b_iso)
                element.append(atom.element.name)
                atom_name.append(an.replace("*", "'") if "*" in an else an)
            counts.append(len(atom_name) - start)
            res_names = atom_name[start:]
            if not is_nuc:
                part.extend([0] * len(res_names))
            elif all(_atom_part(an) > 0 for an in res_names):
                part.extend(_atom_part(an) for an in res_names)
            else:  # non-standard atoms: the part of the atom they are bonded to
                part.extend(residue_parts(res_names, np.asarray(xyz[start:])).tolist())
    if not xyz:
        raise StructureError(f"{path}: the model has no heavy atoms")
    return AtomTable(
        xyz=np.asarray(xyz, dtype=np.float64),
        element=np.asarray(element),
        atom_name=np.asarray(atom_name),
        residue_index=np.repeat(np.arange(len(residues), dtype=np.int32), counts),
        part=np.asarray(part, dtype=np.uint8),
        nucleotide=np.repeat(np.asarray(nids, dtype=np.uint8), counts),
        residues=tuple(residues),
        residue_names=tuple(names),
        b_iso=np.asarray(b_iso, dtype=np.float64),
        parents=tuple(parents),
    )


def _is_nucleotide(res: gemmi.Residue) -> bool:
    """A residue is a nucleotide if gemmi's tables say so, or (for residues missing from
    the tables) if it has a C1' atom and a phosphate or O3' atom."""
    info = gemmi.find_tabulated_residue(res.name)
    if info is not None and info.found():
        return bool(info.is_nucleic_acid())
    names = {a.name.replace("*", "'") for a in res}
    return "C1'" in names and ("P" in names or "O3'" in names)


def coordinates_hash(atoms: AtomTable) -> str:
    """sha256 (first 16 hex) of the atoms' coordinates ``(N, 3)`` as stored (the store's
    ``model_hash``): one model fitted to several maps has one hash whatever its IDs."""
    return hashlib.sha256(np.ascontiguousarray(atoms.xyz).tobytes()).hexdigest()[:16]


def format_residues(residues: tuple[ResidueId, ...] | list[ResidueId]) -> str:
    """Write residues as a compact selection in the upstream syntax.

    Consecutive residues of one chain (in the order given, numbers increasing by one and
    no insertion codes in between) become a range: ``(J:85, J:86, J:87)`` -> ``"J:85-87"``;
    chains are separated by spaces and runs of one chain by commas, so the result parses
    back with :func:`parse_selection` to the same residues when they are contiguous in the
    model.
    """
    runs: list[tuple[ResidueId, ResidueId]] = []
    for r in residues:
        if runs:
            a, b = runs[-1]
            if r.chain == b.chain and not b.icode and not r.icode and r.seq_num == b.seq_num + 1:
                runs[-1] = (a, r)
                continue
        runs.append((r, r))
    groups: list[tuple[str, list[str]]] = []
    for a, b in runs:
        item = f"{a.seq_num}{a.icode}" if a == b else f"{a.seq_num}{a.icode}-{b.seq_num}{b.icode}"
        if groups and groups[-1][0] == a.chain:
            groups[-1][1].append(item)
        else:
            groups.append((a.chain, [item]))
    return " ".join(f"{c}:{','.join(items)}" for c, items in groups)
