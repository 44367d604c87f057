"""Find the motifs in a map: a segmentation network's labels and probabilities on the map's grid.

Usage::

    rnamotif detect MAP --checkpoint CKPT --out DIR [--model MODEL] [--device auto]
        [--tile N] [--margin 16] [--batch-size 1] [--pairs geometric] [--overwrite] [--no-progress]
        [--mirror DIR | --cache DIR | --demo]

``MAP`` is a map file, or an EMDB ID (``EMD-95003``) found as the build finds it: in
``--mirror`` or the download cache (``--demo``: the shipped training demo's mirror, the
maps ``rnamotif build`` simulated); ``--model`` likewise a file or a PDB ID.

Writes ``labels.mrc`` and ``prob_<class>.mrc`` on the input map's grid (so ChimeraX
overlays them on it), ``sites.parquet``/``.csv`` (connected components of each loop class:
centroid Å, volume Å³, mean probability), with ``--model`` ``residues`` and ``instances``
tables, and ``detect.json``; see :mod:`rnamotif_data.learn.detect`. Needs the ``[learn]`` extra.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rnamotif_data.cli._options import add_source_arguments, source_config_from_args
from rnamotif_data.errors import ConfigError
from rnamotif_data.inputs.demo import training_mirror
from rnamotif_data.inputs.sources import Sources
from rnamotif_data.learn.detect import DetectConfig, detect

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif detect``."""
    p = argparse.ArgumentParser(prog="rnamotif detect", description=__doc__.split("\n")[0])
    p.add_argument("map", help="MRC/CCP4 map (.mrc/.map/.ccp4, optionally .gz/.bz2), or an EMDB ID (EMD-N) in the "
                               "mirror or cache")
    p.add_argument("--checkpoint", required=True, type=Path, help="segmentation checkpoint (unet3d)")
    p.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or an earlier detect's)")
    p.add_argument("--model", help="the map's fitted model (PDB/mmCIF file, or a PDB ID in the mirror or cache): "
                                   "per-residue and per-instance tables")
    p.add_argument("--demo", action="store_true", help="find MAP and --model IDs in the shipped training demo's "
                                                       "mirror (made by rnamotif build)")
    p.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda, cuda:N")
    p.add_argument("--tile", type=int, help="tile edge in voxels, a multiple of the network's (default: the one up "
                                            "to 160 that makes the fewest tile voxels for the map)")
    p.add_argument("--margin", type=int, default=16, help="voxels dropped on each tile face (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=1, help="tiles per forward pass (default %(default)s)")
    p.add_argument("--pairs", default="geometric", choices=("geometric", "rnapolis"),
                   help="base pairs for the model's true elements (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier detect's files in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_source_arguments(p, exclude=("verify_found", "entry_url", "model_url", "map_url", "timeout", "retries",
                                     "attempts", "backoff"))
    return p


_EMDB = re.compile(r"^EMD-\d{4,}$", re.I)
_PDB = re.compile(r"^[0-9][A-Za-z0-9]{3}$")


def _resolve(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The map and model files of ``MAP`` and ``--model``: paths as given, IDs through the
    sources (the mirror, the cache, or with ``--demo`` the training demo's mirror)."""
    ids = [v for v in (args.map, args.model) if v and (_EMDB.match(v) or _PDB.match(v)) and not Path(v).exists()]
    if not ids:
        return Path(args.map), Path(args.model) if args.model else None
    if args.demo:
        if args.mirror is not None:
            raise ConfigError("--demo finds IDs in the training demo's mirror; --mirror names another: give one")
        args.mirror = training_mirror()
    sources = Sources(source_config_from_args(args, exclude=("verify_found", "entry_url", "model_url", "map_url",
                                                              "timeout", "retries", "attempts", "backoff")))
    map_path = sources.map(args.map.upper()) if _EMDB.match(args.map) and not Path(args.map).exists() else Path(args.map)
    model = args.model
    model_path = sources.model(model.upper()) if model and _PDB.match(model) and not Path(model).exists() else \
        (Path(model) if model else None)
    return map_path, model_path


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rnamotif detect``; returns 0."""
    args = parser().parse_args(argv)
    map_path, model_path = _resolve(args)
    config = DetectConfig(tile=args.tile, margin=args.margin, batch_size=args.batch_size,
                          progress=not args.no_progress)
    summary = detect(map_path, args.checkpoint, args.out, model_path=model_path, device=args.device, config=config,
                     pairs=args.pairs, mode="replace" if args.overwrite else "new")
    print(f"{args.out}: {summary['n_sites']} predicted sites on a {'x'.join(map(str, summary['grid_shape']))} grid "
          f"({summary['device']}, {sum(v for k, v in summary['timings'].items() if isinstance(v, float)):.1f} s)")
    return 0
