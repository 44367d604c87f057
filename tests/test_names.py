"""The label ids the science paints are the names every store records (one home:
rnamotif_data.common.names), checked on a built store and on a real motif's cube."""

from __future__ import annotations

import numpy as np

from rnamotif_data.common.names import LABEL_NAMES, NUCLEOTIDE_NAMES
from rnamotif_data.rna.labels import label_part, nucleotide_id, standard_part
from rnamotif_data.storage.store import open_store


def test_part_and_nucleotide_ids_are_the_recorded_names():
    assert [LABEL_NAMES[standard_part(a)] for a in ("P", "O5'", "C1'", "O2'", "N1", "C8", "H1")] == \
        ["backbone", "backbone", "sugar", "sugar", "base", "base", "none"]
    assert LABEL_NAMES[label_part("C1*")] == "sugar"  # legacy names read as primes
    assert [NUCLEOTIDE_NAMES[nucleotide_id(r)] for r in ("A", "C", "G", "U", "PSU", "DT")] == \
        ["A", "C", "G", "U", "U", "other"]


def test_a_built_store_records_the_names_its_cubes_are_painted_with(demo_store):
    store = open_store(demo_store)
    assert tuple(store.attrs["label_names"]) == LABEL_NAMES
    assert tuple(store.attrs["nucleotide_names"]) == NUCLEOTIDE_NAMES
    batch = store.read_batch(slice(0, min(len(store), 16)), ("labels", "nucleotide", "zone"))
    labels, nucleotide = batch["labels"], batch["nucleotide"]
    # every painted id has a name, every name but none is painted, and a voxel carries a
    # nucleotide exactly where it carries a part
    assert set(np.unique(labels)) == set(range(len(LABEL_NAMES)))
    assert set(np.unique(nucleotide)) <= set(range(len(NUCLEOTIDE_NAMES)))
    assert np.array_equal(labels > 0, nucleotide > 0)
