"""The one store writer (rnamotif_data.storage.writer) and the typed rows of the two tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.checksums import check_checksums
from rnamotif_data.storage.layout import (
    ARRAY_DTYPES,
    ARRAYS,
    FAILURES_COLUMNS,
    METADATA_COLUMNS,
    failures_row,
    get_attrs,
    metadata_row,
)
from rnamotif_data.storage.lock import LOCK_FILE
from rnamotif_data.storage.store import open_store
from rnamotif_data.storage.writer import ArraySpec, StoreTables, StoreUpdate, StoreWriter

SHAPE = (4, 4, 4)
SPEC = ArraySpec(SHAPE, shard_size=2)
ATTRS = {"format_version": 5, "dataset_version": "test", "config_hash": "c", "manifest_sha256": "m",
         "class_names": ["a"], "voxel_size": 1.0, "cube_shape": list(SHAPE), "shard_size": 2}


def _row(k: int, **change) -> dict:
    values = {**dict.fromkeys(c for c in METADATA_COLUMNS if c != "sample_index"),
              "sample_id": f"s{k}", "is_background": False, "pdb_id": "1ABC", "n_atoms": 10 + k}
    return metadata_row(**{**values, **change})


def _cubes(start: int, stop: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(start)
    out = {name: rng.integers(0, 3, size=(stop - start, *SHAPE)).astype(ARRAY_DTYPES[name]) for name in ARRAYS}
    out["zone"] = out["zone"].astype(bool)
    return out


def _write(root, n: int = 3, *, stop_before_complete: bool = False) -> dict[str, np.ndarray]:
    written = {}
    with StoreWriter(str(root), SPEC) as writer:
        writer.begin(ATTRS)
        writer.create_arrays(n + 2)  # an upper bound, as a build sizes its arrays
        written[0] = _cubes(0, 2)
        writer.write_shard(0, written[0])  # whole shards while N is not known
        writer.resize(n)  # then the last, partial one
        written[2] = _cubes(2, n)
        writer.write_shard(2, written[2])
        writer.write_tables(StoreTables(metadata=[_row(k) for k in range(n)],
                                        failures=[failures_row(**{**dict.fromkeys(FAILURES_COLUMNS),
                                                                  "manifest_row": 7, "stage": "map"})]))
        if stop_before_complete:
            return written
        writer.complete({"n_samples": n})
    return written


def test_a_written_store_is_complete_verified_and_reads_back(tmp_path):
    root = tmp_path / "s.zarr"
    written = _write(root)
    store = open_store(str(root))  # refuses anything but a complete store with valid checksums
    assert len(store) == 3 and store.attrs["build_state"] == "complete"
    assert check_checksums(str(root)) == []
    got = store.read_batch(slice(0, 3))
    for name in ARRAYS:
        np.testing.assert_array_equal(got[name], np.concatenate([written[0][name], written[2][name]]))
    np.testing.assert_array_equal(store.read_batch(slice(0, 3), ["density_masked"])["density_masked"],
                                  got["density"] * got["zone"])
    assert store.metadata["sample_index"].tolist() == [0, 1, 2]
    assert store.metadata["n_atoms"].tolist() == [10, 11, 12]
    assert store.failures["manifest_row"].tolist() == [7]
    assert not (root / LOCK_FILE).exists()


def test_an_interrupted_write_stays_building_and_is_refused(tmp_path):
    root = tmp_path / "s.zarr"
    _write(root, stop_before_complete=True)
    assert get_attrs(str(root))["build_state"] == "building"
    assert not (root / LOCK_FILE).exists()  # the lock goes however the writer ends
    with pytest.raises(StoreError, match="incomplete"):
        open_store(str(root))


def test_an_exception_inside_the_writer_releases_the_lock_and_leaves_building(tmp_path):
    root = tmp_path / "s.zarr"
    with pytest.raises(RuntimeError, match="killed"):
        with StoreWriter(str(root), SPEC) as writer:
            writer.begin(ATTRS)
            writer.create_arrays(2)
            raise RuntimeError("killed")
    assert get_attrs(str(root))["build_state"] == "building"
    assert not (root / LOCK_FILE).exists()


def test_the_writer_checks_the_folder_before_any_change_and_writes_only_under_the_lock(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not an rnamotif-data store"):
        StoreWriter(str(tmp_path / "other"), SPEC)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]
    writer = StoreWriter(str(tmp_path / "new"), SPEC)
    assert writer.existing is None and not (tmp_path / "new").exists()
    with pytest.raises(StoreError, match="lock"):
        writer.begin(ATTRS)
    with writer, pytest.raises(StoreError, match="another build"):
        StoreWriter(str(tmp_path / "new"), SPEC).acquire()
    assert writer.created


def test_the_writer_does_not_change_the_callers_rows(tmp_path):
    rows = [_row(k) for k in range(2)]
    before = json.dumps(rows)
    with StoreWriter(str(tmp_path / "s.zarr"), SPEC) as writer:
        writer.begin(ATTRS)
        writer.write_tables(StoreTables(metadata=rows))
    assert json.dumps(rows) == before and "sample_index" not in rows[0]


def test_a_row_stating_another_sample_index_is_refused(tmp_path):
    with StoreWriter(str(tmp_path / "s.zarr"), SPEC) as writer:
        writer.begin(ATTRS)
        with pytest.raises(StoreError, match="sample_index 5"):
            writer.write_tables(StoreTables(metadata=[_row(0, sample_index=5)]))


def test_a_missing_column_raises_naming_it():
    values = dict(_row(0))
    del values["loop_note"]
    with pytest.raises(TypeError, match="missing column.*loop_note"):
        metadata_row(**values)
    with pytest.raises(TypeError, match="missing column.*q_score"):
        failures_row(**{c: None for c in FAILURES_COLUMNS if c != "q_score"})


def test_an_unknown_column_raises_naming_it():
    with pytest.raises(TypeError, match="unknown column.*loop_len"):
        metadata_row(**_row(0), loop_len=[1])
    with pytest.raises(TypeError, match="unknown column.*fitz"):
        failures_row(**dict.fromkeys(FAILURES_COLUMNS), fitz=1.0)


def test_rows_come_in_column_order_with_every_column():
    row = metadata_row(**dict(reversed(list(_row(0).items()))))
    assert list(row) == [c for c in METADATA_COLUMNS if c != "sample_index"]
    assert list(failures_row(**dict.fromkeys(reversed(list(FAILURES_COLUMNS))))) == list(FAILURES_COLUMNS)


def test_a_store_update_changes_only_unhashed_attributes(tmp_path):
    root = tmp_path / "s.zarr"
    _write(root)
    with StoreUpdate(str(root)) as update:
        update.update_attrs({"sequence_features": {"x": {"dim": 4}}})
        with pytest.raises(StoreError, match="voxel_size"):
            update.update_attrs({"voxel_size": 2.0})
        with pytest.raises(StoreError, match="build_state"):
            update.update_attrs({"build_state": "building"})
        folder = root / "features" / "x"
        folder.mkdir(parents=True)
        (folder / "a.npy").write_bytes(b"a")
        sums = update.seal_folder(folder)
    assert list(sums) == ["a.npy"]
    assert (folder / "checksums.sha256").read_text() == f"{sums['a.npy']}  a.npy\n"
    store = open_store(str(root))  # the store's own checksums still hold
    assert store.attrs["sequence_features"] == {"x": {"dim": 4}} and check_checksums(str(root)) == []
    assert not (root / LOCK_FILE).exists()


def test_a_missing_table_is_one_line_naming_it(demo_store, tmp_path, capsys):
    """Issue 39: ``report`` of a store without failures.parquet said Python's words."""
    import shutil

    from rnamotif_data.cli import main

    damaged = tmp_path / "damaged.zarr"
    shutil.copytree(demo_store, damaged)
    (damaged / "failures.parquet").unlink()
    assert main(["report", str(damaged), "--out", str(tmp_path / "qc")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {damaged}: failures.parquet is missing; the store is damaged (rnamotif verify lists "
                   "what else is): rebuild it or download it again"]


def test_a_damaged_array_header_is_one_line_naming_it(demo_store, tmp_path, capsys):
    """Campaign at the stop: a corrupt density/zarr.json gave a JSONDecodeError traceback in
    export, report, audit, train and evaluate."""
    import shutil

    from rnamotif_data.cli import main

    damaged = tmp_path / "damaged.zarr"
    shutil.copytree(demo_store, damaged)
    (damaged / "density" / "zarr.json").write_text("{bad")
    (damaged / "density_masked" / "zarr.json").write_text("{bad")
    for argv in (["export", str(damaged), "--format", "hdf5", "--out", str(tmp_path / "x.h5")],
                 ["export", str(damaged), "--format", "mrc", "--out", str(tmp_path / "mrc")]):
        assert main(argv) == 1, argv
        err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("shards:")]
        assert len(err) == 1 and "zarr.json" in err[0] and "damaged" in err[0], err  # no traceback
