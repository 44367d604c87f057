"""Splits without leakage, RNAMotifDataset, transforms, the direct shard reader (issue 6)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnamotif_data.cli.split import main as split_main
from rnamotif_data.errors import ConfigError, MissingFileError, StoreError
from rnamotif_data.learn.dataset import RNAMotifDataset, ShardBatchSampler
from rnamotif_data.learn.transforms import PROPER_ROTATIONS, GaussianNoise, RandomFlip, RandomRotation24, rotate
from rnamotif_data.split.splits import SplitConfig, make_split, read_split, write_split
from rnamotif_data.storage.checksums import check_checksums
from rnamotif_data.storage.store import open_store
from rnamotif_data.testing.synthetic_store import make_synthetic_store


@pytest.fixture(scope="module")
def syn_store(demo_store, tmp_path_factory):
    """300 samples from the demo's real cubes, shaped like a real dataset (recurring
    (type, sequence) pairs across entries)."""
    root = tmp_path_factory.mktemp("syn") / "syn.zarr"
    return make_synthetic_store(str(demo_store), str(root), 300, seed=1, shard_size=32)


def test_entry_scheme_partitions_the_samples(syn_store):
    store = open_store(syn_store)
    split = make_split(store, SplitConfig(scheme="entry"))
    vals = [set(split.indices(f"fold{k}", "val")) for k in range(1, 6)]
    assert sum(len(v) for v in vals) == len(store) and set().union(*vals) == set(range(len(store)))
    meta = store.metadata
    for k in range(1, 6):
        tr = set(split.indices(f"fold{k}", "train"))
        assert not tr & vals[k - 1] and len(tr) + len(vals[k - 1]) == len(store)
        assert not set(meta.emdb_id.iloc[sorted(vals[k - 1])]) & set(meta.emdb_id.iloc[sorted(tr)])


def _canon(t, s):
    strands = s.split("-")
    return t, min("-".join(strands[i:] + strands[:i]) for i in range(len(strands)))


def _one_edit(a, b):  # plain dynamic programming, independent of rnamotif_data.split.similarity
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[-1] <= 1


def _check_no_relative_in_training(meta, split, subsets=(("train", "val"),)):
    """Independent check (own edit distance): no validation sample shares an entry, a
    canonical motif or a near-identical motif with the training subset of its fold."""
    seqs = meta["sequence"].fillna("")
    for k in range(1, 6):
        for train_name, val_name in subsets:
            tr = meta.iloc[split.indices(f"fold{k}", train_name)]
            va = meta.iloc[split.indices(f"fold{k}", val_name)]
            assert len(va) and not set(va.emdb_id) & set(tr.emdb_id)
            tm = [(t, s) for t, s, b in zip(tr.motif_type, seqs[tr.index], tr.is_background) if not b and s]
            for t, s, b in zip(va.motif_type, seqs[va.index], va.is_background):
                if b or not s:
                    continue
                assert not any(t == t2 and _one_edit(s, s2) for t2, s2 in tm), (k, val_name, t, s)


def test_similarity_scheme_prunes_training_and_scores_every_sample(syn_store, capsys):
    """Issue 25: the synthetic store's motif sequences recur across its entries (a pool of 4
    per type). By default every placed sample is validated in exactly one fold, and each
    fold's training (and the nested inner training) leaves out the samples related to its
    validation (and inner validation) samples -- checked with an independent edit
    distance; the report says what each relation cost."""
    store = open_store(syn_store)
    meta = store.metadata
    assert meta.groupby(["motif_type", "sequence"]).emdb_id.nunique().max() > 1  # the fixture recurs
    split = make_split(store, SplitConfig())
    assert split.n_removed == 0
    vals = np.concatenate([split.indices(f"fold{k}", "val") for k in range(1, 6)])
    assert len(vals) == len(set(vals)) == int(split.table["fold"].notna().sum())  # each scored exactly once
    assert (split.table["train_exclusion"] != 0).any()  # the recurrence did cost training samples
    _check_no_relative_in_training(meta, split, (("train", "val"), ("inner_train", "inner_val"),
                                                 ("inner_train", "test")))
    for k in range(1, 6):  # a pruned sample is still validated in its own fold
        pruned = split.table.loc[(split.table.train_exclusion & (1 << (k - 1))) != 0, "sample_index"]
        assert not set(pruned) & set(split.indices(f"fold{k}", "train"))
        assert all(int(split.table.fold[i]) != k for i in pruned)
    assert split_main([str(syn_store), "--report"]) == 0
    out = capsys.readouterr().out
    assert "0 removed" in out and out.count("| fold") == 6 and "pruned from train" in out


def test_prune_val_keeps_the_earlier_rule(syn_store):
    """``prune="val"``: related samples leave validation and stay in the other folds' training."""
    store = open_store(syn_store)
    meta = store.metadata
    split = make_split(store, SplitConfig(prune="val"))
    assert split.n_removed > 0 and not split.table["train_exclusion"].any()
    _check_no_relative_in_training(meta, split)
    for k in range(1, 6):
        removed = split.table.loc[split.table.removed & (split.table.fold == k), "sample_index"]
        assert not set(removed) & set(split.indices(f"fold{k}", "val"))
        assert set(removed) <= set(split.indices(f"fold{k % 5 + 1}", "train"))


def test_strand_swapped_and_one_off_motifs_are_related():
    """The same loop listed with its strands in either order (``A:9-11,37-38`` /
    ``A:37-38,9-11``) has one canonical key, in the split and in the manifest check; a
    one-substitution variant in another entry is near-identical; a homologous context
    (one substitution in 40 nt) is a homolog, an unrelated one is not."""
    from rnamotif_data.split.similarity import canonical_key, context_identity, find_relations, strands_from_selection

    a = strands_from_selection("A:9-11,37-38", "GAC" + "GU")
    b = strands_from_selection("A:37-38,9-11", "GU" + "GAC")
    assert a == b == "GAC-GU" and canonical_key("bulge1", "GU-GAC") == canonical_key("bulge1", a)
    meta = pd.DataFrame({"pdb_id": ["1AAA", "2BBB", "3CCC", "4DDD"], "emdb_id": [None] * 4,
                         "motif_type": ["bulge1"] * 4,
                         "selection": ["A:9-11,37-38", "B:37-38,9-11", "C:5-7,20-21", "D:1-3,8-9"],
                         "sequence": ["GACGU", "GUGAC", "GCCGU", "AAAAA"]})
    rel = find_relations(meta)
    assert rel.pairs["canonical"] == {(0, 1)} and rel.pairs["near_identical"] == {(0, 2), (1, 2)}
    ctx = "GGCAUCCGAUAGCUAGCGGAUCCAUGCGAUAGCGCAUGCC"
    assert context_identity(ctx, ctx[:20] + "A" + ctx[21:]) >= 0.95
    rng = np.random.default_rng(0)
    assert context_identity(ctx, "".join(rng.choice(list("ACGU"), len(ctx)))) < 0.7


def test_manifest_duplicate_check_uses_the_canonical_key():
    from rnamotif_data.inputs.schema import rows_to_table, validate_manifest

    rows = [{"pdb_id": "6V5B", "emdb_id": "EMD-21051", "motif_type": "1x1", "selection": "D:14-16,88-90"},
            {"pdb_id": "6V5B", "emdb_id": "EMD-21051", "motif_type": "1x1", "selection": "D:88-90,14-16"}]
    valid, rejected = validate_manifest(rows_to_table(rows))
    assert valid.num_rows == 1 and "duplicate occurrence" in rejected[0].reason


def test_fingerprint_is_stable_and_changes_with_the_store(syn_store, demo_store, tmp_path):
    store = open_store(syn_store)
    a = make_split(store, SplitConfig())
    b = make_split(open_store(syn_store), SplitConfig())
    assert a.fingerprint == b.fingerprint and a.table.equals(b.table)
    other = make_synthetic_store(str(demo_store), str(tmp_path / "other.zarr"), 299, seed=1, shard_size=32)
    assert make_split(open_store(other), SplitConfig()).fingerprint != a.fingerprint
    # written beside the data, read back, checked; checksums unaffected
    write_split(store, a)
    again = read_split(store, "similarity")
    assert again.fingerprint == a.fingerprint and again.table["fold"].equals(a.table["fold"])
    assert again.table["removed"].equals(a.table["removed"])
    assert check_checksums(str(syn_store)) == []


def test_upstream_scheme_matches_the_upstream_fold_files(demo_store, tmp_path, capsys):
    """Samples carry real upstream identities from the fold CSVs: 3 motifs of each class
    per upstream fold (EMDB, PDB, type, CoSSMos number), matched exactly to their folds;
    background samples of PDB entries whose upstream cube_* rows sit in one fold take that
    fold, so all five classes are in every fold."""
    from rnamotif_data.inputs.importers import import_upstream_folds
    from rnamotif_data.rna.motifs import class_index

    from ..conftest import shared

    folds = shared("seed-folds")
    rows, _ = import_upstream_folds(folds)
    pick = []
    for k in range(1, 6):
        for c in range(4):
            pick += [r for r in rows if r["upstream_fold"] == k and r["motif_type"] != "unknown"
                     and class_index(r["motif_type"]) == c][:3]
    cubes = sorted((r for r in rows if r["motif_type"] == "unknown" and r["pdb_id"] == "6PJ6"),
                   key=lambda r: r["cossmos_number"])
    upto = next(i for i in range(len(cubes)) if len({r["upstream_fold"] for r in cubes[:i + 1]}) == 5) + 1
    bg = [dict(r, emdb_id="EMD-20353", cossmos_number=None) for r in cubes[:upto]]
    root = make_synthetic_store(str(demo_store), str(tmp_path / "u.zarr"), 120, seed=2, shard_size=32,
                                identities=pick + bg)
    assert split_main([root, "--scheme", "upstream", "--folds", str(folds), "--report"]) == 0
    split = read_split(open_store(root), "upstream")
    fold = split.table["fold"]
    n = len(pick)
    assert fold.iloc[:n].astype(int).tolist() == [int(r["upstream_fold"]) for r in pick]
    # the j-th background sample of 6PJ6 takes the fold of 6PJ6's j-th upstream cube
    assert fold.iloc[n:n + len(bg)].astype(int).tolist() == [r["upstream_fold"] for r in cubes[:upto]]
    assert fold.iloc[n + len(bg):].isna().all()
    meta = open_store(root).metadata
    for k in range(1, 6):
        assert set(meta["class_index"].iloc[split.indices(f"fold{k}", "val")]) == set(range(5))
    out = capsys.readouterr().out
    assert "| fold1 |" in out


def test_upstream_without_matches_is_refused(demo_store):
    with pytest.raises(ConfigError, match="upstream fold"):
        make_split(open_store(demo_store), SplitConfig(scheme="upstream"))


def test_split_of_a_single_entry_store_is_refused(demo_store, capsys):
    """The demo is one entry: any split would put the same structure on both sides."""
    from rnamotif_data.cli import run

    assert run(split_main, [str(demo_store), "--report"]) == 1
    err = capsys.readouterr().err
    assert "holds 1 independent group(s)" in err and "fewer than the 5 folds" in err and "Traceback" not in err


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
    table = tr._split.table
    pruned = int((((table.train_exclusion & 2) != 0) & (table.fold != 2)).sum())  # left out of fold 2's training
    assert len(tr) + len(va) + pruned == 300 and not set(tr.indices) & set(va.indices)
    assert list(va.metadata["sample_index"]) == list(va.indices)
    assert sum(va.class_counts.values()) == len(va) and va.classes[2] == "hairpin"
    assert "RNAMotifDataset(" in repr(va) and "fingerprint" in repr(va)
    item = RNAMotifDataset(syn_store, split="all", return_metadata=True)[0]
    assert item["sample_id"].startswith("EMD-") and item["x"].shape == (1, 40, 40, 40)
    with pytest.raises(ConfigError, match="fold1"):
        RNAMotifDataset(syn_store, split="fold6")
    with pytest.raises(ConfigError, match="choose one of train, val, test, inner_train, inner_val"):
        RNAMotifDataset(syn_store, subset="holdout")
    with pytest.raises(ConfigError, match="channel"):
        RNAMotifDataset(syn_store, channels=("phase",))
    with pytest.raises(IndexError):
        va[len(va)]
    with pytest.raises(IndexError):
        va[-1]  # no wrap-around
    with pytest.raises(MissingFileError, match="rnamotif build"):
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


def test_random_flip_flips_at_p_1_and_each_axis_at_p_half():
    """Issue 39: a RandomFlip that never flipped passed (tested only at p=0)."""
    x = torch.arange(2 * 27.0).reshape(2, 3, 3, 3)
    assert torch.equal(RandomFlip(p=1.0, seed=0)(x), x.flip((1, 2, 3)))
    flip = RandomFlip(p=0.5, seed=3)
    combos = {k: x.flip(tuple(a for i, a in enumerate((1, 2, 3)) if k >> i & 1)) if k else x for k in range(8)}
    seen = set()
    for _ in range(64):
        out = flip(x)
        seen.add(next(k for k, want in combos.items() if torch.equal(out, want)))
    assert seen == set(range(8))  # no flip, every single axis, every pair and all three: each drawn


def test_random_rotation_draws_all_24_and_moves_channels_together():
    """RandomRotation24 draws every one of the 24 rotations, and moves every channel by the
    same one: the labels stay on the voxels of the density they label."""
    base = torch.arange(27.0).reshape(3, 3, 3)
    x = torch.stack([base, base * 10 + 1])  # channel 1 is a function of channel 0, voxel by voxel
    rot = RandomRotation24(seed=11)
    drawn = set()
    for _ in range(400):
        out = rot(x)
        assert torch.equal(out[1], out[0] * 10 + 1)
        drawn.add(next(k for k in range(24) if torch.equal(rotate(x, k), out)))
    assert drawn == set(range(24))


def test_dataset_applies_transform(syn_store):
    ds = RNAMotifDataset(syn_store, split="fold1", transform=lambda t: t * 0 + 1, target_transform=lambda y: y + 10)
    x, y = ds[0]
    assert torch.equal(x, torch.ones_like(x)) and y >= 10
    # the subset's metadata rows are its items, in order, read independently from the store's Parquet
    full = pd.read_parquet(Path(syn_store) / "metadata.parquet")
    meta = ds.metadata
    assert len(meta) == len(ds) and list(meta["sample_index"]) == list(ds.indices)
    assert list(meta["sample_id"]) == list(full.set_index("sample_index").loc[ds.indices, "sample_id"])
    assert list(meta["class_index"]) == list(ds.targets)
