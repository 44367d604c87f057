"""Maps: reading, axis order, placement, statistics, writing."""

from __future__ import annotations

import gzip
import logging
import shutil

import gemmi
import mrcfile
import numpy as np
import pytest

from rnamotif_data.em.maps import DensityMap, axis_order_to_zyx, map_statistics, read_map, write_map
from rnamotif_data.errors import InputError, MapFormatError, MissingFileError

from ..conftest import shared, write_raw_mrc


def test_seed_map_placed_by_origin(seed_map_path):
    m = read_map(seed_map_path)
    assert m.shape == (29, 32, 42)  # z-y-x of a 42 x 32 x 29 (x, y, z) box
    np.testing.assert_allclose(m.voxel_size, [0.822] * 3, rtol=1e-6)
    np.testing.assert_allclose(m.origin, [209.61, 207.144, 148.782], atol=1e-3)
    # index <-> world are exact inverses
    pts = np.array([[0.0, 0.0, 0.0], [28.0, 31.0, 41.0], [3.25, 7.5, 11.75]])
    np.testing.assert_allclose(m.world_to_index(m.index_to_world(pts)), pts, atol=1e-9)
    np.testing.assert_allclose(m.index_to_world(np.array([0.0, 0.0, 1.0])), m.origin + [0.822, 0, 0], atol=1e-6)


def test_axis_reorder_agrees_with_gemmi(seed_map_path, tmp_path):
    """Our z-y-x array equals gemmi's x-y-z array (ReorderOnly) for every axis order."""
    base = read_map(seed_map_path).data
    for order in [(1, 2, 3), (3, 2, 1), (2, 3, 1), (3, 1, 2)]:
        path = write_raw_mrc(tmp_path / f"o{order}.mrc", base, 0.822, axis_order=order)
        ours = read_map(path)
        g = gemmi.read_ccp4_map(str(path))
        g.setup(float("nan"), gemmi.MapSetup.ReorderOnly)
        np.testing.assert_array_equal(ours.data, np.asarray(g.grid.array).transpose(2, 1, 0))
        np.testing.assert_array_equal(ours.data, base)


def test_axis_order_helper_on_real_p21_map():
    """EMD-3001 is stored with MAPC/MAPR/MAPS = 3,1,2: reordering matches gemmi."""
    path = shared("mrc-format", "EMD-3001.map")
    with mrcfile.open(path, permissive=True) as mrc:
        h = mrc.header
        assert (int(h.mapc), int(h.mapr), int(h.maps)) == (3, 1, 2)
        ours = axis_order_to_zyx(np.asarray(mrc.data), 3, 1, 2)
    g = gemmi.read_ccp4_map(str(path))
    g.setup(float("nan"), gemmi.MapSetup.ReorderOnly)
    np.testing.assert_array_equal(ours, np.asarray(g.grid.array).transpose(2, 1, 0))


def test_compressed_forms_read_identically():
    plain = read_map(shared("mrc-format", "EMD-3197.map"))
    for name in ("emd_3197.map.gz", "EMD-3197.map.bz2"):
        other = read_map(shared("mrc-format", name))
        np.testing.assert_array_equal(other.data, plain.data)
        np.testing.assert_array_equal(other.voxel_size, plain.voxel_size)
        np.testing.assert_array_equal(other.origin, plain.origin)


def test_nstart_placement_of_real_emdb_map():
    """EMD-3197 has ORIGIN 0 and NXSTART -2 at 11.4 Å: x origin is -22.8 Å."""
    m = read_map(shared("mrc-format", "EMD-3197.map"))
    np.testing.assert_allclose(m.voxel_size, [11.4] * 3, rtol=1e-6)
    np.testing.assert_allclose(m.origin, [-22.8, 0.0, 0.0], atol=1e-4)


@pytest.mark.parametrize("name", ["EMD-3001.map", "emd_3001.map.gz", "EMD-3001.map.bz2"])
def test_non_orthogonal_cell_rejected_in_every_form(name):
    with pytest.raises(MapFormatError, match=r"EMD-3001|emd_3001") as exc:
        read_map(shared("mrc-format", name))
    assert "cell angles (90, 94.326, 90) are not orthogonal" in str(exc.value)


def test_nstart_and_origin_placements_agree(seed_map_path, tmp_path):
    m = read_map(seed_map_path)
    nstart = (7, -3, 12)
    by_nstart = read_map(write_raw_mrc(tmp_path / "n.mrc", m.data, 0.822, nstart_xyz=nstart,
                                       axis_order=(3, 2, 1)))
    by_origin = read_map(write_raw_mrc(tmp_path / "o.mrc", m.data, 0.822,
                                       origin=np.array(nstart) * 0.822))
    np.testing.assert_allclose(by_nstart.origin, np.array(nstart) * 0.822, atol=1e-6)
    np.testing.assert_allclose(by_nstart.origin, by_origin.origin, atol=1e-4)
    np.testing.assert_array_equal(by_nstart.data, by_origin.data)


def test_origin_wins_over_nstart_with_warning(seed_map_path, tmp_path, caplog):
    m = read_map(seed_map_path)
    path = write_raw_mrc(tmp_path / "both.mrc", m.data, 0.822, origin=(10.0, 20.0, 30.0),
                         nstart_xyz=(1, 2, 3))
    with caplog.at_level(logging.WARNING, logger="rnamotif_data.em.maps"):
        both = read_map(path)
    np.testing.assert_allclose(both.origin, [10.0, 20.0, 30.0], atol=1e-5)
    assert any("both.mrc" in r.getMessage() and "ORIGIN" in r.getMessage() for r in caplog.records)


def test_statistics_match_numpy(seed_map_path):
    m = read_map(seed_map_path)
    s = m.statistics()
    d = m.data.astype(np.float64)
    assert s.mean == pytest.approx(d.mean(), rel=1e-9)
    assert s.sd == pytest.approx(d.std(), rel=1e-9)
    assert s.percentile_value == pytest.approx(np.percentile(d[d > 0], 95), rel=1e-6)
    assert s.n_voxels == d.size and s.minimum == d.min() and s.maximum == d.max()
    assert m.statistics() is s  # cached: computed once per map


@pytest.mark.parametrize("percentile", [0.1, 50.0, 95.0, 99.99, 100.0])
def test_percentile_is_numpys_on_the_positive_voxels_without_copying_them(percentile):
    """The radix select gives np.percentile's value on the positive voxels (ties, a
    denormal, values that share their upper bits, a map with one positive voxel), and in
    more than one block."""
    rng = np.random.default_rng(3)
    maps = [rng.normal(0, 1, (24, 20, 16)).astype(np.float32),
            rng.integers(-2, 3, (16, 16, 16)).astype(np.float32),  # ties
            np.full((8, 8, 8), -1.0, np.float32)]
    maps[0].flat[7] = np.float32(1e-41)  # denormal
    maps[0].flat[8:40] = np.float32(1.5) + np.arange(32, dtype=np.float32) * np.float32(1e-7)  # one 16-bit bin
    maps[2].flat[100] = 2.5  # a single positive voxel
    for data in maps:
        want = np.percentile(data[data > 0].astype(np.float64), percentile)
        got = map_statistics(data, percentile).percentile_value
        assert got == pytest.approx(want, rel=1e-6, abs=1e-45)

    big = rng.normal(0, 1, (5, 1024, 1024)).astype(np.float32)  # more than one 4 Mi-voxel block
    pos = big[big > 0].astype(np.float64)
    assert map_statistics(big, percentile).percentile_value == pytest.approx(np.percentile(pos, percentile), rel=1e-6)


def test_statistics_reject_maps_without_positive_density():
    with pytest.raises(MapFormatError, match="no positive density"):
        map_statistics(-np.ones((4, 4, 4), np.float32), path="neg.map")


def test_write_mrc_validates_and_round_trips(seed_map_path, tmp_path):
    m = read_map(seed_map_path)
    labels = (m.data > 5).astype(np.uint8) * 3
    for name, arr in [("d.mrc", m.data), ("l.mrc", labels), ("z.mrc", m.data > 0),
                      ("d.mrc.gz", m.data)]:
        path = write_map(tmp_path / name, arr, m.voxel_size, m.origin)
        if not name.endswith(".gz"):
            assert mrcfile.validate(str(path), print_file=open("/dev/null", "w"))
        back = read_map(path)
        np.testing.assert_array_equal(back.data, np.asarray(arr, dtype=np.float32))
        np.testing.assert_allclose(back.origin, m.origin, atol=1e-4)
        np.testing.assert_allclose(back.voxel_size, m.voxel_size, rtol=1e-6)


def test_write_mrc_nstart_placement(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    path = write_map(tmp_path / "n.map", data, 1.5, np.array([3.0, -4.5, 6.0]), placement="nstart")
    with mrcfile.open(path) as mrc:
        assert tuple(mrc.header.origin.tolist()) == (0.0, 0.0, 0.0)
        assert (int(mrc.header.nxstart), int(mrc.header.nystart), int(mrc.header.nzstart)) == (2, -3, 4)
    np.testing.assert_allclose(read_map(path).origin, [3.0, -4.5, 6.0])
    with pytest.raises(InputError, match="whole number of voxels"):
        write_map(tmp_path / "bad.map", data, 1.5, np.array([1.0, 0.0, 0.0]), placement="nstart")


def test_truncated_map_raises_naming_file(seed_map_path, tmp_path):
    raw = seed_map_path.read_bytes()
    bad = tmp_path / "truncated.mrc"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(MapFormatError, match="truncated.mrc"):
        read_map(bad)
    gz = tmp_path / "truncated.map.gz"
    gz.write_bytes(gzip.compress(raw)[:5000])
    with pytest.raises(MapFormatError, match="truncated.map.gz"):
        read_map(gz)


def test_not_a_map_raises(tmp_path, seed_model_path):
    fake = tmp_path / "model_as_map.mrc"
    shutil.copy(seed_model_path, fake)
    with pytest.raises(MapFormatError, match="model_as_map.mrc"):
        read_map(fake)
    with pytest.raises(MissingFileError, match="missing.map"):
        read_map(tmp_path / "missing.map")


def test_sample_box_equals_pointwise_trilinear(seed_map_path):
    """Separable box sampling equals scipy's pointwise trilinear interpolation."""
    m = read_map(seed_map_path)
    origin = m.origin + np.array([3.1, -2.7, 4.05])  # partly outside the map
    shape = (12, 9, 15)
    box, frac_out = m.sample_box(origin, shape, 0.9)
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    xyz = origin + np.stack([i, j, k], -1).reshape(-1, 3) * 0.9
    np.testing.assert_allclose(box.ravel(), m.interpolate(xyz), rtol=1e-5, atol=1e-4)
    assert frac_out == pytest.approx(1.0 - m.contains(xyz).mean())
    assert 0.0 < frac_out < 1.0


def test_sample_box_never_wraps():
    """A box hanging off one face reads zeros there, not density from the opposite face."""
    data = np.zeros((10, 10, 10), np.float32)
    data[:, :, -1] = 5.0  # density only on the last x-plane
    m = DensityMap(data, np.ones(3), np.zeros(3))
    box, frac = m.sample_box(np.array([-4.0, 0.0, 0.0]), (10, 10, 6), 1.0)
    assert np.all(box == 0.0)  # x = -4 .. 1: the first planes are empty, nothing wrapped
    assert frac == pytest.approx(4 / 6)
    far, frac_far = m.sample_box(np.array([100.0, 0.0, 0.0]), (4, 4, 4), 1.0)
    assert frac_far == 1.0 and not far.any()
