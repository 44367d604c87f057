"""Where a build's time goes: per-stage wall and CPU seconds, per entry and summed.

Each entry task (:func:`rnamotif_data.pipeline.entry.stage_entry`) times its stages with a
:class:`StageClock`; the builder sums them over entries into the build summary, the
store's ``build_timing`` attribute (measured, so left out of the attributes' checksum)
and, with ``rnamotif build --profile FILE``, a per-entry table (design §9).

Stages, in the order an entry meets them:

========== ================================================================================
fetch      finding (or downloading) the model and the map
read       parsing the model (gemmi) and reading the map (mrcfile)
statistics the map's statistics (mean, sd, percentiles) and header checks
placement  the entry's fit_z and every motif's fit_z and fraction above mean + 1 sd
segment    resolving selections, strand and sequence checks, cubes, zones and labels
quality    Q-score and CC_mask of every motif (and the model's KD-tree they share)
background the search for the entry's background sites (candidates, ranking, the placement
           checks and cuts of the candidates, which the selection makes itself); the
           chosen sites' Q-score and CC_mask count as quality, as for motifs
volumes    with ``--tiles``: elements, the 1 Å label volumes, their blocks and the tile table
staging    writing the entry's staging file
writing    writing shards (one task per shard; not per entry)
========== ================================================================================

CPU seconds are the task thread's (:func:`time.thread_time`), so they are the work of the
stage itself and not of other threads of the same worker.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable, Iterator

__all__ = ["STAGES", "ENTRY_STAGES", "StageClock", "sum_timings", "timing_attrs", "format_timing"]

#: every stage of a build, in order
STAGES = ("fetch", "read", "statistics", "placement", "segment", "quality", "background", "volumes", "staging",
          "writing")
#: the stages timed inside an entry task
ENTRY_STAGES = STAGES[:-1]


class StageClock:
    """Accumulates wall and thread-CPU seconds per stage.

    Use as ``with clock("quality"): ...``. Stages nest: time spent in an inner stage is
    counted for the inner stage only (the outer one is paused), so the stages add up to
    the time measured.
    """

    def __init__(self) -> None:
        self.wall = dict.fromkeys(ENTRY_STAGES, 0.0)
        self.cpu = dict.fromkeys(ENTRY_STAGES, 0.0)
        self._stack: list[str] = []
        self._mark = (0.0, 0.0)

    def _charge(self) -> None:
        """Add the time since the last mark to the stage on top of the stack."""
        t, c = time.perf_counter(), time.thread_time()
        if self._stack:
            top = self._stack[-1]
            self.wall[top] += t - self._mark[0]
            self.cpu[top] += c - self._mark[1]
        self._mark = (t, c)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if stage not in self.wall:
            # stage names come from our code only: an unknown one is a bug (cli.run shows its traceback)
            raise ValueError(f"unknown build stage {stage!r}; stages are {', '.join(ENTRY_STAGES)}")
        self._charge()
        self._stack.append(stage)
        try:
            yield
        finally:
            self._charge()
            self._stack.pop()

    def to_dict(self) -> dict:
        """``{"wall": {stage: s}, "cpu": {stage: s}}``, rounded to 0.1 ms."""
        return {"wall": {k: round(v, 4) for k, v in self.wall.items()},
                "cpu": {k: round(v, 4) for k, v in self.cpu.items()}}


def sum_timings(timings: Iterable[dict]) -> dict:
    """Sum per-entry ``{"wall": {...}, "cpu": {...}}`` records stage by stage (missing
    stages count 0); returns the same shape over :data:`STAGES`."""
    out: dict[str, dict[str, float]] = {"wall": dict.fromkeys(STAGES, 0.0), "cpu": dict.fromkeys(STAGES, 0.0)}
    for t in timings:
        for kind in ("wall", "cpu"):
            for stage, v in (t.get(kind) or {}).items():
                if stage in out[kind]:
                    out[kind][stage] += float(v)
    return out


def timing_attrs(total: dict, entries: int, rows: int, background: int) -> dict:
    """The store's ``build_timing`` attribute: per-stage seconds summed over ``entries``,
    with the per-row CPU figure (``cpu_ms_per_row``: all CPU seconds of the entry tasks
    and shard writers divided by the manifest rows plus the background samples)."""
    cpu = sum(total["cpu"].values())
    units = max(rows + background, 1)
    return {"unit": "s", "summed_over_entries": int(entries), "manifest_rows": int(rows),
            "background_samples": int(background),
            "wall": {k: round(v, 3) for k, v in total["wall"].items()},
            "cpu": {k: round(v, 3) for k, v in total["cpu"].items()},
            "cpu_ms_per_row": round(1000 * cpu / units, 1)}


def format_timing(attrs: dict) -> list[str]:
    """Lines of the build summary for a ``build_timing`` attribute: one per stage
    (CPU seconds, share of the total, ms per manifest row) and a total."""
    cpu = attrs["cpu"]
    total = sum(cpu.values()) or 1e-12
    rows = max(int(attrs.get("manifest_rows", 0)) + int(attrs.get("background_samples", 0)), 1)
    lines = [f"time by stage, summed over {attrs['summed_over_entries']} entries "
             f"(CPU s, share, ms per manifest row or background sample):"]
    for stage in STAGES:
        lines.append(f"  {stage:<11}{cpu[stage]:9.2f} s {100 * cpu[stage] / total:5.1f} %"
                     f" {1000 * cpu[stage] / rows:8.1f} ms")
    lines.append(f"  {'total':<11}{total:9.2f} s {100.0:5.1f} % {1000 * total / rows:8.1f} ms "
                 f"(wall, summed over tasks: {sum(attrs['wall'].values()):.2f} s)")
    return lines
