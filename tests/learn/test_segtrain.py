"""Training a segmentation network on tiles (issue 37): two epochs on tiles cut in memory
from the label volumes of a real model with a simulated map write checkpoints and
metrics, resume bit-identically, choose an epoch and say whether it is the last; a
network that knows the labels scores 1 while the reference lines score less."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnamotif_data.errors import ConfigError, InputError  # noqa: E402
from rnamotif_data.learn.checkpoints import load_checkpoint  # noqa: E402
from rnamotif_data.learn.segtrain import (  # noqa: E402
    SegTrainConfig,
    class_weights,
    evaluate_segmentation,
    reference_metrics,
    tile_class_counts,
    train_segmentation,
)

from .segdata import MODEL_6V5B, cut_tiles, entry_volumes  # noqa: E402

TILE = 16


class Tiles(torch.utils.data.Dataset):
    """Tile dicts held in memory, as the tile dataset yields them."""

    def __init__(self, items, **extra):
        self.items = [dict(it, **extra) for it in items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.fixture(scope="module")
def tiles():
    """Non-overlapping 16³ tiles holding RNA of 6V5B chain D's 3 Å simulated map, taken
    along the chain: six to train (even positions), three to validate (odd ones)."""
    items = cut_tiles(entry_volumes(MODEL_6V5B, 3.0), TILE, min_rna=50)
    assert len(items) >= 12
    return Tiles(items[0:12:2]), Tiles(items[1:7:2], entry="6V5B", resolution=3.0, level="none")


def _tiny():
    return torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 9, 1))


CFG = SegTrainConfig(network="tiny", epochs=2, batch_size=2, lr=3e-3, seed=5, device="cpu", tile=TILE)


def test_two_epochs_write_checkpoints_metrics_and_resume_bit_identically(tiles, tmp_path):
    train_ds, val_ds = tiles
    full = train_segmentation(CFG, train_ds, val_ds, tmp_path / "full", network_factory=_tiny, progress=False)
    for name in ("best.pt", "last.pt", "metrics.csv", "metrics.json", "config.json", "references.json",
                 "selection.json", "val_report.md", "val_result.json"):
        assert (tmp_path / "full" / name).exists(), name
    rows = list(csv.DictReader(open(tmp_path / "full" / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for key in ("val_macro_f1", "val_macro_f1_tol", "prior_drawn_macro_f1", "majority_macro_f1_tol",
                "threshold_macro_f1", "at_chance"):
        assert key in rows[0], key
    sel = json.loads((tmp_path / "full" / "selection.json").read_text())
    assert sel["best_epoch"] in (1, 2) and sel["last_epoch"] == 2 and sel["best_is_last"] == (sel["best_epoch"] == 2)
    assert full["best_epoch"] == sel["best_epoch"]
    best = load_checkpoint(tmp_path / "full" / "best.pt", "cpu")
    assert best["epoch"] + 1 == sel["best_epoch"] and best["tile"] == TILE and best["n_classes"] == 9
    assert sum(best["train_counts"]) == 6 * TILE ** 3
    assert "density threshold rule" in (tmp_path / "full" / "val_report.md").read_text()
    # interrupted after one epoch, then resumed: the same weights, bit for bit, and the same rows
    train_segmentation(CFG, train_ds, val_ds, tmp_path / "cut", network_factory=_tiny, progress=False, stop_after=1)
    assert len(json.loads((tmp_path / "cut" / "metrics.json").read_text())) == 1
    resumed = train_segmentation(CFG, train_ds, val_ds, tmp_path / "cut", network_factory=_tiny, progress=False,
                                 resume=True)
    a = load_checkpoint(tmp_path / "full" / "last.pt", "cpu")
    b = load_checkpoint(tmp_path / "cut" / "last.pt", "cpu")
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    drop = ("seconds", "loader_wait_fraction")
    assert [{k: v for k, v in r.items() if k not in drop} for r in full["history"]] == \
        [{k: v for k, v in r.items() if k not in drop} for r in resumed["history"]]
    # a resume with other settings, or with other recorded ones, is refused in one line
    with pytest.raises(ConfigError, match="lr"):
        train_segmentation(SegTrainConfig(**{**CFG.__dict__, "lr": 1e-2}), train_ds, val_ds, tmp_path / "cut",
                           network_factory=_tiny, progress=False, resume=True)
    with pytest.raises(ConfigError, match="split: None -> fold2"):
        train_segmentation(CFG, train_ds, val_ds, tmp_path / "cut", network_factory=_tiny, progress=False,
                           resume=True, record={"split": "fold2"})


class Oracle(torch.nn.Module):
    """Knows each tile's labels: finds the input among the tiles it was given and returns
    the one-hot of their labels as logits (shape (B, 9, T, T, T))."""

    def __init__(self, items):
        super().__init__()
        self.dens = torch.stack([it["density"] for it in items])
        self.labels = torch.stack([it["element"] for it in items])

    def forward(self, x):
        idx = [int(torch.nonzero((self.dens == xi).flatten(1).all(1))[0]) for xi in x]
        return torch.nn.functional.one_hot(self.labels[idx], 9).permute(0, 4, 1, 2, 3).float() * 10


def test_a_network_that_knows_the_labels_scores_one_and_the_references_less(tiles):
    train_ds, val_ds = tiles
    counts = tile_class_counts(train_ds)
    refs = reference_metrics(val_ds, counts, CFG)
    metrics, loss = evaluate_segmentation(Oracle(val_ds.items), val_ds, CFG, torch.device("cpu"), references=refs)
    r = metrics.result()
    p = r["groups"]["all"]["predictors"]
    assert p["network"]["macro_f1"] == p["network"]["macro_f1_tol"] == 1.0
    assert p["network"]["residues"]["accuracy"] == 1.0
    assert loss < 1e-3
    for ref in ("prior_drawn", "majority", "threshold"):
        assert p[ref]["macro_f1"] < 0.6 and p[ref]["macro_f1_tol"] < 0.7, ref
    assert r["chance"]["at_chance"] is False
    assert set(r["groups"]["level"]) == {"none"} and set(r["groups"]["resolution"]) == {"<= 3 Å"}
    # a network that ignores its input is at chance
    const, _ = evaluate_segmentation(_Const(), val_ds, CFG, torch.device("cpu"), references=refs)
    assert const.result()["chance"]["at_chance"] is True


class _Const(torch.nn.Module):
    def forward(self, x):
        out = torch.zeros(x.shape[0], 9, *x.shape[2:])
        out[:, 1] = 1.0  # stem everywhere
        return out


def test_class_weights_are_inverse_frequency_capped_and_zero_when_absent(tiles):
    train_ds, _ = tiles
    counts = tile_class_counts(train_ds)
    expect = sum(np.bincount(it["element"].numpy().ravel(), minlength=9) for it in train_ds.items)
    assert np.array_equal(counts, expect)
    w = class_weights([900, 90, 9, 1, 0], cap=10)
    K, total = 4, 1000
    assert w.tolist() == pytest.approx([total / (K * 900), total / (K * 90), 10.0, 10.0, 0.0])
    ds = Tiles(train_ds.items)
    ds.class_counts = lambda: np.arange(9)  # a tile table's counts are used as given
    assert tile_class_counts(ds).tolist() == list(range(9))
    with pytest.raises(InputError):
        class_weights([0, 0])


def test_one_line_errors_for_tiles_networks_and_settings(tiles, tmp_path):
    train_ds, val_ds = tiles
    with pytest.raises(ConfigError, match="tile 32"):
        train_segmentation(SegTrainConfig(**{**CFG.__dict__, "tile": 32}), train_ds, val_ds, tmp_path / "a",
                           network_factory=_tiny, progress=False)
    with pytest.raises(ConfigError, match="no factory"):
        train_segmentation(SegTrainConfig(**{**CFG.__dict__, "network": "nonesuch"}), train_ds, val_ds, tmp_path / "b",
                           progress=False)
    with pytest.raises(ConfigError, match="expected"):
        train_segmentation(CFG, train_ds, val_ds, tmp_path / "c", progress=False,
                           network_factory=lambda: torch.nn.Conv3d(1, 5, 1))
    with pytest.raises(ConfigError, match="epochs"):
        SegTrainConfig(epochs=0)


class _Shifted(Oracle):
    """The oracle's labels moved 2 voxels along x (edge voxels keep their own labels)."""

    def forward(self, x):
        out = super().forward(x)
        return torch.cat([out[..., :2], out[..., :-2]], dim=-1)


def test_the_tolerance_is_in_angstrom_on_the_datasets_grid(tiles):
    """A prediction 2 voxels off is within 3 Å on a 1 Å grid (2 Å) and outside it on a
    2 Å grid (4 Å): validation reads the grid spacing from the dataset's ``voxel_size``."""
    _, val_ds = tiles
    net = _Shifted(val_ds.items)
    scores = {}
    for spacing in (1.0, 2.0):
        ds = Tiles(val_ds.items)
        ds.voxel_size = spacing
        metrics, _ = evaluate_segmentation(net, ds, CFG, torch.device("cpu"))
        assert metrics.spacing == spacing
        scores[spacing] = metrics.result()["groups"]["all"]["predictors"]["network"]["macro_f1_tol"]
    assert scores[1.0] > 0.99 and scores[2.0] < 0.95, scores
