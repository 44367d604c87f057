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
    from rnamotif_data.samples.background import BackgroundPool

    cfg = BackgroundConfig()
    res = Residues(model, np.zeros((0, 3)), cfg)
    pool = BackgroundPool(model, res, cfg, model.atoms.xyz.mean(axis=0))
    cands, _, _ = pool.get("rna", (4,))
    rng = np.random.default_rng(1)
    for want_zone in (2000.0, 6000.0, 15000.0):
        ranked = sorted(((float(c), "rna", cands[i]) for i, c in enumerate(rng.random(len(cands)))),
                        key=lambda t: t[0])[:50]
        full = sorted(ranked, key=lambda t: t[0] + 2.0 * abs(pool.zone_volume(t[2]) - want_zone) / max(want_zone, 1.0))
        lazy = list(pool._by_zone_volume(ranked, want_zone))
        assert [tuple(t[2]) for t in lazy] == [tuple(t[2]) for t in full]


# --- issue 24: the vectorised search gives what the plain loops gave -----------------------

def _candidates_by_loops(res, kind, lengths, config):
    """The enumeration as first written (one window at a time), as the reference."""
    from scipy.spatial import cKDTree

    out = []
    ok = res.is_nt & res.far
    if kind == "stem":
        ok &= res.partner >= 0
    if len(lengths) == 1:
        for run in res.runs:
            if not res.is_nt[run[0]]:
                continue
            for p in range(0, len(run) - lengths[0] + 1):
                w = run[p:p + lengths[0]]
                if ok[w].all() and not np.isin(res.partner[w], w).any():
                    out.append(w)
        return out
    if kind == "stem":
        starts = np.flatnonzero(ok)
        ends = res.partner[starts]
    else:
        pts = np.flatnonzero(ok & np.isfinite(res.c1[:, 0]))
        pairs = cKDTree(res.c1[pts]).query_pairs(config.neighbour_distance, output_type="ndarray")
        starts = np.concatenate([pts[pairs[:, 0]], pts[pairs[:, 1]]])
        ends = np.concatenate([pts[pairs[:, 1]], pts[pairs[:, 0]]])
    for i, j in zip(starts, ends):
        w1, w2 = res.window(int(i), lengths[0], +1), res.window(int(j), lengths[1], -1)
        if w1 is None or w2 is None or not set(w1.tolist()).isdisjoint(w2.tolist()):
            continue
        if ok[w1].all() and ok[w2].all():
            both = np.concatenate([w1, w2])
            out.append(both if w1[0] < w2[0] else np.concatenate([w2, w1]))
    return out


@pytest.fixture(scope="module")
def ribosome():
    from ..conftest import shared

    return read_model(shared("cryodrgn-50s", "pdb", "pdb_0000v018.pdb.gz"))


@pytest.mark.parametrize("kind, lengths", [("stem", (7,)), ("rna", (5,)), ("stem", (3, 4)), ("rna", (4, 2)),
                                           ("rna", (2, 2)), ("protein", (6,))])
def test_vectorised_candidates_equal_the_loops_on_a_real_50s(ribosome, kind, lengths):
    """Same candidates in the same order (the order feeds the seeded ranking)."""
    cfg = BackgroundConfig()
    motif_xyz = ribosome.atoms.xyz[ribosome.atoms.residue_rows(np.arange(0, 400))]
    res = Residues(ribosome, motif_xyz, cfg)
    got = candidates(res, kind, lengths, cfg)
    if kind == "protein":  # the loops above cover RNA; proteins: every all-far window of a linked run
        assert got and all(len(w) == 6 and res.is_aa[w].all() and res.far[w].all() for w in got)
        return
    want = _candidates_by_loops(res, kind, lengths, cfg)
    assert len(got) == len(want) > 10
    assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_zone_volume_counts_what_a_kd_tree_counts(ribosome):
    """The line-by-line count equals a nearest-atom query of every grid point, on 200
    real residue stretches of a 50S model (3-14 nucleotides, 60-300 heavy atoms)."""
    from scipy.spatial import cKDTree

    from rnamotif_data.samples.background import _zone_volume

    rng = np.random.default_rng(0)
    n = len(ribosome.atoms.residues)
    for _ in range(200):
        start, length = int(rng.integers(0, n - 14)), int(rng.integers(3, 15))
        xyz = ribosome.atoms.xyz[ribosome.atoms.residue_rows(np.arange(start, start + length))]
        lo, hi = xyz.min(axis=0) - 5.0, xyz.max(axis=0) + 5.0
        axes = [np.arange(lo[a], hi[a] + 1.5, 1.5) for a in range(3)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        d, _ = cKDTree(xyz).query(pts, k=1, distance_upper_bound=5.0)
        assert _zone_volume(xyz) == float(np.isfinite(d).sum()) * 1.5 ** 3
    assert _zone_volume(np.zeros((0, 3))) == 0.0


def test_shapes_from_residue_sums_equal_the_atoms(ribosome):
    """Radius of gyration, centroid distance and atom count from per-residue sums agree
    with the atoms' own (1e-9 Å), and the strand count with Model.strands."""
    from rnamotif_data.samples.background import BackgroundPool, _shape_of

    cfg = BackgroundConfig()
    res = Residues(ribosome, np.zeros((0, 3)), cfg)
    centre = ribosome.atoms.xyz.mean(axis=0)
    pool = BackgroundPool(ribosome, res, cfg, centre)
    cands, idx, shape = pool.get("rna", (3, 4))
    assert len(cands) > 100
    for k in range(0, len(cands), max(1, len(cands) // 50)):
        want = _shape_of(ribosome.atoms.xyz[ribosome.atoms.residue_rows(cands[k])], centre)
        np.testing.assert_allclose(shape[k], want, rtol=0, atol=1e-9)
        assert len(ribosome.strands(cands[k])) == 2
    mixed = np.array([[0, 1, 2, 10, 11], [5, 6, 7, 8, 9]])
    assert pool.strand_counts(mixed).tolist() == [len(ribosome.strands(r)) for r in mixed]
