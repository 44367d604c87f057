"""Evaluate a trained checkpoint: ``rnamotif evaluate``.

``rnamotif evaluate``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.learn.evaluate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.learn.checkpoints import load_checkpoint
from rnamotif_data.learn.evaluate import Evaluator, log, write_outputs
from rnamotif_data.learn.metrics import markdown_report
from rnamotif_data.learn.segnet import SEGMENTATION_KIND
from rnamotif_data.learn.tilerun import EVAL_FILES, evaluate_tiles, evaluate_tiles_cv
from rnamotif_data.split.splits import SUBSETS
from rnamotif_data.storage.outputs import claimed_output

__all__ = ["EVALUATE_FILES", "main", "parser"]

#: the files ``rnamotif evaluate`` owns in its ``--out`` folder; a rerun replaces them
EVALUATE_FILES = tuple(dict.fromkeys(("metrics.json", "report.md", "confusion.png", *EVAL_FILES)))


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif evaluate``."""
    p = argparse.ArgumentParser(prog="rnamotif evaluate", description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", help="a checkpoint of rnamotif train (best.pt)")
    what.add_argument("--cv", metavar="RUN", type=Path,
                      help="a segmentation run of 'rnamotif train --network unet3d --all-folds': every fold's best.pt "
                           "on its held-out test fold, pooled (default --out RUN/eval-cv)")
    p.add_argument("--root", help="store path or URL")
    p.add_argument("--split", default="fold1")
    p.add_argument("--subset", default="test", choices=SUBSETS,
                   help="test (default; fold K under the nested protocol), val, inner_val, train, inner_train")
    p.add_argument("--mrc-folder", help="upstream validate_folder.py layout instead of a store")
    p.add_argument("--mrc-normalisation", choices=("stored", "percentile"), default="stored",
                   help="stored: cubes exported by this package (default); percentile: raw upstream crops")
    p.add_argument("--out", type=Path)
    p.add_argument("--allow-mismatch", action="store_true")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 (1 on a refused or bad input)."""
    p = parser()
    a = p.parse_args(argv)
    if not a.mrc_folder and not a.root:
        p.error("--root or --mrc-folder is required")
    if a.cv is not None:
        if a.mrc_folder or not a.root:
            p.error("--cv scores a segmentation run on its tiled store: give --root, not --mrc-folder")
        out = a.out or a.cv / "eval-cv"
        with claimed_output(out, "evaluate", EVALUATE_FILES):
            evaluate_tiles_cv(a.cv, a.root, out, device=a.device)
        log.info("%s\nwrote %s", (out / "report.md").read_text(), out)
        return 0
    sub = "eval-mrc-folder" if a.mrc_folder else f"eval-{a.split}-{a.subset}"
    out = a.out or Path(a.checkpoint).parent / sub
    ck = load_checkpoint(a.checkpoint, "cpu")
    if isinstance(ck, dict) and ck.get("kind", (ck.get("config") or {}).get("kind")) == SEGMENTATION_KIND:
        if a.mrc_folder:
            p.error("--mrc-folder scores cube classifiers; a segmentation checkpoint is scored on a tiled store (--root)")
        with claimed_output(out, "evaluate", EVALUATE_FILES):
            evaluate_tiles(a.checkpoint, a.root, out, split=a.split, subset=a.subset, device=a.device)
        log.info("%s\nwrote %s", (out / "report.md").read_text(), out)
        return 0
    ev = Evaluator.from_checkpoint(a.checkpoint, a.device)
    names = ev.checkpoint["class_names"]
    with claimed_output(out, "evaluate", EVALUATE_FILES):  # before the work: a refusal costs nothing
        if a.mrc_folder:
            res = ev.evaluate_mrc_folder(a.mrc_folder, normalisation=a.mrc_normalisation)
            title = f"{Path(a.mrc_folder).name} (MRC folder)"
        else:
            res = ev.evaluate_store(a.root, a.split, a.subset, a.allow_mismatch)
            title = res["label"]
        write_outputs(res, out, names, title)
    log.info("%s\nwrote %s", markdown_report(res, names, title), out)
    return 0
