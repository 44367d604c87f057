"""The segmentation network (issue 37): shapes, its receptive field, tile checks, and
the checkpoint convention (round trip, one-line refusals of other checkpoints)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rnamotif_data.errors import CheckpointMismatchError, ConfigError, MissingFileError
from rnamotif_data.learn.checkpoints import load_checkpoint, save_checkpoint
from rnamotif_data.learn.networks import build_network
from rnamotif_data.learn.segnet import (
    UNet3D,
    build_segmentation_network,
    load_segmentation_checkpoint,
    save_segmentation_checkpoint,
)
from rnamotif_data.rna.elements import ELEMENT_NAMES
from rnamotif_data.samples.volumes import VolumeConfig


def randomise_norms(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm statistics, so eval mode is not the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_shapes(depth):
    torch.manual_seed(0)
    net = build_segmentation_network("unet3d", width=4, depth=depth).eval()
    tile = 4 * net.multiple
    with torch.no_grad():
        y = net(torch.rand(2, 1, tile, tile, tile))
    assert y.shape == (2, len(ELEMENT_NAMES), tile, tile, tile)
    assert net.multiple == 2 ** (depth - 1)


def test_default_network_is_small():
    net = UNet3D()
    assert (net.width, net.depth, net.n_classes) == (8, 3, 9)
    assert sum(p.numel() for p in net.parameters()) < 150_000
    assert net.receptive_field == 44


@pytest.mark.parametrize("depth", [1, 2])
def test_receptive_field_bounds_the_reach_of_one_voxel(depth):
    """Changing one input voxel changes outputs only within the receptive field."""
    torch.manual_seed(1)
    net = randomise_norms(UNet3D(width=4, depth=depth))
    x = torch.rand(1, 1, 48, 48, 48)
    x2 = x.clone()
    x2[0, 0, 24, 24, 24] += 5.0
    with torch.no_grad():
        changed = (net(x2) - net(x)).abs().amax(1)[0] > 1e-6
    idx = np.argwhere(changed.numpy())
    assert len(idx)
    extent = idx.max(0) - idx.min(0) + 1
    assert extent.max() <= net.receptive_field
    assert extent.max() >= net.receptive_field - net.multiple - 2  # the bound is not loose


def test_bad_sizes_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown segmentation network 'unet2d'"):
        build_segmentation_network("unet2d")
    with pytest.raises(ConfigError, match="depth must be"):
        UNet3D(depth=0)
    with pytest.raises(ConfigError, match="tile 30: unet3d of depth 3 needs a multiple of 4"):
        UNet3D(depth=3).check_tile(30)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(2)
    net = randomise_norms(UNet3D(width=4, depth=2))
    config = VolumeConfig(voxel_size=1.2, normalise_percentile=99.0)
    path = save_segmentation_checkpoint(net, tmp_path / "seg.pt", network="unet3d", tile=32, n_classes=9,
                                        class_names=ELEMENT_NAMES, volume_config=config, extra={"epoch": 3})
    raw = load_checkpoint(path, "cpu")
    assert raw["kind"] == "segmentation" and raw["network"] == "unet3d" and raw["tile"] == 32
    assert raw["network_args"] == {"in_channels": 1, "n_classes": 9, "width": 4, "depth": 2}
    assert raw["volume_config"] == dataclasses.asdict(config)
    ck = load_segmentation_checkpoint(path, "cpu")
    assert ck.tile == 32 and ck.class_names == ELEMENT_NAMES and ck.volume_config == config
    assert ck.extra == {"epoch": 3} and not ck.model.training
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(ck.model(x), net(x))


def test_other_checkpoints_are_refused_in_one_line(tmp_path):
    cube = build_network("motif3dcnn", 1, 5, cube=40)
    save_checkpoint({"model": cube.state_dict(), "config": {"network": "motif3dcnn"}, "cube": 40,
                     "class_names": ["a", "b", "c", "d", "e"]}, tmp_path / "best.pt")
    with pytest.raises(CheckpointMismatchError) as err:
        load_segmentation_checkpoint(tmp_path / "best.pt")
    assert "not a segmentation checkpoint (a cube classifier (motif3dcnn)" in str(err.value)
    assert "\n" not in str(err.value)
    net = UNet3D(width=4, depth=3)
    path = save_segmentation_checkpoint(net, tmp_path / "seg.pt", network="unet3d", tile=64, class_names=ELEMENT_NAMES)
    obj = load_checkpoint(path, "cpu")
    save_checkpoint({**obj, "tile": 30}, tmp_path / "tile.pt")
    with pytest.raises(CheckpointMismatchError, match=r"tile.pt: tile 30: unet3d of depth 3 needs a multiple of 4"):
        load_segmentation_checkpoint(tmp_path / "tile.pt")
    save_checkpoint({**obj, "network_args": {**obj["network_args"], "width": 8}}, tmp_path / "width.pt")
    with pytest.raises(CheckpointMismatchError, match="width.pt: a damaged segmentation checkpoint"):
        load_segmentation_checkpoint(tmp_path / "width.pt")
    save_checkpoint({**obj, "class_names": ["../x", *ELEMENT_NAMES[1:]]}, tmp_path / "names.pt")
    with pytest.raises(CheckpointMismatchError, match="names.pt: class names must be distinct words.*got ../x"):
        load_segmentation_checkpoint(tmp_path / "names.pt")
    with pytest.raises(MissingFileError):
        load_segmentation_checkpoint(tmp_path / "none.pt")
    with pytest.raises(ConfigError, match="8 class names for a network of 9 outputs"):
        save_segmentation_checkpoint(net, tmp_path / "x.pt", network="unet3d", tile=64, class_names=ELEMENT_NAMES[:8])
    with pytest.raises(ConfigError, match="n_classes 5 for a network of 9 outputs"):
        save_segmentation_checkpoint(net, tmp_path / "x.pt", network="unet3d", tile=64, class_names=ELEMENT_NAMES,
                                     n_classes=5)
