"""Per-residue sequence features of a built store's samples, stored in STORE/features/<name>/.

Usage::

    rnamotif embed STORE --embedder structrfm --checkpoint DIR [--mirror DIR] [--name NAME]
    rnamotif embed STORE --embedder onehot

``--embedder`` names the sequence model (:data:`~rnamotif_data.features.embedders.EMBEDDERS`);
``--model``, its 0.8 spelling, still works for now with a one-line note (``--model`` is the
atomic model file everywhere else). The work is done by
:func:`rnamotif_data.features.embed.embed_and_write`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rnamotif_data.cli._options import add_source_arguments, source_config_from_args
from rnamotif_data.common.output import REPORT
from rnamotif_data.errors import ConfigError
from rnamotif_data.features.chains import EmbeddingCache
from rnamotif_data.features.embed import embed_and_write, mirror_for
from rnamotif_data.features.embedders import EMBEDDERS, make_embedder
from rnamotif_data.inputs.sources import Sources, default_cache_dir
from rnamotif_data.storage.store import open_store

__all__ = ["main", "parser"]

log = logging.getLogger("rnamotif_data.cli")

#: the embedder when neither --embedder nor its old spelling --model is given
DEFAULT_EMBEDDER = "structrfm"


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif embed``."""
    p = argparse.ArgumentParser(prog="rnamotif embed", description=__doc__.split("\n")[0])
    p.add_argument("store", help="a built store (local path)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--embedder", choices=list(EMBEDDERS),
                       help=f"sequence model: structrfm (needs --checkpoint or --random-weights) or onehot "
                            f"(default {DEFAULT_EMBEDDER})")
    which.add_argument("--model", dest="old_model", choices=list(EMBEDDERS), help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", type=Path, help="the unpacked structRFM_checkpoint folder (default $structRFM_checkpoint)")
    p.add_argument("--random-weights", action="store_true",
                   help="an untrained structRFM (a control; stored under the name '<embedder>-random')")
    p.add_argument("--size", default=None, metavar="DIM,LAYERS,HEADS",
                   help="model size of a random structRFM (default the base model 768,12,12)")
    p.add_argument("--name", help="feature name in the store (default the embedder's, '-random' for random weights)")
    p.add_argument("--cache-dir", type=Path, help="embedding cache (default <cache>/embeddings)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when available)")
    p.add_argument("--batch-size", type=int, default=8, help="sequences (or windows) per forward pass")
    p.add_argument("--overwrite", action="store_true", help="replace stored features of the same name")
    p.add_argument("--no-progress", action="store_true")
    add_source_arguments(p, exclude=("offline", "verify_found"))
    return p


def main(argv: list[str] | None = None) -> int:
    """``rnamotif embed`` (module docstring); returns 0."""
    a = parser().parse_args(argv)
    if a.old_model is not None:
        log.warning("embed --model %s: the flag is now --embedder %s (--model names an atomic model file); "
                    "--model will be removed", a.old_model, a.old_model)
    embedder_name = a.embedder or a.old_model or DEFAULT_EMBEDDER
    store = open_store(a.store)
    options: dict = {}
    if embedder_name == "structrfm":
        options = {"checkpoint": a.checkpoint, "random_weights": a.random_weights, "device": a.device,
                   "batch_size": a.batch_size}
        if a.size:
            try:
                dim, layer, heads = (int(v) for v in a.size.split(","))
            except ValueError:
                raise ConfigError(f"--size {a.size!r}: expected DIM,LAYERS,HEADS, e.g. 768,12,12") from None
            options.update(dim=dim, layer=layer, heads=heads)
    elif a.checkpoint or a.random_weights or a.size:
        raise ConfigError("--checkpoint, --random-weights and --size are for --embedder structrfm")
    embedder = make_embedder(embedder_name, **options)
    name = a.name or (f"{embedder_name}-random" if a.random_weights else embedder_name)
    cache_root = Path(a.cache or default_cache_dir()).resolve()
    mirror = mirror_for(store, a.mirror)
    sources_config = source_config_from_args(a, exclude=("offline", "verify_found"), offline=not a.online,
                                             cache_dir=cache_root, mirror=mirror.resolve() if mirror else None)
    cache = EmbeddingCache(a.cache_dir or cache_root / "embeddings")
    path, summary = embed_and_write(store, embedder, Sources(sources_config), cache, name, overwrite=a.overwrite,
                                    progress=not a.no_progress)
    size = sum(f.stat().st_size for f in path.iterdir())
    missing = summary["samples_without_features"]
    REPORT.info("features %s: %d of %d residues of %d samples (%d models, %d nt embedded, %d cached) in %.1f s; "
                "%.1f MiB%s", path, summary["residues_with_features"], summary["residues"], len(store),
                summary["models"], summary["nucleotides_embedded"], summary["cache_hits"], summary["seconds"],
                size / 2**20,
                "" if not missing else "; without features: " + ", ".join(f"{k} {v}" for k, v in missing.items()))
    return 0
