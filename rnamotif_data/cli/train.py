"""Train Motif3DCNN on a store: ``rnamotif train``.

``rnamotif train``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.learn.train` (cube networks) and, for ``--network unet3d`` on a store
built with ``--tiles``, by :mod:`rnamotif_data.learn.tilerun` (a voxel segmentation of
whole maps, trained on its tiles under the same nested protocol).
"""

from __future__ import annotations

import argparse
import json

from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.errors import ConfigError
from rnamotif_data.learn.dataset import CHANNELS
from rnamotif_data.learn.networks import NETWORKS
from rnamotif_data.learn.segnet import SEGMENTATION_NETWORKS
from rnamotif_data.learn.segtrain import SEG_TRAIN_FILES, SegTrainConfig
from rnamotif_data.learn.tilerun import train_tiles, train_tiles_all_folds
from rnamotif_data.learn.train import PROTOCOLS, TrainConfig, log, train, train_all_folds
from rnamotif_data.storage.outputs import claimed_output

__all__ = ["TRAIN_FILES", "main", "parser"]

#: the files ``rnamotif train`` owns in its ``--out`` folder (one run, or ``--all-folds``'s
#: ``foldK/``/``seedS/foldK/`` runs and summary); ``eval-*/`` are ``rnamotif evaluate``'s
#: default folders beside a checkpoint, replaced with the run they describe
TRAIN_FILES = tuple(dict.fromkeys((
    "best.pt", "last.pt", "metrics.csv", "metrics.json", "config.json", "references.json", *SEG_TRAIN_FILES,
    "eval-*/*", "fold[1-5]/*", "fold[1-5]/eval-*/*", "seed*/fold[1-5]/*", "seed*/fold[1-5]/eval-*/*",
    "cv_summary.md", "cv_summary.json")))
#: cube-only settings: a segmentation network refuses them when they differ from the default
CUBE_ONLY = ("scheme", "channels", "masked", "sequence", "projection_dim")


#: help of TrainConfig fields (their defaults and choices come from the library)
TRAIN_HELPS = {
    "root": "store path or URL",
    "out": "run folder (checkpoints, metrics, config)",
    "split": "the fold to validate on (fold1-fold5)",
    "scheme": "the store's split scheme",
    "network": "the neural network",
    "channels": "input channels: " + ", ".join(CHANNELS) + " (seq_proj needs --sequence)",
    "masked": "train on the masked density",
    "class_weights": "inverse-frequency class weights",
    "device": "auto, cpu, cuda or cuda:N",
    "amp": "bfloat16 autocast (CUDA, or CPU)",
    "workers": "DataLoader workers",
    "protocol": "nested: train on 3 folds, select on fold K+1, report fold K; upstream: train on 4 folds and "
                "report the fold watched, final epoch (not a test result)",
    "sequence": "stored sequence features (rnamotif embed) for --network motif3dcnn_seq or seq_proj",
    "projection_dim": "channels of seq_proj",
    "train_fraction": "share of the training subset trained on (a learning curve): a class-stratified draw "
                      "seeded by --seed",
    "seeds": "with --all-folds: train each fold with seeds SEED .. SEED + SEEDS - 1",
}


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif train``: a flag per :class:`TrainConfig` field."""
    p = argparse.ArgumentParser(prog="rnamotif train", description=__doc__.split("\n")[0])
    add_config_arguments(p, TrainConfig, helps=TRAIN_HELPS, title="training (TrainConfig)",
                         choices={"network": (*NETWORKS, *SEGMENTATION_NETWORKS), "protocol": PROTOCOLS})
    seg = p.add_argument_group("segmentation networks (--network unet3d, a store built with --tiles)")
    seg.add_argument("--width", type=int, default=8, help="channels of the first level (default %(default)s)")
    seg.add_argument("--depth", type=int, default=3, help="levels of the U-Net (default %(default)s)")
    seg.add_argument("--no-rotate", action="store_true", help="no TileRotation24 augmentation")
    p.add_argument("--all-folds", action="store_true", help="train and evaluate fold1-fold5 (not with --split)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run of rnamotif train in --out (its eval-*/ folders too)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _split_given(argv: list[str] | None) -> bool:
    """Whether ``--split`` was given (also as an abbreviation): parsed again with no default."""
    p = parser()
    p.set_defaults(split=None)
    return p.parse_args(argv).split is not None


def _segmentation(a: argparse.Namespace, argv: list[str] | None) -> SegTrainConfig:
    """The :class:`SegTrainConfig` of ``--network unet3d``: class weights on and 4 tiles
    per batch unless given; cube-only settings refused in one line."""
    given = [f for f in CUBE_ONLY if getattr(a, f) != getattr(TrainConfig, f)]
    if given:
        raise ConfigError(f"--network {a.network} segments tiles: {', '.join('--' + f.replace('_', '-') for f in given)} "
                          "apply to cube networks only")
    words = argv or []
    weights = False if "--no-class-weights" in words else True
    batch = a.batch_size if any(w.startswith("--batch-size") for w in words) else SegTrainConfig.batch_size
    return SegTrainConfig(network=a.network, epochs=a.epochs, batch_size=batch, lr=a.lr, seed=a.seed,
                          device=a.device, amp=a.amp, class_weights=weights, workers=a.workers)


def _train_segmentation(a: argparse.Namespace, argv: list[str] | None) -> int:
    cfg = _segmentation(a, argv)
    with claimed_output(a.out, "train", TRAIN_FILES, mode="resume" if a.resume else "replace" if a.overwrite else "new"):
        kw = dict(protocol=a.protocol, width=a.width, depth=a.depth, resume=a.resume, progress=not a.no_progress)
        if a.all_folds:
            train_tiles_all_folds(a.root, a.out, cfg, seeds=a.seeds, rotate=not a.no_rotate, **kw)
        else:
            sel = train_tiles(a.root, a.out, cfg, split=a.split, rotate=not a.no_rotate, **kw)
            log.info("%s: chosen epoch %s of %s", a.out, sel.get("best_epoch"), sel.get("last_epoch"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 (1 on bad input, with a one-line error)."""
    a = parser().parse_args(argv)
    if a.all_folds and _split_given(argv):
        raise ConfigError(f"--split {a.split} and --all-folds: --all-folds trains every fold; give one of them")
    if a.resume and a.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if a.network in SEGMENTATION_NETWORKS:
        return _train_segmentation(a, argv)
    cfg = config_from_args(a, TrainConfig)
    # a rerun into the same folder only with --overwrite or --resume (issue 39)
    with claimed_output(cfg.out, "train", TRAIN_FILES,
                        mode="resume" if a.resume else "replace" if a.overwrite else "new"):
        if a.all_folds:
            train_all_folds(cfg, resume=a.resume, progress=not a.no_progress)
        else:
            last = train(cfg, resume=a.resume, progress=not a.no_progress)
            log.info("%s: last epoch %s", a.out, json.dumps(last))
    return 0
