"""Checkpoints and device choice (learn.checkpoints)."""

from __future__ import annotations

import pytest
import torch

from rnamotif_data.errors import ConfigError, MissingFileError
from rnamotif_data.learn.checkpoints import choose_device, load_checkpoint, save_checkpoint


def test_checkpoint_round_trip_is_atomic_and_data_only(tmp_path):
    obj = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3, "config": {"network": "motif3dcnn"}}
    path = tmp_path / "last.pt"
    save_checkpoint(obj, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left
    back = load_checkpoint(path, "cpu")
    assert back["epoch"] == 3 and torch.equal(back["model"]["w"], obj["model"]["w"])
    with pytest.raises(MissingFileError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt", "cpu")


def test_device_names_are_checked_in_one_line():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="--device 'gpu0': not a torch device"):
        choose_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available here"):
            choose_device("cuda:0")
