"""Sequence features for a built store (the work of ``rnamotif embed STORE --embedder structrfm``).

For every model of the store (its ``pdb_id`` + ``model_hash``) the model file is found
where the build found it (``--mirror``, else the download cache; the shipped demos find
their own mirror), checked against the stored ``model_hash``, and each chain's nucleotide
sequence is embedded once (:mod:`rnamotif_data.features.chains`, cached by sequence in
``--cache-dir``). Every sample then gets its residues' features in selection order, the
features of its ±8-nt context, and the voxel slots that paint them onto its cube
(:mod:`rnamotif_data.features.stored`). Samples whose model cannot be read keep empty
masks and are counted in the summary; nothing else of the store changes.

Cost: structRFM base on one CPU core embeds ~1,000 nt in ~1 s; ``benchmarks/RESULTS.md``
has the figures measured on the 50S store.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rnamotif_data.common.version import __version__
from rnamotif_data.errors import RNAMotifError, StoreError
from rnamotif_data.features.chains import EmbeddingCache, chain_sequences, embed_chains
from rnamotif_data.features.embedders import SequenceEmbedder
from rnamotif_data.features.stored import write_features
from rnamotif_data.inputs.demo import SMALL_MANIFEST, SMALL_MIRROR, TRAINING_MANIFEST, training_mirror
from rnamotif_data.inputs.sources import Sources
from rnamotif_data.rna.structure import Model, coordinates_hash, read_model
from rnamotif_data.samples.cubes import SegmentConfig, labelled_atoms
from rnamotif_data.samples.rules import CONTEXT_FLANK  # as the context_sequence column
from rnamotif_data.storage.checksums import sha256_file
from rnamotif_data.storage.store import RNAMotifStore

log = logging.getLogger(__name__)

__all__ = ["embed_and_write", "embed_store", "mirror_for", "sample_residues", "voxel_slots"]



def sample_residues(model: Model, residues: str | None) -> np.ndarray:
    """Residue indices (into ``model.atoms.residues``) of a sample's ``residues`` column, in
    its order; amino acids allowed (protein background sites). Empty for None.

    Raises
    ------
    rnamotif_data.errors.SelectionError
        If a residue is not in the model.
    """
    if not residues:
        return np.zeros(0, dtype=np.int64)
    return model.resolve(residues, nucleotides_only=False)


def voxel_slots(model: Model, residue_indices: np.ndarray, origin_xyz, config: SegmentConfig) -> np.ndarray:
    """For each voxel of the cube whose label is set, in C order (z-y-x), the 1-based
    position of its nearest labelled atom's residue among ``residue_indices`` (0: an atom
    of another residue, with ``label_scope="all"``): ``(V,)`` uint8. ``origin_xyz``: the
    cube's voxel ``[0, 0, 0]`` in Å; ``config``: the store's segmentation settings.

    The atoms, their order and the nearest-atom rule are the build's
    (:func:`rnamotif_data.samples.cubes.labelled_atoms`), so the voxels are exactly those of
    the stored ``labels > 0``.
    """
    atoms = model.atoms.subset(residue_indices)
    labelled, keep, idx = labelled_atoms(config.shape, np.asarray(origin_xyz, np.float64), atoms, config,
                                         context=model.atoms)
    own = None
    if config.label_scope == "all":
        own = np.zeros(len(model.atoms.residues), dtype=np.int64)
        own[residue_indices] = np.arange(1, len(residue_indices) + 1)
    flat = idx.reshape(-1)
    hit = flat[flat >= 0]
    res = labelled.residue_index[keep][hit]
    slots = (res + 1) if own is None else own[res]
    return slots.astype(np.uint8)


def mirror_for(store: RNAMotifStore, mirror: Path | None) -> Path | None:
    """Where the model files of ``store`` are: ``mirror`` when given, else the shipped demo's
    mirror when ``store`` was built from a shipped demo manifest (its ``manifest_sha256``),
    else None (the download cache)."""
    if mirror is not None:
        return mirror
    sha = store.attrs.get("manifest_sha256")
    if sha == sha256_file(str(TRAINING_MANIFEST)):
        return training_mirror()
    if sha == sha256_file(str(SMALL_MANIFEST)):
        return SMALL_MIRROR
    return None


def _context_rows(model: Model, ri: np.ndarray, row_of: dict, first_row: dict[str, int],
                  chains: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The table rows of a sample's context (each strand with up to :data:`CONTEXT_FLANK`
    chain neighbours on both sides, as the ``context_sequence`` column) and whether each
    is the sample's own residue; None when no residue of the sample has a row."""
    cr, cin = [], []
    for strand in model.strands(ri):
        located = [row_of[int(r)] for r in strand if int(r) in row_of]
        if not located:
            continue
        c = located[0][0]
        own = [t for cc, t in located if cc == c]
        base = first_row[chains[c].sequence]
        lo = max(min(own) - CONTEXT_FLANK, base)
        hi = min(max(own) + CONTEXT_FLANK + 1, base + len(chains[c].sequence))
        cr.append(np.arange(lo, hi, dtype=np.int64))
        cin.append(np.isin(np.arange(lo, hi), own))
    if not cr:
        return None
    return np.concatenate(cr), np.concatenate(cin)


def _feature_arrays(table: list[np.ndarray], dim: int, res_rows: list[np.ndarray], ctx_rows: list[np.ndarray],
                    ctx_in: list[np.ndarray], slots: list) -> dict[str, np.ndarray]:
    """The per-sample rows and slots concatenated into the stored feature arrays, with
    their offsets (:data:`rnamotif_data.features.stored.FEATURE_FILES`)."""
    return {
        "chain_embedding": (np.concatenate(table) if table else np.zeros((0, dim))).astype(np.float16).reshape(-1, dim),
        "residue_row": np.concatenate(res_rows).astype(np.int64),
        "residue_offsets": np.concatenate([[0], np.cumsum([len(a) for a in res_rows])]).astype(np.int64),
        "context_row": np.concatenate(ctx_rows).astype(np.int64),
        "context_offsets": np.concatenate([[0], np.cumsum([len(a) for a in ctx_rows])]).astype(np.int64),
        "context_in_sample": np.concatenate(ctx_in).astype(bool),
        "voxel_slot": np.concatenate(slots).astype(np.uint8),
        "voxel_offsets": np.concatenate([[0], np.cumsum([len(a) for a in slots])]).astype(np.int64),
    }


def embed_store(store: RNAMotifStore, embedder: SequenceEmbedder, sources: Sources, cache: EmbeddingCache,
                *, progress: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """The feature arrays of every sample of ``store`` (:data:`rnamotif_data.features.stored.FEATURE_FILES`)
    and a summary (models read, samples without features and why, nucleotides embedded)."""
    meta = store.metadata
    seg = SegmentConfig(**store.attrs["build_config"]["segment"])
    n, dim = len(meta), embedder.dim
    n_res = meta["n_residues"].fillna(0).to_numpy(dtype=np.int64)
    # a sample left without features keeps a -1 row per residue and a 0 slot per labelled voxel
    res_rows: list[np.ndarray] = [np.full(int(k), -1, np.int64) for k in n_res]
    ctx_rows: list[np.ndarray] = [np.zeros(0, np.int64)] * n
    ctx_in: list[np.ndarray] = [np.zeros(0, bool)] * n
    slots: list[np.ndarray | None] = [None] * n
    table: list[np.ndarray] = []  # chain_embedding, one block per distinct chain sequence
    first_row: dict[str, int] = {}  # chain sequence -> its first row in the table
    n_rows = 0
    problems: dict[str, int] = {}
    groups = meta.groupby(["pdb_id", "model_hash"], dropna=False, sort=True).indices
    n_nt = 0
    for (pdb, mhash), rows in tqdm(groups.items(), desc="models", unit="model", disable=not progress):
        try:
            model = read_model(sources.model(str(pdb)), name=str(pdb))
            if isinstance(mhash, str) and coordinates_hash(model.atoms) != mhash:
                raise StoreError(f"{pdb}: the model file's coordinates differ from the store's (model_hash "
                                 f"{mhash}); use the files the store was built from (--mirror)")
        except RNAMotifError as exc:
            log.warning("%s: no sequence features for %d sample(s): %s", pdb, len(rows), exc)
            key = f"{pdb}: model not read"
            problems[key] = problems.get(key, 0) + len(rows)
            continue
        chains = chain_sequences(model)
        names = sorted(chains)
        for c, f in zip(names, embed_chains(embedder, [chains[c].sequence for c in names], cache)):
            if chains[c].sequence not in first_row:
                first_row[chains[c].sequence] = n_rows
                table.append(f)
                n_rows += len(f)
        n_nt += sum(len(chains[c].sequence) for c in names)
        row_of = {}  # residue index -> (chain, its row in the table)
        for c in names:
            base = first_row[chains[c].sequence]
            for k, r in enumerate(chains[c].residue_indices):
                row_of[int(r)] = (c, base + k)
        for i in rows:
            i = int(i)
            row = meta.iloc[i]
            try:
                ri = sample_residues(model, row["residues"] if isinstance(row["residues"], str) else None)
            except RNAMotifError as exc:
                log.warning("%s: %s", row["sample_id"], exc)
                problems["residues not in the model"] = problems.get("residues not in the model", 0) + 1
                continue
            if len(ri) != int(row["n_residues"] or 0):
                log.warning("%s: %s resolves to %d residues, the store says %d", row["sample_id"], row["residues"],
                            len(ri), int(row["n_residues"] or 0))
                problems["residue count differs"] = problems.get("residue count differs", 0) + 1
                continue
            res_rows[i] = np.array([row_of[int(r)][1] if int(r) in row_of else -1 for r in ri], dtype=np.int64)
            context = _context_rows(model, ri, row_of, first_row, chains)
            if context is not None:
                ctx_rows[i], ctx_in[i] = context
            if len(ri):
                slots[i] = voxel_slots(model, ri, row["origin_xyz"], seg)
            elif meta["background_kind"].iloc[i] == "density":  # an unmodelled site: no residue, no label
                slots[i] = np.zeros(0, np.uint8)
    for i in [i for i, v in enumerate(slots) if v is None]:
        labelled = int((store.read(i, ["labels"])["labels"] > 0).sum())
        slots[i] = np.zeros(labelled, np.uint8)
    arrays = _feature_arrays(table, dim, res_rows, ctx_rows, ctx_in, slots)
    have: np.ndarray = arrays["residue_row"] >= 0
    summary: dict[str, Any] = {
        "models": len(groups), "nucleotides_embedded": n_nt, "distinct_chains": len(first_row),
        "cache_hits": cache.hits, "cache_misses": cache.misses, "samples_without_features": problems,
        "residues_with_features": int(have.sum()), "residues": len(have)}
    return arrays, summary


def embed_and_write(store: RNAMotifStore, embedder: SequenceEmbedder, sources: Sources, cache: EmbeddingCache,
                    name: str, *, overwrite: bool = False, progress: bool = True) -> tuple[Path, dict]:
    """Embed every sample of ``store`` (:func:`embed_store`) and write the features as
    ``STORE/features/<name>/`` with the embedder's attributes
    (:func:`rnamotif_data.features.stored.write_features`); returns (that folder, the
    summary, with ``seconds`` the embedding took).

    Raises
    ------
    rnamotif_data.errors.StoreError
        Features of that name exist and ``overwrite`` is False.
    """
    t0 = time.perf_counter()
    arrays, summary = embed_store(store, embedder, sources, cache, progress=progress)
    seconds = time.perf_counter() - t0
    attrs = {"model": embedder.name, "model_version": embedder.version, "checkpoint_sha256": embedder.checkpoint_sha256,
             "dim": embedder.dim, "window": embedder.window, "overlap": embedder.overlap,
             "context_flank": CONTEXT_FLANK, "package_version": __version__, "summary": summary,
             "sequence": "modelled nucleotides of each chain in model order, modified residues as their parents"}
    path = write_features(store, name, arrays, attrs, overwrite=overwrite)
    return path, {**summary, "seconds": seconds}
