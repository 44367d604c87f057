"""Splits without leakage, RNAMotifDataset, transforms, the direct shard reader (issue 6)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from builders.split import main as split_main
from builders.synthetic_store import make_synthetic_store
from rnamotif_data.dataset import RNAMotifDataset, ShardBatchSampler
from rnamotif_data.errors import ConfigError
from rnamotif_data.splits import SplitConfig, leakage_report, make_split, read_split, write_split
from rnamotif_data.checksums import check_checksums
from rnamotif_data.store import StoreError, open_store
from rnamotif_data.transforms import PROPER_ROTATIONS, GaussianNoise, RandomFlip, RandomRotation24, rotate


@pytest.fixture(scope="module")
def syn_store(demo_store, tmp_path_factory):
    """300 samples from the demo's real cubes, shaped like a real dataset (recurring
    (type, sequence) pairs across entries)."""
    root = tmp_path_factory.mktemp("syn") / "syn.zarr"
    return make_synthetic_store(str(demo_store), str(root), 300, seed=1, shard_size=32)


@pytest.mark.parametrize("scheme", ["sequence", "entry"])
def test_folds_partition_the_samples_stratified(syn_store, scheme):
    store = open_store(syn_store)
    split = make_split(store, SplitConfig(scheme=scheme))
    vals = [set(split.indices(f"fold{k}", "val")) for k in range(1, 6)]
    assert sum(len(v) for v in vals) == len(store)
    assert set().union(*vals) == set(range(len(store)))
    for k in range(1, 6):
        tr = set(split.indices(f"fold{k}", "train"))
        assert not tr & vals[k - 1] and len(tr) + len(vals[k - 1]) == len(store)
    if scheme == "entry":
        return  # 12 entries of ~25 samples: groups too coarse to balance classes closely
    # stratified: each class's count in every fold within half of the class total / 5
    meta = store.metadata
    for c in range(5):
        total = (meta["class_index"] == c).sum()
        for v in vals:
            n = (meta["class_index"].to_numpy()[sorted(v)] == c).sum()
            assert abs(n - total / 5) <= max(3, 0.5 * total / 5), (scheme, c, n, total)


def test_sequence_scheme_never_puts_a_type_sequence_on_both_sides(syn_store):
    store = open_store(syn_store)
    meta = store.metadata
    assert meta.groupby(["motif_type", "sequence"]).emdb_id.nunique().max() > 1  # the fixture recurs
    split = make_split(store, SplitConfig(scheme="sequence"))
    for k in range(1, 6):
        tr = meta.iloc[split.indices(f"fold{k}", "train")]
        va = meta.iloc[split.indices(f"fold{k}", "val")]
        tr, va = tr[~tr.is_background], va[~va.is_background]
        pairs_tr = set(zip(tr.motif_type, tr.sequence))
        assert not [p for p in zip(va.motif_type, va.sequence) if p in pairs_tr]
    rep = leakage_report(store, split)
    assert (rep["val_shared_type_sequence"] == 0).all()
    # the entry scheme does share (type, sequence) across folds here: the report shows it
    rep_e = leakage_report(store, make_split(store, SplitConfig(scheme="entry")))
    assert (rep_e["val_shared_entry"] == 0).all() and rep_e["val_shared_type_sequence"].sum() > 0


def test_fingerprint_is_stable_and_changes_with_the_store(syn_store, demo_store, tmp_path):
    store = open_store(syn_store)
    a = make_split(store, SplitConfig())
    b = make_split(open_store(syn_store), SplitConfig())
    assert a.fingerprint == b.fingerprint and a.table.equals(b.table)
    assert make_split(store, SplitConfig(seed=5)).fingerprint != a.fingerprint or \
        make_split(store, SplitConfig(seed=5)).table.equals(a.table)
    other = make_synthetic_store(str(demo_store), str(tmp_path / "other.zarr"), 299, seed=1, shard_size=32)
    assert make_split(open_store(other), SplitConfig()).fingerprint != a.fingerprint
    # written beside the data, read back, checked; checksums unaffected
    write_split(store, a)
    again = read_split(store, "sequence")
    assert again.fingerprint == a.fingerprint and again.table["fold"].equals(a.table["fold"])
    assert check_checksums(str(syn_store)) == []


def test_upstream_scheme_matches_the_upstream_fold_files(demo_store, tmp_path, capsys):
    """50 samples carry real upstream identities (EMDB, PDB, type, CoSSMos number from the
    fold CSVs): exactly those are matched, each to its upstream validation fold."""
    from builders.importers import import_upstream_folds

    from .conftest import shared

    folds = shared("seed-folds")
    rows, _ = import_upstream_folds(folds)
    motifs = [r for r in rows if r["motif_type"] != "unknown"]
    pick = [motifs[i] for i in np.random.default_rng(0).choice(len(motifs), 50, replace=False)]
    root = make_synthetic_store(str(demo_store), str(tmp_path / "u.zarr"), 120, seed=2, shard_size=32,
                                identities=pick)
    assert split_main([root, "--scheme", "upstream", "--folds", str(folds), "--report"]) == 0
    split = read_split(open_store(root), "upstream")
    fold = split.table["fold"]
    assert fold.notna().sum() == 50 and fold.iloc[50:].isna().all()
    assert fold.iloc[:50].astype(int).tolist() == [int(r["upstream_fold"]) for r in pick]
    assert "| fold1 |" in capsys.readouterr().out


def test_upstream_without_matches_is_refused(demo_store):
    with pytest.raises(ConfigError, match="upstream fold"):
        make_split(open_store(demo_store), SplitConfig(scheme="upstream"))


def test_split_cli_report_on_the_demo(demo_store, capsys):
    assert split_main([str(demo_store), "--scheme", "sequence", "--report"]) == 0
    out = capsys.readouterr().out
    assert "val sharing EMDB entry" in out and out.count("| fold") == 6  # header + 5 folds


# ---------------------------------------------------------------------- dataset
def test_items_have_documented_shapes_dtypes_and_masking(syn_store):
    ds = RNAMotifDataset(syn_store, split="fold1", channels=("density", "zone", "labels_onehot", "nucleotide"))
    store = open_store(syn_store)
    x, y = ds[3]
    assert x.shape == (6, 40, 40, 40) and x.dtype == torch.float32 and isinstance(y, int)
    raw = store.read(int(ds.indices[3]))
    dens = raw["density"].astype(np.float32)
    np.testing.assert_array_equal(x[0].numpy(), dens * raw["zone"])
    np.testing.assert_array_equal(x[1].numpy(), raw["zone"].astype(np.float32))
    for k in range(3):
        np.testing.assert_array_equal(x[2 + k].numpy(), (raw["labels"] == k + 1).astype(np.float32))
    np.testing.assert_array_equal(x[5].numpy(), raw["nucleotide"].astype(np.float32))
    assert y == store.metadata["class_index"].iloc[int(ds.indices[3])]
    ctx = RNAMotifDataset(syn_store, split="fold1", masked=False)[3][0]
    np.testing.assert_array_equal(ctx[0].numpy(), dens)
    assert (ctx[0] != x[0]).any()  # context cube has density outside the zone


def test_dataset_info_and_validation(syn_store, tmp_path):
    tr = RNAMotifDataset(syn_store, split="fold2", subset="train")
    va = RNAMotifDataset(syn_store, split="fold2", subset="val")
    assert len(tr) + len(va) == 300 and not set(tr.indices) & set(va.indices)
    assert list(va.metadata["sample_index"]) == list(va.indices)
    assert sum(va.class_counts.values()) == len(va) and va.classes[2] == "hairpin"
    assert "RNAMotifDataset(" in repr(va) and "fingerprint" in repr(va)
    item = RNAMotifDataset(syn_store, split="all", return_metadata=True)[0]
    assert item["sample_id"].startswith("EMD-") and item["x"].shape == (1, 40, 40, 40)
    with pytest.raises(ValueError, match="fold1"):
        RNAMotifDataset(syn_store, split="fold6")
    with pytest.raises(ValueError, match="choose one of train, val, test, inner_train, inner_val"):
        RNAMotifDataset(syn_store, subset="holdout")
    with pytest.raises(ValueError, match="channel"):
        RNAMotifDataset(syn_store, channels=("phase",))
    with pytest.raises(IndexError):
        va[len(va)]
    with pytest.raises(IndexError):
        va[-1]  # no wrap-around
    with pytest.raises(FileNotFoundError, match="builders.build"):
        RNAMotifDataset(tmp_path / "absent.zarr")


def _collect(loader):
    xs, ys = [], []
    for x, y in loader:
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_dataloader_workers_yield_the_same_items(syn_store, context):
    ds = RNAMotifDataset(syn_store, split="fold1", subset="val", channels=("density", "labels"))
    x0, y0 = _collect(torch.utils.data.DataLoader(ds, batch_size=16, num_workers=0))
    x2, y2 = _collect(torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2,
                                                  multiprocessing_context=context))
    assert torch.equal(x0, x2) and torch.equal(y0, y2)


def test_shard_batch_sampler_covers_every_item_once(syn_store):
    ds = RNAMotifDataset(syn_store, split="fold1")
    sampler = ShardBatchSampler(ds, 16, seed=3)
    batches = list(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(ds))) and len(batches) == len(sampler)
    sampler.set_epoch(1)
    assert [i for b in sampler for i in b] != flat


def test_direct_shard_reader_equals_zarr(syn_store):
    store = open_store(syn_store)
    idx = np.random.default_rng(0).permutation(len(store))[:120]
    fast = store.read_batch(idx)
    arrays = store.arrays()
    for name, got in fast.items():
        ref = np.stack([np.asarray(arrays[name][int(i)]) for i in idx])
        np.testing.assert_array_equal(got, ref)


def test_corrupt_shard_index_is_detected(demo_store, tmp_path):
    root = tmp_path / "c.zarr"
    shutil.copytree(demo_store, root)
    shard = root / "density" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"array density: shard c/0/0/0/0 \(samples 0-6\): shard index fails its CRC32C"):
        open_store(root).read_batch([0])


# ---------------------------------------------------------------------- transforms
def test_24_distinct_proper_rotations():
    x = torch.arange(27.0).reshape(1, 3, 3, 3)
    outs = {tuple(rotate(x, k).flatten().tolist()) for k in range(24)}
    assert len(outs) == 24 and len(PROPER_ROTATIONS) == 24
    mirrored = tuple(x.flip(-1).flatten().tolist())
    assert mirrored not in outs  # a mirror is not a rotation


def test_rotation_keeps_labels_on_density(demo_store):
    ds = RNAMotifDataset(demo_store, split="all", channels=("density", "labels"), masked=False)
    x, _ = ds[1]
    assert (x[0][x[1] > 0] > 0).all()
    rot = RandomRotation24(seed=7)
    for _ in range(6):
        r = rot(x)
        assert (r[0][r[1] > 0] > 0).all()  # every labelled atom voxel is still on density
        assert torch.equal(torch.sort(r[1].flatten())[0], torch.sort(x[1].flatten())[0])
    k = 5
    perm, flips = PROPER_ROTATIONS[k]
    zyx = (x[1] > 0).nonzero()[0].tolist()
    src = [zyx[p] for p in perm]
    dst = [39 - v if f else v for v, f in zip(src, flips)]
    assert rotate(x, k)[1][tuple(dst)] == x[1][tuple(zyx)]


def test_transforms_are_seeded_and_touch_only_density():
    x = torch.rand(2, 8, 8, 8)
    a = GaussianNoise(0.1, seed=1)(x)
    b = GaussianNoise(0.1, seed=1)(x)
    assert torch.equal(a, b) and torch.equal(a[1], x[1]) and not torch.equal(a[0], x[0])
    assert torch.equal(RandomFlip(p=0.0, seed=0)(x), x)


def test_dataset_applies_transform(syn_store):
    ds = RNAMotifDataset(syn_store, split="fold1", transform=lambda t: t * 0 + 1, target_transform=lambda y: y + 10)
    x, y = ds[0]
    assert torch.equal(x, torch.ones_like(x)) and y >= 10
    assert isinstance(pd.DataFrame(ds.metadata), pd.DataFrame)
