"""The dataset contract, in the style of torchvision's ``datasets_utils``: every dataset
configuration passes the same checks (length, item types and shapes, targets, batch reads,
metadata items, repr, errors that say what is allowed or how to get the data, pickling for
DataLoader workers, transforms)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from rnamotif_data import RNAMotifDataset, open_store
from rnamotif_data.errors import ConfigError, MissingFileError
from rnamotif_data.learn.dataset import CHANNELS
from rnamotif_data.split.splits import SUBSETS
from rnamotif_data.testing.synthetic_store import make_synthetic_store


@pytest.fixture(scope="module")
def split_store(demo_store, tmp_path_factory):
    """200 samples over 8 entries with a stored similarity split (``rnamotif split``)."""
    root = tmp_path_factory.mktemp("contract") / "s.zarr"
    return make_synthetic_store(str(demo_store), str(root), 200, seed=2, shard_size=16)


#: (store fixture, dataset arguments): the configurations every check runs on
CONFIGS = [
    ("split_store", dict(split="fold1", subset="train")),
    ("split_store", dict(split="fold3", subset="test", channels=("density", "zone", "labels_onehot", "nucleotide"))),
    ("split_store", dict(split="fold2", subset="inner_val", masked=False)),
    ("demo_store", dict(split="all", subset="train", channels=("labels", "density"))),
]


class DatasetContract:
    """Checks that hold for any configuration of :class:`RNAMotifDataset`."""

    def check(self, root: str, kwargs: dict) -> None:
        ds = RNAMotifDataset(root, **kwargs)
        store = open_store(root)
        meta = store.metadata
        self.check_length(ds, store)
        self.check_items(ds, store, meta)
        self.check_batch_equals_items(ds)
        self.check_metadata_items(ds, meta)
        self.check_repr(ds, root, kwargs)
        self.check_pickles_for_workers(ds)
        self.check_transforms(root, kwargs)

    def check_length(self, ds, store):
        assert 0 < len(ds) <= len(store)
        assert len(ds.targets) == len(ds.metadata) == len(ds)
        assert sum(ds.class_counts.values()) == len(ds)

    def check_items(self, ds, store, meta):
        d, h, w = store.cube_shape
        for i in (0, len(ds) - 1):
            x, y = ds[i]
            assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
            assert tuple(x.shape) == (ds.n_channels, d, h, w) == (sum(CHANNELS[c] for c in ds.channels), d, h, w)
            assert isinstance(y, int) and 0 <= y < len(ds.classes)
            assert y == int(meta["class_index"].iloc[ds.indices[i]])  # the label is the sample's class
            assert torch.isfinite(x).all()
            if "density" in ds.channels:
                c = ds.channels.index("density")
                assert 0.0 <= float(x[c].min()) and float(x[c].max()) <= 1.0  # normalised density
        with pytest.raises(IndexError):
            ds[len(ds)]
        with pytest.raises(TypeError):
            ds["0"]

    def check_batch_equals_items(self, ds):
        items = [0, len(ds) - 1, len(ds) // 2]
        batch = ds.__getitems__(items)
        for (xb, yb), i in zip(batch, items):
            x, y = ds[i]
            assert torch.equal(xb, x) and yb == y

    def check_metadata_items(self, ds, meta):
        ds.return_metadata = True
        try:
            item = ds[0]
            assert set(item) == {"x", "y", "sample_id", "sample_index"}
            assert item["sample_id"] == meta["sample_id"].iloc[item["sample_index"]]
        finally:
            ds.return_metadata = False

    def check_repr(self, ds, root, kwargs):
        text = repr(ds)
        assert str(root) in text and repr(kwargs["split"]) in text and f"{len(ds)} samples" in text

    def check_pickles_for_workers(self, ds):
        ds[0]  # opens the store in this process
        clone = pickle.loads(pickle.dumps(ds))
        assert torch.equal(clone[0][0], ds[0][0])
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
        x, y = next(iter(loader))
        assert x.shape[0] == min(4, len(ds)) and torch.equal(y, torch.as_tensor(ds.targets[: len(y)]))

    def check_transforms(self, root, kwargs):
        ds = RNAMotifDataset(root, **kwargs, transform=lambda t: t * 0 + 2, target_transform=lambda y: y + 10)
        x, y = ds[0]
        assert bool((x == 2).all()) and y == int(ds.targets[0]) + 10


@pytest.mark.parametrize("fixture, kwargs", CONFIGS, ids=[f"{f}-{k['split']}-{k['subset']}" for f, k in CONFIGS])
def test_dataset_contract(fixture, kwargs, request):
    DatasetContract().check(request.getfixturevalue(fixture), kwargs)


def test_subsets_of_a_fold_are_disjoint_and_val_is_never_trained_on(split_store):
    for k in range(1, 6):
        idx = {s: set(RNAMotifDataset(split_store, split=f"fold{k}", subset=s).indices) for s in SUBSETS}
        assert not idx["train"] & idx["val"]
        assert not idx["inner_train"] & (idx["inner_val"] | idx["test"])
        assert idx["test"] == idx["val"]  # fold k is the test fold of the nested protocol


def test_errors_list_what_is_allowed_or_say_how_to_get_the_data(split_store, demo_store, tmp_path):
    with pytest.raises(ConfigError, match="choose one of fold1, fold2, fold3, fold4, fold5, all"):
        RNAMotifDataset(split_store, split="fold0")
    with pytest.raises(ConfigError, match="choose one of train, val, test, inner_train, inner_val"):
        RNAMotifDataset(split_store, subset="dev")
    with pytest.raises(ConfigError, match="choose from density, zone"):
        RNAMotifDataset(split_store, channels=("phase",))
    with pytest.raises(MissingFileError, match="rnamotif build"):
        RNAMotifDataset(tmp_path / "absent.zarr")
    # no stored split: the dataset never computes one; it names the command that does
    with pytest.raises(ConfigError, match=r"no stored 'entry' split .*make it with 'rnamotif split .* --scheme entry'"):
        RNAMotifDataset(split_store, scheme="entry")
    with pytest.raises(ConfigError, match="fewer than the 5 folds; use split='all'"):
        RNAMotifDataset(demo_store, split="fold1")


def test_the_cube_size_comes_from_the_store(split_store):
    ds = RNAMotifDataset(split_store, split="fold1")
    assert ds.cube_shape == tuple(open_store(split_store).cube_shape)
    assert np.prod(ds.cube_shape) > 0
