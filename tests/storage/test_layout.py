"""The store layout module: paths, atomic writes, deterministic tables, arrays per format."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

from rnamotif_data.storage.layout import (
    ARRAYS,
    METADATA_COLUMNS,
    METADATA_SCHEMA,
    join,
    open_atomic,
    put_bytes,
    read_table,
    stored_arrays,
    table_bytes,
    write_table,
)


def test_join_uses_the_os_separator_locally_and_slashes_for_urls():
    assert join("/data/x.zarr", "density", "zarr.json") == os.path.join("/data/x.zarr", "density", "zarr.json")
    assert join("s3://bucket/x.zarr/", "splits", "a.parquet") == "s3://bucket/x.zarr/splits/a.parquet"


def test_put_bytes_replaces_atomically(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    put_bytes(str(target), b"one")
    put_bytes(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]  # no temporary left


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    """A staging file streamed through open_atomic: what a failure interrupts never
    replaces the file, and the temporary the package made is removed."""
    target = tmp_path / "part.npz"
    put_bytes(str(target), b"old")
    with pytest.raises(OSError, match="disk full"):
        with open_atomic(str(target)) as f:
            f.write(b"half of the new")
            raise OSError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part.npz"]
    with open_atomic(str(target)) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"


def test_tables_are_deterministic_bytes(tmp_path):
    t = pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]})
    assert table_bytes(t) == table_bytes(pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]}))
    write_table(str(tmp_path / "t.parquet"), t)
    assert read_table(str(tmp_path / "t.parquet")).equals(t)


@pytest.mark.parametrize("version, extra", [(4, ()), (5, ("density_masked",))])
def test_arrays_per_format_version(version, extra):
    assert stored_arrays(version) == ARRAYS + extra


def test_metadata_schema_follows_the_column_dictionary():
    assert METADATA_SCHEMA.names == list(METADATA_COLUMNS)
    assert all(isinstance(desc, str) and desc for _, desc in METADATA_COLUMNS.values())
