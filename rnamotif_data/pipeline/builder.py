"""Build a motif dataset store from a manifest: the main job (:func:`build`; the program is
``rnamotif build``, :mod:`rnamotif_data.cli.build`).

How it works (design §1, §7 and §9):

1. The manifest is validated; invalid rows go straight to ``failures.parquet``.
2. Rows are grouped by entry (PDB ID, EMDB ID); entries are ordered by key.
3. **Stage** -- one Dask task per entry fetches the model and map once (``--mirror``
   means no network), computes the map statistics once, checks the placement (fit_z of
   the model's atoms inside the map), segments every motif of the entry and chooses its
   background sites, and writes everything to one staging file
   ``OUT/_staging/<entry>.npz``, atomically. A failure in one motif is recorded for that
   row only; a failure of the entry (download, parse, placement) is recorded for each of
   its rows. The staging file's existence marks the entry finished, so ``--resume`` skips
   it.
4. **Commit** -- sample indices are assigned in entry order (each entry's motifs in
   manifest order, then its background samples), the arrays are created, and each shard
   is written by exactly one task from the staging files; then ``metadata.parquet``,
   ``failures.parquet``, ``checksums.sha256``, and last the ``build_state: complete``
   attribute. The result is independent of the scheduler and of interruptions:
   multi-worker, synchronous and resumed builds give byte-identical stores.

The program's exit status is :attr:`BuildResult.exit_status` (0, or 3 when some rows failed).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from rnamotif_data.common.extras import require
from rnamotif_data.common.names import LABEL_NAMES, NUCLEOTIDE_NAMES
from rnamotif_data.common.version import __version__
from rnamotif_data.errors import ConfigError, RNAMotifError, StoreError, is_environment_failure, one_line
from rnamotif_data.inputs.schema import read_manifest
from rnamotif_data.inputs.sources import SourceConfig, Sources
from rnamotif_data.pipeline.commit import CommitInputs, Committed, ShardWriter, commit, commit_shard
from rnamotif_data.pipeline.config import BuildConfig, check_dataset_version
from rnamotif_data.pipeline.entry import EntryJob, current_inputs, failure_row, stage_entry
from rnamotif_data.pipeline.runner import Runner
from rnamotif_data.pipeline.staging import changed_inputs, clean_staging, part_exists, part_inputs, read_part, write_part
from rnamotif_data.rna.motifs import CLASS_NAMES
from rnamotif_data.samples.background import ShapeDistribution, background_count
from rnamotif_data.storage.checksums import sha256_file
from rnamotif_data.storage.layout import FAILURES_FILE, FORMAT_VERSION, METADATA_COLUMNS, join, read_table
from rnamotif_data.storage.writer import ArraySpec, StoreWriter

__all__ = ["BuildResult", "EXIT_PARTIAL", "build", "group_entries"]

log = logging.getLogger("rnamotif_data.pipeline.builder")

# ---------------------------------------------------------------------------- driver
def group_entries(table: pa.Table, row_numbers: list[int],
                  map_ids: dict[str, str] | None = None) -> list[EntryJob]:
    """Group manifest rows into entries (PDB ID, EMDB ID), entries sorted by key, rows in
    manifest order.

    Rows without an ``emdb_id`` take ``map_ids[PDB ID]`` (the entry's primary map, looked
    up before grouping), so rows of one entry with and without the id become one job.
    Rows of one entry that give different resolutions make that entry refused (its
    ``error`` names the rows and values); rows without a resolution agree with any.
    Every job carries the strand layouts of all the manifest's motifs
    (:class:`ShapeDistribution`), the distribution its background samples draw from.
    """
    map_ids = map_ids or {}
    shapes = ShapeDistribution.from_types(table.column("motif_type").to_pylist()) if len(table) else ShapeDistribution(())
    groups: dict[tuple[str, str | None], list] = {}
    for i, row in zip(row_numbers, table.to_pylist()):
        pdb = row["pdb_id"].upper()
        emdb = row.get("emdb_id") or map_ids.get(pdb)
        groups.setdefault((pdb, emdb), []).append((i, row))
    jobs = []
    for (pdb, emdb), rows in groups.items():
        given = {i: float(r["resolution"]) for i, r in rows if r.get("resolution") is not None}
        values = sorted(set(given.values()))
        error = None
        if len(values) > 1:
            listing = ", ".join(f"row {i}: {v:g} Å" for i, v in given.items())
            error = (f"{pdb} / {emdb or 'primary map'}: manifest rows disagree on the map's resolution ({listing}); "
                     "an entry's map has one resolution: correct the manifest")
        jobs.append(EntryJob(pdb, emdb, tuple(rows), values[0] if len(values) == 1 else None, error, shapes))
    return sorted(jobs, key=lambda j: j.key)


def _map_ids(table: pa.Table, source_config: SourceConfig) -> dict[str, str]:
    """Primary EMDB map of every PDB ID that has a manifest row without ``emdb_id``.

    Looked up once per entry before grouping (mirror, cache or RCSB record); an entry
    whose map cannot be determined here keeps no id and fails at stage ``fetch`` with the
    reason."""
    pdbs = sorted({r["pdb_id"].upper() for r in table.select(["pdb_id", "emdb_id"]).to_pylist()
                   if not r.get("emdb_id")})
    if not pdbs:
        return {}
    sources, out = Sources(source_config), {}
    for pdb in pdbs:
        try:
            out[pdb], _ = sources.map_id(pdb)
        except (RNAMotifError, ValueError, OSError) as exc:
            log.debug("%s: primary map not determined before grouping (%s)", pdb, exc)
    return out


@dataclass
class BuildResult:
    """What a build did: counts for the summary and the exit status."""

    root: str
    n_samples: int = 0
    n_background: int = 0
    n_failed_rows: int = 0
    reasons: Counter = field(default_factory=Counter)
    entries: int = 0
    entries_staged: int = 0
    noop: bool = False
    stage_seconds: float = 0.0
    read_seconds: float = 0.0
    commit_seconds: float = 0.0
    background_requested: int = 0
    background_short: dict = field(default_factory=dict)
    map_warnings: dict = field(default_factory=dict)
    #: the store's ``build_timing`` attribute (:func:`rnamotif_data.pipeline.timing.timing_attrs`)
    timing: dict = field(default_factory=dict)
    #: one row per entry: its counts and per-stage wall and CPU seconds (``--profile``)
    profile: list = field(default_factory=list)
    #: entry key -> (wall s, CPU s) of writing its staging file, this run
    staging_seconds: dict = field(default_factory=dict)
    #: (wall s, CPU s) of the shard writers, this run
    writing: tuple = (0.0, 0.0)
    #: with --tiles, the store's ``tiles`` attribute (counts of tiles, entries, instances)
    tiles: dict | None = None

    def add_writing(self, out) -> None:
        """Add a :func:`rnamotif_data.pipeline.commit.commit_shard` result's seconds."""
        if isinstance(out, dict):
            self.writing = (self.writing[0] + out.get("wall", 0.0), self.writing[1] + out.get("cpu", 0.0))

    def add_commit(self, done: Committed) -> None:
        """Take the counts, timing and profile of the commit
        (:func:`rnamotif_data.pipeline.commit.commit`)."""
        self.n_samples, self.n_background, self.n_failed_rows = done.n_samples, done.n_background, done.n_failed_rows
        self.reasons = Counter(done.reasons)
        self.background_requested, self.background_short = done.background_requested, dict(done.background_short)
        self.map_warnings, self.timing, self.writing = dict(done.map_warnings), dict(done.timing), done.writing
        self.profile.extend(done.profile)
        self.tiles = done.tiles

    @property
    def exit_status(self) -> int:
        """0 if every row became a sample, else :data:`EXIT_PARTIAL` (3): the store is
        complete and ``failures.parquet`` says which rows failed and why."""
        return 0 if self.n_failed_rows == 0 else EXIT_PARTIAL


def build(manifest: str | Path, root: str, config: BuildConfig = BuildConfig(), *,
          source_config: SourceConfig | None = None, scheduler: str | None = "synchronous",
          workers: int | None = None, threads_per_worker: int = 1, memory_limit: str = "auto",
          resume: bool = False, overwrite: bool = False, retry_failed: bool = False,
          dataset_version: str = "0.0.0-dev", progress: bool = True,
          stop_after: int | None = None) -> BuildResult:
    """Build (or resume) a store from a manifest; see the module docstring.

    Parameters
    ----------
    manifest:
        Manifest Parquet file (validated; invalid rows become failures).
    root:
        Store location, a local path or an fsspec URL.
    config:
        Build configuration; hashed into the store, and checked on resume.
    source_config:
        Where models and maps come from.
    scheduler:
        ``"synchronous"`` (in-process), None (a new LocalCluster of ``workers`` processes)
        or a Dask scheduler address.
    resume, overwrite, retry_failed:
        Continue an interrupted build; delete an existing store first; on resume, redo
        entries that failed as a whole (downloads, parsing, placement).
    stop_after:
        Stop (without committing) after staging this many entries: for tests of resume.

    Returns
    -------
    BuildResult

    Raises
    ------
    StoreError
        If ``root`` holds a store of another config or manifest, an interrupted build
        without ``resume``, or anything that is not a store, without ``overwrite``.
    ManifestError, FileNotFoundError
        For an unreadable manifest.
    ConfigError
        For a ``dataset_version`` that ``rnamotif publish`` would refuse (not PEP 440), or
        ``resume`` and ``overwrite`` together.
    """
    check_dataset_version(dataset_version)
    if resume and overwrite:
        raise ConfigError("--resume continues the build at --out and --overwrite deletes it first; give one of them")
    source_config = dataclasses.replace(source_config or SourceConfig(), verify_found=False)
    manifest = Path(manifest)
    jobs, rejections, raw_rows, n_rows = _read_jobs(manifest, source_config)
    attrs = _store_attrs(manifest, n_rows, config, dataset_version)
    result = BuildResult(root=str(root), entries=len(jobs))
    if scheduler != "synchronous":  # a missing [build] extra is said before anything is written
        require("distributed", "the parallel build")
    store_writer = StoreWriter(str(root), ArraySpec(config.segment.shape, config.shard_size, config.codec,
                                                    config.compression_level), overwrite=overwrite)
    old = store_writer.existing
    store_writer.acquire()
    try:
        existing = store_writer.prepare(attrs, resume=resume)
        if existing == "complete" and old is not None:  # "complete" is read from old, never None then
            return _finished(str(root), old, result, retry_failed=retry_failed, dataset_version=dataset_version)
        store_writer.begin(attrs)

        todo = [job for job in jobs if _to_stage(str(root), job, config, source_config, retry_failed)]
        if stop_after is not None:
            todo = todo[:stop_after]
        log.info("%d entries, %d rows (%d rejected by validation); %d entries to stage",
                 len(jobs), n_rows, len(rejections), len(todo))

        runner = Runner(scheduler, workers, threads_per_worker, memory_limit)
        try:
            committed = _stage_and_commit(store_writer, jobs, todo, rejections, raw_rows, config, source_config,
                                          runner, result, progress=progress, commit_store=stop_after is None)
        finally:
            runner.close()
        if committed:
            clean_staging(str(root))
        return result
    finally:
        store_writer.release()


def _read_jobs(manifest: Path, source_config: SourceConfig) -> tuple[list[EntryJob], list, dict[int, dict], int]:
    """The manifest's entries to build: ``(jobs, rejections, raw_rows, n_rows)``: the
    entry jobs of its valid rows, the rows validation refused, the raw rows of those
    (for ``failures.parquet``) and the manifest's row count. Raises :class:`StoreError`
    for a manifest without rows, what :func:`read_manifest` raises for an unreadable one."""
    table, rejections = read_manifest(manifest)
    n_rows = table.num_rows + len(rejections)
    if n_rows == 0:
        raise StoreError(f"{manifest}: the manifest has no rows; nothing to build")
    rejected_rows = {r.row for r in rejections}
    row_numbers = [i for i in range(n_rows) if i not in rejected_rows]
    jobs = group_entries(table, row_numbers, _map_ids(table, source_config))
    return jobs, rejections, _raw_rows(manifest, rejected_rows), n_rows


def _store_attrs(manifest: Path, n_rows: int, config: BuildConfig, dataset_version: str) -> dict:
    """The store's attributes a build fixes before staging (checked on resume)."""
    return {
        "format_version": FORMAT_VERSION, "dataset_version": dataset_version,
        "build_config": config.to_dict(), "config_hash": config.config_hash(),
        "manifest": manifest.name, "manifest_sha256": sha256_file(manifest), "manifest_rows": n_rows,
        "class_names": list(CLASS_NAMES), "label_names": list(LABEL_NAMES),
        "nucleotide_names": list(NUCLEOTIDE_NAMES), "voxel_size": config.segment.voxel_size,
        "cube_shape": list(config.segment.shape), "shard_size": int(config.shard_size),
        "package_version": __version__,
    }


def _finished(root: str, old: dict, result: BuildResult, *, retry_failed: bool, dataset_version: str) -> BuildResult:
    """The result of a build whose store is complete (nothing to do), from its attributes
    ``old``. Raises :class:`StoreError` for ``--retry-failed`` of a complete build."""
    if retry_failed and old.get("n_failed_rows"):
        raise StoreError(f"{root}: the build is complete; --retry-failed redoes failed entries of an "
                         f"interrupted build only ({old.get('n_failed_rows')} rows failed, see "
                         f"{FAILURES_FILE}); to retry them, build into a new --out")
    if dataset_version != old.get("dataset_version"):
        log.warning("%s: the build is complete as version %s; --dataset-version %s is not applied (build "
                    "into a new --out, or give the version when publishing)", root,
                    old.get("dataset_version"), dataset_version)
    fails = _read_failures_count(root)
    result.noop, result.n_failed_rows = True, fails[0]
    result.reasons = fails[1]
    result.n_samples = int(old.get("n_samples", 0))
    result.n_background = int(old.get("n_background", 0))
    result.background_requested = int(old.get("background", {}).get("requested", result.n_background))
    result.background_short = dict(old.get("background", {}).get("short", {}))
    result.map_warnings = dict(old.get("map_warnings", {}))
    result.tiles = old.get("tiles")
    result.timing = dict(old.get("build_timing", {}))
    clean_staging(root)
    return result


def _stage_and_commit(store_writer: StoreWriter, jobs: list[EntryJob], todo: list[EntryJob], rejections: list,
                      raw_rows: dict[int, dict], config: BuildConfig, source_config: SourceConfig, runner: Runner,
                      result: BuildResult, *, progress: bool, commit_store: bool) -> bool:
    """Stage ``todo`` and write the shards (:func:`_stage_and_write`), then, with
    ``commit_store``, commit the store (:func:`commit`); times both into ``result``.
    Returns whether the store was committed."""
    t0 = time.perf_counter()
    writer = _stage_and_write(store_writer, jobs, todo, config, source_config, runner, result, progress=progress,
                              write=commit_store)
    result.entries_staged = len(todo)
    result.stage_seconds = time.perf_counter() - t0
    if not commit_store:
        return False
    t1 = time.perf_counter()
    result.add_commit(commit(store_writer, CommitInputs(jobs, rejections, raw_rows, dict(result.staging_seconds),
                                                        result.writing), runner, writer, volumes=config.tiles))
    result.commit_seconds = time.perf_counter() - t1
    return True


def _stage_and_write(store_writer: StoreWriter, jobs: list[EntryJob], todo: list[EntryJob], config: BuildConfig,
                     source_config: SourceConfig, runner: Runner, result: BuildResult, *, progress: bool,
                     write: bool) -> ShardWriter:
    """Stage the entries ``todo`` on ``runner`` and, with ``write``, write each shard as soon
    as every entry before it is staged (the arrays start at an upper bound of N and shrink
    at commit). Adds to ``result``; returns the shard writer (for :func:`commit`).

    Raises :class:`StoreError` when a shard cannot be written, :class:`RNAMotifError` when
    an entry stops on an environment failure (a full disk): the store stays resumable.
    """
    root = store_writer.root
    counts: dict[str, int] = {}
    todo_keys = {j.key for j in todo}
    for job in jobs:  # entries staged by an earlier run
        if job.key not in todo_keys and part_exists(root, job.key):
            counts[job.key] = len(read_part(root, job.key)["meta"])
    n_max = sum(counts.get(j.key, len(j.rows) + background_count(len(j.rows), config.background)) for j in jobs)
    if write:
        store_writer.create_arrays(max(n_max, 1))
    if config.tiles:  # before the entry tasks add their arrays to it
        store_writer.create_volume_group()
    writer = ShardWriter(jobs, config.shard_size, counts)
    n_samples = n_failed = 0
    bar = tqdm(total=len(todo), desc="entries", unit="entry", disable=not progress)
    pending: dict[Any, tuple[str, Any]] = {runner.submit(stage_entry, job, config, source_config, root): ("stage", job)
                                           for job in todo}

    def submit_ready() -> None:
        if write:
            for shard in writer.ready():
                pending[runner.submit(commit_shard, root, *shard)] = ("shard", shard)

    submit_ready()
    for handle, out in runner.as_completed(pending):
        kind, item = pending.pop(handle)
        if kind == "shard":
            if isinstance(out, BaseException):
                raise StoreError(f"{root}: writing the shard at sample {item[0]} failed: {one_line(out)}; the "
                                 "store is resumable: run the same command with --resume") from None
            result.add_writing(out)
            continue
        out = _staged(root, item, out, config.config_hash())
        n_samples += out["n_samples"]
        n_failed += out["n_failed"]
        result.read_seconds += out["read_seconds"]
        if "timing" in out:
            t = out["timing"]
            result.staging_seconds[item.key] = (t["wall"]["staging"], t["cpu"]["staging"])
        bar.set_postfix(samples=n_samples, failed_rows=n_failed)
        bar.update(1)
        writer.staged(item.key, out["n_samples"])
        submit_ready()
    bar.close()
    return writer


def _staged(root: str, job: EntryJob, out, config_hash: str) -> dict:
    """The summary of one entry task: its own, or, when the task itself died, one that
    records every row of the entry as failed (stage ``entry``). Raises
    :class:`RNAMotifError` for an environment failure (nothing recorded as failed)."""
    if isinstance(out, BaseException) and is_environment_failure(out):
        raise RNAMotifError(
            f"{root}: the build stopped while staging {job.pdb_id} / {job.emdb_id or 'its map'}: "
            f"{one_line(out)}; nothing was recorded as failed and the store is resumable: free space "
            "(or fix the disk) and run the same command with --resume") from None
    if isinstance(out, BaseException):  # the task itself died: record every row
        failures = [failure_row(i, row, job.emdb_id, "entry", out) for i, row in job.rows]
        write_part(root, job.key, [], failures, True, {"inputs": part_inputs(config_hash, job.emdb_id)})
        out = {"n_samples": 0, "n_failed": len(failures), "read_seconds": 0.0}
    return out


def _to_stage(root: str, job: EntryJob, config: BuildConfig, source_config: SourceConfig, retry_failed: bool) -> bool:
    """Whether ``job`` is (re)staged: not staged yet, failed as a whole with
    ``retry_failed``, staged by a package whose samples lack a metadata column (one before
    ``source_loop_lengths``), or staged from inputs that changed since (logged)."""
    if not part_exists(root, job.key):
        return True
    part = read_part(root, job.key)
    if retry_failed and part["entry_failed"]:
        return True
    lacks = [c for c in METADATA_COLUMNS if c != "sample_index" and part["meta"] and c not in part["meta"][0]]
    why = (f"the staged part has no {', '.join(lacks)} column(s) (staged by an older package)" if lacks else
           changed_inputs(part.get("inputs"), current_inputs(job, part.get("inputs"), config, source_config)))
    if why:
        log.warning("%s: %s; the entry is staged again", job.key, why)
    return why is not None


def _read_failures_count(root: str) -> tuple[int, Counter]:

    t = read_table(join(root, FAILURES_FILE))
    return t.num_rows, Counter(t["stage"].to_pylist())


def _raw_rows(manifest: Path, rows: set[int]) -> dict[int, dict]:
    """The rejected rows as read, for naming them in failures.parquet."""
    if not rows:
        return {}
    import pyarrow.parquet as pq

    t = pq.read_table(manifest)
    cols = [c for c in ("pdb_id", "emdb_id", "motif_type") if c in t.column_names]
    t = t.select(cols).take(pa.array(sorted(rows), type=pa.int64()))
    return dict(zip(sorted(rows), t.to_pylist()))


#: exit status of a build whose store is complete but some manifest rows failed (1 is an
#: error that stopped the build, 2 a usage error)
EXIT_PARTIAL = 3
