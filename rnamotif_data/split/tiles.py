"""Folds of a store's tiles: by entry and by chain homology (``rnamotif split STORE --tiles``).

A tile holds whole chains, so the motif-level relations of the cube split
(:mod:`rnamotif_data.split.splits`) are not enough: a network that saw the 23S rRNA of one
ribosome in training recognises it in another. The rules:

1. **Every tile of an entry is in one fold** (the entry is the unit), and entries of one
   PDB ID or one EMDB map are one unit (one model fitted to several maps is one unit).
2. **No chain of a validation entry is homologous to a training chain** at ``level``
   (the cube split's default, ``identity``: the BGSU equivalence class of the chain, else
   ≥ 95 % sequence identity; ``family``: Rfam family merged by clan; ``entry``: nothing
   beyond rule 1). Units sharing a class are placed together where the fold sizes allow
   (:func:`rnamotif_data.split.levels.label_assignment`), and an entry of another fold
   that shares a class with fold k is left out of fold k's *training* (``train_exclusion``
   bit k-1), never out of its validation: every tile is scored in exactly one fold.

The chains and sequences of each entry are ``volumes.parquet``'s ``rna_chains`` and
``chain_sequences``; classes come from
:func:`rnamotif_data.split.homology.chain_classes` (with the homology tables when given,
else by sequence alone). The split is written as ``STORE/splits/tiles.parquet``, one row
per tile (``sample_index`` = ``tile_index``, ``sample_id`` = ``entry/tZ_Y_X``, ``fold``,
``removed`` (always false), ``train_exclusion``, ``entry``, ``identity_class``,
``family``) with the config and a fingerprint in the schema metadata, read back as a
:class:`~rnamotif_data.split.splits.Split` (its ``indices`` give the subsets, nested
``inner_train``/``inner_val`` included).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import numpy as np
import pandas as pd
import pyarrow as pa

from rnamotif_data.errors import ConfigError
from rnamotif_data.split.homology import HomologyTables, chain_classes
from rnamotif_data.split.levels import label_assignment, label_exclusion, label_matrix
from rnamotif_data.split.splits import Split, SplitConfig, check_split_target, fingerprint, read_split_file
from rnamotif_data.storage.layout import get_attrs, join, read_table, url_to_fs, write_table
from rnamotif_data.storage.store import RNAMotifStore, open_store
from rnamotif_data.storage.volumes import TILES_FILE, VOLUMES_FILE

log = logging.getLogger(__name__)

__all__ = ["TILE_SPLIT_FILE", "tile_split_path", "make_tile_split", "write_tile_split", "read_tile_split",
           "entry_labels", "related_levels"]

#: the tile split, relative to the store
TILE_SPLIT_FILE = "splits/tiles.parquet"
_MIN_SEQUENCE = 10  # nt: shorter chains are never compared by sequence (their own class)


def tile_split_path(root: str) -> str:
    """Location of a store's tile split."""
    return join(str(root), *TILE_SPLIT_FILE.split("/"))


def _identity(store: RNAMotifStore, n_tiles: int) -> str:
    attrs = get_attrs(store.root) or {}
    return json.dumps({"config_hash": attrs.get("config_hash"), "manifest_sha256": attrs.get("manifest_sha256"),
                       "n_tiles": n_tiles}, sort_keys=True)


def _tables(store: RNAMotifStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(volumes, tiles)`` of a tiled store. Raises ConfigError for a store without tiles."""
    fs, path = url_to_fs(join(store.root, TILES_FILE))
    if not fs.exists(path):
        raise ConfigError(f"{store.root}: the store has no tiles (built without --tiles); build it with "
                          f"'rnamotif build ... --tiles'")
    return read_table(join(store.root, VOLUMES_FILE)).to_pandas(), read_table(join(store.root, TILES_FILE)).to_pandas()


def entry_labels(volumes: pd.DataFrame, tables: HomologyTables | None, level: str,
                 min_identity: float = 0.95) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Per ``volumes.parquet`` row, the identity classes and the families of its RNA chains
    (:func:`rnamotif_data.split.homology.chain_classes`); empty tuples at ``level="entry"``."""
    if level == "entry":
        return [() for _ in range(len(volumes))], [() for _ in range(len(volumes))]
    chains, sequences = [], {}
    for pdb, names, seqs in zip(volumes["pdb_id"], volumes["rna_chains"], volumes["chain_sequences"]):
        keys = [(str(pdb).upper(), str(c)) for c in (names if names is not None else [])]
        chains.append(keys)
        for key, seq in zip(keys, seqs if seqs is not None else []):
            if seq and len(seq) >= _MIN_SEQUENCE:
                sequences[key] = seq
    ident, fam, _ = chain_classes((c for cs in chains for c in cs), tables, sequences, min_identity)
    return ([tuple(dict.fromkeys(ident[c] for c in cs)) for cs in chains],
            [tuple(dict.fromkeys(fam[c] for c in cs)) for cs in chains])


def _hard_units(volumes: pd.DataFrame) -> np.ndarray:
    """Entries joined by a shared PDB ID or EMDB map: ``(E,)`` unit labels."""
    parent = list(range(len(volumes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for column in ("pdb_id", "emdb_id"):
        first: dict[str, int] = {}
        for i, v in enumerate(volumes[column].astype(str)):
            if v in first:
                parent[find(i)] = find(first[v])
            else:
                first[v] = i
    return np.array([find(i) for i in range(len(volumes))], dtype=np.int64)


def make_tile_split(store: RNAMotifStore, config: SplitConfig = SplitConfig(),
                    tables: HomologyTables | None = None) -> Split:
    """Assign every tile of ``store`` to a fold (module docstring) at ``config.level`` with
    ``config.k`` folds and ``config.seed``.

    Raises
    ------
    ConfigError
        If the store has no tiles, or fewer independent units (entries joined by PDB ID or
        map) with tiles than folds.
    """
    volumes, tiles = _tables(store)
    volumes = volumes[volumes["error"].isna()].reset_index(drop=True)
    hard = _hard_units(volumes)
    if len(np.unique(hard)) < config.k:
        raise ConfigError(f"{store.root}: {len(np.unique(hard))} independent entries with tiles, fewer than the "
                          f"{config.k} folds; build more entries, or use split='all'")
    ident, fam = entry_labels(volumes, tables, config.level, config.homology.min_identity)
    labels = ident if config.level == "identity" else fam if config.level == "family" else [() for _ in ident]
    fold, info = label_assignment(labels, hard, config.k, config.seed)
    fold = fold.astype(np.int64)
    excluded = label_exclusion(label_matrix(labels), fold, config.k) if config.level != "entry" else \
        np.zeros((len(fold), config.k), bool)
    bits = (excluded.astype(np.int64) << np.arange(config.k, dtype=np.int64)).sum(axis=1)
    where = {e: i for i, e in enumerate(volumes["entry"])}
    row = np.array([where.get(e, -1) for e in tiles["entry"]], dtype=np.int64)
    placed = row >= 0
    table = pd.DataFrame({
        "sample_index": tiles["tile_index"].to_numpy(dtype=np.int64),
        "sample_id": [f"{e}/t{z}_{y}_{x}" for e, (z, y, x) in zip(tiles["entry"], tiles["tile_zyx"])],
        "fold": pd.array([int(fold[r]) if r >= 0 else None for r in row], dtype="Int64"),
        "removed": np.zeros(len(tiles), dtype=bool),
        "train_exclusion": np.where(placed, bits[row], 0).astype(np.int64),
        "entry": tiles["entry"].astype(str).to_numpy(),
        "identity_class": [";".join(ident[r]) if r >= 0 else "" for r in row],
        "family": [";".join(fam[r]) if r >= 0 else "" for r in row]})
    fp = fingerprint(_identity(store, len(tiles)), table["sample_id"], table["fold"], table["removed"],
                     table["train_exclusion"])
    log.info("tile split: %d tiles of %d entries in %d units, level %s", len(tiles), len(volumes),
             info.get("units", 0), config.level)
    return Split(table=table, config=config, fingerprint=fp,
                 homology={"level": config.level, "tables": tables.versions if tables is not None else None,
                           "units": info.get("units")})


def write_tile_split(store: RNAMotifStore, split: Split) -> str:
    """Write ``split`` to ``STORE/splits/tiles.parquet``; returns its location.

    Raises
    ------
    StoreError
        If a file that is not a split this package wrote sits there.
    """
    url = tile_split_path(store.root)
    check_split_target(url)
    t = pa.Table.from_pandas(split.table, preserve_index=False)
    info = {"config": asdict(split.config), "fingerprint": split.fingerprint, "homology": split.homology}
    write_table(url, t.replace_schema_metadata({b"rnamotif_split": json.dumps(info).encode()}))
    return url


def read_tile_split(store: RNAMotifStore | str) -> Split | None:
    """The stored tile split (None if there is none), checked against the store's tiles.

    Raises
    ------
    ConfigError
        If it was made for other tiles (ids differ) or its contents do not match its
        fingerprint (remake it with ``rnamotif split STORE --tiles``).
    """
    if not isinstance(store, RNAMotifStore):
        store = open_store(store)
    url = tile_split_path(store.root)
    read = read_split_file(url)
    if read is None:
        return None
    table, info = read
    _, tiles = _tables(store)
    ids = [f"{e}/t{z}_{y}_{x}" for e, (z, y, x) in zip(tiles["entry"], tiles["tile_zyx"])]
    if len(table) != len(ids) or table["sample_id"].astype(str).tolist() != ids:
        raise ConfigError(f"{url}: the tile split was made for other tiles; remake it with "
                          f"'rnamotif split {store.root} --tiles'")
    fp = fingerprint(_identity(store, len(tiles)), table["sample_id"], table["fold"], table["removed"],
                     table["train_exclusion"])
    if fp != info["fingerprint"]:
        raise ConfigError(f"{url}: fingerprint mismatch (file {info['fingerprint'][:12]}…, contents {fp[:12]}…); "
                          f"remake it with 'rnamotif split {store.root} --tiles'")
    return Split(table=table, config=SplitConfig(**info["config"]), fingerprint=info["fingerprint"],
                 homology=info.get("homology"))


def related_levels(split: Split, name: str, subset: str = "test", train_subset: str = "inner_train") -> dict[str, str]:
    """Per entry of ``name``/``subset``, the strictest level at which it is related to the
    entries of ``name``/``train_subset`` (the network's training set): ``identity`` (a chain
    of the same identity class), ``family`` (of the same Rfam family or clan), ``none``, or
    ``unknown`` for a split made without chain classes. The evaluation's "by similarity to
    training" rows.

    Raises
    ------
    ConfigError
        For an unknown split or subset name (:meth:`Split.indices`).
    """
    t = split.table
    test = t.iloc[np.searchsorted(t["sample_index"].to_numpy(), split.indices(name, subset))]
    train = t.iloc[np.searchsorted(t["sample_index"].to_numpy(), split.indices(name, train_subset))]
    if "identity_class" not in t or "family" not in t:
        return {str(e): "unknown" for e in test["entry"].unique()}

    def labels(rows: pd.DataFrame, column: str) -> set[str]:
        return {x for v in rows[column].dropna().astype(str).unique() for x in v.split(";") if x}

    seen = {c: labels(train, c) for c in ("identity_class", "family")}
    out = {}
    for entry, rows in test.groupby("entry", sort=True):
        out[str(entry)] = ("identity" if labels(rows, "identity_class") & seen["identity_class"]
                           else "family" if labels(rows, "family") & seen["family"] else "none")
    return out
