"""Labels: parts, nucleotide ids, exact zone and nearest-atom rasterisation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from rnamotif_data.rna.labels import label_part, nearest_atom, nucleotide_id, one_letter, within_radius


@pytest.mark.parametrize(
    "atom, part",
    [("P", 1), ("OP1", 1), ("OP2", 1), ("OP3", 1), ("O1P", 1), ("O5'", 1), ("O3'", 1),
     ("C1'", 2), ("C2'", 2), ("C3'", 2), ("C4'", 2), ("C5'", 2), ("O4'", 2), ("O2'", 2),
     ("C1*", 2), ("N9", 3), ("O6", 3), ("N4", 3), ("C5", 3)],
)
def test_label_parts(atom, part):
    assert label_part(atom) == part


@pytest.mark.parametrize(
    "res, parent, other",
    [("A", 1, 1), ("C", 2, 2), ("G", 3, 3), ("U", 4, 4), ("PSU", 4, 5), ("OMC", 2, 5),
     ("2MG", 3, 5), ("DA", 1, 1), ("DT", 5, 5), ("N", 5, 5), ("XYZ9", 5, 5)],
)
def test_nucleotide_ids(res, parent, other):
    assert nucleotide_id(res) == parent
    assert nucleotide_id(res, modified_as_parent=False) == other


def test_one_letter_unknown():
    assert one_letter("HOH") == "N" and one_letter("ZZZZ") == "N"


def _grid_points(shape, origin, vs):
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return np.asarray(origin) + np.stack([i, j, k], -1).reshape(-1, 3) * np.asarray(vs)


@pytest.mark.parametrize("vs", [1.0, 0.822, (0.8, 1.1, 0.95)])
def test_rasterisation_matches_kdtree(rna_model, vs):
    """Zone and nearest-atom labels equal a brute-force KD-tree on real atoms."""
    atoms = rna_model.select("D:19-22,82-85").xyz
    shape = (23, 27, 31)
    origin = atoms.mean(axis=0) - 12.3
    pts = _grid_points(shape, origin, np.broadcast_to(vs, (3,)))
    d, nearest = cKDTree(atoms).query(pts)
    zone = within_radius(shape, origin, vs, atoms, 5.0)
    np.testing.assert_array_equal(zone.ravel(), d <= 5.0)
    idx, dist = nearest_atom(shape, origin, vs, atoms, 1.5)
    inside = d <= 1.5
    np.testing.assert_array_equal(idx.ravel() >= 0, inside)
    np.testing.assert_array_equal(idx.ravel()[inside], nearest[inside])
    np.testing.assert_allclose(dist.ravel()[inside], d[inside], rtol=1e-5)
    assert inside.sum() > 100 and zone.sum() > 1000


def test_no_atoms_gives_empty_masks():
    assert not within_radius((4, 4, 4), np.zeros(3), 1.0, np.zeros((0, 3)), 5.0).any()
    idx, dist = nearest_atom((4, 4, 4), np.zeros(3), 1.0, np.zeros((0, 3)), 1.5)
    assert np.all(idx == -1) and np.all(np.isinf(dist))
