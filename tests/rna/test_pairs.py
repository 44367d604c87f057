"""Loop lengths read off a real model's base pairs (issue 25): one or two listed closing
pairs per side both read as the same motif."""

from __future__ import annotations

import numpy as np
import pytest

from rnamotif_data.errors import InputError
from rnamotif_data.rna.pairs import loop_type, read_loops, watson_crick_partners
from rnamotif_data.rna.structure import parse_selection, read_model

from ..conftest import DEMO


@pytest.fixture(scope="module")
def model_6v5b():
    model = read_model(DEMO / "mirror" / "pdb" / "6v5b.pdb")
    is_nt = np.zeros(len(model.atoms.residues), dtype=bool)
    is_nt[model.atoms.residue_index[model.atoms.nucleotide > 0]] = True
    return model, watson_crick_partners(model.atoms, is_nt)


def _read(model, partner, selection, fallback=1):
    return read_loops(model.strands(model.resolve(parse_selection(selection))), partner, fallback)


@pytest.mark.parametrize("one_pair, two_pairs, mtype, loops", [
    ("D:30-31,72-74", "D:29-32,71-75", "bulge1", (0, 1)),  # bulge, listed both ways
    ("D:14-16,88-90", "D:13-17,87-91", "1x1", (1, 1)),  # internal loops, listed both ways
    ("D:19-22,82-85", "D:18-23,81-86", "2x2", (2, 2)),
])
def test_a_loop_listed_with_one_or_two_pairs_reads_the_same(model_6v5b, one_pair, two_pairs, mtype, loops):
    """The real 6V5B chain D (../shared/data/README.md lists its loops with one pair)."""
    model, partner = model_6v5b
    a, b = _read(model, partner, one_pair), _read(model, partner, two_pairs)
    assert a.motif_type == b.motif_type == mtype and a.loop_lengths == b.loop_lengths == loops
    assert a.flank_pairs == (1, 1) and b.flank_pairs == (2, 2)
    # the length rule alone would call the two-pair listing something else
    from rnamotif_data.rna.motifs import layout_mismatch

    strands = model.strands(model.resolve(parse_selection(two_pairs)))
    assert layout_mismatch([len(s) for s in strands], mtype) is not None


def test_the_real_seed_hairpin_reads_hairpin3_with_two_pairs():
    from ..conftest import SEED_HAIRPIN, shared

    shared("seed-sample")
    model = read_model(next(SEED_HAIRPIN.glob("*.pdb")))
    is_nt = np.ones(len(model.atoms.residues), dtype=bool)
    got = _read(model, watson_crick_partners(model.atoms, is_nt), "J:85-91", fallback=1)
    assert got.motif_type == "hairpin3" and got.loop_lengths == (3,) and got.flank_pairs == (2,)
    ids = model.atoms.residues
    assert [(ids[i].seq_num, ids[j].seq_num) for i, j in got.pairs] == [(85, 91), (86, 90)]


def test_without_a_readable_pair_the_source_convention_decides(model_6v5b):
    """No partner at all: the fallback convention gives the lengths and the note says so."""
    model, partner = model_6v5b
    none = np.full_like(partner, -1)
    one = _read(model, none, "D:13-17,87-91", fallback=1)
    two = _read(model, none, "D:13-17,87-91", fallback=2)
    assert one.motif_type == "3x3" and two.motif_type == "1x1"
    assert "convention of 2 pair(s)" in two.note
    assert loop_type((0, 0)) is None and loop_type((0, 3)) == "bulge3" and loop_type((4, 2)) == "2x4"
    with pytest.raises(InputError, match="one or two strands"):
        read_loops([[1], [2], [3]], partner, 1)


def test_wobble_pairs_are_g_u_and_only_added():
    """``wobble=True`` keeps every Watson-Crick pair and adds G·U pairs only (real 30S 4LFB;
    against RNApolis the rule agrees on 96 % of its canonical pairs: benchmarks/validate_pairs.py)."""
    from ..conftest import shared

    model = read_model(shared("atlas-models", "4lfb.cif.gz"))
    is_nt = np.zeros(len(model.atoms.residues), dtype=bool)
    is_nt[model.atoms.residue_index[model.atoms.nucleotide > 0]] = True
    plain = watson_crick_partners(model.atoms, is_nt)
    wob = watson_crick_partners(model.atoms, is_nt, wobble=True)
    kept = plain >= 0
    assert (wob[kept] == plain[kept]).all()
    added = np.flatnonzero((wob >= 0) & ~kept)
    parents = np.asarray(model.atoms.parents)
    assert len(added) >= 40 and {frozenset((parents[i], parents[wob[i]])) for i in added} == {frozenset("GU")}
    assert (wob[wob[added]] == added).all()  # mutual


def test_rnapolis_partners_agree_with_the_rule_where_both_read_a_pair(model_6v5b):
    """RNApolis's canonical pairs (``--pairs rnapolis``) in the rule's form, symmetric: on the
    real 6V5B chain 46 of the 49 residues both read pair alike (3 differ by one register
    at a helix end: U19-G86 by the rule, U19-A85 and G86-C18 by RNApolis), and RNApolis reads
    more pairs (58 residues against 52)."""
    pytest.importorskip("rnapolis", reason="the [annotate] extra (RNApolis) is not installed")
    from rnamotif_data.rna.annotate import rnapolis_partners

    model, rule = model_6v5b
    polis = rnapolis_partners(DEMO / "mirror" / "pdb" / "6v5b.pdb", model)
    paired = np.flatnonzero(polis >= 0)
    assert polis.shape == rule.shape and (polis[polis[paired]] == paired).all()  # symmetric
    both = (rule >= 0) & (polis >= 0)
    assert both.sum() >= 45 and (rule[both] == polis[both]).sum() >= 0.9 * both.sum()
    assert (polis >= 0).sum() > (rule >= 0).sum()  # non-Watson-Crick geometry the N1-N3 rule misses
