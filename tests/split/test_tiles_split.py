"""The tile split (issue 36): every tile of an entry in one fold, homologous chains apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnamotif_data.errors import ConfigError
from rnamotif_data.split.splits import SplitConfig
from rnamotif_data.split.tiles import (
    entry_labels,
    make_tile_split,
    read_tile_split,
    tile_split_path,
    write_tile_split,
)
from rnamotif_data.storage.store import open_store


def test_every_tile_of_an_entry_is_in_one_fold(tiled_training_store):
    split = read_tile_split(tiled_training_store)
    t = split.table
    assert t["fold"].notna().all()
    assert (t.groupby("entry")["fold"].nunique() == 1).all()
    assert sorted(t["fold"].unique().tolist()) == [1, 2, 3, 4, 5]
    for k in range(1, 6):
        idx_train = split.indices(f"fold{k}", "train")
        idx_val = split.indices(f"fold{k}", "val")
        by_index = t.set_index("sample_index")
        train = set(by_index.loc[idx_train, "entry"])
        val = set(by_index.loc[idx_val, "entry"])
        assert train and val and not train & val
        assert len(idx_train) + len(idx_val) == len(t)  # level entry: nothing pruned


def test_homologous_chains_leave_the_training_side():
    seq = "GGCGCUUAGCGCCAAAGGCGCUUAGCGCC"
    volumes = pd.DataFrame({
        "entry": [f"E{i}_EMD-{i}" for i in range(6)], "pdb_id": [f"{i}ABC" for i in range(6)],
        "emdb_id": [f"EMD-{i}" for i in range(6)],
        "rna_chains": [["A"]] * 6,
        "chain_sequences": [[seq], [seq], ["AUGCAUGCAUGCAUGCAUGCAAUU"], ["CCCCGGGGAAAAUUUUCCCCGG"],
                            ["GAGAGAGACUCUCUCUAAAGG"], ["UUUUAAAACCCCGGGGUUUAAG"]]})
    ident, _ = entry_labels(volumes, None, "identity")
    assert ident[0] == ident[1] and len({ident[i] for i in range(2, 6)} | {ident[0]}) == 5
    none, _ = entry_labels(volumes, None, "entry")
    assert all(x == () for x in none)


def test_identity_level_split_keeps_identical_chains_apart(tiled_training_store, tmp_path):
    store = open_store(tiled_training_store)
    split = make_tile_split(store, SplitConfig(level="identity"))
    t = split.table
    for k in range(1, 6):
        val_classes = set(t.loc[t["fold"] == k, "identity_class"].str.split(";").explode())
        train = t.set_index("sample_index").loc[split.indices(f"fold{k}", "train")]
        train_classes = set(train["identity_class"].str.split(";").explode())
        assert not (val_classes & train_classes) - {""}


def test_written_split_round_trips_and_refuses_tampering(tiled_training_store, tmp_path):
    import shutil

    root = tmp_path / "copy.zarr"
    shutil.copytree(tiled_training_store, root)
    store = open_store(root)
    split = make_tile_split(store, SplitConfig(level="entry", seed=3))
    write_tile_split(store, split)
    back = read_tile_split(store)
    assert back.fingerprint == split.fingerprint
    assert back.table["fold"].tolist() == split.table["fold"].tolist()
    t = pq.read_table(tile_split_path(str(root)))
    folds = t.column("fold").to_numpy().copy()
    folds[0] = folds[0] % 5 + 1
    t = t.set_column(t.schema.get_field_index("fold"), "fold", pa.array(folds))
    pq.write_table(t, tile_split_path(str(root)))
    with pytest.raises(ConfigError, match="fingerprint mismatch"):
        read_tile_split(store)


def test_a_store_without_tiles_is_refused_in_one_line(demo_store):
    with pytest.raises(ConfigError, match="built without --tiles"):
        make_tile_split(open_store(demo_store), SplitConfig(level="entry"))


def test_seeds_change_the_assignment_but_not_the_rules(tiled_training_store):
    store = open_store(tiled_training_store)
    a = make_tile_split(store, SplitConfig(level="entry", seed=0)).table
    b = make_tile_split(store, SplitConfig(level="entry", seed=1)).table
    for t in (a, b):
        assert (t.groupby("entry")["fold"].nunique() == 1).all()
    assert np.array_equal(a["sample_index"], b["sample_index"])
