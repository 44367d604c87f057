"""Check a built store: shapes, dtypes, metadata against arrays, value ranges, checksums.

Usage::

    rnamotif verify STORE [--no-values]

Checks (each problem is printed as one line naming the array, column or file):

- the build finished (``build_state: complete``) with a known format version;
- arrays ``density``, ``zone``, ``labels``, ``nucleotide`` (and from format 5
  ``density_masked``), none missing: shape ``(N, D, H, W)`` with N
  and the cube shape of the attributes, dtypes of the store contract, one sample per
  inner chunk, ``dimension_names`` ``(sample, z, y, x)``;
- ``metadata.parquet`` has the contract's schema, N rows, ``sample_index`` 0..N-1, unique
  ``sample_id``, ``class_index`` matching ``motif_class`` and ``motif_type``;
- ``failures.parquet`` has its schema; samples + failed rows account for every manifest
  row (``manifest_rows`` attribute);
- values (unless ``--no-values``, read one shard at a time): density finite and in
  [0, 1], labels in 0..3, nucleotide ids in 0..5, every sample's zone non-empty, labelled
  voxels inside the zone (for ``label_scope: motif``) and labels and nucleotide ids zero
  together, ``density_masked`` equal to ``density * zone``;
- ``checksums.sha256`` matches every stored file;
- split files (``splits/<scheme>.parquet``, ``rnamotif split``), where present: made for
  this store (its sample ids) and unedited (their contents match their fingerprint,
  :func:`rnamotif_data.split.splits.read_split`);
- sequence features (``features/<name>``, ``rnamotif embed``), where present: their own
  checksums, the store build they were made for, one feature row per residue, and one voxel
  slot per labelled voxel (:func:`rnamotif_data.features.stored.verify_features`);
- the volumes section (``rnamotif build --tiles``), where present: the entries' block
  arrays and ``volumes.parquet``, ``tiles.parquet``, ``instances.parquet``, with the values
  of every block and the tiles' counts (:mod:`rnamotif_data.release.verify_volumes`).

Exit status 0 when the store passes, 1 otherwise. Prints the class counts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rnamotif_data.errors import StoreError, one_line
from rnamotif_data.features.stored import features_dir, list_features, verify_features
from rnamotif_data.release.verify_volumes import has_volumes, verify_volumes
from rnamotif_data.rna.motifs import CLASS_NAMES, class_index, motif_class
from rnamotif_data.split.splits import read_split
from rnamotif_data.split.tiles import read_tile_split
from rnamotif_data.storage.checksums import check_checksums
from rnamotif_data.storage.layout import (
    ARRAY_DTYPES,
    DIMENSION_NAMES,
    FAILURES_FILE,
    FAILURES_SCHEMA,
    METADATA_FILE,
    SPLIT_SCHEMES,
    join,
    metadata_schema_for,
    read_table,
    url_to_fs,
)
from rnamotif_data.storage.store import open_store

log = logging.getLogger("rnamotif_data.release.verify")


def verify_store(root: str, *, values: bool = True) -> tuple[list[str], dict[str, int]]:
    """Verify a store (checks in the module docstring); every check runs, whatever the
    others found, and damage is reported, never raised.

    Returns
    -------
    (problems, class_counts)
        One message per problem (empty when the store passes) and the number of samples
        per class name.

    Raises
    ------
    StoreError
        If ``root`` holds no store at all.
    """
    store = open_store(root, require_complete=False)
    problems: list[str] = []
    if store.attrs.get("build_state") != "complete":
        problems.append(f"build state is {store.attrs.get('build_state')!r}, not 'complete'")
    problems += [f"checksums: {p}" for p in check_checksums(root)]
    n, cube = len(store), tuple(store.cube_shape)
    if n == 0:  # a dataset of nothing is not a dataset, whatever its files say
        n_failed = store.attrs.get("n_failed_rows")
        problems.append("holds no samples" + (f": all {n_failed} manifest rows failed (see failures.parquet)"
                                              if n_failed else ""))
    try:
        arrays = store.arrays()
    except Exception as exc:  # noqa: BLE001 - a damaged store is reported, not raised
        problems.append(f"arrays: cannot be opened ({one_line(exc)})")
        arrays = {}
    missing = [name for name in store.array_names if name not in arrays]
    if arrays and missing:
        problems.append(f"arrays: {', '.join(missing)} missing (store format {store.attrs.get('format_version')})")
    for name, a in arrays.items():
        if tuple(a.shape) != (n, *cube):
            problems.append(f"{name}: shape {tuple(a.shape)}, expected {(n, *cube)}")
        if str(a.dtype) != ARRAY_DTYPES[name] and not (name == "zone" and str(a.dtype) == "bool"):
            problems.append(f"{name}: dtype {a.dtype}, expected {ARRAY_DTYPES[name]}")
        if tuple(a.chunks) != (1, *cube):
            problems.append(f"{name}: inner chunks {tuple(a.chunks)}, expected {(1, *cube)}")
        if tuple(a.metadata.dimension_names or ()) != DIMENSION_NAMES:
            problems.append(f"{name}: dimension_names {a.metadata.dimension_names}, expected {DIMENSION_NAMES}")


    counts = dict.fromkeys(CLASS_NAMES, 0)
    try:
        meta_t = read_table(join(root, METADATA_FILE))
        fail_t = read_table(join(root, FAILURES_FILE))
    except Exception as exc:  # noqa: BLE001
        problems.append(f"tables: cannot be read ({one_line(exc)})")
        meta_t = fail_t = None
    if meta_t is not None:
        problems += _check_tables(store, meta_t, fail_t, n)
        meta = meta_t.to_pandas()
        counts = {c: int((meta["class_index"] == k).sum()) for k, c in enumerate(CLASS_NAMES)}
    labelled = None
    if values and n and arrays:
        value_problems, labelled = _check_values(store)
        problems += value_problems
    if meta_t is not None:
        problems += _check_splits(store)
    problems += _check_volumes(root, store.attrs, values)
    names = list_features(store)
    try:
        base: Path | None = features_dir(store.root, "x").parent
    except StoreError:  # not a local store: no feature folders
        base = None
    if base is not None and base.is_dir():  # a feature folder no check would read (no attrs.json, not in the attributes)
        problems += [f"features/{p.name}: no attrs.json; not a feature set `rnamotif embed` finished (delete it, or "
                     "embed again with --overwrite)" for p in sorted(base.iterdir())
                     if p.is_dir() and not p.name.startswith(".") and p.name not in names]
    for name in names:  # sequence features (rnamotif embed): optional, checked when present
        try:
            problems += [f"features/{name}: {p}" for p in verify_features(store, name, labelled)]
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            problems.append(f"features/{name}: cannot be checked ({one_line(exc)})")
    return problems, counts


def _check_volumes(root: str, attrs: dict, values: bool) -> list[str]:
    """The volumes section's problems (:func:`~rnamotif_data.release.verify_volumes.verify_volumes`)
    where the store has one."""
    if not has_volumes(root, attrs):
        return []
    try:
        return verify_volumes(root, attrs, values=values)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        return [f"volumes: cannot be checked ({one_line(exc)})"]


def _check_splits(store) -> list[str]:
    """Every ``splits/*.parquet`` read through :func:`~rnamotif_data.split.splits.read_split`:
    its sample ids are the store's and its contents match its fingerprint; a Parquet file
    of no known scheme is named."""
    fs, path = url_to_fs(join(store.root, "splits"))
    if not fs.isdir(path):
        return []
    problems = []
    for p in sorted(fs.ls(path, detail=False)):
        name = p.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
        if not name.endswith(".parquet"):
            continue
        scheme = name.removesuffix(".parquet")
        if scheme == "tiles":  # the tile split (rnamotif split --tiles)
            try:
                read_tile_split(store)
            except Exception as exc:  # noqa: BLE001 - reported, never raised
                problems.append(f"splits/{name}: {one_line(exc)}")
            continue
        if scheme not in SPLIT_SCHEMES:
            problems.append(f"splits/{name}: not a split of a known scheme ({', '.join(SPLIT_SCHEMES)})")
            continue
        try:
            read_split(store, scheme)
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            problems.append(f"splits/{name}: {one_line(exc)}")
    return problems


def _check_tables(store, meta_t, fail_t, n: int) -> list[str]:

    problems = []
    if not meta_t.schema.equals(metadata_schema_for(meta_t.schema.names), check_metadata=False):
        problems.append(f"{METADATA_FILE}: schema differs from the store contract")
        return problems
    meta = meta_t.to_pandas()
    if len(meta) != n:
        problems.append(f"{METADATA_FILE}: {len(meta)} rows for {n} samples")
    if not np.array_equal(meta["sample_index"].to_numpy(), np.arange(len(meta))):
        problems.append(f"{METADATA_FILE}: sample_index is not 0..N-1 in order")
    dup = meta["sample_id"][meta["sample_id"].duplicated()].tolist()
    if dup:
        problems.append(f"{METADATA_FILE}: duplicate sample_id {dup[:5]}")
    for row in meta.itertuples():
        try:
            ok = (row.class_index == class_index(row.motif_type) and row.motif_class == motif_class(row.motif_type))
        except ValueError:
            ok = False
        if not ok:
            problems.append(f"{METADATA_FILE}: row {row.sample_index} ({row.sample_id}): class_index "
                            f"{row.class_index} / motif_class {row.motif_class} do not match type {row.motif_type}")
    if not fail_t.schema.equals(FAILURES_SCHEMA, check_metadata=False):
        problems.append(f"{FAILURES_FILE}: schema differs from the store contract")
    expected_rows = store.attrs.get("manifest_rows")
    motif_rows = int((~meta["is_background"]).sum())
    if expected_rows is not None and motif_rows + fail_t.num_rows != expected_rows:
        problems.append(f"{motif_rows} motif samples + {fail_t.num_rows} failed rows != "
                        f"{expected_rows} manifest rows")
    return problems


def _check_values(store) -> tuple[list[str], np.ndarray]:
    out = []
    labelled = np.full(len(store), -1, dtype=np.int64)  # voxels with labels > 0 per sample (-1: unread)
    motif_scope = store.attrs.get("build_config", {}).get("segment", {}).get("label_scope", "motif") == "motif"
    for start, stop in store.shard_ranges():
        try:
            b = store.read_batch(slice(start, stop), store.array_names)
        except Exception as exc:  # noqa: BLE001 - reported per shard; the others are still read
            out.append(f"samples {start}-{stop - 1}: {one_line(exc)}")
            continue
        d = b["density"].astype(np.float32)
        labelled[start:stop] = (b["labels"].reshape(stop - start, -1) > 0).sum(axis=1)
        for k in range(stop - start):
            i = start + k
            if not np.isfinite(d[k]).all() or d[k].min() < 0 or d[k].max() > 1:
                out.append(f"density: sample {i} outside [0, 1] or not finite")
            if b["labels"][k].max() > 3:
                out.append(f"labels: sample {i} has values > 3")
            if b["nucleotide"][k].max() > 5:
                out.append(f"nucleotide: sample {i} has values > 5")
            if not b["zone"][k].any():
                out.append(f"zone: sample {i} is empty")
            if not np.array_equal(b["labels"][k] > 0, b["nucleotide"][k] > 0):
                out.append(f"labels/nucleotide: sample {i} labelled voxels differ")
            if motif_scope and np.any((b["labels"][k] > 0) & ~b["zone"][k].astype(bool)):
                out.append(f"labels: sample {i} has labelled voxels outside its zone")
            if "density_masked" in b and not np.array_equal(b["density_masked"][k], b["density"][k] * b["zone"][k]):
                out.append(f"density_masked: sample {i} differs from density * zone")
    return out, labelled


__all__ = ["verify_store"]
