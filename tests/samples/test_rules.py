"""The sample rules (rnamotif_data.samples.rules) and the background selection that
applies them itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnamotif_data.errors import ConfigError, RNAMotifError
from rnamotif_data.rna.structure import parse_selection
from rnamotif_data.samples.background import BackgroundConfig, ShapeDistribution, select_background_sites
from rnamotif_data.samples.cubes import SegmentConfig, cut_motif
from rnamotif_data.samples.rules import (
    PlacementRules,
    QualityRules,
    SampleRejected,
    check_placement,
    check_quality,
    source_flank_pairs,
)

MOTIF = "D:14-16,88-90"


def test_placement_passes_a_motif_in_its_density_and_refuses_it_moved_out(rna_model, sim_map):
    motif = rna_model.select(parse_selection(MOTIF))
    stats = sim_map.statistics()
    values = check_placement(sim_map, motif, stats, PlacementRules(), "D 14-16")
    assert values["fit_z"] > 1.5 and values["frac_atoms_above_1sd"] > 0.5
    moved = dataclasses.replace(motif, xyz=motif.xyz + np.array([0.0, 0.0, 7.0]))
    with pytest.raises(SampleRejected, match=r"D 14-16: motif in empty density: fit_z .* < min_motif_fit_z 1.5") as exc:
        check_placement(sim_map, moved, stats, PlacementRules(min_motif_fit_z=1.5, min_motif_frac_above_1sd=None),
                        "D 14-16")
    assert exc.value.stage == "placement" and exc.value.values["fit_z"] < 1.5
    assert "fraction" not in str(exc.value)  # a disabled criterion is not applied
    assert check_placement(sim_map, moved, stats, PlacementRules(None, None), "x")["fit_z"] < 1.5
    with pytest.raises(ConfigError, match="min_motif_fit_z must be a finite number"):
        PlacementRules(min_motif_fit_z=float("nan"))


def test_quality_refuses_low_or_undefined_scores_with_the_deciding_values():
    cols = {"fit_z": 2.0, "frac_atoms_above_1sd": 0.8, "q_score": 0.41, "cc_mask": None}
    check_quality(cols, QualityRules(), "m")  # no thresholds: every motif kept
    with pytest.raises(SampleRejected, match=r"m: Q-score 0.410 < --min-q-score 0.5") as exc:
        check_quality(cols, QualityRules(min_q_score=0.5), "m")
    assert exc.value.stage == "quality" and exc.value.values == {"fit_z": 2.0, "frac_atoms_above_1sd": 0.8,
                                                                  "q_score": 0.41}
    with pytest.raises(SampleRejected, match=r"CC_mask is undefined \(no resolution known\)"):
        check_quality(cols, QualityRules(min_cc_mask=0.3), "m")
    assert isinstance(exc.value, RNAMotifError)
    # failures.parquet records the class name 0.8 stored (byte-identical rebuilds)
    assert exc.value.error_type == "_RowError"


def test_source_flank_pairs_convention():
    assert source_flank_pairs({"source": "upstream-folds fold 3"}) == 2
    assert source_flank_pairs({"source": "cossmos"}) == 1
    assert source_flank_pairs({"source": "upstream", "flank_pairs": 1}) == 1
    assert source_flank_pairs({"source": "upstream", "flank_pairs": float("nan")}) == 2


def test_background_selection_checks_placement_and_cuts_itself(rna_model, sim_map):
    """The selection applies the placement rules itself (no callback): rules no candidate
    can pass give no site; with a segment config each site carries the cube cut_motif
    gives its atoms, and the sites are the ones chosen without cutting."""
    motif = rna_model.select(parse_selection(MOTIF))
    resolved = rna_model.resolve(parse_selection(MOTIF))
    targets = [(tuple(len(s) for s in rna_model.strands(resolved)), resolved)]
    stats = sim_map.statistics()
    args = (rna_model, sim_map, motif.xyz, 2, ShapeDistribution(()), BackgroundConfig(kinds="rna"))
    assert select_background_sites(*args, placement=PlacementRules(min_motif_fit_z=1e6), targets=targets,
                                   stats=stats, key="k") == []
    cfg = SegmentConfig(cube_size=16)
    plain = select_background_sites(*args, placement=PlacementRules(), targets=targets, stats=stats, key="k")
    cut = select_background_sites(*args, placement=PlacementRules(), segment=cfg, targets=targets, stats=stats,
                                  key="k")
    assert plain and all(site.cube is None for site in plain)
    assert [list(s.residue_indices) for s in cut] == [list(s.residue_indices) for s in plain]
    for site in cut:
        expected = cut_motif(sim_map, site.atoms, cfg, context=rna_model.atoms, stats=stats)
        np.testing.assert_array_equal(site.cube.density, expected.density)
        np.testing.assert_array_equal(site.cube.labels, expected.labels)
