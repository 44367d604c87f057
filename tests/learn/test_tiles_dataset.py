"""RNAMotifTiles (issue 36): tiles read out of the stored blocks, folds by entry, rotations
that move labels with the density."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnamotif_data.errors import ConfigError, StoreError
from rnamotif_data.learn.tiles import OUTSIDE, RNAMotifTiles
from rnamotif_data.learn.transforms import PROPER_ROTATIONS, TileRotation24, rotate
from rnamotif_data.storage.volumes import VolumeReader


def test_items_are_the_stored_volumes_at_the_tile_origin(tiled_training_store):
    ds = RNAMotifTiles(tiled_training_store, "all", volumes=("density", "element", "instance"))
    assert len(ds) == len(ds.tiles) > 100
    T = ds.tile_size
    for i in (0, len(ds) // 2, len(ds) - 1):
        item = ds[i]
        assert item["density"].shape == (1, T, T, T) and item["density"].dtype == torch.float32
        assert item["element"].shape == (T, T, T) and item["element"].dtype == torch.int64
        row = ds.tiles.iloc[i]
        e = ds.entries.loc[row["entry"]]
        shape = [int(v) for v in e["grid_shape"]]
        whole = VolumeReader(tiled_training_store, row["entry"], shape, int(e["block"])).read_box(
            (0, 0, 0), shape, ("density", "element"))
        o = [int(v) for v in row["origin_voxel"]]
        d, h, w = (min(T, n - v) for n, v in zip(shape, o))
        np.testing.assert_array_equal(item["density"][0, :d, :h, :w].numpy(),
                                      whole["density"][o[0]:o[0] + d, o[1]:o[1] + h, o[2]:o[2] + w].astype(np.float32))
        np.testing.assert_array_equal(item["element"][:d, :h, :w].numpy(),
                                      whole["element"][o[0]:o[0] + d, o[1]:o[1] + h, o[2]:o[2] + w])
        assert int(item["tile_index"]) == int(row["tile_index"])


def test_clipped_tiles_mark_voxels_outside_the_map(tiled_training_store):
    ds = RNAMotifTiles(tiled_training_store, "all")
    clipped = np.flatnonzero(ds.tiles["clipped"].to_numpy())
    assert len(clipped)
    i = int(clipped[0])
    row, item = ds.tiles.iloc[i], ds[i]
    shape = ds.entries.loc[row["entry"]]["grid_shape"]
    inside = [min(ds.tile_size, int(n) - int(v)) for n, v in zip(shape, row["origin_voxel"])]
    e = item["element"].numpy()
    assert (e[:inside[0], :inside[1], :inside[2]] != OUTSIDE).all()
    outside = np.ones(e.shape, bool)
    outside[:inside[0], :inside[1], :inside[2]] = False
    assert outside.any() and (e[outside] == OUTSIDE).all()
    assert (item["density"][0].numpy()[outside] == 0).all()
    counts = np.bincount(e[~outside], minlength=9)
    assert counts.tolist() == list(row["voxels_per_element"])


def test_folds_keep_entries_apart_and_cover_every_tile(tiled_training_store):
    seen = []
    for k in range(1, 6):
        train = RNAMotifTiles(tiled_training_store, f"fold{k}", "train")
        val = RNAMotifTiles(tiled_training_store, f"fold{k}", "val")
        assert not set(train.tiles["entry"]) & set(val.tiles["entry"])
        assert train.split_fingerprint == val.split_fingerprint
        inner_t = RNAMotifTiles(tiled_training_store, f"fold{k}", "inner_train")
        inner_v = RNAMotifTiles(tiled_training_store, f"fold{k}", "inner_val")
        assert not set(inner_t.tiles["entry"]) & (set(inner_v.tiles["entry"]) | set(val.tiles["entry"]))
        seen += val.tiles["tile_index"].tolist()
    assert sorted(seen) == list(range(len(RNAMotifTiles(tiled_training_store, "all"))))


def test_rotation_moves_labels_with_the_density(tiled_training_store):
    ds = RNAMotifTiles(tiled_training_store, "all")
    item = ds[0]
    rot = TileRotation24(seed=5)
    out = rot(item)
    ks = [k for k in range(24) if torch.equal(rotate(item["element"], k), out["element"])]
    assert ks, "the labels are one of the 24 proper rotations of the stored ones"
    assert any(torch.equal(rotate(item["density"], k), out["density"]) for k in ks)
    assert out["tile_index"] == item["tile_index"]
    # proper rotations only: the determinant of each is +1 (a mirror would change the helix's hand)
    for perm, flips in PROPER_ROTATIONS:
        m = np.zeros((3, 3))
        for a, (p, f) in enumerate(zip(perm, flips)):
            m[a, p] = -1 if f else 1
        assert round(np.linalg.det(m)) == 1


def test_workers_read_the_same_items(tiled_training_store):
    ds = RNAMotifTiles(tiled_training_store, "fold1", "val")
    order = list(range(min(len(ds), 8)))
    sub = torch.utils.data.Subset(ds, order)
    one = [b for b in torch.utils.data.DataLoader(sub, batch_size=4, num_workers=0)]
    two = [b for b in torch.utils.data.DataLoader(sub, batch_size=4, num_workers=2)]
    for a, b in zip(one, two):
        assert torch.equal(a["density"], b["density"]) and torch.equal(a["element"], b["element"])


def test_one_line_errors(tiled_training_store, demo_store, tmp_path):
    with pytest.raises(ConfigError, match="built without --tiles"):
        RNAMotifTiles(demo_store, "all")
    with pytest.raises(ConfigError, match="volumes must include"):
        RNAMotifTiles(tiled_training_store, "all", volumes=("element",))
    with pytest.raises(ConfigError, match="unknown split"):
        RNAMotifTiles(tiled_training_store, "fold9")
    import shutil

    copy = tmp_path / "nosplit.zarr"
    shutil.copytree(tiled_training_store, copy)
    (copy / "splits" / "tiles.parquet").unlink()
    with pytest.raises(ConfigError, match="rnamotif split .* --tiles"):
        RNAMotifTiles(copy, "fold1")


def test_a_damaged_block_is_an_error_never_zeros(tiled_training_store, tmp_path):
    import shutil

    copy = tmp_path / "damaged.zarr"
    shutil.copytree(tiled_training_store, copy)
    ds = RNAMotifTiles(copy, "all")
    row = ds.tiles.iloc[0]
    shard = sorted((copy / "volumes" / row["entry"] / "element" / "c").rglob("0"))
    shard = [p for p in shard if p.is_file()][0]
    data = bytearray(shard.read_bytes())
    data[40] ^= 0xFF
    shard.write_bytes(bytes(data))
    errors = 0
    for i in range(len(ds)):
        if ds.tiles.iloc[i]["entry"] != row["entry"]:
            continue
        try:
            ds[i]
        except StoreError as exc:
            assert "\n" not in str(exc) and row["entry"] in str(exc)
            errors += 1
    assert errors
