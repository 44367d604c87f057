"""One model's context: everything a build derives from a model file alone, in one place.

A cryoDRGN ensemble (tens to hundreds of volumes of one model) or a model deposited with
several EMDB maps brings one model file to a worker again and again. What depends on the
model alone, never on a map, is made once per model and worker process and kept in one
:class:`ModelContext`:

=============== ==========================================================================
``model``       the parsed model (:func:`~rnamotif_data.rna.structure.read_model`), its
                arrays read-only
``key``         its coordinates' hash (``model_hash``; the background seed key)
``tree``        a KD-tree of its heavy atoms (Q-scores, quality)
``points``      its Q-score sample points (:class:`~rnamotif_data.em.quality.ShellPointCache`,
                filled as atoms are scored)
``memo``        its motifs' cube labels and correlation boxes
                (:class:`~rnamotif_data.pipeline.memo.ModelMemo`, up to
                :data:`~rnamotif_data.pipeline.memo.MEMO_BYTES`), served from the model's
                second map on
:meth:`~ModelContext.partners`
                its base-pair partners (geometric or RNApolis), read once
:meth:`~ModelContext.background_pool`
                its background candidates (:func:`~rnamotif_data.samples.background.background_pool`)
                for the last listed motifs and config asked for
=============== ==========================================================================

:data:`MODELS` keeps the context of the last model file a process met (keyed by the
file's sha256, its format and the quality config), under a lock; one model at a time, so
a worker's memory stays that of one model. Entries take their context from
:meth:`ModelContexts.enter` and pass it explicitly to what needs it. Everything kept is
a pure function of the model file and the configs, so the store does not change by a
byte (tested).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnamotif_data.em.quality import QualityConfig, ShellPointCache
from rnamotif_data.pipeline.memo import ModelMemo, freeze
from rnamotif_data.rna.annotate import rnapolis_partners
from rnamotif_data.rna.pairs import watson_crick_partners
from rnamotif_data.rna.structure import Model, coordinates_hash, read_model
from rnamotif_data.samples.background import BackgroundConfig, BackgroundPool, background_pool
from rnamotif_data.storage.checksums import sha256_file

__all__ = ["ModelContext", "ModelUse", "ModelContexts", "MODELS"]


class ModelContext:
    """Everything derived from one model file (module docstring); threads of one worker
    may share it (a lock guards what it fills later).

    Parameters
    ----------
    model:
        The parsed model; its arrays are made read-only here.
    quality:
        The Q-score sampling config of ``points``.
    """

    def __init__(self, model: Model, quality: QualityConfig):
        from scipy.spatial import cKDTree  # here: the command's --help needs no scipy

        freeze(model.atoms)
        self.model = model
        self.key = coordinates_hash(model.atoms)
        self.tree = cKDTree(model.atoms.xyz)
        self.points = ShellPointCache(model.atoms.xyz, self.tree, quality)
        self.memo = ModelMemo()
        self._partners: dict[str, np.ndarray] = {}
        self._pool: tuple[tuple, BackgroundPool] | None = None
        self._lock = threading.Lock()

    def named(self, name: str, path) -> Model:
        """The model under an entry's ``name`` and file ``path`` (the same read-only atoms)."""
        return Model(name=name, path=str(path), atoms=self.model.atoms)

    def partners(self, reader: str, model: Model | None = None) -> np.ndarray:
        """``(R,)`` int64 base-pair partner of each residue, -1 if none, read once per
        model: ``reader`` ``"rnapolis"`` (:func:`rnamotif_data.rna.annotate.rnapolis_partners`
        of ``model``'s file; ``model`` defaults to :attr:`model`) or ``"geometric"``
        (:func:`rnamotif_data.rna.pairs.watson_crick_partners`, wobble pairs included).
        Read-only."""
        model = model or self.model
        with self._lock:
            if reader not in self._partners:
                if reader == "rnapolis":
                    made = rnapolis_partners(model.path, model)
                else:
                    made = watson_crick_partners(model.atoms, model.atoms.nucleotide_residues, wobble=True)
                made = np.asarray(made)
                made.flags.writeable = False
                self._partners[reader] = made
            return self._partners[reader]

    def background_pool(self, model: Model, motif_xyz: np.ndarray, config: BackgroundConfig) -> BackgroundPool:
        """:func:`~rnamotif_data.samples.background.background_pool` of the model, the listed
        motifs' heavy atoms ``motif_xyz`` ``(M, 3)`` Å and ``config``: the last one made,
        when both are the same (the next map of the model), else made anew (one pool kept)."""
        xyz = np.ascontiguousarray(np.asarray(motif_xyz, dtype=np.float64))
        key = (hashlib.sha256(xyz.tobytes()).hexdigest(), len(xyz), repr(config))
        with self._lock:
            if self._pool is not None and self._pool[0] == key:
                return self._pool[1]
        pool = background_pool(model, motif_xyz, config)
        with self._lock:
            self._pool = (key, pool)
        return pool


@dataclass(frozen=True)
class ModelUse:
    """One entry's use of a model context: ``model`` (the entry's name and path on the
    context's atoms), ``context``, and ``memo``: the context's memo from the model's
    second map on, None for its first (a model seen once keeps nothing)."""

    model: Model
    context: ModelContext
    memo: ModelMemo | None


class ModelContexts:
    """Where a process keeps its model context: the last model file's, under a lock.

    Parameters
    ----------
    keep:
        False keeps nothing (every entry reads its model file; tests compare the two).
    """

    def __init__(self, keep: bool = True):
        self.keep = keep
        self._last: tuple[tuple, ModelContext] | None = None
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget the context kept."""
        with self._lock:
            self._last = None

    def current(self) -> ModelContext | None:
        """The context kept, if any."""
        with self._lock:
            return None if self._last is None else self._last[1]

    def enter(self, path, name: str, quality: QualityConfig) -> ModelUse:
        """The context of the model file ``path`` (named ``name``) for one entry: the one kept
        when the file's bytes, its format (mmCIF or PDB, from the name) and ``quality`` are
        the same, else a new one (which replaces it). Raises what
        :func:`~rnamotif_data.rna.structure.read_model` raises."""
        mmcif = Path(path).name.lower().removesuffix(".gz").endswith((".cif", ".mmcif"))
        key = (sha256_file(path), mmcif, repr(quality))
        with self._lock:  # one thread reads a model; others of the same model wait for it
            if self._last is not None and self._last[0] == key:
                context = self._last[1]
                return ModelUse(model=context.named(name, path), context=context, memo=context.memo)
            self._last = None  # before reading the next model: one model in memory
            context = ModelContext(read_model(path, name=name), quality)
            if self.keep:
                self._last = (key, context)
        return ModelUse(model=context.model, context=context, memo=None)  # its first map: no other to serve


#: the contexts of this process (one model at a time)
MODELS = ModelContexts()
