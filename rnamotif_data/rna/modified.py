"""Parents of modified nucleotides (``PSU`` -> U, ``OMG`` -> G, ``5MC`` -> C).

A modified nucleotide is written, labelled and compared by its parent. The parent of a
residue name is taken, in this order, from

1. **the model file**: mmCIF ``_pdbx_struct_mod_residue.parent_comp_id`` and
   ``_chem_comp.mon_nstd_parent_comp_id``, PDB ``MODRES`` records (what the depositors
   and the wwPDB wrote for this entry);
2. **gemmi's residue tables** (the chemical components gemmi ships; the parent is the
   upper-cased one-letter code of a modified component);
3. **a small shipped table** (:data:`SHIPPED_PARENTS`) for modified nucleotides of the RNA
   3D Motif Atlas 4.5 that gemmi 0.7.5 has no parent for, from the wwPDB Chemical
   Component Dictionary (``mon_nstd_parent_comp_id``). Of the 44 such names in Atlas
   4.5, the 24 listed here were checked; the others are left out rather than guessed;

otherwise the residue has no parent and is written ``N`` (nucleotide id 5, "other").
"""

from __future__ import annotations

from functools import lru_cache

import gemmi

__all__ = ["SHIPPED_PARENTS", "parents_from_structure", "parent_letter", "sequence_matches"]

#: Modified nucleotide -> parent (wwPDB CCD ``mon_nstd_parent_comp_id``) for names gemmi
#: 0.7.5 has no parent for.
SHIPPED_PARENTS: dict[str, str] = {
    "5MC": "C",  # 5-methylcytidine
    "4AC": "C",  # N4-acetylcytidine
    "CBV": "C",  # 5-bromocytidine
    "CFL": "C",  # 2'-deoxy-2'-fluorocytidine (arabino)
    "CFZ": "C",  # 2'-deoxy-2'-fluorocytidine
    "CSL": "C",  # 5'-selenocytidine
    "A2M": "A",  # 2'-O-methyladenosine
    "AF2": "A",  # 2'-deoxy-2'-fluoroadenosine
    "T6A": "A",  # N6-threonylcarbamoyladenosine
    "12A": "A",  # 2-methylthio-N6-isopentenyladenosine (ms2i6A)
    "G7M": "G",  # N7-methylguanosine
    "QUO": "G",  # queuosine
    "YG": "G",  # wybutosine
    "LCG": "G",  # locked (LNA) guanosine
    "GTP": "G",  # guanosine 5'-triphosphate (5' end of transcripts)
    "UFT": "U",  # 2'-deoxy-2'-fluorouridine
    "IU": "U",  # 5-iodouridine
    "SUR": "U",  # 2-thiouridine
    "70U": "U",  # 5-methoxycarbonylmethyl-2-thiouridine
    "2MU": "U",  # 2'-O-methyl-5-methyluridine
    "UMS": "U",  # 2'-methylseleno-2'-deoxyuridine
    "2AU": "U",  # 2'-O-(3-aminopropyl)uridine
    "PYO": "U",  # pyrimidin-2-one ribonucleoside (zebularine)
    "CM0": "U",  # 5-carboxymethylaminomethyluridine
}

_STANDARD = {"A": "A", "C": "C", "G": "G", "U": "U"}


@lru_cache(maxsize=None)
def _gemmi_letter(name: str) -> str | None:
    """Upper-case one-letter parent from gemmi's tables, or None."""
    info = gemmi.find_tabulated_residue(name)
    if info is None or not info.found():
        return None
    code = info.one_letter_code.strip()
    return code.upper() if code else None


def parent_letter(name: str, file_parents: dict[str, str] | None = None) -> str:
    """One-letter parent of a residue name (``"A"``, ``"C"``, ``"G"``, ``"U"``, DNA ``"T"``
    etc.), or ``"N"`` when no source knows it.

    ``file_parents`` maps residue names to parent component ids as the model file gives
    them (:func:`parents_from_structure`); they take precedence over gemmi's tables and
    :data:`SHIPPED_PARENTS`.
    """
    name = name.strip().upper()
    if name in _STANDARD:
        return name
    if file_parents and name in file_parents:
        parent = file_parents[name].strip().upper()
        letter = _STANDARD.get(parent) or _gemmi_letter(parent)
        if letter:
            return letter
    return _gemmi_letter(name) or SHIPPED_PARENTS.get(name, "N")


def parents_from_structure(st: gemmi.Structure, block: gemmi.cif.Block | None = None) -> dict[str, str]:
    """Residue name -> parent component id, as the model file states them.

    Reads gemmi's ``Structure.mod_residues`` (PDB ``MODRES`` and mmCIF
    ``_pdbx_struct_mod_residue``) and, for mmCIF, ``_chem_comp.mon_nstd_parent_comp_id``
    from ``block``. Entries whose parent is ``?``/``.`` or empty are skipped.
    """
    out: dict[str, str] = {}
    for mod in getattr(st, "mod_residues", []):
        parent = (getattr(mod, "parent_comp_id", "") or "").strip()
        name = (getattr(mod, "mod_id", "") or getattr(getattr(mod, "res_id", None), "name", "") or "").strip()
        if name and parent and parent not in ("?", "."):
            out[name.upper()] = parent.upper()
    if block is not None:
        table = block.find("_chem_comp.", ["id", "mon_nstd_parent_comp_id"])
        for row in table:
            name, parent = row[0].strip().upper(), gemmi.cif.as_string(row[1]).strip().upper()
            if parent and parent not in ("?", "."):
                # a parent list like "U,G" names several; the first is the base's parent
                out.setdefault(name, parent.split(",")[0].strip())
    return out


def sequence_matches(expected: str, observed: str) -> bool:
    """True if a manifest sequence agrees with the model's (parents written for modified
    residues). ``N`` in ``expected`` matches any residue (the RNA 3D Motif Atlas and
    CoSSMos write modified residues as ``N``); ``T`` matches ``U`` (DNA notation);
    comparison is case-insensitive."""
    e, o = expected.strip().upper().replace("T", "U"), observed.strip().upper().replace("T", "U")
    return len(e) == len(o) and all(a == "N" or a == b for a, b in zip(e, o))
