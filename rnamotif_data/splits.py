"""Cross-validation splits of a store without leakage, and their leakage report.

DESIGN.md section 8. Split names are ``fold1`` ... ``fold5``: fold k's ``val`` subset is
group k, its ``train`` subset the other groups. Schemes:

``sequence`` (default)
    Samples are grouped by (motif type, motif sequence): the same rRNA motif recurs in
    hundreds of ribosome entries and must never sit on both sides. Background
    ("unknown") samples have no motif sequence and are grouped by EMDB entry.
``entry``
    Samples are grouped by EMDB entry (map-level splits, as Cryo2StructData).
``upstream``
    The upstream dataset's five folds, matched by EMDB id, PDB id, motif type and
    CoSSMos number (``upstream_fold`` column of the store, filled by
    ``python -m builders.split --scheme upstream`` from the fold CSVs). Samples it cannot
    match have no fold and are in neither subset. It leaks (~98% of upstream validation
    entries also supply training motifs); it exists to compare with published numbers.

Groups are assigned to folds by a deterministic, seeded, class-stratified greedy
(groups in decreasing size, ties in seeded random order; each to the fold where its
classes are least represented relative to the class totals), in the spirit of
scikit-learn's ``StratifiedGroupKFold``.

A split is written beside the store's data as ``STORE/splits/<scheme>.parquet``
(``sample_id``, ``sample_index``, ``fold`` 1..k or null) with the config and a
fingerprint (sha256 over the store identity and the sorted ``sample_id``/fold pairs) in
the Parquet schema metadata, so a training run can record exactly which split it used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import ConfigError
from .store import RNAMotifStore, _join, get_attrs, read_table, url_to_fs, write_table

log = logging.getLogger(__name__)

__all__ = ["SCHEMES", "SPLIT_NAMES", "SUBSETS", "SplitConfig", "Split", "assign_folds", "make_split", "write_split",
           "read_split", "split_table", "load_or_make_split", "leakage_report", "split_path", "upstream_key",
           "validate_split_name"]

SCHEMES = ("sequence", "entry", "upstream")
SPLIT_NAMES = ("fold1", "fold2", "fold3", "fold4", "fold5", "all")
#: Subsets of a split ``foldK``: ``train`` (every fold but K) and ``val`` (fold K), the
#: upstream protocol's pair; for nested evaluation ``test`` (fold K, touched once after
#: training), ``inner_val`` (fold K+1, wrapping to 1: model selection) and ``inner_train``
#: (the other K-2 folds). Folds are grouped, so the inner validation part is grouped too.
SUBSETS = ("train", "val", "test", "inner_train", "inner_val")


@dataclass(frozen=True)
class SplitConfig:
    """How a split is made.

    Attributes
    ----------
    scheme:
        ``sequence``, ``entry`` or ``upstream`` (module docstring).
    k:
        Number of folds (5).
    seed:
        Seed of the tie-breaking order of equal-size groups.
    """

    scheme: str = "sequence"
    k: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ConfigError(f"unknown split scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        if self.scheme == "upstream" and self.k != 5:
            raise ConfigError("the upstream scheme has exactly 5 folds")
        if self.k < 2:
            raise ConfigError(f"k must be >= 2, got {self.k}")


@dataclass(frozen=True)
class Split:
    """A fold assignment of a store's samples.

    Attributes
    ----------
    table:
        DataFrame ``sample_index``, ``sample_id``, ``fold`` (1..k; <NA> for samples the
        scheme cannot place), in sample order.
    config:
        The :class:`SplitConfig` that made it.
    fingerprint:
        sha256 hex of the store identity and the sorted (sample_id, fold) pairs.
    """

    table: pd.DataFrame
    config: SplitConfig
    fingerprint: str

    def indices(self, split: str, subset: str) -> np.ndarray:
        """Sample indices of ``subset`` (:data:`SUBSETS`) of ``split`` (``foldK``/``all``).

        ``all`` with ``train`` or ``inner_train`` is every placed sample; with any other
        subset it is empty.

        Raises
        ------
        ValueError
            For an unknown split or subset name.
        """
        validate_split_name(split, subset, self.config.k)
        fold = self.table["fold"]
        placed = fold.notna().to_numpy()
        idx = self.table["sample_index"].to_numpy()
        if split == "all":
            return idx[placed] if subset in ("train", "inner_train") else idx[:0]
        k = int(split[4:])
        folds = fold.fillna(0).to_numpy()
        is_val = placed & (folds == k)
        if subset in ("val", "test"):
            return idx[is_val]
        if subset == "train":
            return idx[placed & ~is_val]
        is_inner = placed & (folds == k % self.config.k + 1)
        return idx[is_inner] if subset == "inner_val" else idx[placed & ~is_val & ~is_inner]


def validate_split_name(split: str, subset: str, k: int = 5) -> None:
    """Raise ValueError naming the valid choices if ``split`` or ``subset`` is unknown."""
    names = [f"fold{i}" for i in range(1, k + 1)] + ["all"]
    if split not in names:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(names)}")
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")


def split_path(root: str, scheme: str) -> str:
    """Location of a scheme's split file: ``STORE/splits/<scheme>.parquet``."""
    return _join(str(root), "splits", f"{scheme}.parquet")


def group_keys(meta: pd.DataFrame, scheme: str) -> pd.Series:
    """The grouping key of every sample under ``scheme`` (samples sharing a key share a fold)."""
    bg = meta["is_background"].to_numpy(dtype=bool)
    entry = "entry:" + meta["emdb_id"].astype(str)
    if scheme == "entry":
        return entry
    if scheme == "sequence":
        seq = "seq:" + meta["motif_type"].astype(str) + ":" + meta["sequence"].fillna("").astype(str)
        return pd.Series(np.where(bg, entry, seq), index=meta.index)
    raise ValueError(f"scheme {scheme!r} has no grouping key")


def assign_folds(groups: pd.Series, classes: np.ndarray, k: int, seed: int, n_classes: int = 5) -> np.ndarray:
    """Stratified group k-fold assignment (deterministic).

    Parameters
    ----------
    groups:
        ``(N,)`` group key of each sample.
    classes:
        ``(N,)`` class index of each sample (0 .. n_classes-1).
    k:
        Number of folds.
    seed:
        Seed of the order of equal-size groups.

    Returns
    -------
    ``(N,)`` int fold of each sample, 1..k.
    """
    codes, uniques = pd.factorize(groups, sort=True)
    n_groups = len(uniques)
    counts = np.zeros((n_groups, n_classes), dtype=np.int64)
    np.add.at(counts, (codes, np.asarray(classes, dtype=np.int64)), 1)
    size = counts.sum(axis=1)
    rng = np.random.default_rng(seed)
    tiebreak = rng.permutation(n_groups)
    order = np.lexsort((tiebreak, -size))  # largest first, seeded order among equals
    totals = np.maximum(counts.sum(axis=0), 1).astype(np.float64)
    fold_counts = np.zeros((k, n_classes), dtype=np.float64)
    group_fold = np.zeros(n_groups, dtype=np.int64)
    for g in order:
        c = counts[g]
        # load of the group's classes in each fold, relative to the class totals
        cost = ((fold_counts + c) / totals * (c > 0)).sum(axis=1) + 1e-9 * fold_counts.sum(axis=1)
        f = int(np.argmin(cost))
        group_fold[g] = f
        fold_counts[f] += c
    return group_fold[codes] + 1


def _store_identity(store: RNAMotifStore) -> str:
    attrs = get_attrs(store.root) or {}
    return json.dumps({"config_hash": attrs.get("config_hash"), "manifest_sha256": attrs.get("manifest_sha256"),
                       "n": len(store)}, sort_keys=True)


def fingerprint(identity: str, sample_ids, folds) -> str:
    """sha256 hex over the store identity and the sorted ``sample_id<TAB>fold`` lines."""
    h = hashlib.sha256(identity.encode())
    pairs = sorted(zip((str(s) for s in sample_ids), ("" if pd.isna(f) else str(int(f)) for f in folds)))
    for sid, f in pairs:
        h.update(f"\n{sid}\t{f}".encode())
    return h.hexdigest()


def upstream_key(emdb_id, pdb_id, motif_type, cossmos_number) -> tuple:
    """Matching key of a sample to the upstream folds: (EMDB id, PDB id, type, CoSSMos number)."""
    num = None if cossmos_number is None or pd.isna(cossmos_number) else int(cossmos_number)
    return (str(emdb_id).upper(), str(pdb_id).upper(), str(motif_type), num)


def make_split(store: RNAMotifStore, config: SplitConfig = SplitConfig(),
               upstream_folds: dict[tuple, int] | None = None) -> Split:
    """Assign every sample of ``store`` to a fold under ``config.scheme``.

    Parameters
    ----------
    upstream_folds:
        For ``upstream``: :func:`upstream_key` -> fold (1-5), e.g. from the upstream fold
        CSVs (``builders.split`` reads them). Without it, the store's ``upstream_fold``
        column (from a manifest imported from those CSVs) is used.

    Raises
    ------
    ConfigError
        For ``upstream`` when no sample can be matched.
    """
    meta = store.metadata
    if config.scheme == "upstream":
        if upstream_folds is not None:
            fold = pd.array([upstream_folds.get(upstream_key(*r)) for r in zip(
                meta["emdb_id"], meta["pdb_id"], meta["motif_type"], meta["cossmos_number"])], dtype="Int64")
        else:
            fold = pd.array(meta["upstream_fold"], dtype="Int64")
        if fold.isna().all():
            raise ConfigError(f"{store.root}: no sample has an upstream fold; run "
                              "'python -m builders.split STORE --scheme upstream --folds DIR' to match them")
    else:
        fold = pd.array(assign_folds(group_keys(meta, config.scheme), meta["class_index"].to_numpy(),
                                     config.k, config.seed), dtype="Int64")
    table = pd.DataFrame({"sample_index": meta["sample_index"].to_numpy(dtype=np.int64),
                          "sample_id": meta["sample_id"].astype(str).to_numpy(), "fold": fold})
    return Split(table=table, config=config,
                 fingerprint=fingerprint(_store_identity(store), table["sample_id"], table["fold"]))


def split_table(split: Split) -> pa.Table:
    """``split`` as the Arrow table of a split file: ``sample_index``, ``sample_id``, ``fold``,
    with the config and fingerprint in the schema metadata (key ``rnamotif_split``)."""
    t = pa.Table.from_pandas(split.table, preserve_index=False)
    meta = {b"rnamotif_split": json.dumps({"config": asdict(split.config), "fingerprint": split.fingerprint}).encode()}
    return t.replace_schema_metadata(meta)


def write_split(store: RNAMotifStore, split: Split) -> str:
    """Write ``split`` to ``STORE/splits/<scheme>.parquet``; returns its location."""
    url = split_path(store.root, split.config.scheme)
    write_table(url, split_table(split))
    return url


def read_split(store: RNAMotifStore, scheme: str) -> Split | None:
    """The split file of ``scheme`` if it exists (else None), checked against the store.

    Raises
    ------
    ConfigError
        If the file's sample ids differ from the store's (written for another store).
    """
    url = split_path(store.root, scheme)
    fs, path = url_to_fs(url)
    if not fs.exists(path):
        return None
    t = read_table(url)
    info = json.loads(t.schema.metadata[b"rnamotif_split"])
    table = t.to_pandas()
    table["fold"] = pd.array(table["fold"], dtype="Int64")
    ids = store.metadata["sample_id"].astype(str).to_numpy()
    if len(table) != len(ids) or not np.array_equal(table["sample_id"].astype(str).to_numpy(), ids):
        raise ConfigError(f"{url}: split was made for another store (sample ids differ); remake it with "
                          "python -m builders.split")
    fp = fingerprint(_store_identity(store), table["sample_id"], table["fold"])
    if fp != info["fingerprint"]:
        raise ConfigError(f"{url}: fingerprint mismatch (file {info['fingerprint'][:12]}…, contents {fp[:12]}…); "
                          "remake it with python -m builders.split")
    return Split(table=table, config=SplitConfig(**info["config"]), fingerprint=info["fingerprint"])


def load_or_make_split(store: RNAMotifStore, scheme: str = "sequence", *, seed: int = 0) -> Split:
    """The stored split of ``scheme``, or a new default one (``sequence``/``entry``) made in memory."""
    split = read_split(store, scheme)
    if split is None:
        split = make_split(store, SplitConfig(scheme=scheme, seed=seed))
    return split


def leakage_report(store: RNAMotifStore, split: Split) -> pd.DataFrame:
    """Per fold: val samples sharing something with train, as counts and percentages.

    Columns: ``fold``, ``n_train``, ``n_val``, ``val_shared_entry`` (val samples whose EMDB
    entry also supplies train samples), ``val_shared_type_sequence`` (identical motif
    type and sequence in train), ``val_shared_parent_sequence`` (a parent chain sequence
    also in train), each with a ``_pct`` twin (percent of val), and ``val_<class>`` /
    ``train_<class>`` counts per class.
    """
    meta = store.metadata.set_index("sample_index", drop=False)
    classes = store.class_names
    rows = []
    for k in range(1, split.config.k + 1):
        tr = meta.loc[split.indices(f"fold{k}", "train")]
        va = meta.loc[split.indices(f"fold{k}", "val")]
        row = {"fold": f"fold{k}", "n_train": len(tr), "n_val": len(va)}
        motif_va, motif_tr = va[~va["is_background"]], tr[~tr["is_background"]]
        tseq = set(zip(motif_tr["motif_type"], motif_tr["sequence"]))
        checks = {
            "val_shared_entry": va["emdb_id"].isin(set(tr["emdb_id"])),
            "val_shared_type_sequence": pd.Series([(t, s) in tseq for t, s in
                                                   zip(motif_va["motif_type"], motif_va["sequence"])],
                                                  index=motif_va.index, dtype=bool),
            "val_shared_parent_sequence": va["parent_sequence"].notna()
            & va["parent_sequence"].isin(set(tr["parent_sequence"].dropna())),
        }
        for name, hit in checks.items():
            n = int(hit.sum())
            denom = len(motif_va) if name == "val_shared_type_sequence" else len(va)
            row[name] = n
            row[name + "_pct"] = round(100.0 * n / denom, 1) if denom else 0.0
        for ci, cname in enumerate(classes):
            row[f"train_{cname}"] = int((tr["class_index"] == ci).sum())
            row[f"val_{cname}"] = int((va["class_index"] == ci).sum())
        rows.append(row)
    return pd.DataFrame(rows)
