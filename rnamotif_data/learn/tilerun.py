"""Segmentation runs on a tiled store: ``rnamotif train --network unet3d`` and ``rnamotif
evaluate`` of its checkpoints (issue 37).

Training (:func:`train_tiles`) follows the cube network's nested protocol: for split
``foldK`` the network trains on the tiles of ``inner_train`` (three folds, with
``TileRotation24`` augmentation), ``best.pt`` is chosen on ``inner_val`` (fold K+1) by
validation macro F1, and fold K is touched only by :func:`evaluate_tiles`, once, after
training (``protocol="upstream"``: train on four folds, choose on fold K -- not a test
result). Folds come from the store's tile split (:mod:`rnamotif_data.split.tiles`).
Training and validation tiles overlap inside an entry (64³ every 32), so the validation
figures count a voxel once per tile holding it: they choose the epoch, they are not the
result.

Evaluation (:func:`evaluate_tiles`) is the result: every entry of the test fold is
predicted **whole**, stitched as ``rnamotif detect`` stitches a new map
(:func:`~rnamotif_data.learn.stitch.predict_volume`: each voxel from a tile's centre, the
tile chosen as :func:`~rnamotif_data.learn.detect.inference_tile` chooses it), and
scored voxel by voxel against the entry's stored element volume, each voxel once, with
the reference lines scored on the same voxels (:mod:`rnamotif_data.learn.segmetrics`:
class prior, majority class, density threshold; the training voxel counts come from the
checkpoint) and the loop instances of the stored instance volume. Outputs:
``metrics.json``, ``report.md`` and ``slice.png`` (density, true and predicted labels of
the test entry's plane with the most loop voxels).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.errors import ConfigError
from rnamotif_data.learn.checkpoints import choose_device
from rnamotif_data.learn.detect import DetectConfig, inference_tile
from rnamotif_data.learn.segmetrics import SegmentationMetrics
from rnamotif_data.learn.segnet import SEGMENTATION_KIND, build_segmentation_network, load_segmentation_checkpoint
from rnamotif_data.learn.segreport import plot_tile_slice, segmentation_markdown
from rnamotif_data.learn.segtrain import SegTrainConfig, train_segmentation
from rnamotif_data.learn.stitch import predict_volume, torch_predict_fn
from rnamotif_data.learn.tiles import RNAMotifTiles
from rnamotif_data.learn.transforms import TileRotation24
from rnamotif_data.rna.elements import ELEMENT_NAMES
from rnamotif_data.samples.volumes import VolumeConfig
from rnamotif_data.storage.layout import get_attrs

log = logging.getLogger(__name__)

__all__ = ["TILE_PROTOCOLS", "EVAL_FILES", "train_tiles", "evaluate_tiles", "train_tiles_all_folds"]

#: nested: train inner_train, choose on inner_val, test fold K once; upstream: train, choose on val
TILE_PROTOCOLS = {"nested": ("inner_train", "inner_val"), "upstream": ("train", "val")}
#: the files :func:`evaluate_tiles` writes
EVAL_FILES = ("metrics.json", "report.md", "slice.png")
_LOOPS = (2, 3, 4, 5)


def _volume_config(root: str) -> VolumeConfig:
    """The store's volume grid and labels (its build config's ``tile`` and ``segment``)."""
    attrs = get_attrs(root) or {}
    cfg = attrs.get("build_config", {})
    tile, seg = cfg.get("tile") or {}, cfg.get("segment") or {}
    return VolumeConfig(voxel_size=float(tile.get("voxel_size", 1.0)), label_radius=float(tile.get("label_radius", 1.5)),
                        normalise_percentile=float(seg.get("normalise_percentile", 95.0)),
                        slab=int(tile.get("slab", 16)), max_fraction_outside=float(tile.get("max_fraction_outside", 0.5)))


def train_tiles(root: str, out: str | Path, cfg: SegTrainConfig, *, split: str = "fold1", protocol: str = "nested",
                width: int = 8, depth: int = 3, rotate: bool = True, resume: bool = False,
                progress: bool = True) -> dict:
    """Train a segmentation network on the tiles of ``split`` (module docstring); returns
    :func:`~rnamotif_data.learn.segtrain.train_segmentation`'s selection dict. The
    checkpoints are segmentation checkpoints (``rnamotif detect`` and ``rnamotif evaluate``
    read them).

    Raises
    ------
    ConfigError
        An unknown protocol, a store without tiles or a tile split, tiles whose size is not
        the store's, or what :func:`~rnamotif_data.learn.segtrain.train_segmentation` raises.
    """
    if protocol not in TILE_PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(TILE_PROTOCOLS)}")
    sub_train, sub_val = TILE_PROTOCOLS[protocol]
    train_ds = RNAMotifTiles(root, split, sub_train, volumes=("density", "element"),
                             transform=TileRotation24(seed=cfg.seed) if rotate else None)
    val_ds = RNAMotifTiles(root, split, sub_val, volumes=("density", "element"))
    if len(train_ds) == 0:
        raise ConfigError(f"{root}: {split}/{sub_train} has no tiles")
    cfg = replace(cfg, tile=train_ds.tile_size)
    args = {"in_channels": 1, "n_classes": cfg.n_classes, "width": int(width), "depth": int(depth)}
    record = {"kind": SEGMENTATION_KIND, "root": str(root), "split": split, "protocol": protocol, "rotate": rotate,
              "network_args": args, "volume_config": asdict(_volume_config(root))}
    log.info("%s: training %s on %d tiles of %s/%s, choosing on %d tiles of %s", root, cfg.network, len(train_ds),
             split, sub_train, len(val_ds), sub_val)
    return train_segmentation(cfg, train_ds, val_ds, out, resume=resume, progress=progress, record=record,
                              network_factory=lambda: build_segmentation_network(cfg.network, **args))


def evaluate_tiles(checkpoint: str | Path, root: str, out: str | Path, *, split: str = "fold1", subset: str = "test",
                   device: str = "auto", margin: int = 16, batch_size: int = 2, progress: bool = True) -> dict:
    """Score a segmentation checkpoint on the whole entries of ``split``/``subset``
    (module docstring); writes :data:`EVAL_FILES` into ``out`` and returns the metrics.

    Raises
    ------
    CheckpointMismatchError
        A checkpoint that is not a segmentation one (one line, naming it).
    ConfigError
        A store without tiles or a tile split, or an empty subset.
    """
    dev = choose_device(device)
    ck = load_segmentation_checkpoint(checkpoint, dev)
    ds = RNAMotifTiles(root, split, subset)
    entries = sorted(set(ds.tiles["entry"]))
    if not entries:
        raise ConfigError(f"{root}: {split}/{subset} has no tiles to evaluate")
    if not np.isclose(ds.voxel_size, ck.volume_config.voxel_size):
        raise ConfigError(f"{checkpoint}: trained on a {ck.volume_config.voxel_size:g} Å grid, but the volumes of "
                          f"{root} are on a {ds.voxel_size:g} Å grid; evaluate it on a store built with "
                          f"--tile-voxel-size {ck.volume_config.voxel_size:g}")
    counts = ck.extra.get("train_counts")
    metrics = SegmentationMetrics(np.asarray(counts) if counts is not None else None, n_classes=len(ck.class_names),
                                  seed=0, spacing=ds.voxel_size)
    predict = torch_predict_fn(ck.model, dev)
    best = None
    for entry in entries:
        vol = ds.read_entry(entry, ("density", "element", "instance"))
        density = vol["density"].astype(np.float32)
        tile, margin_ = inference_tile(ck, density.shape, DetectConfig(margin=margin))  # as rnamotif detect
        probs = predict_volume(density, predict, tile=tile, margin=margin_, batch_size=batch_size,
                               progress=progress)
        pred = probs.argmax(axis=0).astype(np.uint8)
        del probs
        res = ds.entries.loc[entry, "resolution"]
        metrics.update(vol["element"].astype(np.int64), pred=pred, density=density, entry=entry,
                       resolution=None if pd.isna(res) else float(res), instance=vol["instance"].astype(np.int64))
        loops = np.isin(vol["element"], _LOOPS).sum(axis=(1, 2))
        if best is None or loops.max() > best[0]:
            z = int(loops.argmax())
            best = (int(loops.max()), entry, z, density[z], vol["element"][z], pred[z])
        log.info("%s: %s scored (%d voxels)", checkpoint, entry, vol["element"].size)
    result = metrics.result()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    title = f"Segmentation: {Path(str(checkpoint)).name} on {split}/{subset} of {root} ({len(entries)} entries, whole maps)"
    (out / "report.md").write_text(segmentation_markdown(result, title) + "\n")
    (out / "metrics.json").write_text(json.dumps({"checkpoint": str(checkpoint), "root": str(root), "split": split,
                                                  "subset": subset, "entries": entries, "result": result},
                                                 indent=1, default=_plain))
    if best is not None:
        _, entry, z, d, t, p = best
        plot_tile_slice(d[None], t[None], p[None], out / "slice.png", axis=0, index=0, class_names=ELEMENT_NAMES,
                        title=f"{entry}, plane z = {z}")
    return result


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def train_tiles_all_folds(root: str, out: str | Path, cfg: SegTrainConfig, *, seeds: int = 1, protocol: str = "nested",
                          width: int = 8, depth: int = 3, resume: bool = False, progress: bool = True) -> dict:
    """Train and evaluate fold1-fold5 (``seeds`` seeds each: ``OUT/seedS/foldK``, or
    ``OUT/foldK`` for one seed); writes ``OUT/cv_summary.json`` and ``cv_summary.md`` with
    per-run test macro F1 (exact and 3 Å) beside the reference lines, and their mean ± sd.
    """
    out = Path(out)
    rows = []
    for s in range(cfg.seed, cfg.seed + int(seeds)):
        for k in range(1, 6):
            run = out / (f"seed{s}/fold{k}" if seeds > 1 else f"fold{k}")
            c = replace(cfg, seed=s)
            train_tiles(root, run, c, split=f"fold{k}", protocol=protocol, width=width, depth=depth, resume=resume,
                        progress=progress)
            res = evaluate_tiles(run / "best.pt", root, run / f"eval-fold{k}-test", split=f"fold{k}",
                                 device=cfg.device, progress=progress)
            rows.append({"seed": s, "fold": k, **_headline(res)})
    summary = {"runs": rows, "mean": _mean_sd(rows)}
    (out / "cv_summary.json").write_text(json.dumps(summary, indent=1, default=_plain))
    (out / "cv_summary.md").write_text(_cv_markdown(summary))
    return summary


def _headline(result: dict) -> dict:
    """Macro F1 over the RNA classes and over the loop classes (exact, 3 Å) of the network
    and of each reference line, from a :meth:`SegmentationMetrics.result`."""
    out = {}
    for name, p in result["groups"]["all"]["predictors"].items():
        for key in ("macro_f1", "macro_f1_tol", "loop_macro_f1", "loop_macro_f1_tol"):
            out[f"{name}_{key}"] = p.get(key)
    return out


def _mean_sd(rows: list[dict]) -> dict:
    keys = sorted({k for r in rows for k in r if k not in ("seed", "fold")})
    out = {}
    for k in keys:
        v = np.array([r[k] for r in rows if r.get(k) is not None], dtype=float)
        out[k] = {"mean": float(v.mean()) if len(v) else None, "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
                  "n": int(len(v))}
    return out


def _cv_markdown(summary: dict) -> str:
    lines = ["# Segmentation, folds × seeds (whole test maps)", "", "| figure | mean | sd | runs |",
             "| --- | ---: | ---: | ---: |"]
    for k, v in summary["mean"].items():
        lines.append(f"| {k} | {_fmt(v['mean'])} | {_fmt(v['sd'])} | {v['n']} |")
    return "\n".join(lines) + "\n"


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"
