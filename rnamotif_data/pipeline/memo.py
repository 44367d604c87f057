"""What a build computes once per model and reuses in the model's other maps.

A cryoDRGN ensemble (tens to hundreds of volumes of one model, on one grid) or a model
deposited with several EMDB maps repeats, in every map, the work that depends on the
model alone: placing each motif's cube and painting its zone and labels
(:func:`~rnamotif_data.samples.cubes.label_cube`), and, on one map grid, each motif's
molecular mask and model maps for CC_mask and CC_local
(:func:`~rnamotif_data.em.quality.correlation_boxes`). :class:`ModelMemo` keeps those
results for the model a worker holds (:class:`rnamotif_data.pipeline.context.ModelContext`), from
the model's second map on (a model seen once, the common case in EMDB, keeps nothing), so
later maps only sample and correlate map values. The stored values are the ones a fresh
computation gives, so the store does not change by a byte (tested). Values are keyed by
:func:`rnamotif_data.samples.cubes.atoms_key` of the atoms they describe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np

__all__ = ["ModelMemo", "freeze", "MEMO_BYTES"]

#: Bytes a worker keeps per model (cube labels: ~190 KiB per 40³ cube; correlation
#: boxes: ~20 KiB to ~1 MiB per motif, by voxel size). Past it, results are computed
#: and not kept. 64 MiB stays within the build's memory goal (peak worker RSS <= 3x the
#: largest map) on a ribosome-size (400³) entry.
MEMO_BYTES = 64 << 20

T = TypeVar("T")


def _nbytes(value) -> int:
    if isinstance(value, tuple):
        return sum(_nbytes(v) for v in value)
    return int(value.nbytes)


def freeze(value) -> None:
    """Make the array attributes of ``value`` (or of each item of a tuple) read-only, in
    place: what a worker keeps for the next entry, no entry can change."""
    if isinstance(value, tuple):
        for v in value:
            freeze(v)
        return
    for v in vars(value).values():
        if isinstance(v, np.ndarray):
            v.flags.writeable = False


class ModelMemo:
    """Results that depend on one model (and a map grid), never on map values, kept up to
    ``budget`` bytes; threads of one worker may share it.

    Values are frozen dataclasses of arrays (or tuples of them) with an ``nbytes``
    property; their arrays are made read-only when kept.
    """

    def __init__(self, budget: int = MEMO_BYTES):
        self.budget = int(budget)
        self.nbytes = 0
        self.hits = 0
        self._items: dict[Hashable, object] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[Hashable]:
        """The keys of the values kept, in the order they were kept."""
        with self._lock:
            return list(self._items)

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value kept under ``key``, or ``make()`` (kept if it fits the budget).
        Raises what ``make`` raises (nothing is kept then)."""
        with self._lock:
            if key in self._items:
                self.hits += 1
                return self._items[key]  # type: ignore[return-value]
        value = make()
        size = _nbytes(value)
        with self._lock:
            if key not in self._items and self.nbytes + size <= self.budget:
                freeze(value)
                self._items[key] = value
                self.nbytes += size
        return value
