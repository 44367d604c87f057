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


def test_the_seq_proj_basis_travels_with_the_checkpoint(demo_store, tmp_path):
    """A run on seq_proj saves its projection basis; the evaluator paints with it even when
    the store holds another basis for the subset it scores (issue 38, item 6)."""
    import shutil

    import numpy as np

    from rnamotif_data import RNAMotifDataset
    from rnamotif_data.cli.embed import main as embed_main
    from rnamotif_data.learn.evaluate import Evaluator
    from rnamotif_data.learn.train import TrainConfig, train

    root = tmp_path / "demo.zarr"
    shutil.copytree(demo_store, root)
    assert embed_main([str(root), "--embedder", "onehot", "--no-progress", "--cache-dir", str(tmp_path / "c")]) == 0
    kw = dict(split="all", channels=("density", "seq_proj"), sequence="onehot", projection_dim=2)
    train(TrainConfig(root=str(root), out=str(tmp_path / "run"), epochs=1, batch_size=4, device="cpu", **kw),
          progress=False)
    ck = load_checkpoint(tmp_path / "run" / "best.pt", "cpu")
    ds = RNAMotifDataset(str(root), subset="train", **kw)
    np.testing.assert_array_equal(ck["projection"]["components"].numpy(), ds.projection.components)
    ev = Evaluator.from_checkpoint(tmp_path / "run" / "best.pt", "cpu")
    before = ev.evaluate_dataset(ds)
    x_before = ds.get_batch(range(len(ds)))[0][0]  # the cubes
    # another basis at store level (as a nested model scored on val would find): same fingerprint, other numbers
    (npz,) = (root / "splits").glob("*-onehot-pca2.npz")
    with np.load(npz) as z:
        d = dict(z)
    d["components"] = d["components"][::-1].copy()
    d["mean"] = d["mean"] + 0.5
    np.savez(npz, **d)
    other = RNAMotifDataset(str(root), subset="train", **kw)
    assert not np.allclose(other.projection.components, ds.projection.components)
    assert not torch.equal(other.get_batch(range(len(other)))[0][0], x_before)  # the store's basis paints otherwise
    after = ev.evaluate_dataset(other)
    np.testing.assert_array_equal(other.projection.components, ck["projection"]["components"].numpy())
    assert torch.equal(other.get_batch(range(len(other)))[0][0], x_before)
    assert after["predictions"] == before["predictions"] and after["confusion_matrix"] == before["confusion_matrix"]
