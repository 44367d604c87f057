"""The column dictionaries of a store's tables: ``metadata.parquet`` (one row per sample)
and ``failures.parquet`` (one row per manifest row that did not become a sample).

Each is ``name -> (Arrow type, description)``; the Arrow schemas are built from them and
``docs/store.md`` lists them (a test compares). Re-exported by :mod:`rnamotif_data.store`.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["METADATA_COLUMNS", "METADATA_SCHEMA", "FAILURES_COLUMNS", "FAILURES_SCHEMA"]

_XYZ = pa.list_(pa.float64(), 3)

#: metadata.parquet columns: name -> (Arrow type, description). The column dictionary.
METADATA_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "sample_index": (pa.int64(), "position of the sample along the arrays' first axis"),
    "sample_id": (pa.string(), "stable id: EMDB_PDB_type_residues (motifs) or EMDB_PDB_unknown_bgK"),
    "is_background": (pa.bool_(), "true for background ('unknown') samples"),
    "background_kind": (pa.string(), "'stem' (helical stem), 'rna' (other RNA), 'protein' or 'density' "
                                      "(unmodelled); null for motifs (rnamotif_data.background)"),
    "manifest_row": (pa.int64(), "row of the input manifest (null for background samples)"),
    "pdb_id": (pa.string(), "PDB ID of the model, upper case"),
    "emdb_id": (pa.string(), "EMDB map, EMD-N"),
    "motif_id": (pa.string(), "manifest motif_id (null if none)"),
    "motif_type": (pa.string(), "fine type (1x1 ... 4x5, bulgeN, hairpinN) or 'unknown'"),
    "motif_class": (pa.string(), "symmetric_loop, bulge, hairpin, asymmetric_loop or unknown"),
    "class_index": (pa.int8(), "0 sym, 1 bulge, 2 hairpin, 3 asym, 4 unknown (upstream order)"),
    "residues": (pa.string(), "the sample's residues in selection syntax (J:85-91)"),
    "sequence": (pa.string(), "one-letter sequence of those residues in model order"),
    "strand_sequences": (pa.string(), "the sample's strands (runs of consecutive residues) in model order, "
                                      "'-'-joined, modified residues as their parents"),
    "context_sequence": (pa.string(), "each strand with up to 8 chain neighbours on both sides, '-'-joined "
                                      "(homology of contexts, rnamotif_data.similarity)"),
    "model_hash": (pa.string(), "sha256 (first 16 hex) of the model's heavy-atom coordinates: one model fitted "
                                "to several maps has one hash whatever its IDs (splits group by it)"),
    "parent_sequence": (pa.string(), "sha256 (first 16 hex) of the full one-letter sequences of the chains the "
                                     "sample's residues belong to, sorted and '/'-joined; null for density sites"),
    "resolution": (pa.float64(), "resolution of the map in Å (manifest, else RCSB record; null if unknown)"),
    "origin_xyz": (_XYZ, "world position (Å, x-y-z) of voxel [0, 0, 0] of the cube"),
    "centroid_xyz": (_XYZ, "heavy-atom centroid (Å, x-y-z), the cube's centre"),
    "n_atoms": (pa.int32(), "heavy atoms of the sample (zone atoms for background)"),
    "n_residues": (pa.int32(), "residues of the sample"),
    "fraction_outside": (pa.float32(), "fraction of cube voxels outside the map box (zero-padded)"),
    "fit_z": (pa.float64(), "(mean map value at the atoms - map mean) / map sd"),
    "q_score": (pa.float64(), "Q-score (Pintilie 2020, sigma 0.6 Å), mean over the sample's heavy atoms; "
                              "null for density background sites"),
    "q_score_min_residue": (pa.float64(), "lowest per-residue mean Q-score of the sample"),
    "cc_mask": (pa.float64(), "CC_mask as phenix.map_model_cc reports it (Afonine 2018): molecular mask, model "
                              "map with the atoms' B-factors at the map's resolution; null if the resolution is "
                              "unknown"),
    "cc_local": (pa.float64(), "correlation with a molmap-style model map (B-factors ignored) within "
                               "max(3, min(resolution, 10)) Å of the atoms; not Phenix's CC_mask"),
    "frac_atoms_above_1sd": (pa.float64(), "fraction of heavy atoms whose map value exceeds map mean + 1 sd"),
    "q_expected": (pa.float64(), "expected nucleic-acid Q-score at the resolution (Pintilie 2020, sigma 0.6 Å: "
                                 "-0.1377 * resolution + 0.9973); null for another sigma or outside 1.5-5 Å"),
    "q_score_minus_expected": (pa.float64(), "q_score - q_expected (negative: worse than typical at this resolution)"),
    "map_warnings": (pa.list_(pa.string()), "anomalies of the entry's map file (zero machine stamp, header "
                                            "statistics that differ from the data, ...), one line each"),
    "source": (pa.string(), "manifest source (cossmos-2012, motif-atlas-4.5, ...)"),
    "source_id": (pa.string(), "id of the occurrence in its source"),
    "cossmos_number": (pa.int32(), "CoSSMos occurrence number, if any"),
    "upstream_fold": (pa.int8(), "upstream validation fold (1-5), if any"),
}
METADATA_SCHEMA = pa.schema([pa.field(k, t) for k, (t, _) in METADATA_COLUMNS.items()])

#: failures.parquet columns: name -> (Arrow type, description).
FAILURES_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "manifest_row": (pa.int64(), "row of the input manifest"),
    "pdb_id": (pa.string(), "PDB ID"),
    "emdb_id": (pa.string(), "EMDB map (null if it could not be determined)"),
    "motif_type": (pa.string(), "fine motif type"),
    "residues": (pa.string(), "the row's residues in selection syntax"),
    "source": (pa.string(), "manifest source"),
    "source_id": (pa.string(), "id in the source"),
    "stage": (pa.string(), "where it failed: manifest, fetch, model, map, placement, selection (type or sequence vs the model), segment, quality, entry"),
    "error_type": (pa.string(), "exception class"),
    "error": (pa.string(), "the error message (names the file, entry and residues)"),
    "fit_z": (pa.float64(), "the motif's fit_z when it was measured (placement and quality rejections)"),
    "frac_atoms_above_1sd": (pa.float64(), "the motif's fraction of heavy atoms above map mean + 1 sd, when measured"),
    "q_score": (pa.float64(), "the motif's Q-score, for quality rejections"),
}
FAILURES_SCHEMA = pa.schema([pa.field(k, t) for k, (t, _) in FAILURES_COLUMNS.items()])
