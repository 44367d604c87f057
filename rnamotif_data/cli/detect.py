"""Find the motifs in a map: a segmentation network's labels and probabilities on the map's grid.

Usage::

    rnamotif detect MAP --checkpoint CKPT --out DIR [--model MODEL] [--device auto]
        [--tile N] [--margin 16] [--batch-size 1] [--pairs geometric] [--overwrite] [--no-progress]

Writes ``labels.mrc`` and ``prob_<class>.mrc`` on the input map's grid (so ChimeraX
overlays them on it), ``sites.parquet``/``.csv`` (connected components of each loop class:
centroid Å, volume Å³, mean probability), with ``--model`` ``residues`` and ``instances``
tables, and ``detect.json``; see :mod:`rnamotif_data.learn.detect`. Needs the ``[learn]`` extra.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.learn.detect import DetectConfig, detect

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif detect``."""
    p = argparse.ArgumentParser(prog="rnamotif detect", description=__doc__.split("\n")[0])
    p.add_argument("map", type=Path, help="MRC/CCP4 map (.mrc/.map/.ccp4, optionally .gz/.bz2)")
    p.add_argument("--checkpoint", required=True, type=Path, help="segmentation checkpoint (unet3d)")
    p.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or an earlier detect's)")
    p.add_argument("--model", type=Path, help="the map's fitted model (PDB/mmCIF): per-residue and per-instance tables")
    p.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda, cuda:N")
    p.add_argument("--tile", type=int, help="tile edge in voxels, a multiple of the network's (default: the one up "
                                            "to 160 that makes the fewest tile voxels for the map)")
    p.add_argument("--margin", type=int, default=16, help="voxels dropped on each tile face (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=1, help="tiles per forward pass (default %(default)s)")
    p.add_argument("--pairs", default="geometric", choices=("geometric", "rnapolis"),
                   help="base pairs for the model's true elements (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier detect's files in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rnamotif detect``; returns 0."""
    args = parser().parse_args(argv)
    config = DetectConfig(tile=args.tile, margin=args.margin, batch_size=args.batch_size,
                          progress=not args.no_progress)
    summary = detect(args.map, args.checkpoint, args.out, model_path=args.model, device=args.device, config=config,
                     pairs=args.pairs, mode="replace" if args.overwrite else "new")
    print(f"{args.out}: {summary['n_sites']} predicted sites on a {'x'.join(map(str, summary['grid_shape']))} grid "
          f"({summary['device']}, {sum(v for k, v in summary['timings'].items() if isinstance(v, float)):.1f} s)")
    return 0
