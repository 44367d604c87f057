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
    apply_loop_convention,
    check_placement,
    check_quality,
    check_strands,
    source_flank_pairs,
    source_residues,
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


@pytest.fixture(scope="module")
def atlas_1u9s():
    """1U9S (the training demo's model) with its base-pair partners, and its manifest rows by source id."""
    import pandas as pd

    from rnamotif_data.inputs.demo import TRAINING_DIR, TRAINING_MANIFEST
    from rnamotif_data.inputs.schema import row_selection
    from rnamotif_data.rna.pairs import watson_crick_partners
    from rnamotif_data.rna.structure import read_model

    model = read_model(TRAINING_DIR / "models" / "1u9s.cif.gz", name="1U9S")
    partner = watson_crick_partners(model.atoms, model.atoms.nucleotide_residues, wobble=True)
    rows = pd.read_parquet(TRAINING_MANIFEST).query("pdb_id == '1U9S'")
    return model, partner, {r["source_id"]: r for r in rows.to_dict("records")}, row_selection


def _loops(atlas, source_id, **row_change):
    model, partner, rows, row_selection = atlas
    row = {**rows[source_id], **row_change}
    resolved = model.resolve(row_selection(row))
    return row, check_strands(model, resolved, row["motif_type"], source_id, partner, source_flank_pairs(row),
                              source_residues(model, resolved, row, source_id))


def test_source_loop_lengths_count_the_atlas_units_and_the_span_every_nucleotide(atlas_1u9s):
    """Issue 38 item 5: HL_1U9S_001 lists A:84-88 and A:90 (selection A:84-90, skipped A:89)."""
    row, cols = _loops(atlas_1u9s, "HL_1U9S_001")
    assert row["skipped"] == "A:89" and row["motif_type"] == "hairpin5"
    assert cols["loop_lengths"] == [5] and cols["flank_pairs"] == [1]
    assert cols["source_loop_lengths"] == [4] and cols["source_motif_type"] == "hairpin4"
    _, cols = _loops(atlas_1u9s, "IL_1U9S_002")  # A:111-115 (113 skipped) + A:228-229: bulge3 -> bulge2
    assert cols["loop_lengths"] == [3, 0] and cols["source_loop_lengths"] == [2, 0]
    assert cols["source_motif_type"] == "bulge2"
    _, cols = _loops(atlas_1u9s, "HL_1U9S_004")  # nothing skipped: the two agree
    assert cols["source_loop_lengths"] == cols["loop_lengths"] == [4]
    _, cols = _loops(atlas_1u9s, "HL_1U9S_001", source="demo", skipped=None)  # ranges only: no list of its own
    assert cols["loop_lengths"] == [5] and cols["source_loop_lengths"] is None and cols["source_motif_type"] is None
    _, cols = _loops(atlas_1u9s, "HL_1U9S_001", source="my list", skipped="A:88-89")  # any source with skipped
    assert cols["source_loop_lengths"] == [3]


def test_source_residues_of_a_residue_list_are_all_listed_and_a_bad_skipped_is_one_line(atlas_1u9s):
    model, _, rows, row_selection = atlas_1u9s
    listed = [{"chain": "A", "seq_num": n, "icode": ""} for n in range(84, 91)]
    row = {**rows["HL_1U9S_001"], "residues": listed, "selection": None, "source": "cossmos"}
    resolved = model.resolve(row_selection(row))
    assert source_residues(model, resolved, row) == [int(i) for i in resolved]
    with pytest.raises(SampleRejected, match=r"HL_1U9S_001: skipped 'A:89-' is not a selection") as info:
        _loops(atlas_1u9s, "HL_1U9S_001", skipped="A:89-")
    assert info.value.stage == "selection"


def test_loop_convention_source_relabels_only_rows_with_a_list_and_refuses_what_is_no_type(atlas_1u9s):
    _, cols = _loops(atlas_1u9s, "HL_1U9S_001")
    assert apply_loop_convention(cols, "hairpin5", "span", "x") == ("hairpin5", cols)
    mtype, out = apply_loop_convention(cols, "hairpin5", "source", "x")
    assert mtype == "hairpin4" and out["loop_lengths"] == [4] and out["source_loop_lengths"] == [4]
    assert "the span between the closing pairs makes hairpin5 (5 nt)" in out["loop_note"]
    assert cols["loop_lengths"] == [5]  # the input is not changed
    _, cols = _loops(atlas_1u9s, "HL_1U9S_001", source="demo", skipped=None)
    assert apply_loop_convention(cols, "hairpin5", "source", "x") == ("hairpin5", cols)
    _, cols = _loops(atlas_1u9s, "IL_1U9S_003")  # A:116-117 + A:224-227, 225-226 skipped: no unpaired unit
    assert cols["source_loop_lengths"] == [0, 0] and cols["source_motif_type"] is None
    with pytest.raises(SampleRejected, match=r"IL_1U9S_003: --loop-convention source: the source's residue list "
                       r"leaves 0 \+ 0 nt .*no loop.*the span: bulge2, 0 \+ 2 nt") as info:
        apply_loop_convention(cols, "bulge2", "source", "IL_1U9S_003")
    assert info.value.stage == "selection"
    with pytest.raises(ConfigError, match="loop_convention must be one of span, source, got 'atlas'"):
        apply_loop_convention(cols, "bulge2", "atlas", "x")


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
