"""rnamotif verify on a store with volumes and tiles (issue 36): a sound store passes; a
damaged block, a changed label volume, a tile of a missing entry and wrong counts are
each named in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnamotif_data.release.verify import verify_store
from rnamotif_data.release.verify_volumes import has_volumes, verify_volumes
from rnamotif_data.storage.layout import get_attrs
from rnamotif_data.storage.volumes import TILE_SCHEMA, VOLUME_SCHEMA


@pytest.fixture
def copy(tiled_store, tmp_path) -> Path:
    out = tmp_path / "copy.zarr"
    shutil.copytree(tiled_store, out)
    return out


def _entry(root) -> str:
    return pq.read_table(Path(root) / "volumes.parquet").column("entry")[0].as_py()


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _rewrite(path: Path, schema: pa.Schema, edit) -> None:
    rows = pq.read_table(path).to_pylist()
    edit(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def test_a_sound_tiled_store_passes(tiled_store):
    assert has_volumes(tiled_store, get_attrs(tiled_store))
    assert verify_store(tiled_store)[0] == []
    assert verify_store(tiled_store, values=False)[0] == []


def test_a_store_without_tiles_has_no_volume_checks(demo_store):
    assert not has_volumes(demo_store, get_attrs(demo_store))


def test_a_damaged_element_block_is_named(copy):
    entry = _entry(copy)
    shard = copy / "volumes" / entry / "element" / "c" / "1" / "0" / "0" / "0"
    _flip(shard, 40)  # inside the first block's compressed bytes
    problems, _ = verify_store(str(copy))
    assert f"volumes/{entry}/element/c/1/0/0/0: sha256 differs from checksums.sha256" in [
        p.removeprefix("checksums: ") for p in problems]
    decoded = [p for p in problems if p.startswith(f"volumes/{entry}:")]
    assert len(decoded) == 1 and f"volumes/{entry}/element" in decoded[0] and "\n" not in decoded[0], problems
    # without values only the checksum names it
    assert [p for p in verify_store(str(copy), values=False)[0] if "element" in p] == [
        f"checksums: volumes/{entry}/element/c/1/0/0/0: sha256 differs from checksums.sha256"]


def test_a_changed_label_volume_fails_its_checksum(copy):
    entry = _entry(copy)
    shard = copy / "volumes" / entry / "density" / "c" / "0" / "0" / "0" / "0"
    _flip(shard, shard.stat().st_size // 2)
    problems, _ = verify_store(str(copy), values=False)
    assert problems == [f"checksums: volumes/{entry}/density/c/0/0/0/0: sha256 differs from checksums.sha256"]


def test_a_tile_of_a_missing_entry_is_named(copy):
    _rewrite(copy / "tiles.parquet", TILE_SCHEMA, lambda rows: rows[3].update(entry="9ZZZ_EMD-1"))
    problems = verify_volumes(str(copy), get_attrs(str(copy)))
    assert any(p.startswith("tiles.parquet: row 3 (entry 9ZZZ_EMD-1") and "has no volumes" in p
               for p in problems), problems
    assert any("n_tiles" in p for p in problems), problems  # the entry's count no longer matches


def test_wrong_tile_counts_and_origins_are_named(copy):
    def edit(rows):
        v = rows[5]["voxels_per_element"]
        v[0], v[1] = v[1], v[0]  # same sum: only the decoded volumes tell
        rows[7]["origin_voxel"] = [1, 0, 0]

    _rewrite(copy / "tiles.parquet", TILE_SCHEMA, edit)
    problems = verify_volumes(str(copy), get_attrs(str(copy)))
    assert any(p.startswith("tiles.parquet: row 7") and "origin_voxel" in p for p in problems), problems
    assert any("tiles [5, 7]" in p and "voxels_per_element" in p for p in problems), problems
    assert not any("tiles [5" in p for p in verify_volumes(str(copy), get_attrs(str(copy)), values=False))


def test_wrong_entry_counts_are_named(copy):
    def edit(rows):
        v = rows[0]["voxels_per_element"]
        v[0], v[1] = v[0] - 1, v[1] + 1

    _rewrite(copy / "volumes.parquet", VOLUME_SCHEMA, edit)
    problems = verify_volumes(str(copy), get_attrs(str(copy)))
    assert any("voxels_per_element" in p and "decoded element volume" in p for p in problems), problems


def test_a_missing_array_and_a_foreign_folder_are_named(copy):
    entry = _entry(copy)
    shutil.rmtree(copy / "volumes" / entry / "part")
    (copy / "volumes" / "notes").mkdir()
    problems = verify_volumes(str(copy), get_attrs(str(copy)))
    assert f"volumes/{entry}/part: missing or unreadable zarr.json (FileNotFoundError)" in problems
    assert "volumes/notes: not an entry of volumes.parquet" in problems
    # the entry's arrays are damaged: its tiles are not read, and say so
    assert any(p.startswith("tiles.parquet: row 0") for p in problems)


def test_a_missing_table_is_named(copy):
    (copy / "instances.parquet").unlink()
    problems = verify_volumes(str(copy), get_attrs(str(copy)))
    assert len(problems) == 1 and problems[0].startswith("instances.parquet: cannot be read")


def test_tiles_of_a_large_grid_are_read_as_their_blocks(copy, monkeypatch):
    """Above WHOLE_GRID_VOXELS the tiles are read box by box (up to SAMPLED_TILES of them)."""
    import rnamotif_data.release.verify_volumes as vv

    monkeypatch.setattr(vv, "WHOLE_GRID_VOXELS", 0)
    assert verify_volumes(str(copy), get_attrs(str(copy))) == []

    def edit(rows):
        v = rows[5]["voxels_per_element"]
        v[0], v[1] = v[1], v[0]

    _rewrite(copy / "tiles.parquet", TILE_SCHEMA, edit)
    assert any("tiles [5]" in p for p in verify_volumes(str(copy), get_attrs(str(copy))))
    monkeypatch.setattr(vv, "SAMPLED_TILES", 3)  # a sample of 3 of the 72 tiles: fewer reads
    problems = verify_volumes(str(copy), get_attrs(str(copy)))
    assert all("tiles [" not in p or "tiles [5]" in p for p in problems)
