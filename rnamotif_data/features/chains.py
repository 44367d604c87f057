"""Per-chain sequence features of a model, computed once per chain and cached by sequence.

A chain's sequence is its modelled polymer nucleotides in the model's residue order
(:attr:`~rnamotif_data.rna.structure.AtomTable.sequence_residues`; docs/conventions.md,
"Chain sequences"), modified residues as their parents (``PSU`` -> U,
:mod:`rnamotif_data.rna.modified`), any other letter as N; amino acids, ligands (C2E,
SAM), ions and waters are left out, 5′/3′ caps the file places in the polymer (GTP, GDP)
count as their parent nucleotide, and an unmodelled gap joins its two sides (the model
has no residue for it). Identical chains (the same sequence in
several models or copies) are embedded once: the cache key is the sha256 of the
embedder's identity (name, version, checkpoint sha256, windows) and the sequence.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnamotif_data.features.embedders import SequenceEmbedder, clean_sequence
from rnamotif_data.rna.structure import Model

log = logging.getLogger(__name__)

__all__ = ["ChainSequence", "chain_sequences", "EmbeddingCache", "embed_chains", "sequence_key"]


@dataclass(frozen=True)
class ChainSequence:
    """One chain's nucleotides: ``residue_indices`` ``(L,)`` int64 into
    ``model.atoms.residues`` in chain order, and their ``sequence`` (L letters ACGUN)."""

    chain: str
    residue_indices: np.ndarray
    sequence: str


def chain_sequences(model: Model) -> dict[str, ChainSequence]:
    """The nucleotide sequence of every chain of ``model`` that has nucleotides (module docstring)."""
    in_sequence = model.atoms.sequence_residues  # polymer nucleotides: never ligands, ions, waters
    parents = model.atoms.parents or tuple("N" for _ in model.atoms.residues)
    out = {}
    for chain, (order, _) in model.chain_index.items():
        idx = np.asarray([i for i in order if in_sequence[i]], dtype=np.int64)
        if idx.size:
            out[chain] = ChainSequence(chain, idx, clean_sequence("".join(parents[i] for i in idx)))
    return out


def sequence_key(embedder: SequenceEmbedder, sequence: str) -> str:
    """Cache key of ``sequence``'s features under ``embedder`` (sha256 hex)."""
    return hashlib.sha256(f"{embedder.identity}\n{clean_sequence(sequence)}".encode()).hexdigest()


class EmbeddingCache:
    """Features by :func:`sequence_key`, as float16 ``.npy`` files in ``directory``
    (``None``: in memory only). Files are written atomically (a temporary file renamed),
    so concurrent writers never leave a half-written entry; an unreadable or misshapen
    entry is recomputed."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = None if directory is None else Path(directory)
        self._memory: dict[str, np.ndarray] = {}
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.npy"

    def get(self, key: str, length: int, dim: int) -> np.ndarray | None:
        """The cached ``(length, dim)`` float16 features, or None."""
        got = self._memory.get(key)
        if got is None and self.directory is not None and self._path(key).exists():
            try:
                got = np.load(self._path(key), allow_pickle=False)
            except (OSError, ValueError) as exc:
                log.warning("%s: unreadable cache entry, recomputed (%s)", self._path(key), exc)
                got = None
        if got is not None and got.shape != (length, dim):
            got = None
        if got is None:
            self.misses += 1
        else:
            self.hits += 1
            self._memory[key] = got
        return got

    def put(self, key: str, features: np.ndarray) -> np.ndarray:
        """Store ``features`` as float16; returns the stored array."""
        arr = np.asarray(features, dtype=np.float16)
        self._memory[key] = arr
        if self.directory is not None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.tmp-", suffix=".npy", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, arr, allow_pickle=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return arr


def embed_chains(embedder: SequenceEmbedder, sequences: list[str], cache: EmbeddingCache) -> list[np.ndarray]:
    """``(L_i, D)`` float16 features of each sequence: from the cache, else embedded (the
    missing ones in one batched call, each distinct sequence once) and cached."""
    keys = [sequence_key(embedder, s) for s in sequences]
    found = {k: cache.get(k, len(s), embedder.dim) for k, s in zip(keys, sequences)}
    todo = {k: s for k, s in zip(keys, sequences) if found[k] is None}
    if todo:
        feats = embedder.embed_batch(list(todo.values()))
        for k, f in zip(todo, feats):
            found[k] = cache.put(k, f)
    return [found[k] for k in keys]  # type: ignore[misc]
