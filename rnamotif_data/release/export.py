"""Export a store to one HDF5 file or to upstream-style MRC folders.

Usage::

    rnamotif export STORE --format hdf5 --out rnamotif.h5
    rnamotif export STORE --format mrc --out DIR [--by-class]

``hdf5``: datasets ``density`` (float16), ``zone`` (uint8), ``labels``, ``nucleotide``
(uint8), each ``(N, D, H, W)`` z-y-x, chunked one sample per chunk, gzip-compressed; group
``metadata`` with one dataset per metadata column (strings UTF-8, ``*_xyz`` as ``(N, 3)``
float64, nulls as "" / NaN / -1) and ``metadata.parquet`` (the exact Parquet bytes, for a
lossless round trip); the store's attributes as JSON in the file attribute
``store_attrs``.

``mrc``: one folder per sample in the upstream naming, ``EMD-xxxx_PDBID_type_n/`` (``n``
the CoSSMos number, else the motif id, else the sample index; background samples
``cube_PDBID_nnnnn/`` as upstream) holding ``<name>.mrc`` (density masked by the zone,
the upstream model's input), ``<name>_context.mrc`` (unmasked density), and binary label
maps ``backbone_label_<name>.mrc``, ``ribose_label_<name>.mrc`` and ``sugar_label_<name>.mrc``
-- **upstream's "sugar" map is the base**; the names are kept so upstream tools read them.
Maps are 1 Å voxels with ORIGIN at the cube's position, so they overlay the model.
``--by-class`` instead writes ``DIR/<class>/<name>.mrc`` (masked density only), the layout
of the upstream ``validate_folder.py``. The folder's marker ``.rnamotif-export.json`` is
written first with ``complete: false`` and marked ``complete: true`` after the last sample,
so an interrupted export is never taken for a whole one (``rnamotif evaluate --mrc-folder``
refuses it).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from rnamotif_data.common.extras import require
from rnamotif_data.em.maps import write_map
from rnamotif_data.errors import DiskFullError, StoreError, is_environment_failure, one_line
from rnamotif_data.rna.motifs import CLASS_NAMES
from rnamotif_data.storage.layout import METADATA_FILE, METADATA_SCHEMA, join, url_to_fs
from rnamotif_data.storage.outputs import MRC_MARKER, write_marker
from rnamotif_data.storage.store import open_store

log = logging.getLogger("rnamotif_data.release.export")

#: upstream label-map names -> our label part (upstream called the base map "sugar")
UPSTREAM_LABEL_MAPS = {"backbone": 1, "ribose": 2, "sugar": 3}


def check_outside_store(root: str, out: Path) -> None:
    """Refuse an export target inside the store it exports (its files would be foreign to
    the store, which then fails ``rnamotif verify``).

    Raises
    ------
    StoreError
        Naming ``out`` and the store.
    """
    fs, path = url_to_fs(str(root))
    if "file" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return
    store_dir = Path(path).resolve()
    target = Path(out).resolve()
    if target == store_dir or store_dir in target.parents:
        raise StoreError(f"{out}: is inside the store {root}; an export goes outside it (choose another --out)")


def export_hdf5(root: str, out: Path, *, progress: bool = True) -> Path:
    """Write the store's arrays and metadata into one HDF5 file (layout in the module docstring).

    Raises
    ------
    StoreError
        If ``out`` is inside the store (:func:`check_outside_store`), or the store does not open.
    DiskFullError
        If writing fails (h5py's ``OSError``, e.g. no space left); the temporary file
        ``out.tmp`` is removed and the message names ``out``.
    """
    h5py = require("h5py", "the HDF5 export")
    check_outside_store(root, out)
    store = open_store(root)
    n, cube = len(store), store.cube_shape
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    _check_free_space(root, out)
    try:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["store_attrs"] = json.dumps(store.attrs, sort_keys=True)
            dsets = {}
            for name, dtype in (("density", "float16"), ("zone", "uint8"), ("labels", "uint8"), ("nucleotide", "uint8")):
                dsets[name] = h5.create_dataset(name, shape=(n, *cube), dtype=dtype, chunks=(1, *cube),
                                                compression="gzip", compression_opts=4, shuffle=True)
                dsets[name].attrs["dimension_names"] = ["sample", "z", "y", "x"]
            for start, stop in tqdm(store.shard_ranges(), desc="shards", disable=not progress):
                batch = store.read_batch(slice(start, stop))
                for name, d in dsets.items():
                    d[start:stop] = batch[name].astype(d.dtype)
            g = h5.create_group("metadata")
            fs, path = url_to_fs(join(root, METADATA_FILE))
            g.create_dataset(METADATA_FILE, data=np.void(fs.cat_file(path)))
            meta = store.metadata
            for col in meta.columns:
                g.create_dataset(col, data=_column(meta[col], METADATA_SCHEMA.field(col).type))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if not (is_environment_failure(exc) or "write" in str(exc).lower()):
            raise
        raise DiskFullError(f"{out}: the HDF5 file could not be written (disk full? free space or choose "
                            f"another --out): {one_line(exc)}") from exc
    tmp.replace(out)
    return out


def _check_free_space(root: str, out: Path) -> None:
    """Refuse up front when the folder of ``out`` has less room than the store takes on disk
    (the HDF5 file, gzip-compressed, is about as large), rather than fail half way: h5py on a
    full disk can crash the interpreter after its error. Local stores only."""
    fs, path = url_to_fs(str(root))
    if "file" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return
    need = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
    free = shutil.disk_usage(Path(out).resolve().parent).free
    if free < need:
        raise DiskFullError(f"{out}: {free / 1e6:.0f} MB free there, the export needs about {need / 1e6:.0f} MB "
                            "(disk full? free space or choose another --out)")


def _column(series, typ: pa.DataType) -> np.ndarray:
    """A metadata column as an HDF5-ready array: x-y-z lists ``(N, 3)`` float64 (NaN for
    null), integer lists ``(N, L)`` int64 padded with -1, string lists '; '-joined."""
    if (pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ)) and pa.types.is_integer(typ.value_type):
        width = max([len(v) for v in series if v is not None] or [0])
        out = np.full((len(series), width), -1, dtype=np.int64)
        for i, v in enumerate(series):
            if v is not None:
                out[i, :len(v)] = v
        return out
    if pa.types.is_list(typ) and pa.types.is_string(typ.value_type):
        return _column(pd.Series(["; ".join(v) if v is not None else None for v in series]), pa.string())
    if pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ):
        return np.array([np.full(3, np.nan) if v is None else np.asarray(v, float) for v in series]).reshape(-1, 3)
    if pa.types.is_string(typ):
        h5py = require("h5py", "the HDF5 export")
        return np.array(["" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
                         for v in series],
                        dtype=h5py.string_dtype())
    if pa.types.is_floating(typ):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if pa.types.is_boolean(typ):
        return series.to_numpy(dtype=bool)
    return series.to_numpy(dtype=np.int64, na_value=-1)


def upstream_name(row) -> str:
    """Upstream file stem of a sample: ``EMD-20353_6PJ6_hairpin3_2606`` / ``cube_6PJ6_00012``."""
    if row.is_background:
        return f"cube_{row.pdb_id}_{row.sample_index:05d}"
    n = row.cossmos_number
    if n is None or pd.isna(n):  # the occurrence's own id (an Atlas instance), never its group's
        source_id = getattr(row, "source_id", None)
        n = source_id if isinstance(source_id, str) and source_id else row.sample_index
    n = re.sub(r"[^A-Za-z0-9.-]", "-", str(int(n) if isinstance(n, (float, np.floating)) else n))
    return f"{row.emdb_id}_{row.pdb_id}_{row.motif_type}_{n}"


def export_mrc(root: str, out: Path, *, by_class: bool = False, progress: bool = True) -> int:
    """Write upstream-style MRC folders (layout in the module docstring); returns samples written.

    Raises
    ------
    StoreError
        If ``out`` is inside the store (:func:`check_outside_store`), or the store does not open.
    """
    check_outside_store(root, out)
    store = open_store(root)
    meta = store.metadata
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # written first, unfinished: an interrupted export is never read as a whole one (evaluate --mrc-folder)
    record = {"store": str(root), "by_class": by_class, "samples": len(store), "complete": False}
    write_marker(out, record, MRC_MARKER)
    vs = store.voxel_size
    count = 0
    seen: set[str] = set()
    for start, stop in tqdm(store.shard_ranges(), desc="shards", disable=not progress):
        batch = store.read_batch(slice(start, stop))
        for k, row in enumerate(meta.iloc[start:stop].itertuples()):
            name = upstream_name(row)
            if name in seen:  # two samples never share a file: the later one is told apart by its index
                name = f"{name}_s{row.sample_index}"
            seen.add(name)
            origin = np.asarray(row.origin_xyz, dtype=np.float64)
            dens = batch["density"][k].astype(np.float32)
            masked = dens * batch["zone"][k].astype(np.float32)
            folder = out / (row.motif_class if by_class else name)
            folder.mkdir(parents=True, exist_ok=True)
            if by_class:
                write_map(out / row.motif_class / f"{name}.mrc", masked, vs, origin)
            else:
                write_map(folder / f"{name}.mrc", masked, vs, origin)
                write_map(folder / f"{name}_context.mrc", dens, vs, origin)
                for label, part in UPSTREAM_LABEL_MAPS.items():
                    write_map(folder / f"{label}_label_{name}.mrc",
                              (batch["labels"][k] == part).astype(np.float32), vs, origin)
            count += 1
    write_marker(out, {**record, "samples_written": count, "complete": True}, MRC_MARKER)
    return count


def check_export_target(out: Path, fmt: str, *, overwrite: bool) -> None:
    """Refuse to replace anything but an export this package wrote, and anything at all
    without ``overwrite`` (nothing is changed when refused).

    Raises
    ------
    StoreError
        Naming ``out`` and why.
    """
    if not out.exists():
        return
    if fmt == "mrc" and out.is_dir() and any(out.iterdir()):  # a user's file is named, --overwrite or not
        if not (out / MRC_MARKER).is_file():
            first = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if not p.is_dir())
            more = f" and {len(first) - 1} more" if len(first) > 1 else ""
            raise StoreError(f"{out}: holds {first[0] if first else 'empty folders'}{more}, which `rnamotif export` "
                             "did not write; move it or choose another --out; nothing was changed")
        _, other = export_files(out)
        if other:
            names = [p.relative_to(out).as_posix() for p in other]
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            raise StoreError(f"{out}: holds files this package did not write ({', '.join(names[:5])}{more}); "
                             "move them or choose another --out; nothing was changed")
    if not overwrite:
        raise StoreError(f"{out}: exists; pass --overwrite to replace an earlier export, or choose another --out")
    ours = False
    if fmt == "hdf5" and out.is_file():
        h5py = require("h5py", "the HDF5 export")
        try:
            with h5py.File(out, "r") as h5:
                ours = "store_attrs" in h5.attrs
        except OSError:
            ours = False
    elif fmt == "mrc" and out.is_dir():
        ours = (out / MRC_MARKER).is_file() or not any(out.iterdir())
    if not ours:
        raise StoreError(f"{out}: exists and is not a {fmt} export this package wrote; --overwrite replaces only "
                         "those; nothing was changed")
    if out.is_dir():  # foreign files were refused above, before --overwrite was looked at
        own, _ = export_files(out)
        for f in own:
            f.unlink()
        for d in sorted((d for d in out.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            if not any(d.iterdir()):  # only the folders the export made, now empty
                d.rmdir()
    else:
        out.unlink()


def export_files(out: Path) -> tuple[list[Path], list[Path]]:
    """``(files an MRC export of this package writes, any other file)`` under ``out``, by
    name: the marker, and ``FOLDER/NAME.mrc``, ``NAME_context.mrc`` and
    ``{backbone,ribose,sugar}_label_NAME.mrc`` in the sample folder ``NAME``, or
    ``CLASS/NAME.mrc`` in a class folder (``--by-class``)."""
    own: list[Path] = []
    other: list[Path] = []
    for p in sorted(out.rglob("*")):
        if p.is_dir() and not p.is_symlink():
            continue
        parts = p.relative_to(out).parts
        if parts == (MRC_MARKER,) or (len(parts) == 1 and parts[0].startswith(f"{MRC_MARKER}.tmp-")):
            own.append(p)
            continue
        if len(parts) == 2 and parts[1].endswith(".mrc"):
            folder, name = parts
            mine = {f"{folder}.mrc", f"{folder}_context.mrc", *(f"{lab}_label_{folder}.mrc" for lab in UPSTREAM_LABEL_MAPS)}
            if name in mine or folder in CLASS_NAMES:
                own.append(p)
                continue
        other.append(p)
    return own, other
