"""Train Motif3DCNN on a store: ``rnamotif train``.

``rnamotif train``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.learn.train`.
"""

from __future__ import annotations

import argparse
import json

from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.errors import ConfigError
from rnamotif_data.learn.dataset import CHANNELS
from rnamotif_data.learn.networks import NETWORKS
from rnamotif_data.learn.train import PROTOCOLS, TrainConfig, log, train, train_all_folds
from rnamotif_data.storage.outputs import claimed_output

__all__ = ["TRAIN_FILES", "main", "parser"]

#: the files ``rnamotif train`` owns in its ``--out`` folder (one run, or ``--all-folds``'s
#: ``foldK/``/``seedS/foldK/`` runs and summary); ``eval-*/`` are ``rnamotif evaluate``'s
#: default folders beside a checkpoint, replaced with the run they describe
TRAIN_FILES = ("best.pt", "last.pt", "metrics.csv", "metrics.json", "config.json", "references.json",
               "eval-*/*", "fold[1-5]/*", "seed*/fold[1-5]/*", "cv_summary.md", "cv_summary.json")


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
                         choices={"network": NETWORKS, "protocol": PROTOCOLS})
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


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 (1 on bad input, with a one-line error)."""
    a = parser().parse_args(argv)
    if a.all_folds and _split_given(argv):
        raise ConfigError(f"--split {a.split} and --all-folds: --all-folds trains every fold; give one of them")
    cfg = config_from_args(a, TrainConfig)
    if a.resume and a.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    # a rerun into the same folder only with --overwrite or --resume (issue 39)
    with claimed_output(cfg.out, "train", TRAIN_FILES,
                        mode="resume" if a.resume else "replace" if a.overwrite else "new"):
        if a.all_folds:
            train_all_folds(cfg, resume=a.resume, progress=not a.no_progress)
        else:
            last = train(cfg, resume=a.resume, progress=not a.no_progress)
            log.info("%s: last epoch %s", a.out, json.dumps(last))
    return 0
