"""Committing a build: shards written from staging files, one writer per shard, then the
tables, the checksums and -- last -- ``build_state: complete``, all through the store
writer (:class:`rnamotif_data.storage.writer.StoreWriter`); what is left here is the
pipeline's own part: which staged samples make which shard, and the build's counts.

Sample indices follow entry order (each entry's motifs in manifest order, then its
background samples), so a shard can be written as soon as every entry before it is
staged (:class:`ShardWriter`); the result does not depend on the scheduler or on
interruptions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rnamotif_data.errors import StoreError
from rnamotif_data.inputs.schema import Rejection
from rnamotif_data.pipeline.entry import EntryJob
from rnamotif_data.pipeline.runner import Runner
from rnamotif_data.pipeline.staging import read_part
from rnamotif_data.pipeline.timing import ENTRY_STAGES, sum_timings, timing_attrs
from rnamotif_data.storage.layout import ARRAYS, failures_row
from rnamotif_data.storage.store import write_shard
from rnamotif_data.storage.writer import StoreTables, StoreWriter

__all__ = ["commit_shard", "plan_shards", "ShardWriter", "CommitInputs", "Committed", "commit"]


def commit_shard(root: str, start: int, pieces: list[tuple[str, int, int]]) -> dict:
    """Write one shard (samples ``start ...``) from staging files; the only writer of it.

    ``pieces`` are ``(entry key, first, stop)`` slices of the entries' staged samples, in
    sample order. Returns ``{"n_samples": written, "wall": s, "cpu": s}`` (the task's
    wall and thread-CPU seconds, for the build's ``writing`` stage).
    """
    t, c = time.perf_counter(), time.thread_time()
    chunks: dict[str, list] = {name: [] for name in ARRAYS}
    for key, a, b in pieces:
        part = read_part(root, key, arrays=True)
        for name in ARRAYS:
            chunks[name].append(part[name][a:b])
    data = {name: np.concatenate(v) for name, v in chunks.items()}
    write_shard(root, start, data)
    return {"n_samples": len(data["density"]), "wall": time.perf_counter() - t, "cpu": time.thread_time() - c}


def plan_shards(counts: list[tuple[str, int]], shard_size: int) -> list[tuple[int, list[tuple[str, int, int]]]]:
    """Split entries' sample counts, in order, into shard-sized pieces.

    Returns ``[(shard start, [(entry key, first, stop), ...]), ...]``.
    """
    shards: list[tuple[int, list]] = []
    pos = 0
    for key, n in counts:
        done = 0
        while done < n:
            if pos % shard_size == 0:
                shards.append((pos, []))
            take = min(n - done, shard_size - pos % shard_size)
            shards[-1][1].append((key, done, done + take))
            done += take
            pos += take
    return shards


class ShardWriter:
    """Which shards can be written: those whose samples all come from staged entries, the
    entries before them included (sample order is entry order)."""

    def __init__(self, jobs: list, shard_size: int, counts: dict[str, int]):
        self.keys = [j.key for j in jobs]
        self.shard_size = shard_size
        self.counts = dict(counts)
        self.prefix = 0  # entries 0 .. prefix-1 are staged
        self.done_samples = 0  # samples of those entries
        self.next_shard = 0  # first shard not yet handed out
        self.pieces: list[tuple[str, int]] = []  # (key, count) of the staged prefix

    def staged(self, key: str, n: int) -> None:
        """Record that an entry is staged with ``n`` samples."""
        self.counts[key] = n

    def ready(self, final: bool = False) -> list[tuple[int, list]]:
        """Shards now complete (all of them, the last partial one included, if ``final``)."""
        while self.prefix < len(self.keys) and self.keys[self.prefix] in self.counts:
            key = self.keys[self.prefix]
            self.pieces.append((key, self.counts[key]))
            self.done_samples += self.counts[key]
            self.prefix += 1
        out = []
        for start, pieces in plan_shards(self.pieces, self.shard_size):
            if start // self.shard_size < self.next_shard:
                continue
            if start + self.shard_size <= self.done_samples or final:
                out.append((start, pieces))
                self.next_shard = start // self.shard_size + 1
        return out


def _shape_text(shape) -> str | None:
    """A map's ``(z, y, x)`` shape as ``"z x y x x"`` text, e.g. ``64x64x64``."""
    return "x".join(str(int(v)) for v in shape) if shape else None


def _entry_timing(part: dict, staging: tuple[float, float] | None) -> dict:
    """An entry's stage timing from its staging file, with the time spent writing that
    file (known only to the run that wrote it; 0 for entries staged by an earlier run)."""
    timing = part.get("timing") or {"wall": {}, "cpu": {}}
    wall, cpu = dict(timing.get("wall", {})), dict(timing.get("cpu", {}))
    wall["staging"], cpu["staging"] = staging or (0.0, 0.0)
    return {"wall": wall, "cpu": cpu}


@dataclass(frozen=True)
class CommitInputs:
    """What the commit needs of a build whose entries are all staged: the entries in
    order (``jobs``, :class:`rnamotif_data.pipeline.entry.EntryJob`), the manifest rows
    validation rejected and those rows as read (``raw_rows``, by row number), the
    (wall s, CPU s) of writing each entry's staging file this run (``staging_seconds``,
    by entry key) and of the shard writers so far (``writing``)."""

    jobs: Sequence[EntryJob]
    rejections: Sequence[Rejection] = ()
    raw_rows: Mapping[int, Mapping] = field(default_factory=dict)
    staging_seconds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    writing: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Committed:
    """What a commit wrote: the counts of the summary, the store's ``build_timing``
    (:func:`rnamotif_data.pipeline.timing.timing_attrs`), one ``profile`` row per entry
    (its counts and per-stage wall and CPU seconds), the shard writers' (wall s, CPU s)
    in all, and with ``--tiles`` the store's ``tiles`` attribute (counts)."""

    n_samples: int
    n_background: int
    n_failed_rows: int
    reasons: Counter
    background_requested: int
    background_short: dict
    map_warnings: dict
    timing: dict
    profile: tuple[dict, ...]
    writing: tuple[float, float]
    tiles: dict | None = None


def _rejected_row(rej: Rejection, row: Mapping) -> dict:
    """The failures.parquet row of a manifest row that validation rejected."""
    return failures_row(manifest_row=rej.row, pdb_id=row.get("pdb_id"), emdb_id=row.get("emdb_id"),
                        motif_type=row.get("motif_type"), residues=None, source=rej.source,
                        source_id=rej.source_id, stage="manifest", error_type="Rejected",
                        error=f"column {rej.column}: {rej.reason}", fit_z=None, frac_atoms_above_1sd=None,
                        q_score=None)


def _write_volumes(store: StoreWriter, jobs: Sequence[EntryJob]) -> dict:
    """Write the volume tables from the entries' staging records (entry order; tiles
    numbered in that order); returns the store's ``tiles`` attribute (counts)."""
    volumes, tiles, instances = [], [], []
    for job in jobs:
        rec = read_part(store.root, job.key).get("volumes")
        if rec is None:
            raise StoreError(f"{store.root}: the staged entry {job.key} has no volumes record (staged without "
                             "--tiles); build into a new --out")
        volumes.append(rec["volume"])
        tiles += rec["tiles"]
        instances += rec["instances"]
    store.write_volume_tables(volumes, tiles, instances)
    return {"n_tiles": len(tiles), "n_rna_tiles": sum(1 for t in tiles if t["holds_rna"]),
            "n_entries": sum(1 for v in volumes if v["error"] is None), "n_entries_without": sum(
                1 for v in volumes if v["error"] is not None), "n_instances": len(instances)}


def commit(store: StoreWriter, inputs: CommitInputs, runner: Runner, shards: ShardWriter, *,
           volumes: bool = False) -> Committed:
    """Finish a build whose entries are all staged (``store`` holds the lock): size the
    arrays to N samples, write the remaining shards (one task per shard, ``shards`` says
    which), then ``metadata.parquet``, ``failures.parquet`` (validation rejections
    included), the attributes (counts, background requested and placed, map warnings),
    ``checksums.sha256`` and last ``build_state: complete``, all through ``store``. With
    ``volumes`` (a build with ``--tiles``), the volume tables too (``volumes.parquet``,
    ``tiles.parquet``, ``instances.parquet``) and the ``tiles`` attribute.

    Raises
    ------
    StoreError
        If a shard cannot be written.
    TypeError
        If a staged row misses a column of its table or has one that is not (a staging
        file of another version of the package).
    """
    root = store.root
    metas: list[dict] = []
    failures = [_rejected_row(rej, inputs.raw_rows.get(rej.row) or {}) for rej in inputs.rejections]
    requested, short, map_warnings, timings, profile = 0, {}, {}, [], []
    for job in inputs.jobs:
        part = read_part(root, job.key)
        timing = _entry_timing(part, inputs.staging_seconds.get(job.key))
        timings.append(timing)
        n_bg = sum(1 for m in part["meta"] if m["is_background"])
        profile.append({"entry": job.key, "pdb_id": job.pdb_id, "emdb_id": job.emdb_id,
                        "manifest_rows": len(job.rows), "samples": len(part["meta"]), "background": n_bg,
                        "failed_rows": len(part["failures"]), "map_shape": _shape_text(part.get("map_shape")),
                        "model_atoms": part.get("n_atoms"),
                        **{f"{stage}_s": timing["wall"].get(stage, 0.0) for stage in ENTRY_STAGES},
                        **{f"{stage}_cpu_s": timing["cpu"].get(stage, 0.0) for stage in ENTRY_STAGES}})
        metas += part["meta"]
        failures += part["failures"]
        asked, placed = int(part.get("background_requested", 0)), int(part.get("background_placed", 0))
        requested += asked
        if placed < asked:
            short[job.key] = [placed, asked]
        if part.get("map_warnings"):
            map_warnings[job.key] = list(part["map_warnings"])
    n = len(metas)
    store.resize(n)
    wall, cpu = inputs.writing
    pending = {runner.submit(commit_shard, root, start, pieces): start for start, pieces in shards.ready(final=True)}
    for handle, out in runner.as_completed(pending):
        start = pending.pop(handle)
        if isinstance(out, BaseException):
            raise StoreError(f"{root}: writing the shard at sample {start} failed: {out}") from out
        if isinstance(out, dict):
            wall, cpu = wall + out.get("wall", 0.0), cpu + out.get("cpu", 0.0)
    failures.sort(key=lambda f: f["manifest_row"])
    store.write_tables(StoreTables(metadata=metas, failures=failures))
    tiles_attrs = _write_volumes(store, inputs.jobs) if volumes else None
    n_background = sum(1 for m in metas if m["is_background"])
    n_rows = len(inputs.rejections) + sum(len(job.rows) for job in inputs.jobs)
    total = sum_timings([*timings, {"wall": {"writing": wall}, "cpu": {"writing": cpu}}])
    timing = timing_attrs(total, len(inputs.jobs), n_rows, n_background)
    store.complete({"n_samples": n, "n_background": n_background, "n_failed_rows": len(failures),
                    "background": {"requested": requested, "placed": n_background, "short": short},
                    "map_warnings": map_warnings, "build_timing": timing,
                    **({"tiles": tiles_attrs} if tiles_attrs is not None else {})})
    return Committed(n_samples=n, n_background=n_background, n_failed_rows=len(failures),
                     reasons=Counter(f["stage"] for f in failures), background_requested=requested,
                     background_short=short, map_warnings=map_warnings, timing=timing, profile=tuple(profile),
                     writing=(wall, cpu), tiles=tiles_attrs)
