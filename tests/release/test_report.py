"""rnamotif_data.release.report: the QC page of a built store."""

from __future__ import annotations

import pytest

from rnamotif_data.cli.build import main as build_main
from rnamotif_data.cli.report import main as report_main
from rnamotif_data.errors import StoreError


def test_report_on_the_demo_store(tmp_path):
    store = tmp_path / "demo.zarr"
    assert build_main(["--demo", "small", "--out", str(store), "--scheduler", "synchronous", "--no-progress",
                       "--min-q-score", "0.872"]) == 3
    assert report_main([str(store)]) == 0
    out = tmp_path / "demo-report"
    png = (out / "qc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    md = (out / "qc.md").read_text()
    assert "![QC histograms](qc.png)" in md
    assert "| hairpin | 0 | – |" in md  # no hairpin in the demo: shown, not dropped
    assert "| quality | 2 |" in md  # the two motifs below --min-q-score 0.872
    rows = [line for line in md.splitlines() if line.startswith("| symmetric_loop |")]
    assert rows and rows[0].split("|")[2].strip() == "1"  # 1x1 (Q 0.8717) filtered, 2x2 kept


def test_report_refuses_a_missing_store(tmp_path):
    with pytest.raises(StoreError):
        report_main([str(tmp_path / "nothing.zarr")])
