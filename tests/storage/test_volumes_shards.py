"""The volumes' shards are encoded by the package itself: they must be the bytes Zarr writes,
and read back through Zarr and the checking reader alike (issue 36)."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest
import zarr

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.layout import zarr_location
from rnamotif_data.storage.volumes import (
    VOLUME_ARRAYS,
    VOLUME_DTYPES,
    VOLUMES,
    VolumeReader,
    create_volume_arrays,
    write_block_row,
)


def _blocks(rng, n: int, B: int) -> dict[str, np.ndarray]:
    density = np.zeros((n, B, B, B), np.float16)
    density[: n // 2] = rng.random((n // 2, B, B, B)).astype(np.float16)  # half noisy, half empty blocks
    labels = {name: np.where(rng.random((n, B, B, B)) < 0.05, rng.integers(1, 6, (n, B, B, B)), 0)
              .astype(VOLUME_DTYPES[name]) for name in VOLUME_ARRAYS if name != "density"}
    return {"density": density, **labels}


@pytest.mark.parametrize("codec", ["lz4", "zstd", "none"])
def test_our_shards_are_zarrs_bytes(tmp_path, codec):
    root = str(tmp_path / "s.zarr")
    zarr.open_group(root, mode="w")
    rng = np.random.default_rng(0)
    B, blocks_zyx = 8, (2, 2, 3)
    per_row = blocks_zyx[1] * blocks_zyx[2]
    for entry in ("ours", "zarrs"):
        create_volume_arrays(root, entry, blocks_zyx, B, codec)
    rows = [_blocks(rng, per_row, B) for _ in range(blocks_zyx[0])]
    for r, data in enumerate(rows):
        write_block_row(root, "ours", r, data)
        group = zarr.open_group(zarr_location(f"{root}/{VOLUMES}/zarrs"), mode="r+")
        for name in VOLUME_ARRAYS:
            arr = cast("zarr.Array", group[name]).with_config({"write_empty_chunks": True})
            arr[r * per_row:(r + 1) * per_row] = data[name]
    for name in VOLUME_ARRAYS:
        for r in range(blocks_zyx[0]):
            ours = (tmp_path / "s.zarr" / VOLUMES / "ours" / name / "c" / str(r) / "0" / "0" / "0").read_bytes()
            theirs = (tmp_path / "s.zarr" / VOLUMES / "zarrs" / name / "c" / str(r) / "0" / "0" / "0").read_bytes()
            assert ours == theirs, (name, r)
        back = zarr.open_array(f"{root}/{VOLUMES}/ours/{name}", mode="r")[:]
        np.testing.assert_array_equal(back, np.concatenate([d[name] for d in rows]))
    grid = (blocks_zyx[0] * B - 3, blocks_zyx[1] * B, blocks_zyx[2] * B - 5)
    box = VolumeReader(root, "ours", grid, B).read_box((0, 0, 0), grid, VOLUME_ARRAYS)
    whole = np.concatenate([d["element"] for d in rows]).reshape(blocks_zyx[0], blocks_zyx[1], blocks_zyx[2], B, B, B)
    whole = whole.transpose(0, 3, 1, 4, 2, 5).reshape(blocks_zyx[0] * B, blocks_zyx[1] * B, blocks_zyx[2] * B)
    np.testing.assert_array_equal(box["element"], whole[:grid[0], :grid[1], :grid[2]])


def test_a_row_of_the_wrong_size_is_refused(tmp_path):
    root = str(tmp_path / "s.zarr")
    zarr.open_group(root, mode="w")
    create_volume_arrays(root, "e", (1, 2, 2), 8, "lz4")
    data = _blocks(np.random.default_rng(1), 3, 8)
    with pytest.raises(StoreError, match="block row 0 has 3 blocks, expected 4"):
        write_block_row(root, "e", 0, data)
