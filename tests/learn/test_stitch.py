"""Stitching (issue 37's goal): every voxel predicted once, from a tile's centre.

(a) An identity network (the one-hot of a stored label volume) gives the label volume
back exactly, for any tile and margin. (b) The rule of :mod:`rnamotif_data.learn.stitch`:
a network whose receptive field reaches ``r <= margin`` voxels, on its pooling grid
(strides multiples of ``2**(depth-1)``), gives the same volume for every tile size up to
float rounding; with a margin below ``r`` it does not (the rule is not vacuous)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnamotif_data.em.maps import read_map
from rnamotif_data.errors import ConfigError, InputError
from rnamotif_data.learn.segnet import UNet3D
from rnamotif_data.learn.stitch import predict_volume, tile_grid, torch_predict_fn
from rnamotif_data.rna.elements import ELEMENT_NAMES, assign_elements
from rnamotif_data.samples.volumes import label_volumes

from ..conftest import DEMO
from .test_segnet import randomise_norms

N_CLASSES = len(ELEMENT_NAMES)


@pytest.fixture(scope="module")
def stored_labels(rna_model, sim_map):
    """The label volumes of 6V5B chain D on a map simulated from it (3 Å, 0.83 Å voxels)."""
    return label_volumes(sim_map, rna_model, assign_elements(rna_model))


def one_hot_fn(x: np.ndarray) -> np.ndarray:
    """The identity network: the class id stored as the input value, one-hot."""
    ids = np.rint(x[:, 0]).astype(np.int64)
    return np.moveaxis(np.eye(N_CLASSES, dtype=np.float32)[ids], -1, 1)


@pytest.mark.parametrize("tile,margin,batch", [(32, 8, 1), (24, 4, 3), (17, 0, 2), (200, 16, 1)])
def test_identity_network_gives_the_label_volume_back(stored_labels, tile, margin, batch):
    labels = stored_labels.element
    assert labels.shape[0] > tile - 2 * margin or tile == 200  # several tiles per axis, or one larger than the map
    assert len(np.unique(labels)) >= 4
    probs = predict_volume(labels.astype(np.float32), one_hot_fn, tile, margin, batch)
    assert probs.shape == (N_CLASSES, *labels.shape) and probs.dtype == np.float32
    np.testing.assert_array_equal(probs.argmax(0), labels)
    np.testing.assert_array_equal(probs, np.moveaxis(np.eye(N_CLASSES, dtype=np.float32)[labels], -1, 0))


def test_each_voxel_comes_from_one_tile_centre():
    """A predict_fn that writes each voxel's distance to its tile's nearest face: every
    kept voxel is at least ``margin`` from the faces, and each tile is used once."""
    calls = []

    def depth_in_tile(x):
        calls.append(len(x))
        t = x.shape[-1]
        a = np.minimum(np.arange(t), t - 1 - np.arange(t))
        d = np.minimum.reduce(np.meshgrid(a, a, a, indexing="ij"))
        return np.broadcast_to(d, (len(x), 1, t, t, t)).astype(np.float32)

    out = predict_volume(np.zeros((50, 23, 41), np.float32), depth_in_tile, tile=20, margin=5, batch_size=4)
    assert out.min() >= 5
    stride, n = tile_grid((50, 23, 41), 20, 5)
    assert stride == 10 and n == (5, 3, 5) and sum(calls) == 75 and max(calls) == 4


@pytest.fixture(scope="module")
def real_density() -> np.ndarray:
    """A 32 × 29 × 35 crop of the demo's map (EMD-21051, 1 Å), normalised."""
    m = read_map(DEMO / "mirror" / "emdb" / "emd_21051.map.gz")
    d = m.data[40:72, 16:45, 10:45]
    return np.clip(d / np.percentile(d[d > 0], 95), 0, 1).astype(np.float32)


def test_tile_size_changes_nothing_when_the_margin_covers_the_receptive_field(real_density):
    torch.manual_seed(3)
    net = randomise_norms(UNet3D(width=4, depth=2))
    r = net.receptive_field // 2  # 9 voxels for depth 2
    margin = r + 1  # even 2 × margin: strides stay on the pooling grid
    fn = torch_predict_fn(net, "cpu")
    ref = predict_volume(real_density, fn, tile=2 * margin + 16, margin=margin)
    for tile in (2 * margin + 20, 2 * margin + 30, 64):
        assert (tile - 2 * margin) % net.multiple == 0
        other = predict_volume(real_density, fn, tile=tile, margin=margin, batch_size=2)
        np.testing.assert_allclose(other, ref, rtol=0, atol=2e-6)
    # below the receptive field the tile faces show through: the rule has teeth
    small = predict_volume(real_density, fn, tile=16, margin=2)
    large = predict_volume(real_density, fn, tile=40, margin=2)
    assert np.abs(small - large).max() > 100 * 2e-6


def test_bad_settings_are_one_line_errors():
    vol = np.zeros((8, 8, 8), np.float32)
    with pytest.raises(ConfigError, match="tile 16 and margin 8"):
        predict_volume(vol, one_hot_fn, 16, 8)
    with pytest.raises(ConfigError, match="batch size"):
        predict_volume(vol, one_hot_fn, 8, 0, 0)
    with pytest.raises(InputError, match="must be a \\(D, H, W\\) volume"):
        predict_volume(np.zeros((8, 8)), one_hot_fn, 8, 0)
    with pytest.raises(InputError, match="predict_fn returned shape"):
        predict_volume(vol, lambda x: x[:, :, :4], 8, 0)
