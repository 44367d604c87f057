"""Cross-validation of a segmentation network on tiles (issue 37, item 5):
``rnamotif evaluate --cv RUN`` scores each fold's ``best.pt`` on its own held-out fold of a
real multi-entry tiled store (15 Atlas models and 6V5B chain D, maps simulated at 4 Å,
volumes at 4 Å so the test is quick, split by Rfam family), pools the five folds with each
test entry once, and names each entry's similarity to its fold's training set."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnamotif_data.cli import run  # noqa: E402
from rnamotif_data.cli.build import main as build_main  # noqa: E402
from rnamotif_data.cli.evaluate import main as evaluate_main  # noqa: E402
from rnamotif_data.cli.split import main as split_main  # noqa: E402
from rnamotif_data.learn.segmetrics import SegmentationMetrics  # noqa: E402
from rnamotif_data.learn.segnet import build_segmentation_network, save_segmentation_checkpoint  # noqa: E402
from rnamotif_data.learn.tilerun import evaluate_tiles, evaluate_tiles_cv  # noqa: E402
from rnamotif_data.learn.tiles import RNAMotifTiles  # noqa: E402
from rnamotif_data.rna.elements import ELEMENT_NAMES  # noqa: E402
from rnamotif_data.samples.volumes import VolumeConfig  # noqa: E402
from rnamotif_data.split.tiles import related_levels  # noqa: E402
from rnamotif_data.testing.multi_entry import FixtureConfig, make_fixture  # noqa: E402

from ..conftest import SHARED_DATA, shared  # noqa: E402

VOXEL = 4.0  # Å: 8³ tiles of the 4 Å volumes hold 32 Å, the test stays quick


@pytest.fixture(scope="module")
def cv_store(tmp_path_factory) -> str:
    """The multi-entry fixture without the 50S volumes, built with 8³ tiles of a 4 Å grid
    every 8 voxels and split by Rfam family with the shared homology tables (~15 s)."""
    for part in ("atlas-models", "rna-models", "homology"):
        shared(part)  # skips with the reason when the shared data are absent (fails under CI=true)
    out = tmp_path_factory.mktemp("cv")
    manifest = make_fixture(SHARED_DATA, out, FixtureConfig(fifty_s_step=0))
    store = out / "store.zarr"
    assert build_main(["--manifest", str(manifest), "--mirror", str(out / "mirror"), "--out", str(store), "--tiles",
                       "--tile-size", "8", "--tile-stride", "8", "--tile-block", "8", "--tile-voxel-size", str(VOXEL),
                       "--tile-label-radius", "2.5", "--scheduler", "synchronous", "--no-progress"]) in (0, 3)
    assert split_main([str(store), "--tiles", "--level", "family", "--homology-dir",
                       str(SHARED_DATA / "homology")]) == 0
    return str(store)


def _run(store: str, run, seeds=(None,)) -> None:
    """One untrained (seeded) tiny U-Net per fold and seed, saved as its fold's best.pt
    with that fold's training voxel counts (the prior the reference lines use)."""
    for seed in seeds:
        for k in range(1, 6):
            torch.manual_seed(100 * (seed or 0) + k)
            net = build_segmentation_network("unet3d", in_channels=1, n_classes=9, width=2, depth=1)
            train = RNAMotifTiles(store, f"fold{k}", "inner_train")
            counts = np.zeros(9, np.int64)
            for e in sorted(set(train.tiles["entry"])):
                counts += np.bincount(train.read_entry(e, ("element",))["element"].ravel(), minlength=256)[:9]
            folder = run / (f"seed{seed}" if seed is not None else "") / f"fold{k}"
            folder.mkdir(parents=True, exist_ok=True)
            save_segmentation_checkpoint(net, folder / "best.pt", network="unet3d", tile=8, class_names=ELEMENT_NAMES,
                                         volume_config=VolumeConfig(voxel_size=VOXEL, label_radius=2.5),
                                         extra={"train_counts": counts.tolist(),
                                                "config": {"protocol": "nested"}})


def test_each_fold_on_its_own_test_entries_pooled_once(cv_store, tmp_path):
    run = tmp_path / "run"
    _run(cv_store, run)
    assert evaluate_main(["--cv", str(run), "--root", cv_store, "--device", "cpu"]) == 0
    out = run / "eval-cv"
    summary = json.loads((out / "metrics.json").read_text())
    rows = [r for r in summary["runs"] if r["fold"] != "pooled"]
    pooled = summary["pooled"]["None"]
    # every entry with volumes is scored once, in its own fold
    entries = {e for k in range(1, 6) for e in RNAMotifTiles(cv_store, f"fold{k}", "test").tiles["entry"]}
    assert pooled["n_entries"] == len(entries) == sum(r["entries"] for r in rows) >= 14
    # the pooled confusion is the sum of the folds' (each fold scored as evaluate scores it)
    total = np.zeros((9, 9), np.int64)
    for k in range(1, 6):
        res = evaluate_tiles(run / f"fold{k}" / "best.pt", cv_store, tmp_path / f"e{k}", split=f"fold{k}",
                             device="cpu", progress=False)
        total += np.asarray(res["groups"]["all"]["predictors"]["network"]["confusion"])
        row = next(r for r in rows if r["fold"] == k)
        assert row["network_macro_f1"] == pytest.approx(res["groups"]["all"]["predictors"]["network"]["macro_f1"])
        # split by family: no test entry shares a chain class or a family with its training set
        assert set(res["groups"]["level"]) == {"none"}
    assert np.array_equal(np.asarray(pooled["groups"]["all"]["predictors"]["network"]["confusion"]), total)
    # the reference lines sit beside the network, with intervals over the pooled entries
    for name in ("prior_drawn", "majority", "threshold"):
        p = pooled["groups"]["all"]["predictors"][name]
        assert p["macro_f1_tol"] is not None and p["macro_f1_tol_ci95"] is not None
    text = (out / "report.md").read_text()
    assert "| - | pooled |" in text and "density threshold" in text.lower() and (out / "slice.png").stat().st_size > 0


def test_seeds_give_mean_and_sd_of_the_pooled_figures(cv_store, tmp_path):
    run = tmp_path / "run"
    _run(cv_store, run, seeds=(0, 1))
    summary = evaluate_tiles_cv(run, cv_store, tmp_path / "out", device="cpu", progress=False)
    m = summary["mean_over_seeds"]["network_macro_f1_tol"]
    pooled = [r["network_macro_f1_tol"] for r in summary["runs"] if r["fold"] == "pooled"]
    assert m["n"] == 2 and m["mean"] == pytest.approx(np.mean(pooled)) and m["sd"] == pytest.approx(
        np.std(pooled, ddof=1))


def _one_line(capsys, argv) -> str:
    rc = run(evaluate_main, [str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("INFO", "WARNING"))]
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_an_unfinished_run_a_users_file_and_a_store_of_another_grid_are_one_line_errors(cv_store, tiled_store, tmp_path, capsys):
    run_dir = tmp_path / "run"
    _run(cv_store, run_dir)
    (run_dir / "fold5" / "best.pt").unlink()
    line = _one_line(capsys, ["--cv", run_dir, "--root", cv_store, "--device", "cpu"])
    assert "not a finished cross-validation run" in line and "fold5/best.pt" in line
    assert not (run_dir / "eval-cv").exists()  # a refused input leaves nothing behind
    _run(cv_store, run_dir)
    (run_dir / "eval-cv").mkdir()
    (run_dir / "eval-cv" / "notes.txt").write_text("mine")
    line = _one_line(capsys, ["--cv", run_dir, "--root", cv_store, "--device", "cpu"])
    assert "notes.txt" in line and (run_dir / "eval-cv" / "notes.txt").read_text() == "mine"
    line = _one_line(capsys, ["--checkpoint", run_dir / "fold1" / "best.pt", "--root", tiled_store, "--device", "cpu",
                              "--split", "all", "--subset", "train", "--out", tmp_path / "e"])
    assert "trained on a 4 Å grid" in line and "1 Å grid" in line and "--tile-voxel-size 4" in line


def test_related_levels_name_identity_family_or_none(cv_store):
    ds = RNAMotifTiles(cv_store, "fold1", "test")
    split = ds.tile_split
    assert set(related_levels(split, "fold1", "test").values()) == {"none"}
    # against every other fold (train, not inner_train) an entry of a shared family would be "family"
    t = split.table.copy()
    first = t.loc[t["fold"] == 1, "entry"].iloc[0]
    other = t.loc[t["fold"] == 3, "entry"].iloc[0]
    fam = t.loc[t["entry"] == first, "family"].iloc[0]
    t.loc[t["entry"] == other, "family"] = fam
    from dataclasses import replace
    levels = related_levels(replace(split, table=t), "fold1", "test")
    assert levels[first] == "family"
    t.loc[t["entry"] == other, "identity_class"] = t.loc[t["entry"] == first, "identity_class"].iloc[0]
    assert related_levels(replace(split, table=t), "fold1", "test")[first] == "identity"


def test_pooling_refuses_an_entry_twice():
    a = SegmentationMetrics(np.ones(9, np.int64))
    true = np.zeros((4, 4, 4), np.int64)
    true[1:3, 1:3, 1:3] = 1
    a.update(true, pred=true, density=true.astype(float), entry="E1")
    b = SegmentationMetrics(np.ones(9, np.int64))
    b.update(true, pred=true, density=true.astype(float), entry="E1")
    with pytest.raises(Exception, match="E1 is scored twice"):
        a.merge(b)


def test_train_all_folds_then_evaluate_cv_again(cv_store, tmp_path, capsys):
    """``rnamotif train --network unet3d --all-folds`` trains every fold and scores them into
    RUN/eval-cv; ``rnamotif evaluate --cv RUN`` may score them again into the same folder
    (its files, nothing else) and gives the same figures."""
    from rnamotif_data.cli.train import main as train_main

    run_dir = tmp_path / "run"
    assert run(train_main, ["--network", "unet3d", "--root", cv_store, "--all-folds", "--epochs", "1", "--width", "2",
                            "--depth", "1", "--device", "cpu", "--out", str(run_dir), "--no-progress"]) == 0
    first = json.loads((run_dir / "eval-cv" / "metrics.json").read_text())
    assert [r["fold"] for r in first["runs"]] == [1, 2, 3, 4, 5, "pooled"]
    assert run(evaluate_main, ["--cv", str(run_dir), "--root", cv_store, "--device", "cpu"]) == 0
    again = json.loads((run_dir / "eval-cv" / "metrics.json").read_text())
    assert again["runs"] == first["runs"]
    assert sorted(p.name for p in (run_dir / "eval-cv").iterdir()) == sorted(
        [".rnamotif-output.json", "metrics.json", "report.md", "slice.png"])
