"""The store layout: format version, array names and dtypes, file names, the columns of
the Parquet tables, and the file-system helpers every storage module uses.

Arrays are ``(N, D, H, W)``, axis order sample-z-y-x; voxel size in Å is in the group's
attributes. ``docs/store.md`` documents the layout; the column dictionaries are
``name -> (Arrow type, description)`` and a test compares them with that page.

Imports nothing of the package but :mod:`rnamotif_data.errors`, so the other storage
modules (shards, checksums, store) can all build on it without a cycle.
"""

from __future__ import annotations

import io
import os
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from rnamotif_data.errors import StoreError

__all__ = [
    "open_atomic",
    "FEATURE_ARRAYS",
    "FORMAT_VERSION", "ARRAYS", "DERIVED_ARRAYS", "ARRAY_DTYPES", "DIMENSION_NAMES", "METADATA_FILE",
    "FAILURES_FILE", "CHECKSUMS_FILE", "STAGING", "SPLIT_SCHEMES", "stored_arrays",
    "METADATA_COLUMNS", "METADATA_SCHEMA", "LATER_METADATA_COLUMNS", "metadata_schema_for",
    "FAILURES_COLUMNS", "FAILURES_SCHEMA", "metadata_row", "failures_row", "checked_row",
    "url_to_fs", "is_local", "zarr_location", "join", "put_bytes", "table_bytes", "write_table", "read_table",
    "set_attrs", "get_attrs",
]

FORMAT_VERSION = 5
ARRAYS = ("density", "zone", "labels", "nucleotide")
#: arrays derived from ARRAYS when a shard is written (format 5): name -> first format
DERIVED_ARRAYS = {"density_masked": 5}
#: dtype of each array (design §7)
ARRAY_DTYPES = {"density": "float16", "zone": "bool", "labels": "uint8", "nucleotide": "uint8",
                "density_masked": "float16"}
DIMENSION_NAMES = ("sample", "z", "y", "x")
METADATA_FILE = "metadata.parquet"
FAILURES_FILE = "failures.parquet"
CHECKSUMS_FILE = "checksums.sha256"
#: the build's staging folder inside a store (finished entries, removed when the store is complete)
STAGING = "_staging"
#: split schemes, each stored as ``ROOT/splits/<scheme>.parquet`` (:mod:`rnamotif_data.split.splits`)
SPLIT_SCHEMES = ("similarity", "entry", "upstream")
#: sequence features (``rnamotif embed``): ``ROOT/features/<name>/<file>.npy``, each file's
#: (dtype, number of dimensions); the layout is in rnamotif_data.features.stored
FEATURE_ARRAYS = {
    "chain_embedding": ("float16", 2), "residue_row": ("int64", 1), "residue_offsets": ("int64", 1),
    "context_row": ("int64", 1), "context_offsets": ("int64", 1), "context_in_sample": ("bool", 1),
    "voxel_slot": ("uint8", 1), "voxel_offsets": ("int64", 1),
}


# ---------------------------------------------------------------------- file system helpers
def url_to_fs(url: str | os.PathLike):
    """``(fsspec filesystem, path)`` for a local path or fsspec URL."""
    import fsspec

    return fsspec.core.url_to_fs(str(url))


def is_local(fs) -> bool:
    """True for fsspec's local file system (paths are plain OS paths)."""
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def zarr_location(root: str) -> str:
    """What to hand zarr for ``root``: the plain path for local stores (``file://`` URLs
    included, since fsspec's local file system does not create directories for zarr),
    else the URL."""
    fs, path = url_to_fs(root)
    return path if is_local(fs) else str(root)


def put_bytes(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` atomically (temporary file + rename locally; a single PUT
    on object stores), so a reader never sees a partial file."""
    with open_atomic(url) as f:
        f.write(data)


@contextmanager
def open_atomic(url: str) -> Iterator[BinaryIO]:
    """A binary file to write ``url`` through, atomically: locally a temporary file beside
    it, fsynced and renamed into place when the block ends (removed if it raises); on an
    object store a buffer sent in a single PUT. What is written is never held twice in
    memory locally (a staging file of cubes streams to disk)."""
    fs, path = url_to_fs(url)
    if is_local(fs):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    else:
        buf = io.BytesIO()
        yield buf
        fs.pipe_file(path, buf.getvalue())


def table_bytes(table: pa.Table) -> bytes:
    """A table as Parquet bytes (zstd; deterministic bytes for equal tables)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def write_table(url: str, table: pa.Table) -> None:
    """Write a Parquet table atomically to ``url`` (deterministic bytes for equal tables)."""
    put_bytes(url, table_bytes(table))


def read_table(url: str) -> pa.Table:
    """Read a Parquet table from a local path or fsspec URL."""
    fs, path = url_to_fs(url)
    with fs.open(path, "rb") as f:
        return pq.read_table(f)


def join(root: str, *parts: str) -> str:
    """``root/part/...`` for a local path (OS separator) or an fsspec URL (``/``)."""
    return posixpath.join(str(root).rstrip("/"), *parts) if "://" in str(root) else os.path.join(str(root), *parts)


def stored_arrays(format_version: int) -> tuple[str, ...]:
    """The arrays a store of ``format_version`` holds: :data:`ARRAYS`, then the derived
    arrays of that format (``density_masked`` from format 5)."""
    return ARRAYS + tuple(n for n, first in DERIVED_ARRAYS.items() if format_version >= first)


def set_attrs(root: str, attrs: dict) -> None:
    """Update the store group's attributes (creating the group if needed)."""
    import zarr

    group = zarr.open_group(zarr_location(root), mode="a")
    group.attrs.update(attrs)


def get_attrs(root: str) -> dict | None:
    """The store group's attributes, or None if there is no group at ``root``.

    Raises
    ------
    rnamotif_data.errors.StoreError
        If the group's ``zarr.json`` is not valid JSON (naming the file).
    """
    import zarr

    try:
        return dict(zarr.open_group(zarr_location(root), mode="r").attrs)
    except FileNotFoundError:
        return None
    except ValueError as exc:  # json.JSONDecodeError: a damaged zarr.json
        raise StoreError(f"{join(root, 'zarr.json')}: the store's attributes are damaged ({exc}); restore the file "
                         "from a copy, or rebuild the store") from None


# ---------------------------------------------------------------------- table columns
_XYZ = pa.list_(pa.float64(), 3)

#: metadata.parquet columns: name -> (Arrow type, description). The column dictionary.
METADATA_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "sample_index": (pa.int64(), "position of the sample along the arrays' first axis"),
    "sample_id": (pa.string(), "stable id: EMDB_PDB_type_residues (motifs) or EMDB_PDB_unknown_bgK"),
    "is_background": (pa.bool_(), "true for background ('unknown') samples"),
    "background_kind": (pa.string(), "'stem' (helical stem), 'rna' (other RNA), 'protein' or 'density' "
                                      "(unmodelled); null for motifs (rnamotif_data.samples.background)"),
    "manifest_row": (pa.int64(), "row of the input manifest (null for background samples)"),
    "pdb_id": (pa.string(), "PDB ID of the model, upper case"),
    "emdb_id": (pa.string(), "EMDB map, EMD-N"),
    "motif_id": (pa.string(), "manifest motif_id (null if none)"),
    "motif_type": (pa.string(), "fine type (1x1 ... 4x5, bulgeN, hairpinN) or 'unknown'"),
    "motif_class": (pa.string(), "symmetric_loop, bulge, hairpin, asymmetric_loop or unknown"),
    "class_index": (pa.int8(), "0 sym, 1 bulge, 2 hairpin, 3 asym, 4 unknown (upstream order)"),
    "residues": (pa.string(), "the sample's residues in selection syntax (J:85-91)"),
    "sequence": (pa.string(), "one-letter sequence of those residues in model order"),
    "strand_sequences": (pa.string(), "the sample's strands (runs of consecutive residues) in model order, "
                                      "'-'-joined, modified residues as their parents"),
    "context_sequence": (pa.string(), "each strand with up to 8 chain neighbours on both sides, '-'-joined "
                                      "(homology of contexts, rnamotif_data.split.similarity)"),
    "model_hash": (pa.string(), "sha256 (first 16 hex) of the model's heavy-atom coordinates: one model fitted "
                                "to several maps has one hash whatever its IDs (splits group by it)"),
    "loop_lengths": (pa.list_(pa.int32()), "unpaired nucleotides per strand (model order) read off the closing base "
                     "pairs (rna.pairs.read_loops); null for background"),
    "flank_pairs": (pa.list_(pa.int32()), "closing pairs the listing carries on each side (hairpin: one side; "
                    "loops: outer, inner), as read, or the source's convention where none was read"),
    "loop_note": (pa.string(), "why a side fell back to the source's convention (no closing pair read), or null"),
    "source_loop_lengths": (pa.list_(pa.int32()), "unpaired nucleotides per strand (model order) between the same "
                            "closing pairs that the source's own residue list names (an RNA 3D Motif Atlas "
                            "instance's unit ids: selection less skipped; a residues list); null for background, "
                            "rows whose loop lengths were not read and rows that give only ranges"),
    "source_motif_type": (pa.string(), "the fine type source_loop_lengths make (may lie outside the 25 types); "
                          "null where they are"),
    "parent_sequence": (pa.string(), "sha256 (first 16 hex) of the full one-letter sequences of the chains the "
                                     "sample's residues belong to, sorted and '/'-joined; null for density sites"),
    "resolution": (pa.float64(), "resolution of the map in Å (manifest, else RCSB record; null if unknown)"),
    "origin_xyz": (_XYZ, "world position (Å, x-y-z) of voxel [0, 0, 0] of the cube"),
    "centroid_xyz": (_XYZ, "heavy-atom centroid (Å, x-y-z), the cube's centre"),
    "n_atoms": (pa.int32(), "heavy atoms of the sample (zone atoms for background)"),
    "n_residues": (pa.int32(), "residues of the sample"),
    "fraction_outside": (pa.float32(), "fraction of cube voxels outside the map box (zero-padded)"),
    "fit_z": (pa.float64(), "(mean map value at the atoms - map mean) / map sd"),
    "q_score": (pa.float64(), "Q-score (Pintilie 2020, sigma 0.6 Å), mean over the sample's heavy atoms; "
                              "null for density background sites"),
    "q_score_min_residue": (pa.float64(), "lowest per-residue mean Q-score of the sample"),
    "cc_mask": (pa.float64(), "CC_mask as phenix.map_model_cc reports it (Afonine 2018): molecular mask, model "
                              "map with the atoms' B-factors at the map's resolution; null if the resolution is "
                              "unknown"),
    "cc_local": (pa.float64(), "correlation with a molmap-style model map (B-factors ignored) within "
                               "max(3, min(resolution, 10)) Å of the atoms; not Phenix's CC_mask"),
    "frac_atoms_above_1sd": (pa.float64(), "fraction of heavy atoms whose map value exceeds map mean + 1 sd"),
    "q_expected": (pa.float64(), "expected nucleic-acid Q-score at the resolution (Pintilie 2020, sigma 0.6 Å: "
                                 "-0.1377 * resolution + 0.9973); null for another sigma or outside 1.5-5 Å"),
    "q_score_minus_expected": (pa.float64(), "q_score - q_expected (negative: worse than typical at this resolution)"),
    "map_warnings": (pa.list_(pa.string()), "anomalies of the entry's map file (zero machine stamp, header "
                                            "statistics that differ from the data, ...), one line each"),
    "source": (pa.string(), "manifest source (cossmos-2012, motif-atlas-4.5, ...)"),
    "source_id": (pa.string(), "id of the occurrence in its source"),
    "cossmos_number": (pa.int32(), "CoSSMos occurrence number, if any"),
    "upstream_fold": (pa.int8(), "upstream validation fold (1-5), if any"),
}
METADATA_SCHEMA = pa.schema([pa.field(k, t) for k, (t, _) in METADATA_COLUMNS.items()])
#: metadata columns added within format 5 (additive and nullable, so the format was not
#: bumped): a format-5 store built before them lacks them, and readers take them as null
#: (:func:`metadata_schema_for`; ``SampleStore.metadata`` adds them as nulls)
LATER_METADATA_COLUMNS = ("source_loop_lengths", "source_motif_type")


def metadata_schema_for(names) -> pa.Schema:
    """The metadata schema a store whose ``metadata.parquet`` has the columns ``names``
    must have: :data:`METADATA_SCHEMA` less the :data:`LATER_METADATA_COLUMNS` it lacks
    (a format-5 store built before them)."""
    names = set(names)
    return pa.schema([f for f in METADATA_SCHEMA if f.name in names or f.name not in LATER_METADATA_COLUMNS])

#: failures.parquet columns: name -> (Arrow type, description).
FAILURES_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "manifest_row": (pa.int64(), "row of the input manifest"),
    "pdb_id": (pa.string(), "PDB ID"),
    "emdb_id": (pa.string(), "EMDB map (null if it could not be determined)"),
    "motif_type": (pa.string(), "fine motif type"),
    "residues": (pa.string(), "the row's residues in selection syntax"),
    "source": (pa.string(), "manifest source"),
    "source_id": (pa.string(), "id in the source"),
    "stage": (pa.string(), "where it failed: manifest, fetch, model, map, placement, selection (type or sequence vs the model), segment, quality, entry"),
    "error_type": (pa.string(), "exception class"),
    "error": (pa.string(), "the error message (names the file, entry and residues)"),
    "fit_z": (pa.float64(), "the motif's fit_z when it was measured (placement and quality rejections)"),
    "frac_atoms_above_1sd": (pa.float64(), "the motif's fraction of heavy atoms above map mean + 1 sd, when measured"),
    "q_score": (pa.float64(), "the motif's Q-score, for quality rejections"),
}
FAILURES_SCHEMA = pa.schema([pa.field(k, t) for k, (t, _) in FAILURES_COLUMNS.items()])


def checked_row(columns: dict, table: str, values: dict, optional: tuple[str, ...] = (), *,
                names: str | None = None) -> dict:
    """``values`` as a row of ``table`` in column order; every column stated, no other.
    ``names``: where the column dictionary lives, for the message.

    Raises
    ------
    TypeError
        Naming the unknown and the missing columns.
    """
    unknown = [k for k in values if k not in columns]
    missing = [k for k in columns if k not in values and k not in optional]
    if unknown or missing:
        why = [f"unknown column(s) {', '.join(unknown)}"] if unknown else []
        why += [f"missing column(s) {', '.join(missing)}"] if missing else []
        where = names or (f"rnamotif_data.storage.layout's "
                          f"{'METADATA' if table == METADATA_FILE else 'FAILURES'}_COLUMNS")
        raise TypeError(f"a {table} row: {'; '.join(why)} (the columns are {where}; state a null as None)")
    return {k: values[k] for k in columns if k in values}


def metadata_row(**values) -> dict:
    """One ``metadata.parquet`` row: every column of :data:`METADATA_COLUMNS` by name (a null
    stated as None), in column order; ``sample_index`` may be left out (the store writer numbers
    the rows in sample order, :meth:`rnamotif_data.storage.writer.StoreWriter.write_tables`).

    Raises
    ------
    TypeError
        If a column is missing or a name is not a column (naming them): a row never gains a
        silent null.
    """
    return checked_row(METADATA_COLUMNS, METADATA_FILE, values, optional=("sample_index",))


def failures_row(**values) -> dict:
    """One ``failures.parquet`` row: every column of :data:`FAILURES_COLUMNS` by name (a null
    stated as None), in column order.

    Raises
    ------
    TypeError
        If a column is missing or a name is not a column (naming them).
    """
    return checked_row(FAILURES_COLUMNS, FAILURES_FILE, values)
