"""Simulated maps: exact grid placement, and the shipped demo map is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from rnamotif_data.em.maps import read_map
from rnamotif_data.em.simulate import simulate_map

from ..conftest import DEMO


@pytest.mark.parametrize("voxel_size", [0.5, 0.83, 1.0, 1.1])
def test_density_peaks_on_atoms(rna_model, voxel_size):
    m = simulate_map(rna_model.atoms, 3.0, voxel_size)
    np.testing.assert_allclose(m.voxel_size, voxel_size)
    # the brightest voxel is within half a voxel diagonal of an atom
    k = np.array(np.unravel_index(m.data.argmax(), m.shape), dtype=float)
    d = np.linalg.norm(rna_model.atoms.xyz - m.index_to_world(k), axis=1).min()
    assert d < 0.87 * voxel_size
    # the box covers the atoms plus padding; origin is a whole number of voxels
    assert m.contains(rna_model.atoms.xyz).all()
    np.testing.assert_allclose(m.origin / voxel_size, np.rint(m.origin / voxel_size), atol=1e-9)


def test_shipped_demo_map_is_the_documented_simulation():
    from rnamotif_data.testing.make_demo import DEMO_MAP, DEMO_MODEL, make_demo_map

    shipped = read_map(DEMO / DEMO_MAP)
    assert shipped.header_origin == (0.0, 0.0, 0.0) and any(shipped.nstart_xyz)  # EMDB-style
    fresh = make_demo_map(DEMO / DEMO_MODEL)
    np.testing.assert_allclose(shipped.origin, fresh.origin)
    np.testing.assert_allclose(shipped.data, fresh.data, atol=1e-4 * float(fresh.data.max()))
