"""Motif3DCNN trainer and evaluator (issue 7), on CPU."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rnamotif_data.cli.evaluate import main as evaluate_main
from rnamotif_data.cli.train import main as train_main
from rnamotif_data.errors import CheckpointMismatchError, ConfigError, InputError, RNAMotifError
from rnamotif_data.learn.dataset import RNAMotifDataset
from rnamotif_data.learn.evaluate import Evaluator
from rnamotif_data.learn.metrics import class_metrics, confusion_matrix
from rnamotif_data.learn.networks import Motif3DCNN, build_model, build_network
from rnamotif_data.learn.train import TrainConfig, train
from rnamotif_data.release.export import export_mrc
from rnamotif_data.testing.synthetic_store import make_synthetic_store


def test_metrics_against_a_hand_computed_matrix():
    cm = np.array([[5, 1, 0, 0, 0],
                   [0, 3, 1, 0, 0],
                   [0, 0, 4, 0, 0],
                   [1, 0, 0, 2, 1],
                   [0, 0, 0, 0, 6]])
    true = np.repeat(np.arange(5), cm.sum(1))
    pred = np.concatenate([np.repeat(np.arange(5), row) for row in cm])
    assert (confusion_matrix(true, pred) == cm).all()
    m = class_metrics(cm)
    # by hand: sensitivity TP/(TP+FN) per row; specificity TN/(TN+FP), N = 24
    sens = [5 / 6, 3 / 4, 4 / 4, 2 / 4, 6 / 6]
    spec = [17 / 18, 19 / 20, 19 / 20, 20 / 20, 17 / 18]
    for name, se, sp in zip(m["per_class"], sens, spec):
        assert m["per_class"][name]["sensitivity"] == pytest.approx(se)
        assert m["per_class"][name]["specificity"] == pytest.approx(sp)
    assert m["macro_sensitivity"] == pytest.approx(np.mean(sens))
    assert m["macro_specificity"] == pytest.approx(np.mean(spec))
    assert m["accuracy"] == pytest.approx(20 / 24)
    with pytest.raises(InputError):
        confusion_matrix([0, 5], [0, 1])


def test_upstream_readme_fold1_matrix_reproduces_its_macro_figures():
    """The upstream README's fold-1 benchmark (rows true, columns predicted: sym, bul, hp,
    asymm, unk) states macro sensitivity 0.855 and specificity 0.963."""
    cm = [[74, 1, 3, 12, 0],
          [0, 80, 10, 0, 0],
          [5, 9, 71, 5, 0],
          [15, 1, 4, 69, 0],
          [0, 0, 0, 0, 79]]
    m = class_metrics(cm)
    assert round(m["macro_sensitivity"], 3) == 0.855
    assert round(m["macro_specificity"], 3) == 0.963
    assert m["per_class"]["asymmetric_loop"]["support"] == 89 and m["n"] == 438


def test_models_take_documented_shapes():
    x = torch.zeros(3, 2, 40, 40, 40)
    for name in ("motif3dcnn", "motif3dcnn_bn"):
        assert build_network(name, 2, cube=40)(x).shape == (3, 5)
    assert sum(p.numel() for p in Motif3DCNN(1, cube=40).classifier.parameters()) == 64 * 125 * 128 + 128 + 128 * 5 + 5
    # a 32³ store gets a network for 32³ cubes: the size is never assumed
    assert build_network("motif3dcnn", 1, cube=32)(torch.zeros(2, 1, 32, 32, 32)).shape == (2, 5)
    with pytest.raises(ConfigError, match="unknown network 'resnet'"):
        build_network("resnet", 1, cube=40)
    assert build_model is build_network  # the 0.7 name, kept one release


def test_tiny_store_trains_and_loss_decreases(demo_store, tmp_path):
    cfg = TrainConfig(root=demo_store, out=str(tmp_path / "run"), split="all", epochs=6, batch_size=4,
                      lr=1e-3, device="cpu")
    train(cfg, progress=False)
    hist = __import__("json").loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(hist) == 6 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ck["epoch"] == 5 and ck["class_names"][2] == "hairpin" and ck["split_fingerprint"] == "all:7"
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("epoch,train_loss")


@pytest.fixture(scope="module")
def train_store(demo_store, tmp_path_factory):
    """40 samples over 8 made-up entries from the demo's real cubes: enough independent
    groups for 5 folds (the demo itself is one entry, which no split accepts)."""
    root = tmp_path_factory.mktemp("train") / "syn40.zarr"
    return make_synthetic_store(demo_store, str(root), 40, seed=4, shard_size=16, n_entries=8)


def test_resume_gives_the_same_weights(train_store, tmp_path):
    base = TrainConfig(root=train_store, out=str(tmp_path / "a"), split="fold2", epochs=3, batch_size=2,
                       device="cpu", network="motif3dcnn_bn")
    train(base, progress=False)
    cut = replace(base, out=str(tmp_path / "b"))
    train(cut, progress=False, stop_after=1)  # interrupted after epoch 1
    train(cut, resume=True, progress=False)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_evaluator_refuses_mismatched_inputs(train_store, demo_store, tmp_path):
    cfg = TrainConfig(root=train_store, out=str(tmp_path / "r"), split="fold1", epochs=1, batch_size=4, device="cpu")
    train(cfg, progress=False)
    ev = Evaluator.from_checkpoint(tmp_path / "r" / "best.pt")
    res = ev.evaluate_store(train_store, "fold1")
    test = RNAMotifDataset(train_store, split="fold1", subset="test")
    n_test = len(test)
    assert res["n"] == n_test > 0 and len(res["predictions"]) == n_test
    # issue 25: metrics by novelty (the split's max_identity_to_train) and by fine type, with counts
    bins = res["breakdown"]["identity_to_train"]
    assert sum(v["n"] for v in bins.values()) == n_test
    ident = test.split_columns["max_identity_to_train"].to_numpy()
    assert bins.get("0 (none aligned)", {"n": 0})["n"] == int((ident <= 0).sum())
    assert sum(v["n"] for v in res["breakdown"]["motif_type"].values()) == n_test
    from rnamotif_data.learn.metrics import markdown_report

    text = markdown_report(res, ev.checkpoint["class_names"])
    assert "| identity to train | n | accuracy | macro sensitivity |" in text and "| motif type | n |" in text
    other = make_synthetic_store(demo_store, str(tmp_path / "o.zarr"), 40, seed=3, shard_size=16, n_entries=8)
    with pytest.raises(CheckpointMismatchError, match="fingerprint"):
        ev.evaluate_store(other, "fold1")
    assert ev.evaluate_store(other, "fold1", allow_mismatch=True)["mismatches_allowed"]
    ev.checkpoint["class_names"] = ["a", "b", "c", "d", "e"]
    with pytest.raises(CheckpointMismatchError, match="class names"):
        ev.evaluate_store(train_store, "fold1")


def test_cli_acceptance_and_mrc_folder_mode(train_store, demo_store, tmp_path, caplog):
    run = tmp_path / "run"
    assert train_main(["--root", train_store, "--split", "fold1", "--epochs", "2", "--out", str(run),
                       "--no-progress", "--device", "cpu"]) == 0
    assert evaluate_main(["--checkpoint", str(run / "best.pt"), "--root", train_store, "--split", "fold1"]) == 0
    caplog.set_level("INFO")
    assert evaluate_main(["--checkpoint", str(run / "best.pt"), "--root", train_store, "--split", "fold1"]) == 0
    out = caplog.text
    assert "fold1 test: never used for training or model selection (nested protocol)" in out
    assert "| true \\ predicted | sym | bul | hp | asymm | unk |" in out and "Macro sensitivity" in out
    for f in ("metrics.json", "report.md", "confusion.png"):
        assert (run / "eval-fold1-test" / f).exists()  # the default subset is the test fold
    folder = tmp_path / "mrc"
    assert export_mrc(demo_store, folder, by_class=True, progress=False) == 7
    (folder / "hairpin").mkdir(exist_ok=True)
    (folder / "hairpin" / "backbone_label_EMD-1_1ABC_hairpin4_1.mrc").write_bytes(b"not a map")  # skipped
    ev = Evaluator.from_checkpoint(run / "best.pt")
    torch.manual_seed(0)  # a model whose predictions differ between samples (a trained demo model may not)
    with torch.no_grad():
        for prm in ev.model.parameters():
            prm.normal_(0.0, 0.5)
    res = ev.evaluate_mrc_folder(folder)
    assert res["n"] == 7 and [r["true"] for r in res["predictions"]].count(4) == 2 and res["skipped_files"] == 1
    # the exported cubes give, sample by sample, the store's predictions (same normalisation)
    from rnamotif_data.release.export import upstream_name
    from rnamotif_data.storage.store import open_store

    meta = open_store(demo_store).metadata
    name_to_id = {upstream_name(r): r.sample_id for r in meta.itertuples()}
    store_res = ev.evaluate_store(demo_store, "all", "train")
    by_id = {r["sample_id"]: r["pred"] for r in store_res["predictions"]}
    from_folder = {name_to_id[Path(r["file"]).stem]: r["pred"] for r in res["predictions"]}
    assert from_folder == by_id
    assert len(set(by_id.values())) > 1  # not a constant model: the comparison can fail
    # the default export (one folder per sample) reads the same (issue 27: it was refused)
    plain = tmp_path / "mrc-plain"
    assert export_mrc(demo_store, plain, progress=False) == 7
    res_plain = ev.evaluate_mrc_folder(plain)
    assert {name_to_id[Path(r["file"]).stem]: r["pred"] for r in res_plain["predictions"]} == by_id
    true_of = {Path(r["file"]).stem: r["true"] for r in res["predictions"]}
    assert {Path(r["file"]).stem: r["true"] for r in res_plain["predictions"]} == true_of  # classes from the names
    with pytest.raises(RNAMotifError, match="no .mrc cubes in either layout of rnamotif export"):
        ev.evaluate_mrc_folder(tmp_path)