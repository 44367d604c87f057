"""builders.audit (issue 16, item 2): the shortcut audit finds the leak the review found.

A real cryoDRGN 50S volume built with today's background cubes: "unknown" samples are
zoned around single residues, so zone size alone tells them from motifs. The audit must
say so (a test that the audit can fail a store, before the negatives are fixed)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from builders.audit import FEATURES, main as audit_main
from builders.build import main as build_main
from builders.manifest import rows_to_table

from .conftest import shared

pytest.importorskip("sklearn", reason="the audit needs scikit-learn (pip install scikit-learn)")


def test_audit_reports_the_zone_size_shortcut(tmp_path):
    rows = pq.read_table(shared("cryodrgn-50s", "manifest.parquet")).to_pylist()
    rows = [r for r in rows if r["emdb_id"] == "EMD-90000383"][::3]
    manifest = tmp_path / "m.parquet"
    pq.write_table(rows_to_table(rows), manifest)
    store = tmp_path / "s.zarr"
    assert build_main(["--manifest", str(manifest), "--mirror", str(shared("cryodrgn-50s")), "--out", str(store),
                       "--scheduler", "synchronous", "--no-progress"]) in (0, 2)
    assert audit_main([str(store), "--out", str(tmp_path / "audit")]) == 0
    res = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert set(res["single_feature_unknown_vs_motif"]) == set(FEATURES)
    assert res["single_feature_unknown_vs_motif"]["zone_voxels"] >= 0.9
    assert res["unknown_vs_motif_balanced_accuracy"] >= 0.9 and res["verdict"].startswith("SHORTCUT")
    assert "stratified, not grouped (only 1 map(s))" in res["cv"]
    md = (tmp_path / "audit" / "audit.md").read_text()
    assert "| zone_voxels |" in md and (tmp_path / "audit" / "audit.png").read_bytes()[:4] == b"\x89PNG"
