"""Every residue's element (issue 36): the loops of rna.elements agree with those
``rnamotif annotate`` lists (annotate_model) on real models, nucleotide for nucleotide."""

from __future__ import annotations

import numpy as np
import pytest

from rnamotif_data.errors import ConfigError
from rnamotif_data.rna.elements import (
    ELEMENT_IDS,
    assign_elements,
    elements_from_pairs,
    remove_pseudoknots,
)
from rnamotif_data.rna.structure import read_model

from ..conftest import DEMO, shared


def _pairs(n: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    table = np.full(n, -1, dtype=np.int64)
    for i, j in pairs:
        table[i], table[j] = j, i
    return table


def test_elements_of_a_hand_drawn_structure():
    """5' tail, a stem with a bulge, a 3-way junction with two hairpins, 3' tail."""
    table = _pairs(30, [(1, 28), (2, 27), (4, 26), (6, 12), (7, 11), (15, 23), (16, 22)])
    element, instance, loops = elements_from_pairs(table, np.zeros(29, dtype=np.int8))
    # 0 single strand, 1-2 stem, 3 bulge (2-27 closes 4-26), 4 stem, 5 junction, 6-7 stem,
    # 8-10 hairpin, 11-12 stem, 13-14 junction, 15-16 stem, 17-21 hairpin, 22-23 stem,
    # 24-25 junction, 26-28 stem, 29 single strand
    assert element[0] == element[29] == ELEMENT_IDS["single_strand"]
    assert element[3] == ELEMENT_IDS["bulge"] and element[5] == ELEMENT_IDS["junction"]
    assert list(element[8:11]) == [ELEMENT_IDS["hairpin"]] * 3
    assert list(element[[13, 14, 24, 25]]) == [ELEMENT_IDS["junction"]] * 4
    assert all(element[table >= 0] == ELEMENT_IDS["stem"])
    kinds = [lp.kind for lp in loops]
    assert kinds == ["bulge", "junction", "hairpin", "hairpin"]
    assert set(instance[[5, 13, 14, 24, 25]]) == {2}  # one junction instance
    assert loops[2].motif_type == "hairpin3" and loops[3].motif_type == "hairpin5"
    # a gap inside the second hairpin: still hairpin, broken, no fine type
    links = np.zeros(29, dtype=np.int8)
    links[18] = 1
    element2, instance2, loops2 = elements_from_pairs(table, links)
    assert list(element2) == list(element) and loops2[3].broken and loops2[3].motif_type is None
    # a chain change inside the first hairpin opens it: single strand, no instance
    links[18], links[9] = 0, 2
    element3, instance3, loops3 = elements_from_pairs(table, links)
    assert list(element3[8:11]) == [ELEMENT_IDS["single_strand"]] * 3 and set(instance3[8:11]) == {0}
    assert [lp.kind for lp in loops3] == ["bulge", "junction", "hairpin"]


def test_pseudoknot_removal_keeps_the_longest_stems():
    # stem A 0-2 / 10-12 (3 pairs), stem B 5-6 / 15-16 (2 pairs) crosses A
    table = _pairs(20, [(0, 12), (1, 11), (2, 10), (5, 16), (6, 15)])
    nested, removed = remove_pseudoknots(table)
    assert removed == 2 and list(np.flatnonzero(nested >= 0)) == [0, 1, 2, 10, 11, 12]
    # equal lengths: the stem that starts first is kept
    nested, removed = remove_pseudoknots(_pairs(12, [(0, 6), (3, 9)]))
    assert removed == 1 and nested[0] == 6 and nested[3] == -1


def test_unknown_pair_reader_is_a_config_error(rna_model):
    with pytest.raises(ConfigError, match="pairs must be one of"):
        assign_elements(rna_model, "dssr")


def test_protein_and_other_residues(tmp_path):
    import gemmi

    st = gemmi.read_structure(str(DEMO / "mirror" / "pdb" / "6v5b.pdb"))
    chain, res = gemmi.Chain("P"), gemmi.Residue()
    res.name, res.seqid = "ALA", gemmi.SeqId(1, " ")
    for name, el, x in (("N", "N", 0.0), ("CA", "C", 1.5), ("C", "C", 3.0)):
        a = gemmi.Atom()
        a.name, a.element, a.pos = name, gemmi.Element(el), gemmi.Position(x, 0, 0)
        res.add_atom(a)
    chain.add_residue(res)
    lig = gemmi.Residue()
    lig.name, lig.seqid = "MG", gemmi.SeqId(2, " ")
    a = gemmi.Atom()
    a.name, a.element, a.pos = "MG", gemmi.Element("Mg"), gemmi.Position(5, 5, 5)
    lig.add_atom(a)
    lig.het_flag = "H"
    chain.add_residue(lig)
    st[0].add_chain(chain)
    path = tmp_path / "mixed.pdb"
    st.write_pdb(str(path))
    elements = assign_elements(read_model(path))
    assert list(elements.element[-2:]) == [ELEMENT_IDS["protein"], ELEMENT_IDS["other"]]
    assert list(elements.instance[-2:]) == [0, 0]


def _check_against_annotation(path, pdb_id):
    from rnamotif_data.rna.annotate import annotate_model

    pytest.importorskip("rnapolis", reason="the reference loops need RNApolis (pip install rnapolis)")
    model = read_model(path)
    got = assign_elements(model, "rnapolis")
    ann = annotate_model(path, pdb_id)
    index = {}
    for i, r in enumerate(model.atoms.residues):
        index.setdefault(r, i)
    loop_residues = np.zeros(len(model.atoms.residues), dtype=bool)
    by_selection = {inst.selection: inst for inst in got.instances}
    checked = 0
    for lp in ann.loops:
        unpaired = [index[ann.residues[k]] for s in lp.strands for k in s[1:-1] if ann.residues[k] is not None]
        if lp.broken and "crosses chains" in lp.broken:  # open loop: single strand, no instance
            assert all(got.element[unpaired] == ELEMENT_IDS["single_strand"]), ann.selection(lp)
            assert not got.instance[unpaired].any()
            continue
        inst = by_selection[ann.selection(lp)]
        assert inst.kind == lp.kind and sorted(inst.residues) == sorted(unpaired), ann.selection(lp)
        assert inst.fine_type == (None if lp.broken else lp.motif_type), ann.selection(lp)
        assert bool(inst.broken) == bool(lp.broken)
        assert all(got.element[unpaired] == ELEMENT_IDS[lp.kind]) and all(got.instance[unpaired] == inst.id)
        loop_residues[unpaired] = True
        checked += 1
    # nothing else carries a loop element or an instance
    loops = np.isin(got.element, [ELEMENT_IDS[k] for k in ("hairpin", "bulge", "internal", "junction")])
    assert np.array_equal(loops, loop_residues) and np.array_equal(got.instance > 0, loop_residues)
    assert len(got.instances) == checked
    # paired nucleotides are stem, the rest of the nucleotides single strand
    nt = model.atoms.nucleotide_residues
    rest = nt & ~loop_residues
    assert set(got.element[rest]) <= {ELEMENT_IDS["stem"], ELEMENT_IDS["single_strand"]}
    assert np.array_equal(got.element[rest] == ELEMENT_IDS["stem"], got.partner[rest] >= 0)
    return got, checked


def test_elements_agree_with_annotate_on_6v5b_drna():
    got, checked = _check_against_annotation(shared("rna-models", "6v5b_drna.pdb"), "6V5B")
    assert checked == 6 and sum(1 for i in got.instances if i.fine_type) == 5


@pytest.mark.parametrize("name", ["1u9s.cif", "3igi.cif"])
def test_elements_agree_with_annotate_on_atlas_models(name):
    got, checked = _check_against_annotation(shared("atlas-models", name), name[:4].upper())
    assert checked >= 10 and {i.kind for i in got.instances} >= {"hairpin", "bulge", "junction"}


@pytest.mark.slow
def test_elements_agree_with_annotate_on_the_50s_model():
    """The real 23S + 5S + proteins model (~80 s with RNApolis twice): run with -m slow."""
    got, checked = _check_against_annotation(shared("cryodrgn-50s", "pdb", "pdb_0000v383.pdb.gz"), "PDB_0000V383")
    assert checked > 100 and got.counts()["protein"] > 1000


def test_geometric_pairs_give_the_readme_loops_of_6v5b(rna_model):
    """With the build's default pairs, the fine-typed loops of 6V5B chain D include the
    shipped manifest's motifs (shared/data/README.md) where the rule sees their pairs."""
    got = assign_elements(rna_model)
    rows = {(i.selection, i.fine_type) for i in got.instances if i.fine_type}
    assert {("D:14-16,88-90", "1x1"), ("D:30-31,72-74", "bulge1"), ("D:31-33,71-72", "bulge1")} <= rows
    assert got.element.dtype == np.uint8 and got.instance.dtype == np.uint32
    assert got.counts()["none"] == 0 and sum(got.counts().values()) == len(rna_model.atoms.residues)
    rows = got.instance_rows()
    assert [r["instance"] for r in rows] == list(range(1, len(got.instances) + 1))
    one = next(r for r in rows if r["selection"] == "D:14-16,88-90")
    assert (one["element"], one["kind"], one["motif_type"], one["n_unpaired"]) == ("internal", "internal", "1x1", 2)
