"""Staging files of a build: one ``OUT/_staging/<entry>.npz`` per finished entry.

Each holds the entry's cubes (``density``, ``zone``, ``labels``, ``nucleotide``, stacked
``(n, D, H, W)``) and a JSON ``info`` record (sample metadata, failed rows, whether the
entry failed as a whole, background cubes requested and placed). It is written in one
``put`` (atomic on local and object stores), so its existence marks the entry finished
and ``--resume`` skips it; the commit step reads it back to write shards.
"""

from __future__ import annotations

import io
import json

import numpy as np

from rnamotif_data.storage.layout import ARRAY_DTYPES, ARRAYS, STAGING, join, open_atomic, url_to_fs

__all__ = ["part_url", "write_part", "read_part", "part_exists", "clean_staging"]



def part_url(root: str, key: str) -> str:
    """Location of an entry's staging file."""
    return join(root, STAGING, f"{key}.npz")


def write_part(root: str, key: str, samples: list[dict], failures: list[dict], entry_failed: bool,
               extra: dict | None = None) -> None:
    """Write an entry's staging file atomically.

    ``samples`` are dicts with ``meta`` and the four ``(D, H, W)`` arrays; ``failures``
    are failures.parquet rows; ``extra`` is merged into the JSON record.
    """
    shape = None
    arrays = {}
    for name in ARRAYS:
        if samples:
            arrays[name] = np.stack([s[name] for s in samples], dtype=ARRAY_DTYPES[name], casting="unsafe")  # one copy, as astype
            shape = arrays[name].shape[1:]
        else:
            arrays[name] = np.zeros((0, 1, 1, 1), dtype=ARRAY_DTYPES[name])
    info = {"meta": [s["meta"] for s in samples], "failures": failures, "entry_failed": entry_failed,
            "shape": list(shape) if shape else None, **(extra or {})}
    with open_atomic(part_url(root, key)) as f:  # streamed to disk: the cubes are not held twice
        # numpy's stubs read **arrays as if it could hold allow_pickle
        np.savez(f, info=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8), **arrays)  # type: ignore[arg-type]


def read_part(root: str, key: str, arrays: bool = False) -> dict:
    """Read an entry's staging record (and its arrays, if ``arrays``)."""
    fs, path = url_to_fs(part_url(root, key))
    with fs.open(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()))
        out = json.loads(bytes(data["info"]).decode())
        if arrays:
            out.update({name: data[name] for name in ARRAYS})
    return out


def part_exists(root: str, key: str) -> bool:
    """Whether an entry is staged."""
    fs, path = url_to_fs(part_url(root, key))
    return fs.exists(path)


def clean_staging(root: str) -> None:
    """Remove the staging folder (after a commit); it holds only files the build wrote."""
    fs, path = url_to_fs(join(root, STAGING))
    if fs.exists(path):
        fs.rm(path, recursive=True)
