"""Candidate enumeration for the structural negatives, on the real 6V5B chain D model."""

from __future__ import annotations

import numpy as np
import pytest

from rnamotif_data.rna.structure import read_model
from rnamotif_data.samples.background import BackgroundConfig
from rnamotif_data.samples.candidates import Residues, candidates

from ..conftest import DEMO, MOTIFS_6V5B


@pytest.fixture(scope="module")
def model():
    return read_model(DEMO / "mirror" / "pdb" / "6v5b.pdb")


def test_runs_and_pairs_of_a_real_chain(model):
    res = Residues(model, np.zeros((0, 3)), BackgroundConfig())
    assert res.is_nt.sum() == 78 and not res.is_aa.any()
    # every nucleotide sits in exactly one linked run, in model order
    covered = np.concatenate(res.runs)
    assert sorted(covered.tolist()) == sorted(np.flatnonzero(res.is_nt).tolist())
    assert all((np.diff(r) == 1).all() for r in res.runs)
    # pairs are mutual and purine-pyrimidine (geometric Watson-Crick rule, N1-N3 <= 3.4 Å)
    paired = np.flatnonzero(res.partner >= 0)
    assert len(paired) >= 40  # a 78-nt tRNA-like chain is mostly helical
    assert (res.partner[res.partner[paired]] == paired).all()
    parents = np.asarray(model.atoms.parents)
    kinds = {frozenset((parents[i], parents[res.partner[i]])) for i in paired}
    assert all(len(k & set("AG")) == 1 and len(k & set("CU")) == 1 for k in kinds), kinds


def test_candidates_keep_their_layout_and_distance_from_the_motifs(model):
    cfg = BackgroundConfig()
    motif_xyz = np.concatenate([model.select(s).xyz for s in MOTIFS_6V5B])  # the demo's five listed motifs
    res = Residues(model, motif_xyz, cfg)
    stems = candidates(res, "stem", (2, 2), cfg)
    assert stems, "a helical chain has stem candidates"
    for c in stems:
        assert len(c) == 4 and res.far[c].all()
        # each strand is a linked run of two, and the two strands are paired
        a, b = c[:2], c[2:]
        assert (np.diff(a) == 1).all() and (np.diff(b) == 1).all()
        assert (res.partner[a] >= 0).all()
        # no atom within the exclusion distance of the listed motif
        d = np.linalg.norm(model.atoms.xyz[model.atoms.residue_rows(c)][:, None] - motif_xyz[None], axis=2)
        assert d.min() >= cfg.min_distance
    singles = candidates(res, "rna", (5,), cfg)
    assert singles and all(len(c) == 5 and not np.isin(res.partner[c], c).any() for c in singles)


def test_residue_rows_agree_with_a_direct_search(model):
    """The precomputed residue spans give the rows a scan of the whole table gives, for
    residues in any order, repeated residues and an empty request."""
    atoms = model.atoms
    rng = np.random.default_rng(0)
    for _ in range(20):
        pick = rng.integers(0, len(atoms.residues), size=int(rng.integers(0, 9)))
        direct = np.concatenate([np.flatnonzero(atoms.residue_index == r) for r in pick]) if len(pick) else np.zeros(0)
        assert np.array_equal(atoms.residue_rows(pick), direct.astype(np.int64))
    # a table whose atoms are not grouped by residue (a subset in selection order, reversed)
    shuffled = atoms.take(np.arange(len(atoms))[::-1])
    pick = np.array([5, 2, 5])
    direct = np.concatenate([np.flatnonzero(shuffled.residue_index == r) for r in pick])
    assert np.array_equal(shuffled.residue_rows(pick), direct)  # residues in the order asked, rows ascending


def test_lazy_zone_ordering_is_the_full_sort(model):
    """The background pool computes zone volumes lazily; the order it yields must be the
    order a full sort by total cost gives."""
    from rnamotif_data.samples.background import _Pool

    cfg = BackgroundConfig()
    res = Residues(model, np.zeros((0, 3)), cfg)
    pool = _Pool(model, res, cfg, model.atoms.xyz.mean(axis=0))
    cands, _ = pool.get("rna", (4,))
    rng = np.random.default_rng(1)
    for want_zone in (2000.0, 6000.0, 15000.0):
        ranked = sorted(((float(c), "rna", cands[i]) for i, c in enumerate(rng.random(len(cands)))),
                        key=lambda t: t[0])[:50]
        full = sorted(ranked, key=lambda t: t[0] + 2.0 * abs(pool.zone_volume(t[2]) - want_zone) / max(want_zone, 1.0))
        lazy = list(pool._by_zone_volume(ranked, want_zone))
        assert [tuple(t[2]) for t in lazy] == [tuple(t[2]) for t in full]
