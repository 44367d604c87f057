"""Cross-validation splits of a store (or a manifest) that no similarity crosses.

Split names are ``fold1`` ... ``fold5``: fold k's ``val``/``test`` subset is fold k, its
``train`` subset the other folds. Schemes:

``similarity`` (default)
    Samples related in any way that lets a model recognise rather than generalise stay on
    one side (relations: :mod:`rnamotif_data.split.similarity`):

    1. *Hard* relations -- the same EMDB map, PDB entry or model coordinates, a shared
       residue or overlapping zones -- join samples into independent groups that are never
       split. A store with fewer independent groups than folds is refused (one model in
       four maps is one group).
    2. *Soft* relations -- the same canonical motif, a near-identical motif (edit distance
       ≤ 1), homologous contexts (identity ≥ ``identity``) -- join independent groups into
       components. A component no larger than ``max_group_share`` × N / k is assigned
       whole; a larger one is divided between folds by independent group, each going to
       the fold it has most relations with (then class balance).
    3. **Training is pruned, not evaluation** (``prune="train"``, the default): every
       fold's validation set is whole, so every placed sample is scored in exactly one
       fold, and fold k's ``train`` leaves out every sample of another fold related to a
       sample of fold k (column ``train_exclusion``, a bit mask over folds: bit k-1 set
       means "not in fold k's training"). No validation sample has a relative in its
       fold's training data, and the recurrent motifs (GNRA loops, kink-turns) are scored
       like the rest. ``prune="val"`` is the earlier rule, as PLINDER does it (Durairaj et
       al. 2024, DOI 10.1101/2024.07.17.603955): every sample related to another fold is
       **removed** from ``val``/``test``/``inner_val`` (and stays in the other folds'
       ``train``).

    Units are assigned largest first to the fold where their classes are least
    represented (deterministic for a seed; in the spirit of scikit-learn's
    ``StratifiedGroupKFold``).
``entry``
    Samples grouped by EMDB map / PDB entry / model only (map-level splits, as
    Cryo2StructData); soft relations may cross (the leakage report counts them).
``upstream``
    The upstream dataset's five folds, matched by EMDB id, PDB id, motif type and
    CoSSMos number (``upstream_fold`` column, or the fold CSVs through
    ``rnamotif split --scheme upstream --folds DIR``). Background samples of a
    PDB entry whose upstream ``cube_*`` rows are known take their folds: the j-th
    background sample (sample order) the fold of the j-th cube (cube-number order,
    cycling), so the entry's background spreads over folds as the upstream's did; without
    cube rows, the fold most of the entry's matched motifs have (ties to the lower);
    unmatched samples have no fold. It leaks by design
    (~98 % of upstream validation entries also supply training motifs); it exists to
    compare with published 5-class numbers.

A split is written beside the store's data as ``STORE/splits/<scheme>.parquet``
(``sample_index``, ``sample_id``, ``fold`` 1..k or null, ``removed``, ``train_exclusion``,
``max_identity_other_folds``, ``max_identity_to_train``) with the config and a fingerprint
(sha256 over the store identity and the sorted ``sample_id``/fold/removed/exclusion lines) in the Parquet schema
metadata, so a training run can record exactly which split it used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rnamotif_data.errors import ConfigError, StoreError
from rnamotif_data.rna.motifs import class_index as _class_index
from rnamotif_data.split.folds import assign_folds, hard_groups, soft_assignment
from rnamotif_data.split.homology import LEVELS, HomologySources, SampleHomology, related_levels, sample_homology
from rnamotif_data.split.levels import joins_groups, label_assignment, label_exclusion, label_matrix
from rnamotif_data.split.similarity import Relations, canonical_key, find_relations, strand_column, zone_overlap_pairs
from rnamotif_data.storage.layout import SPLIT_SCHEMES, get_attrs, join, read_table, url_to_fs, write_table
from rnamotif_data.storage.store import RNAMotifStore, open_store

log = logging.getLogger(__name__)

__all__ = ["SPLIT_NAMES", "SUBSETS", "SplitConfig", "Split", "make_split", "split_metadata",
           "write_split", "check_split_target", "read_split", "split_table", "load_or_make_split", "split_path", "upstream_key",
           "validate_split_name", "store_relations", "read_split_file"]

SPLIT_NAMES = ("fold1", "fold2", "fold3", "fold4", "fold5", "all")
#: Subsets of a split ``foldK``: ``train`` (every fold but K) and ``val`` (fold K), the
#: upstream protocol's pair; for nested evaluation ``test`` (fold K, touched once after
#: training), ``inner_val`` (fold K+1, wrapping to 1: model selection) and ``inner_train``
#: (the other K-2 folds). Folds are grouped, so the inner validation part is grouped too.
#: Removed samples are never in ``val``, ``test`` or ``inner_val``; a sample whose
#: ``train_exclusion`` has bit K-1 (or, for ``inner_train``, bit K-1 or the inner fold's)
#: is never in that fold's training subsets.
SUBSETS = ("train", "val", "test", "inner_train", "inner_val")
#: what the similarity scheme prunes of related samples (SplitConfig.prune)
PRUNE_MODES = ("train", "val")
#: soft relations that prune (hard ones never cross folds)
PRUNING_RELATIONS = ("canonical", "near_identical", "homolog")


@dataclass(frozen=True)
class SplitConfig:
    """How a split is made.

    Attributes
    ----------
    scheme:
        ``similarity``, ``entry`` or ``upstream`` (module docstring).
    k:
        Number of folds (5).
    seed:
        Seed of the order of equal-size groups.
    identity:
        Context identity (0-1) at and above which two samples are homologs.
    min_context:
        Contexts shorter than this (nt) are never homologs (too short to tell).
    max_group_share:
        A component of related samples larger than this × N / k is divided and pruned
        instead of being assigned whole.
    prune:
        ``train`` (default): related samples leave the training subsets of the folds they
        are related to, every validation set stays whole; ``val``: they leave validation
        (the earlier rule). Scheme ``similarity`` only.
    level:
        Chain homology the similarity scheme keeps apart (:data:`rnamotif_data.split.homology.LEVELS`):
        ``identity`` (default; BGSU equivalence class, else ≥ 95 % sequence identity),
        ``family`` (Rfam family merged by clan) or ``entry`` (none beyond the entry). At
        ``identity``/``family`` a sample of another fold sharing a chain class (family) with
        fold k leaves fold k's training (:mod:`rnamotif_data.split.levels`). Other schemes
        place samples as before; the level still labels each sample's relation to training.
    homology:
        Where the homology tables come from and their releases
        (:class:`rnamotif_data.split.homology.HomologySources`).
    """

    scheme: str = "similarity"
    k: int = 5
    seed: int = 0
    identity: float = 0.8
    min_context: int = 12
    max_group_share: float = 0.5
    prune: str = "train"
    level: str = "identity"
    homology: HomologySources = HomologySources()

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ConfigError(f"split level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if isinstance(self.homology, dict):  # read back from a split file
            object.__setattr__(self, "homology", HomologySources.from_dict(self.homology))
        if self.prune not in PRUNE_MODES:
            raise ConfigError(f"split prune must be one of {', '.join(PRUNE_MODES)}, got {self.prune!r}")
        if self.scheme not in SPLIT_SCHEMES:
            raise ConfigError(f"unknown split scheme {self.scheme!r}; choose one of {', '.join(SPLIT_SCHEMES)}")
        if self.scheme == "upstream" and self.k != 5:
            raise ConfigError("the upstream scheme has exactly 5 folds")
        if self.k < 2:
            raise ConfigError(f"k must be >= 2, got {self.k}")
        if not 0 < self.identity <= 1:
            raise ConfigError(f"split identity must be in (0, 1], got {self.identity}")
        if not (self.max_group_share > 0 and math.isfinite(self.max_group_share)):
            raise ConfigError(f"split max_group_share must be > 0, got {self.max_group_share}")


@dataclass(frozen=True)
class Split:
    """A fold assignment of a store's samples (or a manifest's rows).

    Attributes
    ----------
    table:
        DataFrame ``sample_index``, ``sample_id``, ``fold`` (1..k; <NA> for samples the
        scheme cannot place), ``removed`` (bool: related to a sample of another fold, so
        never validated on; ``prune="val"`` only), ``train_exclusion`` (int64 bit mask:
        bit k-1 set = left out of fold k's training subsets), ``max_identity_other_folds``
        (highest context identity to a sample of another fold) and
        ``max_identity_to_train`` (highest context identity to a sample of its own fold's
        training subset, after pruning), in sample order.
    config:
        The :class:`SplitConfig` that made it.
    fingerprint:
        sha256 hex of the store identity and the sorted (sample_id, fold, removed) triples.
    homology:
        Provenance of the chain classes (level, table files, releases, sha256, counts;
        :class:`rnamotif_data.split.homology.SampleHomology` ``info``), or None. The table
        then also has ``identity_class``, ``family`` (``;``-joined labels of the sample's
        chains) and ``related_level`` (strictest level at which the sample is related to
        its fold's training: identity / family / none / unknown).
    """

    table: pd.DataFrame
    config: SplitConfig
    fingerprint: str
    homology: dict | None = None

    def indices(self, split: str, subset: str) -> np.ndarray:
        """Sample indices of ``subset`` (:data:`SUBSETS`) of ``split`` (``foldK``/``all``).

        ``all`` with ``train`` or ``inner_train`` is every placed sample; with any other
        subset it is empty.

        Raises
        ------
        ConfigError
            For an unknown split or subset name.
        """
        validate_split_name(split, subset, self.config.k)
        fold = self.table["fold"]
        placed = fold.notna().to_numpy()
        removed = self.table["removed"].to_numpy(dtype=bool) if "removed" in self.table else np.zeros(len(fold), bool)
        mask = (self.table["train_exclusion"].to_numpy(dtype=np.int64) if "train_exclusion" in self.table
                else np.zeros(len(fold), np.int64))
        idx = self.table["sample_index"].to_numpy()
        if split == "all":
            return idx[placed] if subset in ("train", "inner_train") else idx[:0]
        k = int(split[4:])
        folds = fold.fillna(0).to_numpy()
        in_k = placed & (folds == k)
        if subset in ("val", "test"):
            return idx[in_k & ~removed]
        if subset == "train":
            return idx[placed & ~in_k & (mask & (1 << (k - 1)) == 0)]
        inner = k % self.config.k + 1
        in_inner = placed & (folds == inner)
        if subset == "inner_val":
            return idx[in_inner & ~removed]
        bits = (1 << (k - 1)) | (1 << (inner - 1))
        return idx[placed & ~in_k & ~(in_inner & ~removed) & (mask & bits == 0)]

    @property
    def n_removed(self) -> int:
        """Samples removed from validation (related to another fold; ``prune="val"``)."""
        return int(self.table["removed"].sum()) if "removed" in self.table else 0

    @property
    def n_scored(self) -> int:
        """Placed samples that are in some fold's validation set."""
        placed = self.table["fold"].notna().to_numpy()
        removed = self.table["removed"].to_numpy(dtype=bool) if "removed" in self.table else np.zeros(len(placed), bool)
        return int((placed & ~removed).sum())


def validate_split_name(split: str, subset: str, k: int = 5) -> None:
    """Raise ConfigError naming the valid choices if ``split`` or ``subset`` is unknown."""
    names = [f"fold{i}" for i in range(1, k + 1)] + ["all"]
    if split not in names:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(names)}")
    if subset not in SUBSETS:
        raise ConfigError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")


def split_path(root: str, scheme: str) -> str:
    """Location of a scheme's split file: ``STORE/splits/<scheme>.parquet``."""
    return join(str(root), "splits", f"{scheme}.parquet")


def _store_identity(store: RNAMotifStore) -> str:
    attrs = get_attrs(store.root) or {}
    return json.dumps({"config_hash": attrs.get("config_hash"), "manifest_sha256": attrs.get("manifest_sha256"),
                       "n": len(store)}, sort_keys=True)


def fingerprint(identity: str, sample_ids, folds, removed=None, exclusion=None) -> str:
    """sha256 hex over the identity and the sorted ``sample_id<TAB>fold[<TAB>removed]
    [<TAB>x<mask>]`` lines (the exclusion mask only where it is not 0)."""
    h = hashlib.sha256(identity.encode())
    removed = [False] * len(sample_ids) if removed is None else list(removed)
    exclusion = [0] * len(sample_ids) if exclusion is None else [int(x) for x in exclusion]
    lines = sorted(f"{s}\t{'' if pd.isna(f) else int(f)}" + ("\tremoved" if r else "") + (f"\tx{m}" if m else "")
                   for s, f, r, m in zip((str(x) for x in sample_ids), folds, removed, exclusion))
    for line in lines:
        h.update(f"\n{line}".encode())
    return h.hexdigest()


def upstream_key(emdb_id, pdb_id, motif_type, cossmos_number) -> tuple:
    """Matching key of a sample to the upstream folds: (EMDB id, PDB id, type, CoSSMos number)."""
    num = None if cossmos_number is None or pd.isna(cossmos_number) else int(cossmos_number)
    return (str(emdb_id).upper(), str(pdb_id).upper(), str(motif_type), num)


def _upstream_folds(meta: pd.DataFrame, upstream_folds, upstream_background) -> pd.api.extensions.ExtensionArray:
    if upstream_folds is not None:
        fold = pd.array([upstream_folds.get(upstream_key(*r)) for r in zip(
            meta["emdb_id"], meta["pdb_id"], meta["motif_type"], meta["cossmos_number"])], dtype="Int64")
    else:
        # pandas-stubs have no overload for a Series with a nullable dtype name
        fold = pd.array(meta["upstream_fold"], dtype="Int64")  # type: ignore[call-overload]
    bg = meta["is_background"].to_numpy(dtype=bool) if "is_background" in meta else \
        (meta["motif_type"] == "unknown").to_numpy()
    entry_fold: dict[str, int] = {}
    known = pd.DataFrame({"pdb": meta["pdb_id"].astype(str).str.upper(), "fold": fold})[~bg & pd.notna(fold)]
    for pdb, sub in known.groupby("pdb"):
        vc = sub["fold"].value_counts()
        entry_fold[str(pdb)] = int(min(vc.index[vc == vc.max()]))
    out = fold.copy()
    seen: dict[str, int] = {}
    for i in np.flatnonzero(bg).tolist():
        pdb = str(meta["pdb_id"].iloc[i]).upper()
        cubes = (upstream_background or {}).get(pdb)
        if cubes:  # the j-th background sample of an entry takes the fold of its j-th cube
            j = seen.get(pdb, 0)
            seen[pdb] = j + 1
            out[i] = int(cubes[j % len(cubes)])
        else:
            f = entry_fold.get(pdb)
            out[i] = f if f is not None else pd.NA
    return out


def _pruned(folds: np.ndarray, relations: Relations, config: SplitConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(removed (N,) bool, train_exclusion (N,) int64)`` of samples related across folds
    (:data:`PRUNING_RELATIONS`, scheme ``similarity`` only): with ``prune="val"`` both are
    removed, else each leaves the training subsets of the other's fold (bit k-1 for fold k)."""
    removed = np.zeros(len(folds), dtype=bool)
    exclusion = np.zeros(len(folds), dtype=np.int64)
    if config.scheme == "similarity":
        for rel in PRUNING_RELATIONS:
            for i, j in relations.pairs[rel]:
                if folds[i] != folds[j] and folds[i] and folds[j]:
                    if config.prune == "val":
                        removed[i] = removed[j] = True
                    else:  # each leaves the training subsets of the other's fold
                        exclusion[i] |= 1 << (int(folds[j]) - 1)
                        exclusion[j] |= 1 << (int(folds[i]) - 1)
    return removed, exclusion


def _identity_across(folds: np.ndarray, relations: Relations, exclusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(max_identity_other_folds, max_identity_to_train)``, each ``(N,)``: a sample's
    highest aligned identity to a sample of another fold, and to one in its fold's
    training set (not excluded from it)."""
    best = np.zeros(len(folds))
    to_train = np.zeros(len(folds))
    for (i, j), v in relations.aligned.items():
        if folds[i] != folds[j]:
            best[i], best[j] = max(best[i], v), max(best[j], v)
            if folds[i] and folds[j]:  # j in fold i's training unless pruned from it, and back
                if not exclusion[j] >> (int(folds[i]) - 1) & 1:
                    to_train[i] = max(to_train[i], v)
                if not exclusion[i] >> (int(folds[j]) - 1) & 1:
                    to_train[j] = max(to_train[j], v)
    return best, to_train


def _upstream_assignment(meta: pd.DataFrame, upstream_folds, upstream_background, name: str):
    """Folds of the ``upstream`` scheme; raises ConfigError when no sample can be matched."""
    fold = _upstream_folds(meta, upstream_folds, upstream_background)
    if fold.isna().all():  # a pandas IntegerArray
        given = ("the fold files given match none of its samples (they are matched by EMDB ID, PDB ID, "
                 "motif type and CoSSMos number)" if upstream_folds is not None else
                 "its metadata carries no upstream_fold and no fold files were given")
        raise ConfigError(f"{name}: no sample has an upstream fold: {given}; pass the upstream benchmark's "
                          "fold{k}_train.csv / fold{k}_val.csv folder with --folds DIR (the upstream scheme "
                          "only exists for stores built from the upstream entries)")
    return fold


def _check_group_count(meta: pd.DataFrame, hard: np.ndarray, config: SplitConfig, name: str) -> None:
    """Raise ConfigError when there are fewer independent groups than folds."""
    n_groups = len(np.unique(hard))
    if n_groups < config.k:
        n_maps = meta["emdb_id"].nunique() if "emdb_id" in meta else 0
        n_models = meta["model_hash"].nunique() if "model_hash" in meta else meta["pdb_id"].nunique()
        raise ConfigError(
            f"{name}: holds {n_groups} independent group(s) of samples ({n_maps} EMDB map(s), {n_models} "
            f"model(s); samples sharing an EMDB map, a PDB entry, the model's coordinates, a residue or "
            f"overlapping zones are one group), fewer than the {config.k} folds; any split would put the same "
            "structure on both sides. Add entries, or evaluate on another store")


def _similarity_assignment(meta: pd.DataFrame, relations: Relations, hard: np.ndarray, config: SplitConfig,
                           homology: SampleHomology | None) -> np.ndarray:
    """Folds of the ``entry`` and ``similarity`` schemes: by entry; by homology label where the
    level's labels join hard groups (:func:`rnamotif_data.split.levels.label_assignment`); else
    by the soft relations (:func:`rnamotif_data.split.folds.soft_assignment`)."""
    if config.scheme == "entry":
        return assign_folds(hard, meta["class_index"].to_numpy(), config.k, config.seed)
    if config.level != "entry" and homology is not None and joins_groups(homology.labels(config.level), hard):
        strands = strand_column(meta)
        canon = [(f"canon:{c}",) if (c := canonical_key(str(t), s)) else ()
                 for t, s in zip(meta["motif_type"], strands)]
        pairs = np.array(sorted(set().union(*(relations.pairs[r] for r in ("near_identical", "homolog")))),
                         dtype=np.int64).reshape(-1, 2)
        fold, info = label_assignment(homology.labels(config.level), hard, config.k, config.seed,
                                      extra_labels=canon, pairs=pairs, max_group_share=config.max_group_share)
        log.info("level %s: %d units (%d divided component(s)); training shares %s", config.level,
                 info["units"], info["divided"], ", ".join(f"{s:.2f}" for s in info["shares"]))
        return fold
    return soft_assignment(meta, relations, hard, config)


def split_metadata(meta: pd.DataFrame, config: SplitConfig = SplitConfig(), *, relations: Relations | None = None,
                   upstream_folds: dict[tuple, int] | None = None, upstream_background: dict[str, list[int]] | None = None,
                   identity: str | None = None, name: str = "store",
                   homology: SampleHomology | None = None) -> tuple[Split, Relations]:
    """Assign every row of a metadata table (store metadata or a manifest) to a fold.

    Parameters
    ----------
    meta:
        Rows in sample order; columns as :func:`rnamotif_data.split.similarity.find_relations`
        needs, plus ``class_index`` (or ``motif_type``), ``sample_id`` and ``sample_index``
        (made from the row number when absent).
    relations:
        Precomputed relations (else computed).
    upstream_folds, upstream_background:
        For ``upstream``: :func:`upstream_key` -> fold of motif rows, and PDB ID -> folds
        of the entry's upstream ``cube_*`` rows in cube-number order.
    name:
        Names the input in errors.
    homology:
        Chain classes of the rows (:func:`rnamotif_data.split.homology.sample_homology`);
        None at level ``identity``/``family``: made without tables (every chain is compared
        by sequence, here: its own class, so the level adds nothing beyond the entry).

    Returns
    -------
    (split, relations)

    Raises
    ------
    ConfigError
        For ``similarity``/``entry`` when there are fewer independent groups than folds,
        and for ``upstream`` when no sample can be matched.
    """

    meta = meta.reset_index(drop=True)
    if "class_index" not in meta:
        meta = meta.assign(class_index=[_class_index(t) for t in meta["motif_type"]])
    relations = relations or find_relations(meta, identity=config.identity, min_context=config.min_context)
    hard = hard_groups(meta, relations)
    if config.scheme == "upstream":
        fold = _upstream_assignment(meta, upstream_folds, upstream_background, name)
    else:
        _check_group_count(meta, hard, config, name)
        if homology is None and config.level != "entry":
            homology = sample_homology(meta, None, min_identity=config.homology.min_identity)
            homology = SampleHomology(homology.identity, homology.family, {**homology.info, "made": "no tables"})
        fold = pd.array(_similarity_assignment(meta, relations, hard, config, homology), dtype="Int64")
    folds = fold.fillna(0).to_numpy()
    removed, exclusion = _pruned(folds, relations, config)
    if config.scheme == "similarity" and config.level != "entry" and homology is not None:
        exclusion |= _label_exclusion_bits(homology.labels(config.level), folds.astype(np.int64), config.k)
    best, to_train = _identity_across(folds, relations, exclusion)
    sample_index = meta["sample_index"].to_numpy(dtype=np.int64) if "sample_index" in meta else np.arange(len(meta))
    sample_id = meta["sample_id"].astype(str).to_numpy() if "sample_id" in meta else \
        np.array([f"row{i}" for i in sample_index])
    table = pd.DataFrame({"sample_index": sample_index, "sample_id": sample_id, "fold": fold,
                          "removed": removed, "train_exclusion": exclusion, "max_identity_other_folds": best,
                          "max_identity_to_train": to_train})
    provenance = None
    if homology is not None and homology.info.get("made") == "no tables":
        provenance = {"level": config.level, "tables": None,
                      "note": "no homology tables given: chains compared within their entry only"}
    elif homology is not None:
        table["identity_class"] = [";".join(x) for x in homology.identity]
        table["family"] = [";".join(x) for x in homology.family]
        table["related_level"] = related_levels(homology, folds.astype(np.int64), exclusion, config.k, removed)
        provenance = {"level": config.level, **homology.info}
    fp = fingerprint(identity or json.dumps({"rows": len(meta)}), table["sample_id"], table["fold"], removed,
                     exclusion)
    return Split(table=table, config=config, fingerprint=fp, homology=provenance), relations


def _label_exclusion_bits(labels, fold: np.ndarray, k: int) -> np.ndarray:
    """``(N,)`` int64 masks: bit f-1 set where a sample of another fold shares a label with fold f."""
    excluded = label_exclusion(label_matrix(labels), fold, k)
    return (excluded.astype(np.int64) << np.arange(k, dtype=np.int64)).sum(axis=1)


def store_relations(store: RNAMotifStore, config: SplitConfig = SplitConfig()) -> Relations:
    """Relations of a store's samples, zone overlaps included
    (:func:`rnamotif_data.split.similarity.zone_overlap_pairs`)."""

    return find_relations(store.metadata, identity=config.identity, min_context=config.min_context,
                          zone_overlaps=zone_overlap_pairs(store))


def make_split(store: RNAMotifStore, config: SplitConfig = SplitConfig(),
               upstream_folds: dict[tuple, int] | None = None, upstream_background: dict[str, list[int]] | None = None,
               relations: Relations | None = None, homology: SampleHomology | None = None) -> Split:
    """Assign every sample of ``store`` to a fold under ``config.scheme`` (:func:`split_metadata`;
    ``homology``: the samples' chain classes, :func:`rnamotif_data.split.homology.sample_homology`).

    Raises
    ------
    ConfigError
        As :func:`split_metadata`; the message names the store.
    """
    relations = relations or store_relations(store, config)
    split, _ = split_metadata(store.metadata, config, relations=relations, upstream_folds=upstream_folds,
                              upstream_background=upstream_background,
                              identity=_store_identity(store), name=str(store.root), homology=homology)
    return split


def split_table(split: Split) -> pa.Table:
    """``split`` as the Arrow table of a split file (columns of :attr:`Split.table`), with
    the config and fingerprint in the schema metadata (key ``rnamotif_split``)."""
    t = pa.Table.from_pandas(split.table, preserve_index=False)
    info = {"config": asdict(split.config), "fingerprint": split.fingerprint}
    if split.homology is not None:
        info["homology"] = split.homology
    meta = {b"rnamotif_split": json.dumps(info).encode()}
    return t.replace_schema_metadata(meta)


def write_split(store: RNAMotifStore, split: Split) -> str:
    """Write ``split`` to ``STORE/splits/<scheme>.parquet``; returns its location.

    Raises
    ------
    StoreError
        If a file that is not a split this package wrote sits there (:func:`check_split_target`).
    """
    url = split_path(store.root, split.config.scheme)
    check_split_target(url)
    write_table(url, split_table(split))
    return url


def check_split_target(location: str | os.PathLike, *, source: str | os.PathLike | None = None) -> None:
    """Refuse to write a split over anything but a split file this package wrote (its Parquet
    schema carries the ``rnamotif_split`` record), and over ``source``, the manifest being
    split. Nothing is changed.

    Raises
    ------
    ConfigError
        If ``location`` is ``source``.
    StoreError
        If ``location`` is a folder, or a file that is not a split of this package.
    """
    if source is not None and os.path.abspath(str(source)) == os.path.abspath(str(location)):
        raise ConfigError(f"--out {location}: is the manifest being split; write the split to another file")
    fs, path = url_to_fs(str(location))
    if not fs.exists(path):
        return
    if fs.isdir(path):
        raise StoreError(f"{location}: is a folder; a split is written to a .parquet file")
    try:
        with fs.open(path, "rb") as f:
            metadata = pq.read_schema(f).metadata or {}
    except (OSError, ValueError, pa.ArrowException):
        metadata = {}
    if b"rnamotif_split" not in metadata:
        raise StoreError(f"{location}: exists and is not a split file this package wrote; move it or choose another "
                         "--out; nothing was changed")


def read_split_file(url: str) -> tuple[pd.DataFrame, dict] | None:
    """A split file's table (``fold`` as nullable Int64) and its ``rnamotif_split`` record
    (config, fingerprint), or None when there is no file at ``url``; unchecked (the callers
    compare it with their store)."""
    fs, path = url_to_fs(url)
    if not fs.exists(path):
        return None
    t = read_table(url)
    info = json.loads(t.schema.metadata[b"rnamotif_split"])
    table = t.to_pandas()
    table["fold"] = pd.array(table["fold"], dtype="Int64")
    return table, info


def read_split(store: RNAMotifStore | str | os.PathLike, scheme: str = "similarity") -> Split | None:
    """The stored split ``STORE/splits/<scheme>.parquet`` if it exists (else None), checked
    against the store. ``store`` is an open store or its path/URL. Splits are made by
    ``rnamotif split STORE --scheme S`` (:func:`make_split` + :func:`write_split`).

    Raises
    ------
    rnamotif_data.errors.StoreError
        If ``store`` is a path that holds no complete store.
    ConfigError
        If the file's sample ids differ from the store's (written for another store), or
        its contents do not match its fingerprint.
    """
    if not isinstance(store, RNAMotifStore):
        store = open_store(store)
    url = split_path(store.root, scheme)
    read = read_split_file(url)
    if read is None:
        return None
    table, info = read
    if "removed" not in table:
        raise ConfigError(f"{url}: split file from an older version (no 'removed' column); remake it with "
                          "rnamotif split")
    ids = store.metadata["sample_id"].astype(str).to_numpy()
    if len(table) != len(ids) or not np.array_equal(table["sample_id"].astype(str).to_numpy(), ids):
        raise ConfigError(f"{url}: split was made for another store (sample ids differ); remake it with "
                          "rnamotif split")
    if "train_exclusion" not in table:  # made before training-side pruning: nothing excluded
        table["train_exclusion"] = np.zeros(len(table), dtype=np.int64)
    if "max_identity_to_train" not in table:
        table["max_identity_to_train"] = table["max_identity_other_folds"]
    info["config"].setdefault("prune", "val")  # files without the setting were made by the earlier rule
    info["config"].setdefault("level", "entry")  # files without it were made before chain homology
    fp = fingerprint(_store_identity(store), table["sample_id"], table["fold"], table["removed"],
                     table["train_exclusion"])
    if fp != info["fingerprint"]:
        raise ConfigError(f"{url}: fingerprint mismatch (file {info['fingerprint'][:12]}…, contents {fp[:12]}…); "
                          "remake it with rnamotif split")
    return Split(table=table, config=SplitConfig(**info["config"]), fingerprint=info["fingerprint"],
                 homology=info.get("homology"))


def load_or_make_split(store: RNAMotifStore, scheme: str = "similarity", *, seed: int = 0) -> Split:
    """The stored split of ``scheme``, or a new one (``similarity``/``entry``) made in memory."""
    split = read_split(store, scheme)
    if split is None:
        split = make_split(store, SplitConfig(scheme=scheme, seed=seed))
    return split
