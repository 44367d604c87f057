"""Chunk codecs of the cube arrays (rnamotif_data.storage.shards): every codec stores the same
cubes, reads them back exactly through the direct reader and through zarr, refuses damage,
and feeds the dataset the same masked density."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnamotif_data.errors import ConfigError, StoreError
from rnamotif_data.learn.dataset import RNAMotifDataset
from rnamotif_data.storage.layout import ARRAYS, FORMAT_VERSION, stored_arrays
from rnamotif_data.storage.shards import CODECS, DEFAULT_CODEC, array_codec, check_codec, mask_density
from rnamotif_data.storage.store import open_store

STORED = stored_arrays(FORMAT_VERSION)

ZARR_NAME = {"lz4": "blosc", "zstd": "zstd"}


@pytest.fixture(scope="module")
def codec_stores(demo_store, tmp_path_factory):
    """The demo built once per non-default codec (the default is ``demo_store``)."""
    from rnamotif_data.cli.build import main as build_main

    stores = {DEFAULT_CODEC: demo_store}
    for codec in CODECS:
        if codec != DEFAULT_CODEC:
            out = tmp_path_factory.mktemp(f"demo-{codec}") / "demo.zarr"
            assert build_main(["--demo", "small", "--out", str(out), "--scheduler", "synchronous", "--no-progress",
                               "--codec", codec]) == 0
            stores[codec] = str(out)
    return stores


def _inner_codecs(root: str, name: str) -> list[str]:
    meta = json.loads((Path(root) / name / "zarr.json").read_text())
    return [c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]]


def test_each_codec_stores_the_same_cubes(codec_stores):
    ref = open_store(codec_stores[DEFAULT_CODEC]).read_batch(slice(None), STORED)
    for codec, root in codec_stores.items():
        store = open_store(root)
        inner = _inner_codecs(root, "density")
        assert inner == ["bytes", *([ZARR_NAME[codec]] if codec in ZARR_NAME else []), "crc32c"], codec
        for name in ("zone", "labels", "nucleotide"):  # the label arrays are always compressed
            assert _inner_codecs(root, name) == ["bytes", ZARR_NAME["zstd" if codec == "zstd" else "lz4"], "crc32c"]
        assert store.attrs["build_config"]["codec"] == codec
        assert _inner_codecs(root, "density_masked") == inner
        assert store.array_names == STORED and set(store._fast_readers()) == set(STORED)  # direct reader, every codec
        order = np.random.default_rng(1).permutation(len(store))
        fast = store.read_batch(order, STORED)
        arrays = store.arrays()
        for name in STORED:
            np.testing.assert_array_equal(fast[name], ref[name][order], err_msg=f"{codec} {name}")
            np.testing.assert_array_equal(np.asarray(arrays[name][:]), ref[name], err_msg=f"zarr {codec} {name}")


def test_store_sizes_follow_the_codecs(codec_stores):
    """No timing here (benchmarks/bench_loader.py); the disk trade-off is physical: the
    uncompressed store is the largest, zstd the smallest."""
    def size(root):
        return sum(f.stat().st_size for f in (Path(root) / "density").rglob("*") if f.is_file())

    sizes = {c: size(r) for c, r in codec_stores.items()}
    assert sizes["zstd"] < sizes["lz4"] < sizes["none"]


@pytest.mark.parametrize("codec", list(CODECS))
def test_a_damaged_chunk_fails_for_every_codec(codec, codec_stores, tmp_path):
    import shutil

    root = tmp_path / "d.zarr"
    shutil.copytree(codec_stores[codec], root)
    shard = root / "density" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    store = open_store(root)
    off = int(store._fast_readers()["density"]._shard_index(0)[2][0])
    data[off + 100] ^= 0xFF  # inside sample 2's chunk
    shard.write_bytes(bytes(data))
    store = open_store(root)
    with pytest.raises(StoreError, match=r"array density: sample 2 is damaged \(CRC32C mismatch\)"):
        store.read_batch([1, 2])
    assert store.read_batch([0, 1, 3])["density"].shape == (3, 40, 40, 40)  # the others still read


@pytest.mark.parametrize("codec", list(CODECS))
def test_dataset_masks_every_sample_of_a_batch(codec, codec_stores):
    store = open_store(codec_stores[codec])
    raw = store.read_batch(slice(None), arrays=("density", "zone"))
    ds = RNAMotifDataset(codec_stores[codec], split="all", channels=("density", "zone"))
    x, _ = ds.get_batch(np.arange(len(ds))[::-1])
    want = raw["density"].astype(np.float32) * raw["zone"]
    np.testing.assert_array_equal(x[:, 0].numpy(), want[::-1])
    np.testing.assert_array_equal(x[:, 1].numpy(), raw["zone"][::-1].astype(np.float32))
    assert (raw["density"] * ~raw["zone"] != 0).any()  # the mask removes real density
    np.testing.assert_array_equal(store.read_batch(slice(None), ["density_masked"])["density_masked"],
                                  raw["density"] * raw["zone"])  # the stored model input


def test_mask_density_equals_multiply_and_copies_read_only_input():
    rng = np.random.default_rng(0)
    dens = rng.random((3, 5, 6, 7)).astype(np.float16)
    zone = rng.random((3, 5, 6, 7)) > 0.5
    want = dens * zone
    ro = dens.copy()
    ro.flags.writeable = False
    got = mask_density(ro, zone)
    np.testing.assert_array_equal(got, want)
    assert got is not ro and np.array_equal(ro, dens)  # the read-only input is untouched
    assert torch.equal(torch.from_numpy(mask_density(dens.copy(), zone)).float(), torch.from_numpy(want).float())


@pytest.mark.parametrize("codec, level, message", [
    ("lz5", None, "codec must be one of lz4, zstd, none, got 'lz5'"),
    ("lz4", 10, "compression_level must be a lz4 level from 1 to 9, got 10"),
    ("zstd", 0, "compression_level must be a zstd level from 1 to 22, got 0"),
    ("none", 3, "compression_level does not apply to codec 'none', got 3"),
])
def test_bad_codec_settings_are_refused(codec, level, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_codec(codec, level)
    assert check_codec("zstd", None) == 3 and check_codec("lz4", 9) == 9 and check_codec("none", None) is None
    assert [array_codec(n, "none") for n in ARRAYS] == ["none", "lz4", "lz4", "lz4"]


# ---------------------------------------------------------------------- rnamotif_data.release.recode
def test_recode_copies_a_store_to_another_codec(multi_entry_store, tmp_path, capsys):
    """A store with a split recoded to ``none``: the same cubes, tables and split, a
    store that verifies, and a dataset with the same items and split fingerprint."""
    import shutil

    from rnamotif_data.cli import run
    from rnamotif_data.cli.recode import main as recode_main
    from rnamotif_data.cli.split import main as split_main
    from rnamotif_data.release.verify import verify_store

    src = tmp_path / "src.zarr"
    shutil.copytree(multi_entry_store, src)
    assert run(split_main, [str(src)]) == 0
    out = tmp_path / "fast.zarr"
    assert run(recode_main, [str(src), "--codec", "none", "--out", str(out), "--no-progress"]) == 0
    a, b = open_store(src), open_store(out)
    assert _inner_codecs(str(out), "density") == ["bytes", "crc32c"]
    assert b.attrs["build_config"]["codec"] == "none" and b.attrs["recoded_from"]["codec"] == DEFAULT_CODEC
    assert b.attrs["config_hash"] == a.attrs["config_hash"] and b.attrs["dataset_version"] == a.attrs["dataset_version"]
    for name, arr in a.read_batch(slice(None)).items():
        np.testing.assert_array_equal(b.read_batch(slice(None))[name], arr)
    assert (out / "metadata.parquet").read_bytes() == (src / "metadata.parquet").read_bytes()
    assert sorted(p.name for p in (out / "splits").iterdir()) == sorted(p.name for p in (src / "splits").iterdir())
    problems, _ = verify_store(str(out))
    assert problems == []
    da, db = RNAMotifDataset(src, split="fold2", subset="test"), RNAMotifDataset(out, split="fold2", subset="test")
    assert da.split_fingerprint == db.split_fingerprint and len(da) == len(db) > 0
    assert torch.equal(da.get_batch(range(len(da)))[0], db.get_batch(range(len(db)))[0])
    # an existing store is never overwritten, and a bad setting is one line
    capsys.readouterr()
    assert run(recode_main, [str(src), "--codec", "zstd", "--out", str(out)]) == 1
    assert "already holds a store" in capsys.readouterr().err
    assert run(recode_main, [str(src), "--codec", "none", "--compression-level", "3", "--out",
                             str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: compression_level does not apply to codec 'none', got 3" and not (tmp_path / "x").exists()


def test_recode_of_a_damaged_store_stops_and_leaves_nothing(codec_stores, tmp_path, capsys):
    import shutil

    from rnamotif_data.cli import run
    from rnamotif_data.cli.recode import main as recode_main

    src = tmp_path / "d.zarr"
    shutil.copytree(codec_stores["zstd"], src)
    shard = src / "labels" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[20] ^= 0xFF
    shard.write_bytes(bytes(data))
    out = tmp_path / "out.zarr"
    assert run(recode_main, [str(src), "--codec", "lz4", "--out", str(out), "--no-progress"]) == 1
    assert "array labels: sample 0 is damaged (CRC32C mismatch)" in capsys.readouterr().err
    assert not out.exists()


def test_config_hash_covers_content_not_storage():
    from rnamotif_data.pipeline.config import BuildConfig

    assert BuildConfig(codec="zstd", compression_level=9).config_hash() == BuildConfig().config_hash()
    assert BuildConfig(shard_size=32).config_hash() != BuildConfig().config_hash()


def _as_format_4(src: str, dst: Path) -> str:
    """A copy of ``src`` as a format-4 store (no ``density_masked``), checksums rewritten."""
    import shutil

    import zarr

    from rnamotif_data.storage.checksums import write_checksums
    from rnamotif_data.storage.layout import set_attrs

    shutil.copytree(src, dst)
    shutil.rmtree(dst / "density_masked")
    meta = json.loads((dst / "zarr.json").read_text())
    meta.get("consolidated_metadata") and meta.pop("consolidated_metadata")
    (dst / "zarr.json").write_text(json.dumps(meta))
    set_attrs(str(dst), {"format_version": 4})
    assert "density_masked" not in zarr.open_group(str(dst), mode="r")
    write_checksums(str(dst))
    return str(dst)


def test_masked_items_come_from_density_masked_and_equal_the_format_4_path(demo_store, tmp_path, monkeypatch):
    """Format 5 reads the stored model input (one array); a format-4 store (no
    density_masked) masks density by zone as before: the same items, and a format-4
    store still opens, verifies and refuses a request for the array it lacks."""
    from rnamotif_data.release.verify import verify_store
    from rnamotif_data.storage.store import RNAMotifStore

    old = _as_format_4(demo_store, tmp_path / "v4.zarr")
    assert open_store(old).array_names == ARRAYS and verify_store(old)[0] == []
    with pytest.raises(StoreError, match=r"no array 'density_masked' in this store \(format 4"):
        open_store(old).read_batch([0], ["density_masked"])
    seen = []
    real = RNAMotifStore.iter_samples

    def spy(self, indices, arrays):
        seen.append(tuple(arrays))
        return real(self, indices, arrays)

    monkeypatch.setattr(RNAMotifStore, "iter_samples", spy)
    new_x, _ = RNAMotifDataset(demo_store, split="all").get_batch(range(7))
    old_x, _ = RNAMotifDataset(old, split="all").get_batch(range(7))
    assert seen == [("density_masked",), ("density", "zone")]
    assert torch.equal(new_x, old_x) and (new_x != 0).any()


def test_verify_reports_a_density_masked_that_differs(demo_store, tmp_path):
    import shutil

    import zarr

    from rnamotif_data.release.verify import verify_store
    from rnamotif_data.storage.checksums import write_checksums

    root = tmp_path / "t.zarr"
    shutil.copytree(demo_store, root)
    arr = zarr.open_group(str(root), mode="r+")["density_masked"]
    cube = np.asarray(arr[3])
    cube[cube == 0] = 0.5  # out-of-zone voxels that are not zero
    arr[3] = cube
    write_checksums(str(root))
    problems, _ = verify_store(str(root))
    assert problems == ["density_masked: sample 3 differs from density * zone"]


def test_recode_upgrades_a_format_4_store(demo_store, tmp_path):
    """A format-4 store (no density_masked) recoded: the copy is format 5, derives
    density_masked, verifies, and gives the same masked items."""
    from rnamotif_data.release.recode import recode_store
    from rnamotif_data.release.verify import verify_store

    old = _as_format_4(demo_store, tmp_path / "v4.zarr")
    out = recode_store(old, str(tmp_path / "v5.zarr"), "zstd", progress=False)
    copy = open_store(out)
    assert copy.attrs["format_version"] == FORMAT_VERSION and copy.attrs["recoded_from"]["format_version"] == 4
    assert copy.array_names == STORED and verify_store(out)[0] == []
    a, _ = RNAMotifDataset(old, split="all").get_batch(range(7))
    b, _ = RNAMotifDataset(out, split="all").get_batch(range(7))
    assert torch.equal(a, b)
