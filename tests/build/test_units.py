"""Unit tests of the build's plumbing (lock, output folder, staging), which the builder
reaches only through a full build elsewhere."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from rnamotif_data.build.lock import LOCK_FILE, BuildLock
from rnamotif_data.build.outdir import check_out
from rnamotif_data.build.staging import clean_staging, part_exists, part_url, read_part, write_part
from rnamotif_data.errors import StoreError
from rnamotif_data.storage.layout import ARRAY_DTYPES, ARRAYS


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    with BuildLock(str(tmp_path)) as lock:
        held = json.loads((tmp_path / LOCK_FILE).read_text())
        assert held["pid"] == os.getpid() and lock.held
        with pytest.raises(StoreError, match=rf"another build is writing this store .*pid {os.getpid()}"):
            BuildLock(str(tmp_path)).acquire()
    assert not (tmp_path / LOCK_FILE).exists()  # released on exit


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    import socket

    (tmp_path / LOCK_FILE).write_text(json.dumps({"user": "x", "host": socket.gethostname(), "pid": int(dead),
                                                  "started": "2026-01-01T00:00:00+00:00"}))
    with caplog.at_level(logging.WARNING), BuildLock(str(tmp_path)):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"stale lock of process {dead}" in caplog.text


def test_lock_of_another_host_is_never_taken(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"user": "u", "host": "elsewhere.example", "pid": 1,
                                                  "started": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(StoreError, match=r"u@elsewhere\.example.*remove .*\.rnamotif-build\.lock"):
        BuildLock(str(tmp_path)).acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["host"] == "elsewhere.example"  # untouched


def test_output_folder_checks_refuse_what_the_package_did_not_write(tmp_path, demo_store):
    assert check_out(str(tmp_path / "new"), overwrite=False) is None
    (tmp_path / "empty").mkdir()
    assert check_out(str(tmp_path / "empty"), overwrite=True) is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        check_out(str(tmp_path / "file"), overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(StoreError, match=r"not an rnamotif-data store.*thesis\.tex.*nothing was changed"):
        check_out(str(tmp_path / "mine"), overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").exists()
    import shutil

    store = tmp_path / "store.zarr"
    shutil.copytree(demo_store, store)
    assert check_out(str(store), overwrite=True)["build_state"] == "complete"
    (store / "notes.md").write_text("mine")
    with pytest.raises(StoreError, match=r"did not write \(notes\.md\)"):
        check_out(str(store), overwrite=True)


def test_staging_round_trip_keeps_dtypes_and_records(tmp_path):
    rng = np.random.default_rng(0)
    samples = [{"meta": {"sample_id": f"s{i}"}, **{name: rng.random((4, 4, 4)) > 0.5 if name == "zone" else
                                                    (rng.random((4, 4, 4)) * 3).astype(np.float32)
                                                    for name in ARRAYS}} for i in range(3)]
    write_part(str(tmp_path), "6V5B_EMD-21051", samples, [{"reason": "x"}], False, extra={"seconds": 1.5})
    assert part_exists(str(tmp_path), "6V5B_EMD-21051")
    assert not list(tmp_path.rglob("*.tmp-*"))  # written atomically
    back = read_part(str(tmp_path), "6V5B_EMD-21051", arrays=True)
    assert [m["sample_id"] for m in back["meta"]] == ["s0", "s1", "s2"] and back["seconds"] == 1.5
    assert back["failures"] == [{"reason": "x"}] and back["shape"] == [4, 4, 4]
    for name in ARRAYS:
        assert back[name].dtype == np.dtype(ARRAY_DTYPES[name]) and back[name].shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(back["zone"], np.stack([s["zone"] for s in samples]))
    empty = write_part(str(tmp_path), "empty", [], [], True)
    assert empty is None and read_part(str(tmp_path), "empty")["entry_failed"] is True
    clean_staging(str(tmp_path))
    assert not os.path.exists(os.path.dirname(part_url(str(tmp_path), "empty")))


def _em_cif(tmp_path, related: list[tuple[str, str, str]], resolution: str | None):
    """A real deposited mmCIF (4KQY, shipped with the training demo) with the EM records an
    EMDB-deposited entry carries added (``_pdbx_database_related``, ``_em_3d_reconstruction``)."""
    import gemmi

    from ..conftest import DEMO

    doc = gemmi.cif.read(str(DEMO / "training" / "models" / "4kqy.cif.gz"))
    block = doc.sole_block()
    block.find_mmcif_category("_pdbx_database_related.").erase()
    if related:
        loop = block.init_loop("_pdbx_database_related.", ["db_name", "db_id", "content_type", "details"])
        for db, ident, kind in related:
            loop.add_row([gemmi.cif.quote(db), gemmi.cif.quote(ident), gemmi.cif.quote(kind), "."])
    if resolution is not None:
        block.set_pair("_em_3d_reconstruction.resolution", resolution)
    path = tmp_path / "4kqy.cif"
    doc.write_file(str(path))
    return path


def test_em_metadata_is_read_from_the_mmcif(tmp_path):
    from rnamotif_data.build.annotate import em_metadata

    path = _em_cif(tmp_path, [("EMDB", "EMD-21050", "other EM volume"), ("EMDB", "EMD-21051", "associated EM volume"),
                              ("PDB", "6V5C", "re-refinement")], "3.7")
    assert em_metadata(path) == ("EMD-21051", 3.7)
    assert em_metadata(_em_cif(tmp_path, [], None)) == (None, None)
    from ..conftest import DEMO

    assert em_metadata(DEMO / "mirror" / "pdb" / "6v5b.pdb") == (None, None)  # PDB format: not read


def test_annotating_a_local_model_fills_its_map_and_resolution(tmp_path):
    """Issue 27: annotating a local model left emdb_id and resolution empty, so every row
    then failed at fetch."""
    pytest.importorskip("rnapolis", reason="annotation needs RNApolis (the [annotate] extra)")
    import pyarrow.parquet as pq

    from rnamotif_data.build.manifest import main as manifest_main

    path = _em_cif(tmp_path, [("EMDB", "EMD-21051", "associated EM volume")], "3.7")
    assert manifest_main(["annotate", str(path), "--out", str(tmp_path / "m.parquet")]) == 0
    rows = pq.read_table(tmp_path / "m.parquet").to_pylist()
    assert rows and {(r["emdb_id"], r["resolution"]) for r in rows} == {("EMD-21051", 3.7)}
    assert manifest_main(["annotate", str(path), "--out", str(tmp_path / "m2.parquet"), "--emdb-id", "EMD-99999",
                          "--resolution", "4.5"]) == 0
    rows = pq.read_table(tmp_path / "m2.parquet").to_pylist()
    assert {(r["emdb_id"], r["resolution"]) for r in rows} == {("EMD-99999", 4.5)}


def test_a_local_cluster_without_workers_stops_the_build_with_the_reason():
    """Issue 27: workers that could not stay up restarted forever ("no workers for N s")."""
    pytest.importorskip("distributed", reason="the parallel build needs the [build] extra")
    from rnamotif_data.build.runner import Runner
    from rnamotif_data.errors import RNAMotifError

    class QuickRunner(Runner):
        watch_every = 0.2
        local_grace = 1.0

    runner = QuickRunner(None, 1, 1, "auto")
    try:
        runner.cluster.scale(0)  # every worker gone, as when each dies at start
        pending = {runner.submit(sum, [1, 2]): "task"}
        with pytest.raises(RNAMotifError, match=r"no Dask worker stayed up for \d+ s on the local cluster .* --resume"):
            for _ in runner.as_completed(pending):
                pass
    finally:
        runner.close()
