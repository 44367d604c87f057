"""Faults a new user meets (issue 18): one test per item. Each asserts the exit status,
the one-line message naming the file, row or setting, and that nothing outside the
store was touched; the tampering cases assert the reader's error."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnamotif_data.cli import run
from rnamotif_data.cli.build import main as build_main
from rnamotif_data.cli.export import main as export_main
from rnamotif_data.cli.verify import main as verify_main
from rnamotif_data.errors import RegistryError, StoreError
from rnamotif_data.storage.checksums import file_checksums
from rnamotif_data.storage.lock import LOCK_FILE
from rnamotif_data.storage.registry import load_registry
from rnamotif_data.storage.store import open_store

from .conftest import DEMO, REPO

DEMO_ARGS = ["--manifest", str(DEMO / "manifest.parquet"), "--mirror", str(DEMO / "mirror"),
             "--scheduler", "synchronous", "--no-progress"]


def _run(main, argv, capsys) -> tuple[int, str]:
    rc = run(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _copy_store(demo_store, tmp_path) -> Path:
    root = tmp_path / "s.zarr"
    shutil.copytree(demo_store, root)
    return root


# 1 ------------------------------------------------------------ delete only what we made
def test_overwrite_refuses_a_folder_it_did_not_create(tmp_path, capsys):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "thesis.txt").write_text("x")
    rc, err = _run(build_main, [*DEMO_ARGS, "--out", d, "--overwrite"], capsys)
    assert rc == 1 and f"{d}: exists and is not an rnamotif-data store" in err and "nothing was changed" in err
    assert (d / "thesis.txt").read_text() == "x" and (d / "sub").is_dir()
    assert sorted(p.name for p in d.iterdir()) == ["sub", "thesis.txt"]  # no lock left behind either


def test_overwrite_of_a_store_with_foreign_files_is_refused(demo_store, tmp_path, capsys):
    root = _copy_store(demo_store, tmp_path)
    (root / "notes.txt").write_text("mine")
    before = file_checksums(str(root))
    rc, err = _run(build_main, [*DEMO_ARGS, "--out", root, "--overwrite"], capsys)
    assert rc == 1 and "holds files this package did not write (notes.txt)" in err
    assert file_checksums(str(root)) == before and (root / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_our_own_store(demo_store, tmp_path, capsys):
    root = _copy_store(demo_store, tmp_path)
    rc, _ = _run(build_main, [*DEMO_ARGS, "--out", root, "--overwrite"], capsys)
    assert rc == 0 and len(open_store(root)) == 7


def test_export_never_replaces_what_it_did_not_write(demo_store, tmp_path, capsys):
    target = tmp_path / "paper.h5"
    target.write_text("not ours")
    rc, err = _run(export_main, [demo_store, "--format", "hdf5", "--out", target], capsys)
    assert rc == 1 and "exists; pass --overwrite" in err
    rc, err = _run(export_main, [demo_store, "--format", "hdf5", "--out", target, "--overwrite"], capsys)
    assert rc == 1 and "is not a hdf5 export this package wrote" in err and target.read_text() == "not ours"
    out = tmp_path / "ok.h5"
    assert _run(export_main, [demo_store, "--format", "hdf5", "--out", out], capsys)[0] == 0
    assert _run(export_main, [demo_store, "--format", "hdf5", "--out", out, "--overwrite"], capsys)[0] == 0


def test_overwrite_refuses_a_users_file_inside_the_stores_folders(demo_store, tmp_path, capsys):
    """Issue 27: files a user put inside splits/, an array folder or a chunk folder are
    named and kept; nothing of the store is deleted."""
    root = _copy_store(demo_store, tmp_path)
    (root / "splits").mkdir()
    mine = {root / "splits" / "mine.txt": "a", root / "density" / "extra.bin": "b", root / "labels" / "c" / "notes.md": "c"}
    for path, text in mine.items():
        path.write_text(text)
    before = file_checksums(str(root))
    rc, err = _run(build_main, [*DEMO_ARGS, "--out", root, "--overwrite"], capsys)
    assert rc == 1, err
    assert "holds files this package did not write (density/extra.bin, labels/c/notes.md, splits/mine.txt)" in err
    assert "nothing was changed" in err
    assert all(path.read_text() == text for path, text in mine.items())
    assert file_checksums(str(root)) == before


def test_a_leftover_temporary_file_never_blocks_overwrite(demo_store, tmp_path, capsys):
    """A build killed while writing leaves metadata.parquet.tmp-<pid>: the package's own."""
    root = _copy_store(demo_store, tmp_path)
    (root / "metadata.parquet.tmp-4242").write_bytes(b"half a table")
    (root / "splits").mkdir()
    (root / "splits" / "similarity.parquet.tmp-4242").write_bytes(b"half a split")
    rc, err = _run(build_main, [*DEMO_ARGS, "--out", root, "--overwrite"], capsys)
    assert rc == 0, err
    assert not list(root.rglob("*.tmp-*")) and len(open_store(root)) == 7


def test_export_overwrite_keeps_a_users_files_in_an_earlier_export(demo_store, tmp_path, capsys):
    out = tmp_path / "mrc"
    assert _run(export_main, [demo_store, "--format", "mrc", "--out", out], capsys)[0] == 0
    sample = next(p for p in sorted(out.iterdir()) if p.is_dir())
    (sample / "my-notes.txt").write_text("mine")
    (out / "top.txt").write_text("mine too")
    n_files = sum(1 for p in out.rglob("*") if p.is_file())
    rc, err = _run(export_main, [demo_store, "--format", "mrc", "--out", out, "--overwrite"], capsys)
    assert rc == 1 and f"holds files this package did not write ({sample.name}/my-notes.txt, top.txt)" in err
    assert (sample / "my-notes.txt").read_text() == "mine" and (out / "top.txt").read_text() == "mine too"
    assert sum(1 for p in out.rglob("*") if p.is_file()) == n_files  # nothing deleted
    (sample / "my-notes.txt").unlink()
    (out / "top.txt").unlink()
    assert _run(export_main, [demo_store, "--format", "mrc", "--out", out, "--overwrite"], capsys)[0] == 0
    assert sum(1 for p in out.rglob("*") if p.is_file()) == n_files - 2


def test_segment_refuses_to_overwrite_its_outputs(tmp_path, capsys):
    from rnamotif_data.cli.segment import main as segment_main

    args = ["--map", DEMO / "mirror" / "emdb" / "emd_21051.map.gz", "--model", DEMO / "mirror" / "pdb" / "6v5b.pdb",
            "D:14-16,88-90", "--motif-type", "1x1", "--out", tmp_path / "o"]
    assert _run(segment_main, args, capsys)[0] == 0
    (tmp_path / "o" / "mine.txt").write_text("x")
    before = (tmp_path / "o" / "density.mrc").read_bytes()
    (tmp_path / "o" / "density.mrc").write_bytes(b"edited")
    rc, err = _run(segment_main, [*args, "--overwrite"], capsys)  # issue 39: a user's file beside them is refused
    assert rc == 1 and "holds mine.txt, which no run of `rnamotif segment` wrote" in err
    (tmp_path / "o" / "mine.txt").unlink()
    rc, err = _run(segment_main, args, capsys)
    assert rc == 1 and "holds a finished run of `rnamotif segment`; pass --overwrite to replace it" in err
    assert (tmp_path / "o" / "density.mrc").read_bytes() == b"edited"
    assert _run(segment_main, [*args, "--overwrite"], capsys)[0] == 0
    assert (tmp_path / "o" / "density.mrc").read_bytes() == before


def test_a_memory_limit_no_worker_can_run_in_is_refused_up_front(tmp_path, capsys):
    """Issue 27: --memory-limit 1KiB was accepted and the workers restarted forever."""
    rc, err = _run(build_main, [*DEMO_ARGS, "--out", tmp_path / "s.zarr", "--memory-limit", "1KiB"], capsys)
    assert rc == 1 and "--memory-limit 1KiB: below the 512 MiB a worker needs" in err
    assert not (tmp_path / "s.zarr").exists()


def test_damaged_inputs_are_one_line_errors_naming_the_file(demo_store, tmp_path, capsys):
    """Issue 27's tracebacks: a store missing an array's zarr.json, and Atlas release files
    that are not JSON, not a list of motif groups, or with non-numeric positions."""
    from rnamotif_data.cli.manifest import main as manifest_main

    root = _copy_store(demo_store, tmp_path)
    (root / "density" / "zarr.json").unlink()
    with pytest.raises(StoreError, match=r"array 'density' is missing \(density/zarr.json not found\)"):
        open_store(root)
    from rnamotif_data import RNAMotifDataset

    with pytest.raises(StoreError, match=r"array 'density' is missing"):  # was FileNotFoundError in the dataset
        RNAMotifDataset(root, split="all")
    cases = {"not json\n": "not an RNA 3D Motif Atlas release file: not JSON (Expecting value at line 1, column 1)",
             '{"a": 1}': "not an RNA 3D Motif Atlas release file: expected a JSON list of motif groups, found a dict",
             '[{"motif_id": "HL_1", "alignment": {"bad|unit": []}}]':
                 "motif group 1 (HL_1): instance bad|unit: expected {position: unit id} with numeric positions"}
    for k, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"hl_{k}.json"
        path.write_text(text)
        rc, err = _run(manifest_main, ["import", "atlas", path, "--out", tmp_path / f"m{k}.parquet"], capsys)
        assert rc == 1 and err.strip().splitlines() == [f"error: {path}: {message}"], err
        assert not (tmp_path / f"m{k}.parquet").exists()


def test_a_full_disk_fails_the_build_not_the_rows_and_resume_completes_it(tmp_path):
    """Issue 27: with writes limited to 100 KiB (``ulimit -f``: EFBIG, as a full disk gives
    ENOSPC) the build recorded every row as failed and marked a 0-sample store complete."""
    out = tmp_path / "s.zarr"
    script = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (102400, "
              "resource.getrlimit(resource.RLIMIT_FSIZE)[1])); from rnamotif_data.cli import main; "
              "sys.exit(main(sys.argv[1:]))")
    args = ["build", *DEMO_ARGS, "--out", str(out)]
    r = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out}: the build stopped while staging 6V5B / EMD-21051: OSError: [Errno 27] File "
                           "too large; nothing was recorded as failed and the store is resumable"), last
    assert "Traceback" not in r.stderr
    from rnamotif_data.storage.layout import get_attrs

    assert get_attrs(str(out))["build_state"] == "building" and not (out / "failures.parquet").exists()
    r = subprocess.run([sys.executable, "-m", "rnamotif_data", *args, "--resume"], capture_output=True, text=True,
                       cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(open_store(out)) == 7 and len(open_store(out).failures) == 0


def test_lower_case_ids_are_read_as_the_ids_they_are():
    """Issue 27: a lower-case PDB ID was rejected with "expected 4 characters"."""
    from rnamotif_data.inputs.schema import validate_manifest

    table = pa.table({"pdb_id": ["6v5b", " 6V5B"], "emdb_id": ["emd-21051", None], "motif_type": ["1x1", "2x2"],
                      "selection": ["D:14-16,88-90", "D:19-22,82-85"]})
    valid, rejected = validate_manifest(table)
    assert rejected == [] and valid["pdb_id"].to_pylist() == ["6V5B", "6V5B"]
    assert valid["emdb_id"].to_pylist() == ["EMD-21051", None]


def test_the_upstream_scheme_says_what_is_missing(demo_store, capsys):
    from rnamotif_data.cli.split import main as split_main

    rc, err = _run(split_main, [demo_store, "--scheme", "upstream"], capsys)
    assert rc == 1 and "its metadata carries no upstream_fold and no fold files were given" in err
    assert "--folds DIR" in err


@pytest.fixture
def two_shard_store(demo_store, tmp_path):
    from rnamotif_data.testing.synthetic_store import make_synthetic_store

    return Path(make_synthetic_store(str(demo_store), str(tmp_path / "two.zarr"), 70, seed=0, shard_size=32,
                                     splits=()))


def _swap(a: Path, b: Path) -> None:
    tmp = a.with_name(a.name + ".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def test_swapped_shards_are_an_error_naming_store_array_and_samples(two_shard_store):
    """Issue 27: chunk CRCs catch corruption, not relocation; two swapped shard files served
    other samples' cubes through store.read and the dataset."""
    from rnamotif_data import RNAMotifDataset

    root = two_shard_store
    for name in ("density", "density_masked"):
        _swap(root / name / "c" / "0" / "0" / "0" / "0", root / name / "c" / "1" / "0" / "0" / "0")
    with pytest.raises(StoreError, match=rf"{root}: array density: shard c/0/0/0/0 \(samples 0-31\) is not the shard "
                                         "written at this position"):
        open_store(root).read(3)
    with pytest.raises(StoreError, match=r"array density_masked: shard c/1/0/0/0 \(samples 32-63\) is not the shard"):
        RNAMotifDataset(root, split="all")[40]
    assert open_store(root).read(65)["density"].shape == (40, 40, 40)  # the third shard is where it was


def test_a_class_edited_in_the_metadata_is_refused_by_the_dataset(two_shard_store):
    """Issue 27: class_index edited and checksums.sha256 re-hashed: the dataset served the
    new label; it now checks the class columns against the type, as verify does."""
    from rnamotif_data import RNAMotifDataset
    from rnamotif_data.storage.checksums import write_checksums

    root = two_shard_store
    meta = pq.read_table(root / "metadata.parquet")
    ci = meta["class_index"].to_pylist()
    k = next(i for i, t in enumerate(meta["motif_type"].to_pylist()) if t != "unknown")
    ci[k] = (ci[k] + 1) % 5
    meta = meta.set_column(meta.schema.get_field_index("class_index"), "class_index", pa.array(ci, pa.int8()))
    pq.write_table(meta, root / "metadata.parquet")
    write_checksums(str(root))
    with pytest.raises(StoreError, match=r"metadata.parquet: the class of 1 sample\(s\) disagrees with their motif type"):
        RNAMotifDataset(root, split="all")


def test_segment_checks_the_type_against_the_selection(tmp_path, capsys):
    """Issue 27: an 8-nt single strand cut as 1x1 exited 0 and wrote motif_class
    symmetric_loop. The strands must fit the type, listed with one or two closing pairs
    (upstream's hairpin3 J:85-91 is 7 nt: two pairs)."""
    from rnamotif_data.cli.segment import main as segment_main

    common = ["--map", DEMO / "mirror" / "emdb" / "emd_21051.map.gz", "--model", DEMO / "mirror" / "pdb" / "6v5b.pdb"]
    rc, err = _run(segment_main, [*common, "D:22-29", "--motif-type", "1x1", "--out", tmp_path / "o"], capsys)
    assert rc == 1 and err.strip() == ("error: 6v5b D:22-29: 1 strand(s) of 8 nucleotides cannot be 1x1, which has "
                                       "2 strand(s)")
    assert not (tmp_path / "o").exists()
    rc, err = _run(segment_main, [*common, "D:14-17,87-90", "--motif-type", "1x1", "--out", tmp_path / "p"], capsys)
    assert rc == 1 and "strands of 4 + 4 nucleotides do not fit 1x1 (expects 3 + 3 with 1 closing pair(s) or " \
                       "5 + 5 with 2 closing pair(s))" in err
    assert _run(segment_main, [*common, "D:14-16,88-90", "--motif-type", "1x1", "--out", tmp_path / "q"],
                capsys)[0] == 0


# 1b ----------------------------------------------------------- offline clarity, no hang
def _em_cif(tmp_path, related: list[tuple[str, str, str]], resolution: str | None):
    """A real deposited mmCIF (4KQY, shipped with the training demo) with the EM records an
    EMDB-deposited entry carries added (``_pdbx_database_related``, ``_em_3d_reconstruction``)."""
    import gemmi

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
    from rnamotif_data.inputs.annotate import em_metadata

    path = _em_cif(tmp_path, [("EMDB", "EMD-21050", "other EM volume"), ("EMDB", "EMD-21051", "associated EM volume"),
                              ("PDB", "6V5C", "re-refinement")], "3.7")
    assert em_metadata(path) == ("EMD-21051", 3.7)
    assert em_metadata(_em_cif(tmp_path, [], None)) == (None, None)
    assert em_metadata(DEMO / "mirror" / "pdb" / "6v5b.pdb") == (None, None)  # PDB format: not read


def test_annotating_a_local_model_fills_its_map_and_resolution(tmp_path):
    """Issue 27: annotating a local model left emdb_id and resolution empty, so every row
    then failed at fetch."""
    pytest.importorskip("rnapolis", reason="annotation needs RNApolis (the [annotate] extra)")
    import pyarrow.parquet as pq

    from rnamotif_data.cli.annotate import main as annotate_main

    path = _em_cif(tmp_path, [("EMDB", "EMD-21051", "associated EM volume")], "3.7")
    assert annotate_main([str(path), "--out", str(tmp_path / "m.parquet")]) == 0
    rows = pq.read_table(tmp_path / "m.parquet").to_pylist()
    assert rows and {(r["emdb_id"], r["resolution"]) for r in rows} == {("EMD-21051", 3.7)}
    assert annotate_main([str(path), "--out", str(tmp_path / "m2.parquet"), "--emdb-id", "EMD-99999",
                          "--resolution", "4.5"]) == 0
    rows = pq.read_table(tmp_path / "m2.parquet").to_pylist()
    assert {(r["emdb_id"], r["resolution"]) for r in rows} == {("EMD-99999", 4.5)}


def test_a_local_cluster_without_workers_stops_the_build_with_the_reason():
    """Issue 27: workers that could not stay up restarted forever ("no workers for N s")."""
    pytest.importorskip("distributed", reason="the parallel build needs the [build] extra")
    from rnamotif_data.errors import RNAMotifError
    from rnamotif_data.pipeline.runner import Runner

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


def test_a_local_cluster_keeps_glibc_malloc_thresholds_and_one_blas_thread(monkeypatch):
    """Dask's MALLOC_TRIM_THRESHOLD_=65536 makes every large temporary a fresh mmap (60 % more
    CPU on a ribosome-size entry): the build's own cluster starts its workers without it, and
    keeps Dask's other pre-spawn variables."""
    pytest.importorskip("distributed", reason="the parallel build needs the [build] extra")
    import os

    from distributed import Client

    from rnamotif_data.pipeline.runner import local_cluster

    for name in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS"):  # an exported variable would win
        monkeypatch.delenv(name, raising=False)

    def env():
        return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")

    with local_cluster(1) as cluster, Client(cluster) as client:
        assert list(client.run(env).values()) == [(None, "1")]


# 2 ------------------------------------------------------------ one build per store
def test_a_store_being_built_is_locked(tmp_path, capsys):
    out = tmp_path / "locked.zarr"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_FILE).write_text(json.dumps({"user": "ana", "host": socket.gethostname(), "pid": holder.pid,
                                                 "started": "2026-11-22T01:00:00+00:00"}))
        rc, err = _run(build_main, [*DEMO_ARGS, "--out", out], capsys)
        assert rc == 1 and f"another build is writing this store (ana@{socket.gethostname()}, pid {holder.pid}" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale, taken over with a warning, and released at the end
    rc, err = _run(build_main, [*DEMO_ARGS, "--out", out], capsys)
    assert rc == 0 and not (out / LOCK_FILE).exists() and len(open_store(out)) == 7


# 3 ------------------------------------------------------------ readers verify
def test_missing_shard_is_an_error_not_zeros(demo_store, tmp_path):
    root = _copy_store(demo_store, tmp_path)
    (root / "density" / "c" / "0" / "0" / "0" / "0").unlink()
    with pytest.raises(StoreError, match=r"s\.zarr: array density: shard c/0/0/0/0 \(samples 0-6\) is missing"):
        open_store(root).read_batch([3])
    with pytest.raises(StoreError, match="array density"):
        open_store(root).read(0)


def test_flipped_byte_in_a_chunk_fails_its_checksum(demo_store, tmp_path):
    root = _copy_store(demo_store, tmp_path)
    shard = root / "labels" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x01  # inside a chunk, far from the index
    shard.write_bytes(bytes(data))
    store = open_store(root)
    with pytest.raises(StoreError, match=r"array labels: sample \d is damaged \(CRC32C mismatch\)"):
        store.read_batch(range(7))


def test_flipped_byte_in_metadata_and_edited_attributes_are_refused(demo_store, tmp_path):
    root = _copy_store(demo_store, tmp_path)
    meta = root / "metadata.parquet"
    data = bytearray(meta.read_bytes())
    data[len(data) // 2] ^= 0x10
    meta.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"metadata\.parquet differs from checksums\.sha256"):
        open_store(root).metadata
    root2 = _copy_store(demo_store, tmp_path / "b")
    group = json.loads((root2 / "zarr.json").read_text())
    group["attributes"]["class_names"][0] = "pseudoknot"
    (root2 / "zarr.json").write_text(json.dumps(group))
    with pytest.raises(StoreError, match=r"attributes \(zarr\.json: class names, voxel size"):
        open_store(root2)


# 4 ------------------------------------------------------------ verify reports, never crashes
def test_verify_lists_every_problem_of_a_damaged_store(demo_store, tmp_path, capsys, caplog):
    root = _copy_store(demo_store, tmp_path)
    shard = root / "density" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF  # the shard index
    shard.write_bytes(bytes(data))
    truncated = root / "zone" / "c" / "0" / "0" / "0" / "0"
    truncated.write_bytes(truncated.read_bytes()[:100])
    with caplog.at_level("INFO", logger="rnamotif_data.release.verify"):
        rc, _ = _run(verify_main, [root], capsys)
    log = caplog.text
    assert rc == 1
    assert "density/c/0/0/0/0: sha256 differs" in log and "zone/c/0/0/0/0: sha256 differs" in log
    assert "samples 0-6: StoreError" in log and "shard index fails its CRC32C" in log and "problem(s)" in log


# 5 ------------------------------------------------------------ registry names
def test_registry_file_names_are_checked_before_any_io(tmp_path):
    entry = {"record_id": 1, "doi": "10.5281/zenodo.1", "concept_doi": "10.5281/zenodo.0", "api_url": "x",
             "published": "2026-11-22", "archive": "rnamotif-data-1.0.0.zarr.zip",
             "files": [{"name": "../../PWNED.txt", "size": 1, "sha256": "0" * 64, "md5": "0" * 32,
                        "url": "http://127.0.0.1:9/x"}]}
    reg = tmp_path / "versions.json"
    from rnamotif_data.storage.registry import _FORMAT

    reg.write_text(json.dumps({"format": _FORMAT, "versions": {"1.0.0": entry}}))
    with pytest.raises(RegistryError, match=r"file name '\.\./\.\./PWNED\.txt' is not a plain file name"):
        load_registry(reg)
    assert not (tmp_path.parent / "PWNED.txt").exists()


# 6 ------------------------------------------------------------ clusters
def test_cluster_options_are_validated(tmp_path, capsys):
    rc, err = _run(build_main, [*DEMO_ARGS[:-3], "--workers", "-2", "--out", tmp_path / "w"], capsys)
    assert rc == 1 and "--workers -2: give at least 1 worker process" in err
    assert not (tmp_path / "w").exists()


def test_relative_out_is_made_absolute(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _ = _run(build_main, [*DEMO_ARGS, "--out", "rel.zarr"], capsys)
    assert rc == 0 and (tmp_path / "rel.zarr" / "metadata.parquet").exists()


def test_a_cluster_without_workers_says_so(tmp_path, caplog):
    """An external scheduler that has (or lost) all its workers: the wait is reported."""
    from rnamotif_data.pipeline.runner import Runner

    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", "0", "--scheduler-file", str(tmp_path / "s.json"), "--no-dashboard"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "s.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads((tmp_path / "s.json").read_text())["address"]
        Runner.watch_every = 0.5
        with caplog.at_level("WARNING", logger="rnamotif_data.pipeline.builder"):
            runner = Runner(address, None, 1, "auto")
            handle = runner.submit(sum, [1, 2])
            time.sleep(2.0)
            runner.close()
        assert handle is not None and "no workers for" in caplog.text and address in caplog.text
    finally:
        Runner.watch_every = 5.0
        sched.kill()
        sched.wait()


# 7 ------------------------------------------------------------ same bytes whatever the scheduler
def test_external_cluster_build_is_byte_identical_to_synchronous(tmp_path, caplog, monkeypatch):
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1, started here. Their
    nannies set Dask's MALLOC_TRIM_THRESHOLD_, and the build says what that costs."""
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)  # the workers get Dask's default
    sync = tmp_path / "sync.zarr"
    assert run(build_main, [*DEMO_ARGS, "--out", str(sync)]) == 0
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--scheduler-file", str(tmp_path / "s.json"), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "s.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                           str(tmp_path / "s.json"), "--nthreads", "1", "--no-dashboard",
                                           "--host", "127.0.0.1"], cwd=REPO,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads((tmp_path / "s.json").read_text())["address"]
        ext = tmp_path / "ext.zarr"
        args = [a for a in DEMO_ARGS if a != "synchronous" and a != "--scheduler"]
        with caplog.at_level("INFO", logger="rnamotif_data.pipeline.builder"):
            assert run(build_main, [*args, "--scheduler", address, "--out", str(ext)]) == 0
        assert "MALLOC_TRIM_THRESHOLD_=65536" in caplog.text and "pre-spawn-environ" in caplog.text
    finally:
        for p in procs:
            p.kill()
            p.wait()
    a, b = file_checksums(str(sync)), file_checksums(str(ext))
    assert a == b
    assert (sync / "checksums.sha256").read_bytes() == (ext / "checksums.sha256").read_bytes()


# 8 ------------------------------------------------------------ one-line errors
@pytest.mark.parametrize("extra, fragment", [
    (["--compression-level", "99"], "compression_level must be a lz4 level from 1 to 9, got 99"),
    (["--codec", "zstd", "--compression-level", "99"], "compression_level must be a zstd level from 1 to 22, got 99"),
    (["--memory-limit", "banana"], "--memory-limit 'banana': expected 'auto' or a size"),
    (["--scheduler", "bogus"], "--scheduler 'bogus': expected 'synchronous' or a Dask scheduler address"),
    (["--zone-radius", "1e6"], "zone_radius 1e+06 Å and label_radius 1.5 Å must be at most 50 Å"),
    (["--voxel-size", "0.001"], "voxel_size must be >= 0.2 Å"),
    (["--cube-size", "2000"], "cube_size must be an integer from 2 to 256 voxels, got 2000"),
    (["--zone-radius", "nan"], "zone_radius must be a finite number, got nan"),
    (["--min-fit-z", "nan"], "min_fit_z must be a finite number, got nan"),
])
def test_bad_settings_are_refused_up_front(extra, fragment, tmp_path, capsys):
    args = [a for a in DEMO_ARGS if a not in ("--scheduler", "synchronous")] if "--scheduler" in extra else DEMO_ARGS
    rc, err = _run(build_main, [*args, *extra, "--out", tmp_path / "o"], capsys)
    assert rc == 1 and fragment in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_bad_manifests_and_mirrors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "int.parquet"
    pq.write_table(pa.table({"pdb_id": [1234], "motif_type": ["1x1"], "selection": ["A:1-3,5-7"]}), bad)
    rc, err = _run(build_main, ["--manifest", bad, "--out", tmp_path / "a", "--offline"], capsys)
    assert rc == 1 and "int.parquet: column pdb_id must hold strings, got int64" in err
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"pdb_id": pa.array([], pa.string()), "motif_type": pa.array([], pa.string()),
                             "selection": pa.array([], pa.string())}), empty)
    rc, err = _run(build_main, ["--manifest", empty, "--out", tmp_path / "b", "--offline"], capsys)
    assert rc == 1 and "empty.parquet: the manifest has no rows; nothing to build" in err
    rc, err = _run(build_main, [*DEMO_ARGS[:2], "--mirror", tmp_path / "nope", "--out", tmp_path / "c"], capsys)
    assert rc == 1 and f"--mirror {tmp_path / 'nope'}: no such folder" in err


def test_checkpoints_and_devices_are_one_line(demo_store, tmp_path, capsys):
    from rnamotif_data.cli.evaluate import main as evaluate_main

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(256))
    rc, err = _run(evaluate_main, ["--checkpoint", garbage, "--root", demo_store, "--split", "fold1",
                                   "--device", "cpu"], capsys)
    assert rc == 1 and "garbage.pt: not a loadable checkpoint" in err
    import torch

    if not torch.cuda.is_available():
        from rnamotif_data.cli.train import main as train_main

        rc, err = _run(train_main, ["--root", demo_store, "--split", "fold1", "--out", tmp_path / "r",
                                    "--device", "cuda", "--epochs", "1"], capsys)
        assert rc == 1 and "--device cuda: CUDA is not available here" in err


def test_a_pickled_checkpoint_that_runs_code_is_refused(tmp_path):
    """A crafted .pt whose unpickling would call os.system: refused, nothing runs."""
    import pickle

    from rnamotif_data.errors import RNAMotifError
    from rnamotif_data.learn.checkpoints import load_checkpoint

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": Evil()}))
    with pytest.raises(RNAMotifError, match="evil.pt: not a loadable checkpoint") as exc:
        load_checkpoint(path, "cpu")
    assert "weights_only" not in str(exc.value)  # issue 27: never the advice to run the file's code
    assert not marker.exists()


def test_export_of_an_empty_store_is_refused(tmp_path, capsys, caplog):
    """Every row of the demo fails (a type no selection fits): a complete store of 0 samples."""
    rows = pq.read_table(DEMO / "manifest.parquet").to_pylist()
    for r in rows:
        r["motif_type"] = "hairpin7"
    manifest = tmp_path / "m.parquet"
    from rnamotif_data.inputs.schema import rows_to_table

    pq.write_table(rows_to_table(rows), manifest)
    root = tmp_path / "empty.zarr"
    assert run(build_main, ["--manifest", str(manifest), *DEMO_ARGS[2:], "--out", str(root)]) == 3
    assert len(open_store(root)) == 0
    caplog.clear()
    assert run(verify_main, [str(root)]) == 1  # issue 27: a 0-sample store is not "OK"
    assert "holds no samples: all 5 manifest rows failed (see failures.parquet)" in caplog.text
    assert "OK" not in caplog.text
    rc, err = _run(export_main, [root, "--format", "hdf5", "--out", tmp_path / "x.h5"], capsys)
    assert rc == 1 and "has no samples; nothing to export" in err


# 9 ------------------------------------------------------------ the token never appears
@pytest.mark.parametrize("token, kind", [("abc\ndef", "whitespace at position 4"),
                                         ("abcé", "a non-ASCII character at position 4")])
def test_bad_tokens_are_refused_without_echo(token, kind, monkeypatch):
    from rnamotif_data.errors import ZenodoAuthError
    from rnamotif_data.release.zenodo import token_from_env

    monkeypatch.setenv("ZENODO_TOKEN", token)
    with pytest.raises(ZenodoAuthError) as exc:
        token_from_env()
    assert kind in str(exc.value) and token.strip() not in str(exc.value) and "abc" not in str(exc.value)


# 10 ------------------------------------------------------------ small truths
def test_rerun_summary_and_finished_store_options(demo_store, tmp_path, capsys, caplog):
    root = _copy_store(demo_store, tmp_path)
    with caplog.at_level("INFO"):
        rc, _ = _run(build_main, [*DEMO_ARGS, "--out", root, "--dataset-version", "9.9.9"], capsys)
    assert rc == 0 and "7 samples (2 background)" in caplog.text
    assert "--dataset-version 9.9.9 is not applied" in caplog.text


def test_make_demo_is_byte_reproducible(tmp_path):
    from rnamotif_data.cli.make_demo import main as make_demo

    for name in ("a", "b"):
        shutil.copytree(DEMO, tmp_path / name)
        assert make_demo(["--out", str(tmp_path / name)]) == 0
    for rel in ("mirror/emdb/emd_21051.map.gz", "manifest.parquet"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert (tmp_path / "a" / "mirror/emdb/emd_21051.map.gz").read_bytes() == \
        (DEMO / "mirror/emdb/emd_21051.map.gz").read_bytes()  # the shipped file is what it makes


def test_fetch_reports_of_same_named_manifests_do_not_collide(tmp_path, capsys):
    from rnamotif_data.cli.fetch import main as fetch_main

    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        shutil.copy(DEMO / "manifest.parquet", tmp_path / sub / "manifest.parquet")
        assert _run(fetch_main, ["--manifest", tmp_path / sub / "manifest.parquet", "--mirror", DEMO / "mirror",
                                 "--offline", "--cache", tmp_path / "c", "--no-progress"], capsys)[0] == 0
    reports = sorted((tmp_path / "c" / "reports").glob("manifest-*.fetch.parquet"))
    assert len(reports) == 2


# 11 ------------------------------------------------------------ modules
def test_no_import_cycle_between_manifest_and_importers():
    code = ("import importlib, sys; importlib.import_module('rnamotif_data.inputs.importers'); "
            "assert 'rnamotif_data.cli.manifest' not in sys.modules, 'importers imports the CLI'")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
    big = [p for p in (REPO / "rnamotif_data").rglob("*.py") if len(p.read_text().splitlines()) > 800]
    assert not big, big


def test_damaged_store_metadata_does_not_load_silently_as_numbers(demo_store, tmp_path):
    """The review's case: a flipped byte in metadata.parquet loaded fit_z = -8e203."""
    root = _copy_store(demo_store, tmp_path)
    meta = root / "metadata.parquet"
    raw = bytearray(meta.read_bytes())
    pos = raw.find(np.float64(open_store(demo_store).metadata["fit_z"].iloc[0]).tobytes())
    if pos < 0:
        pytest.skip("fit_z not stored plainly (dictionary or compression)")
    raw[pos + 7] ^= 0x40
    meta.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="metadata.parquet differs"):
        open_store(root).metadata


def test_a_bad_token_fails_before_any_packaging(demo_store, tmp_path, monkeypatch):
    """The token is checked with one authenticated call before the release is packaged."""
    from rnamotif_data.errors import ZenodoAuthError
    from rnamotif_data.release.package import load_zenodo_config
    from rnamotif_data.release.publish import PublishOptions, publish

    from .zenodo_server import FakeZenodo

    srv = FakeZenodo(tokens={"good": {"deposit:write", "deposit:actions"}}).start()
    try:
        monkeypatch.setenv("ZENODO_TOKEN", "not-a-token")
        out = tmp_path / "pkg"
        with pytest.raises(ZenodoAuthError, match="401"):
            publish(PublishOptions(store=demo_store, version="1.0.0", out=out, config=load_zenodo_config(),
                                   api_url=srv.url, registry=tmp_path / "versions.json"))
        assert not out.exists() and [r["path"] for r in srv.requests] == ["/api/deposit/depositions"]
    finally:
        srv.stop()


def test_malformed_sha256sums_is_one_line(tmp_path):
    from rnamotif_data.storage.checksums import read_checksums

    root = tmp_path / "s.zarr"
    root.mkdir()
    (root / "checksums.sha256").write_text("not a checksum line\n")
    with pytest.raises(StoreError, match=r"checksums\.sha256 line 1: not '<sha256>  <path>'"):
        read_checksums(str(root))


def test_retry_failed_on_a_finished_store_is_said(tmp_path, capsys):
    rows = pq.read_table(DEMO / "manifest.parquet").to_pylist()
    rows[0]["motif_type"] = "hairpin7"  # one row that cannot build
    from rnamotif_data.inputs.schema import rows_to_table

    manifest = tmp_path / "m.parquet"
    pq.write_table(rows_to_table(rows), manifest)
    out = tmp_path / "s.zarr"
    args = ["--manifest", str(manifest), *DEMO_ARGS[2:], "--out", str(out)]
    assert run(build_main, args) == 3
    rc, err = _run(build_main, [*args, "--resume", "--retry-failed"], capsys)
    assert rc == 1 and "the build is complete; --retry-failed redoes failed entries of an interrupted build" in err


def test_segment_refuses_a_huge_cube(tmp_path, capsys):
    from rnamotif_data.cli.segment import main as segment_main

    rc, err = _run(segment_main, ["--map", DEMO / "mirror" / "emdb" / "emd_21051.map.gz", "--model",
                                  DEMO / "mirror" / "pdb" / "6v5b.pdb", "D:14-16,88-90", "--motif-type", "1x1",
                                  "--out", tmp_path / "o", "--cube-size", "2000"], capsys)
    assert rc == 1 and "cube_size must be an integer from 2 to 256 voxels, got 2000" in err


def test_all_zero_cubes_are_stored_and_read_as_zeros(tmp_path):
    """A background site in unmodelled density has all-zero label and nucleotide cubes; zarr
    would skip such chunks, which the reader would then (rightly) call missing. Every chunk
    is written, so zeros read back as zeros and a missing chunk still means damage."""
    from rnamotif_data.storage.shards import ShardReader
    from rnamotif_data.storage.store import create_arrays, write_shard

    root = str(tmp_path / "z.zarr")
    create_arrays(root, 4, (8, 8, 8), 4)
    data = {n: np.zeros((4, 8, 8, 8), dtype=d) for n, d in
            (("density", "float16"), ("zone", "bool"), ("labels", "uint8"), ("nucleotide", "uint8"))}
    data["density"][1] = 1
    write_shard(root, 0, data)
    reader = ShardReader(root, "labels", json.loads((tmp_path / "z.zarr" / "labels" / "zarr.json").read_text()), 4)
    assert reader.read(np.arange(4)).sum() == 0
