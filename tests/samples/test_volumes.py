"""Whole maps at 1 Å, every voxel labelled (issue 36): the label volumes against an
independent nearest-atom labelling, the density against the cube path, the memory bound
of the slabs, and the one-line errors."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest
from scipy.spatial import cKDTree

from rnamotif_data.em.maps import DensityMap, read_map
from rnamotif_data.errors import InputError, ModelOutsideMapError, NoRNAError, TileSizeError
from rnamotif_data.rna.elements import ELEMENT_IDS, assign_elements
from rnamotif_data.rna.structure import read_model
from rnamotif_data.samples.cubes import SegmentConfig, cut_motif, label_cube, labelled_atoms
from rnamotif_data.samples.volumes import (
    VolumeConfig,
    check_tile_size,
    iter_label_slabs,
    label_atoms,
    label_volumes,
    volume_grid,
)

from ..conftest import DEMO, shared

NAMES = ("element", "part", "nucleotide", "instance")


def _brute_force(grid, atoms, box_lo, box_shape, radius):
    """Labels of the voxels of a sub-box by plain numpy: every voxel against every atom,
    nearest within ``radius`` (≤), ties to the lower atom index (argmin's first)."""
    idx = np.stack(np.meshgrid(*[np.arange(a, a + n) for a, n in zip(box_lo, box_shape)], indexing="ij"),
                   axis=-1).reshape(-1, 3)
    points = grid.point(idx)
    # only atoms that can be within reach of the box (a plain bounding-box cut)
    near = np.flatnonzero(np.all((atoms.xyz >= points.min(axis=0) - radius - 1)
                                 & (atoms.xyz <= points.max(axis=0) + radius + 1), axis=1))
    xyz = atoms.xyz[near]
    out = {n: np.zeros(len(points), getattr(atoms, n).dtype) for n in NAMES}
    for a in range(0, len(points), 1024):
        d = np.sqrt(((points[a:a + 1024, None, :] - xyz[None, :, :]) ** 2).sum(axis=-1))
        best = d.argmin(axis=1)  # first minimum: the lower atom index (near is ascending)
        ok = d[np.arange(len(best)), best] <= radius
        for n in NAMES:
            out[n][a:a + 1024][ok] = getattr(atoms, n)[near[best[ok]]]
    return {n: v.reshape(box_shape) for n, v in out.items()}


def _box_around(grid, xyz, edge):
    centre = np.rint((xyz.mean(axis=0) - np.asarray(grid.origin)) / grid.voxel_size)[::-1].astype(int)
    lo = np.clip(centre - edge // 2, 0, np.asarray(grid.shape) - edge)
    return tuple(int(v) for v in lo), (edge, edge, edge)


def test_labels_agree_with_an_independent_labelling_on_a_simulated_map(rna_model, sim_map):
    """6V5B chain D, a 3 Å map simulated at 0.83 Å voxels, resampled to 1 Å."""
    elements = assign_elements(rna_model)
    vol = label_volumes(sim_map, rna_model, elements, VolumeConfig(slab=5))
    atoms = label_atoms(rna_model, elements)
    lo, shape = _box_around(vol.grid, rna_model.atoms.xyz, 24)
    ref = _brute_force(vol.grid, atoms, lo, shape, 1.5)
    box = tuple(slice(a, a + n) for a, n in zip(lo, shape))
    for n in NAMES:
        assert np.array_equal(getattr(vol, n)[box], ref[n]), n
    assert (ref["instance"] > 0).any() and (ref["element"] == ELEMENT_IDS["stem"]).any()
    # the whole grid by another KD-tree call: every voxel, k = 1, no zone
    grid = vol.grid
    idx = np.indices(grid.shape).reshape(3, -1).T
    d, j = cKDTree(atoms.xyz).query(grid.point(idx), k=1)
    ok = d <= 1.5
    for n in NAMES:
        expect = np.zeros(len(idx), getattr(atoms, n).dtype)
        expect[ok] = getattr(atoms, n)[j[ok]]
        assert np.array_equal(getattr(vol, n).reshape(-1), expect), n
    # every instance of the model paints voxels, and only with its own element
    for inst in elements.instances:
        if inst.residues:
            assert set(np.unique(vol.element[vol.instance == inst.id])) == {inst.element}
    assert vol.instance.dtype == np.uint16 and vol.element.dtype == np.uint8
    assert vol.part.max() <= 3  # no protein in 6V5B


def test_density_agrees_with_the_cube_path_and_the_origin_convention(rna_model, sim_map):
    """A cube placed on the 1 Å grid (its origin snapped to the grid) has the volume's
    density where they overlap, and the same labels with label_scope='all'."""
    elements = assign_elements(rna_model)
    vol = label_volumes(sim_map, rna_model, elements)
    grid = vol.grid
    assert grid.origin == tuple(sim_map.origin) and grid.voxel_size == 1.0
    config = SegmentConfig(label_scope="all")
    motif = rna_model.select("D:14-16,88-90")
    labels = label_cube(motif, config, context=rna_model.atoms)
    offset = np.rint((labels.origin - np.asarray(grid.origin)) / grid.voxel_size).astype(int)  # x-y-z voxels
    origin_cube = np.asarray(grid.origin) + offset * grid.voxel_size
    cube = cut_motif(sim_map, motif, config, labels=dataclasses.replace(labels, origin=origin_cube),
                     context=rna_model.atoms)
    k0 = offset[::-1]  # z-y-x voxel of the cube's [0, 0, 0] in the volume
    lo = np.maximum(k0, 0)
    hi = np.minimum(k0 + 40, grid.shape)
    assert np.all(hi - lo >= 20)
    vsl = tuple(slice(a, b) for a, b in zip(lo, hi))
    csl = tuple(slice(a - k, b - k) for a, b, k in zip(lo, hi, k0))
    np.testing.assert_allclose(vol.density[vsl], cube.density[csl], rtol=1e-6, atol=1e-6)
    assert vol.density[vsl].max() > 0.5
    # voxel (i, j, k) is the map's point at origin + (k, j, i) Å
    pts = np.array([[5, 7, 9], [20, 30, 40], [grid.shape[0] - 1, grid.shape[1] - 1, grid.shape[2] - 1]])
    world = np.asarray(grid.origin) + pts[:, ::-1] * 1.0
    expect = np.clip(sim_map.interpolate(world) / sim_map.statistics().percentile_value, 0, 1)
    np.testing.assert_allclose(vol.density[tuple(pts.T)], expect, rtol=1e-5, atol=1e-6)
    # labels: the cube's (all nucleotide atoms, same radius) are the volume's parts
    labelled, keep, near = labelled_atoms((40, 40, 40), origin_cube, motif, config, rna_model.atoms)
    parts = np.concatenate([[0], labelled.part[keep]])[near + 1]
    assert np.array_equal(vol.part[vsl], parts[csl])


def test_labels_on_a_real_50s_volume():
    """A real cryoDRGN 50S volume (64³ at 6.55 Å: a 413³ grid at 1 Å) and its model
    (23S, 5S, proteins): a box by brute force, and slabs by another KD-tree call."""
    dmap = read_map(shared("cryodrgn-50s", "emdb", "emd_90000383.mrc"))
    model = read_model(shared("cryodrgn-50s", "pdb", "pdb_0000v383.pdb.gz"))
    elements = assign_elements(model)
    atoms = label_atoms(model, elements)
    grid = volume_grid(dmap)
    assert grid.shape == (413, 413, 413)
    lo, shape = _box_around(grid, model.atoms.xyz, 28)
    ref = _brute_force(grid, atoms, lo, shape, 1.5)
    tree = cKDTree(atoms.xyz)
    seen = set()
    for slab in iter_label_slabs(dmap, model, elements, VolumeConfig(slab=14)):
        d = len(slab.density)
        assert d <= 14 and slab.density.dtype == np.float32
        if slab.z0 + d <= lo[0] or slab.z0 >= lo[0] + shape[0]:
            continue
        z = np.arange(max(slab.z0, lo[0]), min(slab.z0 + d, lo[0] + shape[0]))
        box = (slice(z[0] - slab.z0, z[-1] + 1 - slab.z0), slice(lo[1], lo[1] + shape[1]),
               slice(lo[2], lo[2] + shape[2]))
        for n in NAMES:
            assert np.array_equal(getattr(slab, n)[box], ref[n][z[0] - lo[0]:z[-1] + 1 - lo[0]]), n
        # the slab's every labelled voxel by another call: k = 1 over its labelled and unlabelled voxels
        idx = np.indices(slab.element.shape).reshape(3, -1).T + [slab.z0, 0, 0]
        dist, j = tree.query(grid.point(idx), k=1, distance_upper_bound=2.0)
        ok = dist <= 1.5
        expect = np.zeros(len(idx), np.uint8)
        expect[ok] = atoms.element[j[ok]]
        assert np.array_equal(slab.element.reshape(-1), expect)
        seen.update(np.unique(slab.element).tolist())
    assert {ELEMENT_IDS["stem"], ELEMENT_IDS["protein"], ELEMENT_IDS["hairpin"]} <= seen
    assert (ref["element"] > 0).mean() > 0.05


def test_slabs_never_hold_the_whole_grid():
    """Iterating the volumes of the 50S map (a 413³ grid: 282 MB of float32 density at
    1 Å) allocates well under one such volume at a time."""
    dmap = read_map(shared("cryodrgn-50s", "emdb", "emd_90000018.mrc"))
    model = read_model(shared("cryodrgn-50s", "pdb", "pdb_0000v018.pdb.gz"))
    elements = assign_elements(model)
    stats = dmap.statistics()
    one_volume = 4 * int(np.prod(volume_grid(dmap).shape))
    tracemalloc.start()
    try:
        n = 0
        for slab in iter_label_slabs(dmap, model, elements, VolumeConfig(slab=16), stats=stats):
            n += len(slab.density)
            del slab
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 413
    assert peak < 0.5 * one_volume, f"peak {peak / 2**20:.0f} MiB"


def _protein_only(tmp_path):
    import gemmi

    st = gemmi.Structure()
    model, chain, res = gemmi.Model("1"), gemmi.Chain("P"), gemmi.Residue()
    res.name, res.seqid = "ALA", gemmi.SeqId(1, " ")
    for name, el, x in (("N", "N", 10.0), ("CA", "C", 11.5), ("C", "C", 13.0)):
        a = gemmi.Atom()
        a.name, a.element, a.pos = name, gemmi.Element(el), gemmi.Position(x, 10, 10)
        res.add_atom(a)
    chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    path = tmp_path / "protein.pdb"
    st.write_pdb(str(path))
    return read_model(path)


def test_one_line_errors(tmp_path, rna_model, sim_map):
    protein = _protein_only(tmp_path)
    box = DensityMap(data=np.ones((20, 20, 20), np.float32), voxel_size=np.ones(3), origin=np.zeros(3), path="box.map")
    with pytest.raises(NoRNAError, match="no RNA nucleotide") as err:
        iter_label_slabs(box, protein, assign_elements(protein))
    assert "\n" not in str(err.value)
    moved = dataclasses.replace(rna_model, atoms=dataclasses.replace(rna_model.atoms,
                                                                     xyz=rna_model.atoms.xyz + 500.0))
    with pytest.raises(ModelOutsideMapError, match="outside the map") as err:
        label_volumes(sim_map, moved, assign_elements(rna_model))
    assert "\n" not in str(err.value) and "100%" in str(err.value)
    with pytest.raises(TileSizeError, match="larger than the map") as err:
        check_tile_size((50, 60, 70), 64, 32)
    assert "\n" not in str(err.value)
    with pytest.raises(TileSizeError, match="stride"):
        check_tile_size((100, 100, 100), 32, 48)
    with pytest.raises(InputError, match="residues"):
        label_atoms(protein, assign_elements(rna_model))


def test_tile_counts():
    assert check_tile_size((64, 64, 64), 64, 32) == (1, 1, 1)
    assert check_tile_size((413, 413, 413), 64, 32) == (12, 12, 12)  # the last one clipped (352 + 64 > 413)
    assert check_tile_size((128, 100, 96), 32, 32) == (4, 4, 3)
    assert check_tile_size((100, 100, 100), (64, 32, 32), 16) == (4, 6, 6)


def test_demo_map_volumes():
    """The shipped demo (EMD-21051 at 1 Å and 6V5B): the grid is the map's own."""
    dmap = read_map(DEMO / "mirror" / "emdb" / "emd_21051.map.gz")
    model = read_model(DEMO / "mirror" / "pdb" / "6v5b.pdb")
    vol = label_volumes(dmap, model, assign_elements(model))
    assert vol.grid.shape == dmap.shape
    p = vol.stats.percentile_value
    np.testing.assert_array_equal(vol.density, np.clip(dmap.data / np.float32(p), 0, 1).astype(np.float32))
    assert (vol.element > 0).sum() == (vol.part > 0).sum() == (vol.nucleotide > 0).sum()
