"""Faults of the second campaign (issue 39): nothing a user made is replaced, nothing wrong
passes silently. One test per case, each checked to fail before its fix."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rnamotif_data.inputs.sources import SourceConfig
from rnamotif_data.pipeline.builder import build

from .conftest import DEMO


def _tree(root: Path) -> dict[str, bytes]:
    """Every file's bytes; the group's zarr.json without ``build_timing`` (seconds)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p == root / "zarr.json":
                meta = json.loads(data)
                meta["attributes"].pop("build_timing", None)
                data = json.dumps(meta, sort_keys=True).encode()
            out[str(p.relative_to(root))] = data
    return out


# ---------------------------------------------------------------- resume after an input changed
def test_resume_redoes_a_staged_entry_whose_map_changed(tmp_path, caplog):
    """Kill a build, change a map already staged, ``--resume``: the entry is staged again
    from the new map (and said), so the store equals a fresh build of the new inputs."""
    mirror = tmp_path / "mirror"
    shutil.copytree(DEMO / "mirror", mirror)
    sources = SourceConfig(cache_dir=tmp_path / "cache", mirror=mirror, offline=True)
    manifest = DEMO / "manifest.parquet"
    out = tmp_path / "resumed.zarr"
    build(manifest, str(out), source_config=sources, progress=False, stop_after=1)
    assert list((out / "_staging").glob("*.npz"))
    path = mirror / "emdb" / "emd_21051.map.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    data = np.frombuffer(raw, dtype=np.float32, offset=1024)  # MODE 2 data after the 1024-byte header
    rng = np.random.default_rng(0)
    data += rng.normal(0, float(data.std()), data.shape).astype(np.float32)
    path.write_bytes(gzip.compress(bytes(raw), mtime=0))
    with caplog.at_level("WARNING", logger="rnamotif_data.pipeline.builder"):
        build(manifest, str(out), source_config=sources, progress=False, resume=True)
    assert "6V5B_EMD-21051: its map file changed since it was staged; the entry is staged again" in caplog.text
    fresh = tmp_path / "fresh.zarr"
    build(manifest, str(fresh), source_config=sources, progress=False)
    assert _tree(out) == _tree(fresh)
