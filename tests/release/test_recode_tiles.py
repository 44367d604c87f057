"""Recoding a store built with --tiles keeps its volumes, tables and tile split (issue 36)."""

from __future__ import annotations

from rnamotif_data.learn.tiles import RNAMotifTiles
from rnamotif_data.release.recode import recode_store
from rnamotif_data.release.verify import verify_store


def test_recode_copies_the_volumes_and_the_tile_split(tiled_training_store, tmp_path):
    out = tmp_path / "zstd.zarr"
    recode_store(tiled_training_store, str(out), "zstd")
    src = RNAMotifTiles(tiled_training_store, "fold2", "val")
    dst = RNAMotifTiles(out, "fold2", "val")
    assert dst.split_fingerprint == src.split_fingerprint and len(dst) == len(src)
    for i in (0, len(src) - 1):
        a, b = src[i], dst[i]
        assert (a["density"] == b["density"]).all() and (a["element"] == b["element"]).all()
    problems, _ = verify_store(str(out))
    assert problems == []
