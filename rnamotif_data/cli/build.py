"""``rnamotif build``: build a Zarr + Parquet store from a manifest (default: the shipped demo).

Usage::

    rnamotif build                                  # the shipped training demo (15 entries)
    rnamotif build --demo small                     # the one-entry demo (seconds)
    rnamotif build --manifest M.parquet --out data/rnamotif.zarr
        [--mirror DIR | --cache DIR] [--offline]
        [--workers N] [--threads-per-worker T] [--memory-limit 4GiB]
        [--scheduler synchronous | tcp://host:8786]
        [--resume] [--overwrite] [--retry-failed]
        [--background-per-entry K] [--min-fit-z Z] [--shard-size S] [--dataset-version V]
        [segmentation flags: --cube-size, --zone-radius, ...]

The work is :func:`rnamotif_data.pipeline.builder.build` (how it works: that module's
docstring); the flags of :class:`~rnamotif_data.pipeline.config.BuildConfig` and its nested
configs are generated from the dataclasses.

Exit status: 0 when every manifest row became a sample; 3 when the store is complete but
some rows failed (the summary and ``failures.parquet`` say which and why); 1 on an error
that stops the build (bad manifest, store built with another config, a full disk, ...);
2 on a usage error (argparse).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

from rnamotif_data.cli._options import add_source_arguments, source_config_from_args
from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.common.extras import require
from rnamotif_data.common.output import REPORT
from rnamotif_data.em.quality import QualityConfig
from rnamotif_data.errors import RNAMotifError
from rnamotif_data.inputs.demo import SMALL_MANIFEST, SMALL_MIRROR, TRAINING_MANIFEST, training_mirror
from rnamotif_data.pipeline.builder import BuildResult, build, log
from rnamotif_data.pipeline.config import LOOP_CONVENTIONS, PAIR_READERS, BuildConfig
from rnamotif_data.pipeline.timing import format_timing
from rnamotif_data.samples.background import BackgroundConfig
from rnamotif_data.samples.cubes import SegmentConfig
from rnamotif_data.samples.tiles import TileConfig
from rnamotif_data.storage.layout import FAILURES_FILE, join
from rnamotif_data.storage.shards import CODECS

__all__ = ["main", "parser"]

#: where ``rnamotif build`` without --manifest writes the demo store
DEMO_OUT = Path("demo-out") / "rnamotif-demo.zarr"
#: where ``rnamotif build --demo small`` writes it (not DEMO_OUT: the two demos are different stores)
SMALL_DEMO_OUT = Path("demo-out") / "rnamotif-demo-small.zarr"

#: bytes below which ``--memory-limit`` is refused: an idle worker holds ~300 MiB
#: (benchmarks/RESULTS.md), and Dask restarts a worker over its limit again and again
MIN_WORKER_MEMORY = 512 * 2**20

BUILD_HELPS = {
    "min_fit_z": "entry placement: fit_z of the model's atoms inside the map",
    "min_motif_fit_z": "per-motif placement: motifs below go to failures.parquet, stage placement ('none' disables)",
    "min_motif_frac_above_1sd": "per-motif placement: fraction of heavy atoms above map mean + 1 sd ('none' disables)",
    "min_q_score": "motifs with a lower (or undefined) Q-score go to failures.parquet (stage quality)",
    "min_cc_mask": "motifs with a lower (or undefined) CC_mask go to failures.parquet (stage quality)",
    "pairs": "how closing base pairs are read to check loop lengths: geometric (N1-N3 rule, milliseconds) or "
             "rnapolis (RNApolis's canonical pairs, [annotate] extra, ~20 s per 50S model)",
    "loop_convention": "how loop lengths and fine types are counted: span (every nucleotide between the closing "
                       "pairs, default) or source (only those the source's residue list names: RNA 3D Motif Atlas "
                       "types); both are in the metadata either way",
    "shard_size": "samples per shard",
    "codec": "chunk codec of the cube arrays: lz4 (fastest to read) or zstd (~30% smaller)",
    "compression_level": "level of the codec (lz4 1-9, library default 5; zstd 1-22, default 3)",
    "tiles": "also store each entry's 1 A density and label volumes once, and the table of its overlapping tiles "
             "(--tile-size, --tile-stride; docs/store.md 'Volumes and tiles')",
}
TILE_HELPS = {
    "size": "voxels per tile edge (64: CryoREAD; 32: Cryo2StructData)",
    "stride": "voxels between tile origins (CryoREAD: 16)",
    "block": "voxels per edge of a stored block (a multiple of gcd(size, stride))",
    "rna_free_share": "RNA-free tiles listed per tile that holds RNA",
    "seed": "seed of the RNA-free tiles' draw",
    "voxel_size": "A, spacing of the volumes' grid",
    "label_radius": "A; a voxel takes the labels of its nearest heavy atom within this distance",
    "slab": "z planes labelled at a time (the memory bound)",
    "max_fraction_outside": "largest fraction of the model's atoms outside the map before the entry gets no volumes",
}


def _int_or_auto(text: str) -> int | None:
    return None if text == "auto" else int(text)


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif build``."""
    p = argparse.ArgumentParser(prog="rnamotif build", description=__doc__.split("\n")[0])
    p.add_argument("--manifest", type=Path, help="manifest Parquet (default: the shipped demo, "
                   "with its mirror)")
    p.add_argument("--demo", choices=("training", "small"), default="training",
                   help="without --manifest: the training demo (15 real models, maps simulated on first use; "
                        "splits and trains) or the small one (one entry, seconds)")
    p.add_argument("--out", help=f"store path or fsspec URL (default for the demo: {DEMO_OUT}; --demo small: "
                   f"{SMALL_DEMO_OUT})")
    add_source_arguments(p, exclude=("verify_found",))
    p.add_argument("--scheduler", help="'synchronous', or a Dask scheduler address (tcp://host:8786); "
                   "default: a new LocalCluster")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: CPU count)")
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--memory-limit", default="auto", help="per worker, e.g. 4GiB (default: auto)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted build")
    p.add_argument("--overwrite", action="store_true", help="delete an existing store at --out first")
    p.add_argument("--retry-failed", action="store_true", help="with --resume, redo entries that failed")
    p.add_argument("--dataset-version", default="0.0.0-dev")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="write a per-entry table of stage times (wall and CPU seconds), map shape and model size "
                        "to FILE (.csv or .parquet); the summary always gives the totals")
    add_config_arguments(p, BuildConfig, helps=BUILD_HELPS, choices={"codec": tuple(CODECS), "pairs": PAIR_READERS,
                                                                   "loop_convention": LOOP_CONVENTIONS})
    add_config_arguments(p, SegmentConfig)
    add_config_arguments(p, BackgroundConfig, prefix="background_", types={"per_entry": _int_or_auto})
    add_config_arguments(p, QualityConfig, types={"cc_local_radius": float})
    add_config_arguments(p, TileConfig, prefix="tile_", helps=TILE_HELPS, title="volumes and tiles (with --tiles)")
    return p


def build_config(args: argparse.Namespace) -> BuildConfig:
    """The :class:`BuildConfig` of parsed ``rnamotif build`` flags."""
    return config_from_args(args, BuildConfig, segment=config_from_args(args, SegmentConfig),
                            background=config_from_args(args, BackgroundConfig, prefix="background_"),
                            quality=config_from_args(args, QualityConfig),
                            tile=config_from_args(args, TileConfig, prefix="tile_"))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 all rows built, 3 some rows failed, 1 error, 2 usage)."""
    p = parser()
    args = p.parse_args(argv)

    if args.manifest is None:
        args.out = args.out or str(SMALL_DEMO_OUT if args.demo == "small" else DEMO_OUT)
        if args.demo == "small":
            args.manifest, args.mirror = SMALL_MANIFEST, args.mirror or SMALL_MIRROR
        else:
            args.manifest, args.mirror = TRAINING_MANIFEST, args.mirror or training_mirror()
        log.info("no --manifest: building the shipped %s demo (%s) into %s", args.demo, args.manifest, args.out)
    if not args.out:
        p.error("--out is required with --manifest")
    config = build_config(args)
    if config.pairs == "rnapolis":  # a missing extra is one line now, not a failure of every entry later
        require("rnapolis", "rnamotif build --pairs rnapolis")
    _check_run_options(args, args.mirror)
    if "://" not in str(args.out):  # workers elsewhere must not resolve a relative path in their own cwd
        args.out = os.path.abspath(args.out)
    source_config = source_config_from_args(args, exclude=("verify_found",), resolve=True)
    if args.scheduler and args.scheduler != "synchronous" and not _local_address(args.scheduler):
        mirror = source_config.mirror
        log.warning("--scheduler %s is not on this machine: the workers must see %s%s and %s at the same paths "
                    "(a shared file system), or use fsspec URLs", args.scheduler, args.out,
                    f", {mirror}" if mirror else "", source_config.cache_dir)
    t0 = time.perf_counter()
    result = build(args.manifest, args.out, config, source_config=source_config,
                   scheduler=args.scheduler, workers=args.workers,
                   threads_per_worker=args.threads_per_worker, memory_limit=args.memory_limit,
                   resume=args.resume, overwrite=args.overwrite, retry_failed=args.retry_failed,
                   dataset_version=args.dataset_version, progress=not args.no_progress)
    _summary(result, time.perf_counter() - t0)
    if args.profile is not None:
        _write_profile(args.profile, result)
    return result.exit_status
def _write_profile(path: Path, result: BuildResult) -> None:
    """Write ``--profile``: one row per entry staged or committed by this run."""
    if not result.profile:
        log.warning("--profile %s: not written; the store was already complete, so no entry was timed in this run "
                    "(its totals are in the store's build_timing attribute)", path)
        return
    table = pa.Table.from_pylist(result.profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    log.info("per-entry stage times: %s (%d entries)", path, table.num_rows)



def _local_address(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1", "0.0.0.0") or host.startswith("127.")


def _check_run_options(args, mirror) -> None:
    """Refuse, in one line, run options that would fail late or hang (RNAMotifError)."""
    if args.workers is not None and args.workers < 1:
        raise RNAMotifError(f"--workers {args.workers}: give at least 1 worker process")
    if args.threads_per_worker < 1:
        raise RNAMotifError(f"--threads-per-worker {args.threads_per_worker}: give at least 1")
    if args.memory_limit != "auto":
        parse_bytes = require("dask.utils", "the parallel build").parse_bytes
        try:
            limit = parse_bytes(args.memory_limit)
            if limit <= 0:
                raise ValueError  # control flow: caught just below, re-raised as RNAMotifError
        except (ValueError, TypeError):
            raise RNAMotifError(f"--memory-limit {args.memory_limit!r}: expected 'auto' or a size such as 4GiB") from None
        if limit < MIN_WORKER_MEMORY:
            raise RNAMotifError(
                f"--memory-limit {args.memory_limit}: below the {MIN_WORKER_MEMORY // 2**20} MiB a worker needs to start "
                "and build one small entry (an idle worker holds ~300 MiB; an entry needs about 3x its map's float32 "
                "size on top); give more, or 'auto'")
    if args.scheduler and args.scheduler != "synchronous" and not re.match(
            r"^(tcp|tls|ucx|inproc|ws|wss)://[^\s/:]+(:\d+)?/?$|^[A-Za-z0-9.\-]+:\d+$", args.scheduler):
        raise RNAMotifError(f"--scheduler {args.scheduler!r}: expected 'synchronous' or a Dask scheduler address "
                            "such as tcp://host:8786")
    if mirror is not None and not Path(mirror).is_dir():
        raise RNAMotifError(f"--mirror {mirror}: no such folder")
    if not Path(args.manifest).is_file():
        raise RNAMotifError(f"--manifest {args.manifest}: no such file")
    if args.profile is not None:
        if args.profile.suffix not in (".csv", ".parquet"):
            raise RNAMotifError(f"--profile {args.profile}: expected a .csv or .parquet file name")
        if args.profile.is_dir():
            raise RNAMotifError(f"--profile {args.profile}: is a folder; give a file name")
        if args.profile.exists() and not args.overwrite:
            raise RNAMotifError(f"--profile {args.profile}: the file exists; choose a new name, or --overwrite")


def _summary(result: BuildResult, seconds: float) -> None:
    if result.noop:
        log.info("%s: already complete with the same config and manifest; nothing to do", result.root)
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(result.reasons.items())) or "none"
    log.info("store %s: %d samples (%d background); %d manifest rows failed (%s); %.1f s",
             result.root, result.n_samples, result.n_background, result.n_failed_rows, reasons, seconds)
    if result.background_short:
        log.warning("background: %d of %d requested cubes placed; entries short of sites: %s",
                    result.n_background, result.background_requested,
                    ", ".join(f"{k} {p}/{a}" for k, (p, a) in sorted(result.background_short.items())))
    if result.timing and not result.noop:
        for line in format_timing(result.timing):
            REPORT.info("%s", line)
    by_note = Counter(note for notes in result.map_warnings.values() for note in notes)
    for note, k in sorted(by_note.items()):
        log.warning("map warning in %d entr%s: %s", k, "y" if k == 1 else "ies", note)
    if result.tiles:
        log.info("tiles: %d (%d hold RNA) of %d entries with volumes; %d entries without (volumes.parquet says why); "
                 "%d loop instances", result.tiles["n_tiles"], result.tiles["n_rna_tiles"], result.tiles["n_entries"],
                 result.tiles["n_entries_without"], result.tiles["n_instances"])
    if result.n_failed_rows:
        log.warning("%d rows did not become samples; see %s", result.n_failed_rows,
                    join(result.root, FAILURES_FILE))
