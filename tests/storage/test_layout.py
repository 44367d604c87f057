"""The store layout module: paths, atomic writes, deterministic tables, arrays per format."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

from rnamotif_data.storage.layout import (
    ARRAYS,
    FAILURES_SCHEMA,
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


def _documented_columns(title: str) -> list[tuple[str, str]]:
    """``(name, type)`` rows of a table of docs/store.md, the published layout."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "store.md").read_text()
    section = doc.split(f"## {title}")[1].split("\n## ")[0]
    return re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", section, re.M)


@pytest.mark.parametrize("title, schema", [("metadata.parquet", METADATA_SCHEMA), ("failures.parquet", FAILURES_SCHEMA)])
def test_table_schemas_are_the_documented_columns_and_types(title, schema):
    """The Arrow schemas the build writes are the published tables of docs/store.md, name
    for name and type for type (not the dictionary they are built from)."""
    documented = [(name, kind.replace("item: ", "")) for name, kind in _documented_columns(title)]
    written = [(f.name, str(f.type).replace("item: ", "")) for f in schema]
    assert written == documented
    assert all(isinstance(desc, str) and desc for _, desc in METADATA_COLUMNS.values())
