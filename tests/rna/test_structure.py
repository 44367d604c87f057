"""Structures: reading, selection syntax, residue resolution, atom tables."""

from __future__ import annotations

import gemmi
import numpy as np
import pytest

from rnamotif_data.errors import MissingFileError, SelectionError, SelectionSyntaxError, StructureError
from rnamotif_data.rna.structure import ResidueId, parse_selection, read_model


@pytest.mark.parametrize(
    "text, expected",
    [
        ("J:85-91", [("J", 85, "", 91, "")]),
        ("A:1490-1495,1424-1429", [("A", 1490, "", 1495, ""), ("A", 1424, "", 1429, "")]),
        ("A:189K-192", [("A", 189, "K", 192, "")]),
        ("A:10-12 B:40", [("A", 10, "", 12, ""), ("B", 40, "", None, None)]),
        ("S2:1538 AA:-3--1", [("S2", 1538, "", None, None), ("AA", -3, "", -1, "")]),
    ],
)
def test_parse_selection(text, expected):
    sel = parse_selection(text)
    got = [(i.start.chain, i.start.seq_num, i.start.icode,
            i.end.seq_num if i.end else None, i.end.icode if i.end else None) for i in sel.items]
    assert got == expected
    assert sel.text == " ".join(text.split())


def test_parse_selection_from_cli_list():
    assert parse_selection(["A:1-3", "B:4"]).text == "A:1-3 B:4"


@pytest.mark.parametrize("bad", ["", "J85-91", "J:", "J:85-", "J:85..91", "J:a-b", ":85-91", "J:85-91;"])
def test_bad_selection_syntax(bad):
    with pytest.raises(SelectionSyntaxError, match="expected"):
        parse_selection(bad)


def test_seed_hairpin_selection(seed_model_path):
    model = read_model(seed_model_path)
    motif = model.select("J:85-91")
    assert [r.seq_num for r in motif.residues] == list(range(85, 92))
    assert motif.sequence() == "GGUCUCC"
    # the file carries hydrogens; they are ignored
    assert not np.any(motif.element == "H")
    assert len(motif) == 146  # 221 atoms in the file, 75 of them hydrogens
    counts = np.bincount(motif.part, minlength=4)
    assert counts[0] == 0
    assert counts[1] == 5 * 7  # P OP1 OP2 O5' O3'
    assert counts[2] == 7 * 7  # C1' C2' C3' C4' C5' O4' O2'
    assert counts[3] == 2 * 11 + 2 * 8 + 3 * 8  # bases of G G U C U C C


def test_missing_chain_and_residue_errors(seed_model_path):
    model = read_model(seed_model_path, name="6PJ6")
    with pytest.raises(SelectionError, match=r"6PJ6 chain J has no residue 92 \(selection J:85-92\)"):
        model.select("J:85-92")
    with pytest.raises(SelectionError, match=r"6PJ6 has no chain X \(selection X:1-3\); chains: J"):
        model.select("X:1-3")
    with pytest.raises(SelectionError, match="ends before it starts"):
        model.select("J:91-85")
    with pytest.raises(SelectionError, match="selected more than once"):
        model.select("J:85-87,86")


def _renumbered_with_insertions(path, tmp_path):
    """6V5B chain D with residues 10-12 renumbered 9A, 9B, 9C (insertion codes)."""
    st = gemmi.read_structure(str(path))
    for res in st[0]["D"]:
        if 10 <= res.seqid.num <= 12:
            res.seqid = gemmi.SeqId(9, "ABC"[res.seqid.num - 10])
    out = tmp_path / "icode.cif"
    st.setup_entities()
    st.make_mmcif_document().write_file(str(out))
    return out


def test_insertion_codes_follow_model_order(rna_model_path, tmp_path):
    original = read_model(rna_model_path)
    model = read_model(_renumbered_with_insertions(rna_model_path, tmp_path))
    motif = model.select("D:9A-13")
    assert [str(r) for r in motif.residues] == ["D:9A", "D:9B", "D:9C", "D:13"]
    np.testing.assert_array_equal(motif.xyz, original.select("D:10-13").xyz)
    assert [str(r) for r in model.select("D:9-9C").residues] == ["D:9", "D:9A", "D:9B", "D:9C"]
    with pytest.raises(SelectionError, match="no residue 9D"):
        model.select("D:9D")


def test_alternate_locations_keep_first_conformer(rna_model_path, tmp_path):
    st = gemmi.read_structure(str(rna_model_path))
    res = st[0]["D"][0]
    first = res[0]
    alt = first.clone()
    first.altloc = "A"
    first.occ = 0.4
    alt.altloc = "B"
    alt.occ = 0.6
    alt.pos = gemmi.Position(first.pos.x + 3.0, first.pos.y, first.pos.z)
    res.add_atom(alt, 1)
    out = tmp_path / "altloc.pdb"
    st.write_pdb(str(out))
    model = read_model(out)
    ref = read_model(rna_model_path)
    assert len(model.atoms) == len(ref.atoms)
    np.testing.assert_allclose(model.atoms.xyz, ref.atoms.xyz, atol=1e-3)


def test_modified_and_non_nucleotide_residues(rna_model_path, tmp_path):
    st = gemmi.read_structure(str(rna_model_path))
    chain = st[0]["D"]
    chain[0].name = "PSU"  # pseudouridine at residue 3 (was G: keep atoms, names differ)
    out = tmp_path / "mod.pdb"
    st.write_pdb(str(out))
    model = read_model(out)
    motif = model.select("D:3-5")
    assert motif.sequence() == "UAC"
    assert motif.sequence(modified_as_parent=False) == "NAC"


def test_protein_residue_is_not_a_motif_nucleotide(tmp_path):
    pdb = tmp_path / "ala.pdb"
    pdb.write_text(
        "ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N\n"
        "ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00  0.00           C\n"
        "END\n"
    )
    model = read_model(pdb)
    with pytest.raises(SelectionError, match="ALA, not a nucleotide"):
        model.select("A:1")


def test_unreadable_model(tmp_path):
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\nloop_\n_atom_site.id\n")
    with pytest.raises(StructureError, match="bad.cif"):
        read_model(bad)
    with pytest.raises(MissingFileError, match="nope.pdb"):
        read_model(tmp_path / "nope.pdb")


def test_residue_id_str():
    assert str(ResidueId("A", 189, "K")) == "A:189K"
