"""Fold assignment (split.folds): units stay whole, classes are balanced, seeds decide ties."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnamotif_data.split.folds import assign_folds, independent_groups


def _units(seed=0, n_units=200):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, n_units)
    units = np.repeat(np.arange(n_units), sizes)
    classes = rng.integers(0, 5, len(units))
    return units, classes


def test_units_are_never_split_and_every_fold_is_used():
    units, classes = _units()
    fold = assign_folds(units, classes, k=5, seed=0)
    assert set(fold) == {1, 2, 3, 4, 5}
    assert pd.Series(fold).groupby(units).nunique().max() == 1


def test_classes_are_balanced_across_folds():
    units, classes = _units()
    fold = assign_folds(units, classes, k=5, seed=0)
    table = pd.crosstab(fold, classes)
    share = table / table.sum(axis=0)
    assert (abs(share - 0.2) < 0.06).all().all(), share  # each fold holds about a fifth of every class


def test_assignment_is_deterministic_in_the_seed():
    units, classes = _units()
    a, b = assign_folds(units, classes, 5, seed=3), assign_folds(units, classes, 5, seed=3)
    assert (a == b).all()
    assert (assign_folds(units, classes, 5, seed=4) != a).any()  # equal-size units are ordered by the seed


def test_one_entry_in_several_maps_is_one_independent_group():
    meta = pd.DataFrame({"pdb_id": ["6v5b", "6V5B", "1ABC", "1ABC"],
                         "emdb_id": ["EMD-1", "EMD-2", "EMD-3", "EMD-3"],
                         "residues": ["D:1-5", "D:7-9", "A:1-3", "B:1-3"]})
    groups = independent_groups(meta)
    assert groups[0] == groups[1] and groups[2] == groups[3] and groups[0] != groups[2]
