"""Sequence features (rnamotif_data.features): embedders, windows, cache, the stored layout,
verify, the dataset's items and channels, and training with them.

structRFM runs here as a tiny randomly initialised model (its pretrained weights are the
user's to supply); the one-hot embedder is the exact reference: painted through the voxel
slots it must reproduce the store's own ``nucleotide`` cube.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnamotif_data.errors import ConfigError, MissingDependencyError, StoreError
from rnamotif_data.features.chains import EmbeddingCache, chain_sequences, embed_chains
from rnamotif_data.features.embedders import OneHotEmbedder, combine_windows, make_embedder, window_starts
from rnamotif_data.features.stored import open_features, paint, verify_features
from rnamotif_data.rna.structure import read_model
from rnamotif_data.storage.store import open_store

from ..conftest import REPO

ROOT = Path(__file__).resolve().parents[2]
SMALL_MODEL = ROOT / "demo" / "mirror" / "pdb" / "6v5b.pdb"
TINY = {"random_weights": True, "dim": 32, "layer": 2, "heads": 2}


def _structrfm():
    pytest.importorskip("transformers", reason="the [embed] extra (transformers) is not installed")
    pytest.importorskip("structRFM.infer", reason="the [embed] extra (structRFM, BPfold, datasets) is not installed")


def _random_chain(n: int, seed: int = 0) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGU"), n))


# ------------------------------------------------------------------ windows
def test_windows_cover_a_ribosomal_chain_with_the_stated_overlap():
    starts = window_starts(2900, 512, 128)
    assert starts[0] == 0 and starts[-1] == 2900 - 512
    assert all(b - a <= 512 - 128 for a, b in zip(starts, starts[1:]))  # each overlaps the next by >= 128
    assert window_starts(300, 512, 128) == [0]
    with pytest.raises(ConfigError, match="overlap"):
        window_starts(1000, 100, 100)


def test_combined_windows_weight_the_centre_of_each_window():
    # two windows over 6 positions with different constant features: the triangle weights
    # give each position mostly the window in which it sits deeper
    starts, parts = [0, 2], [np.zeros((4, 1)), np.ones((4, 1))]
    out = combine_windows(6, starts, parts)[:, 0]
    assert out[0] == 0 and out[5] == 1
    assert out[2] < 0.5 < out[3]  # position 2: depth 2 in the first window, 1 in the second


def test_onehot_is_the_same_whole_or_in_windows():
    e = OneHotEmbedder()
    seq = _random_chain(2900)
    whole = e.embed(seq)
    e.max_length, e.window, e.overlap = 512, 512, 128
    np.testing.assert_array_equal(e.embed(seq), whole)
    assert whole.shape == (2900, 5) and (whole.sum(1) == 1).all()


def test_structrfm_windows_on_a_2900_nt_chain_are_close_to_the_whole_chain():
    _structrfm()
    e = make_embedder("structrfm", max_length=3002, **TINY)  # reads 3,000 nt at once
    seq = _random_chain(2900, seed=1)
    whole = e.embed(seq)
    e.max_length = 512  # the same weights, 512 nt at a time, as structRFM base reads
    win = e.embed(seq)
    assert win.shape == whole.shape == (2900, 32) and np.isfinite(win).all()

    def cos(a, b):
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    same = cos(whole, win)
    # another position with the same nucleotide: what the features share without context
    rng = np.random.default_rng(0)
    other = np.array([rng.choice([j for j in range(i % 50, 2900, 50) if seq[j] == seq[i] and j != i])
                      for i in range(0, 2900, 29)])
    baseline = cos(whole[::29], win[other])
    assert same.mean() > 0.7 and same.mean() > baseline.mean() + 0.03


def test_structrfm_batches_give_each_sequence_its_own_features():
    _structrfm()
    e = make_embedder("structrfm", **TINY)
    a, b = "GGUCUCC", "ACGUACGUACGUAAAGC"
    alone = e.embed(a)
    both = e.embed_batch([b, a])
    assert both[1].shape == (7, 32) and both[0].shape == (17, 32)
    np.testing.assert_allclose(both[1], alone, atol=1e-4)  # padding does not leak into a shorter sequence


# ------------------------------------------------------------------ errors
def test_structrfm_without_a_checkpoint_says_what_to_do(monkeypatch):
    _structrfm()
    monkeypatch.delenv("structRFM_checkpoint", raising=False)
    with pytest.raises(ConfigError) as err:
        make_embedder("structrfm")
    msg = str(err.value)
    assert "\n" not in msg and "structRFM_checkpoint.tar.gz" in msg and "--checkpoint" in msg


def test_a_checkpoint_folder_without_its_config_is_named(tmp_path):
    _structrfm()
    with pytest.raises(ConfigError, match=f"{tmp_path}.*config.json"):
        make_embedder("structrfm", checkpoint=tmp_path)


def test_without_the_extra_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "structRFM", None)
    monkeypatch.setitem(sys.modules, "structRFM.infer", None)
    with pytest.raises(MissingDependencyError) as err:
        make_embedder("structrfm", random_weights=True)
    assert "pip install 'rnamotif-data[embed]'" in str(err.value) and "\n" not in str(err.value)


def test_the_cli_gives_one_line_without_a_checkpoint(demo_store, tmp_path):
    _structrfm()
    env = {k: v for k, v in __import__("os").environ.items() if k != "structRFM_checkpoint"}
    env["PYTHONPATH"] = str(REPO)  # the tree under test, not an installed copy
    r = subprocess.run([sys.executable, "-m", "rnamotif_data", "embed", demo_store, "--embedder", "structrfm"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: structRFM needs its pretrained weights"), r.stderr


# ------------------------------------------------------------------ chains and cache
class _Counting(OneHotEmbedder):
    calls = 0

    def _embed_short(self, sequences):
        type(self).calls += len(sequences)
        return super()._embed_short(sequences)


def test_chains_are_embedded_once_and_cached_on_disk(tmp_path):
    model = read_model(SMALL_MODEL, name="6V5B")
    seqs = [c.sequence for c in chain_sequences(model).values()]
    e = _Counting()
    cache = EmbeddingCache(tmp_path / "cache")
    first = embed_chains(e, seqs + seqs, cache)  # the same chain twice: embedded once
    assert _Counting.calls == len(set(seqs))
    again = embed_chains(e, seqs, EmbeddingCache(tmp_path / "cache"))  # a new process: from disk
    assert _Counting.calls == len(set(seqs))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float16
    # a damaged entry is recomputed, not trusted
    entry = next((tmp_path / "cache").rglob("*.npy"))
    entry.write_bytes(b"not an array")
    embed_chains(e, seqs, EmbeddingCache(tmp_path / "cache"))
    assert _Counting.calls == len(set(seqs)) + 1


def test_modified_residues_embed_as_their_parents(tmp_path):
    text = SMALL_MODEL.read_text().splitlines()
    model = read_model(SMALL_MODEL, name="6V5B")
    first_u = next(r for r, n in zip(model.atoms.residues, model.atoms.residue_names) if n == "U")
    out = []
    for line in text:  # the first uridine as pseudouridine (PSU), a HETATM record as deposited
        if line.startswith("ATOM") and line[17:20].strip() == "U" and int(line[22:26]) == first_u.seq_num \
                and line[21] == first_u.chain:
            line = "HETATM" + line[6:17] + "PSU" + line[20:]
        out.append(line)
    path = tmp_path / "6v5b-psu.pdb"
    path.write_text("\n".join(out) + "\n")
    modified = read_model(path, name="6V5B")
    assert "PSU" in modified.atoms.residue_names
    a, b = chain_sequences(model), chain_sequences(modified)
    assert {c: s.sequence for c, s in a.items()} == {c: s.sequence for c, s in b.items()}
    e = OneHotEmbedder()
    for c in a:
        np.testing.assert_array_equal(e.embed(a[c].sequence), e.embed(b[c].sequence))


# ------------------------------------------------------------------ the store
@pytest.fixture()
def embedded_store(demo_store, tmp_path) -> str:
    """A copy of the small demo store with one-hot features."""
    from rnamotif_data.cli.embed import main as embed_main

    root = tmp_path / "demo.zarr"
    shutil.copytree(demo_store, root)
    assert embed_main([str(root), "--embedder", "onehot", "--no-progress", "--cache-dir", str(tmp_path / "c")]) == 0
    return str(root)


@pytest.fixture()
def structrfm_store(embedded_store, tmp_path) -> str:
    """``embedded_store`` with tiny structRFM features too; its tests skip, naming the
    [embed] extra, where structRFM is not installed (never a silently smaller store)."""
    from rnamotif_data.cli.embed import main as embed_main

    _structrfm()
    assert embed_main([embedded_store, "--embedder", "structrfm", "--random-weights", "--size", "32,2,2", "--no-progress",
                       "--cache-dir", str(tmp_path / "c")]) == 0
    return embedded_store


def test_stored_features_paint_the_stores_own_nucleotides(embedded_store):
    store = open_store(embedded_store)
    feats = open_features(store, "onehot")
    meta = store.metadata
    assert feats.attrs["model"] == "onehot" and feats.attrs["store_config_hash"] == store.attrs["config_hash"]
    for i in range(len(store)):
        f, mask = feats.residues(i)
        assert len(f) == meta["n_residues"].iloc[i]
        if meta["sequence"].iloc[i] is not None:
            assert "".join("ACGUN"[k] for k in np.asarray(f, np.float32).argmax(1)) == meta["sequence"].iloc[i]
            assert mask.all()
        a = store.read(i, ["labels", "nucleotide"])
        painted = paint(store.cube_shape, a["labels"], feats.slots(i), np.asarray(f, np.float32))
        on = a["labels"] > 0
        # the one-hot of each voxel's residue is the build's own nucleotide id there
        np.testing.assert_array_equal(painted[:, on].argmax(0) + 1, a["nucleotide"][on])
        assert not painted[:, ~on].any()
        c, own = feats.context(i)
        assert own.sum() == mask.sum() and len(c) >= len(f)


def test_a_store_without_features_stays_valid_and_verify_checks_them(demo_store, embedded_store, tmp_path):
    from rnamotif_data.release.verify import verify_store

    assert verify_store(demo_store)[0] == []
    assert verify_store(embedded_store)[0] == []
    store = open_store(embedded_store)
    slot = Path(embedded_store) / "features" / "onehot" / "voxel_slot.npy"
    damaged = np.load(slot)
    damaged[0] = 0 if damaged[0] else 1
    np.save(slot, damaged)
    problems = verify_store(embedded_store)[0]
    assert any("features/onehot" in p and "voxel_slot.npy: sha256" in p for p in problems)
    # features made for another build of the store are refused
    other = tmp_path / "other.zarr"
    shutil.copytree(embedded_store, other)
    meta = other / "metadata.parquet"
    import pyarrow.parquet as pq

    from rnamotif_data.storage.checksums import write_checksums

    t = pq.read_table(meta)
    pq.write_table(t.slice(0, len(t)), meta, compression="snappy", row_group_size=3)
    write_checksums(str(other))
    with pytest.raises(StoreError, match="another build of the store"):
        open_features(open_store(str(other)), "onehot")
    assert verify_features(store, "onehot")  # the damaged slot file


def test_embed_refuses_to_replace_features_without_overwrite(embedded_store):
    from rnamotif_data.cli.embed import main as embed_main

    with pytest.raises(StoreError, match="--overwrite"):
        embed_main([embedded_store, "--embedder", "onehot", "--no-progress"])


# ------------------------------------------------------------------ the dataset and training
def test_dataset_items_carry_residue_features_and_seq_proj(structrfm_store):
    torch = pytest.importorskip("torch")
    from rnamotif_data.learn.dataset import RNAMotifDataset
    from rnamotif_data.release.verify import verify_store

    embedded_store = structrfm_store
    assert verify_store(embedded_store)[0] == []  # both feature sets are checked
    assert sorted(p.name for p in (Path(embedded_store) / "features").iterdir()) == ["onehot", "structrfm-random"]

    ds = RNAMotifDataset(embedded_store, split="all", channels=("density", "seq_proj"), sequence="structrfm-random",
                         projection_dim=4)
    (x, s, m), y = ds[0]
    n_res = int(ds.metadata["n_residues"].iloc[0])
    assert x.shape == (5, *ds.cube_shape) and s.shape == (ds.max_residues, 32) and m.dtype == torch.bool
    assert int(m.sum()) == n_res and not s[n_res:].any()
    labels = open_store(embedded_store).read(int(ds.indices[0]), ["labels"])["labels"]
    assert not x[1:, torch.from_numpy(labels == 0)].any()  # painted only where a residue is
    assert x[1:, torch.from_numpy(labels > 0)].abs().sum() > 0
    loader = torch.utils.data.DataLoader(ds, batch_size=3)
    (bx, bs, bm), by = next(iter(loader))
    assert bx.shape[0] == bs.shape[0] == bm.shape[0] == by.shape[0] == 3
    # the projection is stored next to the split and read back
    assert list((Path(embedded_store) / "splits").glob("similarity-all-all-structrfm-random-pca4.npz"))
    again = RNAMotifDataset(embedded_store, split="all", channels=("density", "seq_proj"), sequence="structrfm-random",
                            projection_dim=4)
    np.testing.assert_array_equal(again.projection.components, ds.projection.components)
    with pytest.raises(ConfigError, match="sequence="):
        RNAMotifDataset(embedded_store, split="all", channels=("density", "seq_proj"))
    with pytest.raises(StoreError, match="rnamotif embed"):
        RNAMotifDataset(embedded_store, split="all", sequence="nosuch")


def test_the_projection_sees_only_training_residues():
    from rnamotif_data.features.projection import fit_projection

    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 6)) * np.array([5, 1, 1, 1, 1, 1])
    p = fit_projection(train, 2)
    assert abs(abs(p.components[0, 0]) - 1) < 0.05  # the training data's main axis
    assert p.apply(train[:3], np.array([True, False, True]))[1].tolist() == [0.0, 0.0]


def test_one_epoch_of_the_multimodal_network(structrfm_store, tmp_path):
    embedded_store = structrfm_store
    from rnamotif_data.learn.evaluate import Evaluator
    from rnamotif_data.learn.train import TrainConfig, train

    cfg = TrainConfig(root=embedded_store, out=str(tmp_path / "run"), split="all", network="motif3dcnn_seq",
                      sequence="structrfm-random", epochs=1, batch_size=4)
    last = train(cfg, progress=False)
    assert np.isfinite(last["train_loss"])
    ev = Evaluator.from_checkpoint(tmp_path / "run" / "best.pt")
    assert ev.checkpoint["seq_dim"] == 32
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["sequence"] == "structrfm-random"
    with pytest.raises(ConfigError, match="--sequence"):
        TrainConfig(root=embedded_store, out=str(tmp_path / "x"), network="motif3dcnn_seq")


def test_recode_keeps_the_features_and_a_rebuild_knows_them_as_its_own(embedded_store, tmp_path):
    from rnamotif_data.learn.dataset import RNAMotifDataset
    from rnamotif_data.release.recode import recode_store
    from rnamotif_data.storage.outdir import foreign_files

    RNAMotifDataset(embedded_store, split="all", channels=("density", "seq_proj"), sequence="onehot", projection_dim=2)
    assert foreign_files(embedded_store) == []  # --overwrite may delete them: this package wrote every one
    copy = recode_store(embedded_store, str(tmp_path / "zstd.zarr"), "zstd", progress=False)
    a, b = open_features(open_store(embedded_store), "onehot"), open_features(open_store(copy), "onehot")
    np.testing.assert_array_equal(a.arrays["voxel_slot"], b.arrays["voxel_slot"])


def test_samples_whose_model_is_missing_keep_masked_rows_and_the_store_verifies(demo_store, tmp_path):
    from rnamotif_data.cli.embed import main as embed_main
    from rnamotif_data.release.verify import verify_store

    root = tmp_path / "demo.zarr"
    shutil.copytree(demo_store, root)
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    assert embed_main([str(root), "--embedder", "onehot", "--mirror", str(empty), "--no-progress",
                       "--cache", str(tmp_path / "cache")]) == 0
    store = open_store(str(root))
    feats = open_features(store, "onehot")
    assert (np.asarray(feats.arrays["residue_row"]) == -1).all()  # no model, no features: masked, never guessed
    assert json.loads((feats.path / "attrs.json").read_text())["summary"]["samples_without_features"] == {
        "6V5B: model not read": len(store)}
    assert verify_store(str(root))[0] == []


def test_the_stores_attributes_list_each_feature_set_and_verify_holds_them_to_it(embedded_store):
    from rnamotif_data.release.verify import verify_store
    from rnamotif_data.storage.layout import set_attrs

    store = open_store(embedded_store)
    listed = store.attrs["sequence_features"]["onehot"]
    assert listed["model"] == "onehot" and listed["dim"] == 5
    # the listing is outside the attributes' checksum (added after the build), so the store still opens
    stale = dict(store.attrs["sequence_features"], onehot=dict(listed, attrs_sha256="0" * 64))
    set_attrs(embedded_store, {"sequence_features": stale})
    problems = verify_store(embedded_store)[0]
    assert problems == [f"features/onehot: {Path(embedded_store) / 'features' / 'onehot'}: the store's attributes "
                        "(sequence_features) describe other features than attrs.json"]
    shutil.rmtree(Path(embedded_store) / "features" / "onehot")
    assert any("features/onehot" in p and "attrs.json" in p for p in verify_store(embedded_store)[0])
