"""Negatives that look like motifs, and the shortcut audit that checks it (issue 16, items 1-2).

Real data: the cryoDRGN 50S volume 383 and its model. With density-blob negatives (the
``density`` kind: map voxels above 1 sd near a point, as the first release's background
was zoned around single residues) structure-free features separate "unknown" from
motifs; with the default structural negatives (stems and other RNA stretches shaped like
the entry's motifs) they do not."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.spatial import cKDTree

from rnamotif_data.cli.audit import main as audit_main
from rnamotif_data.cli.build import main as build_main
from rnamotif_data.inputs.schema import rows_to_table
from rnamotif_data.release.audit import FEATURES
from rnamotif_data.rna.motifs import strand_lengths
from rnamotif_data.rna.structure import read_model
from rnamotif_data.storage.store import open_store

from ..conftest import shared

pytest.importorskip("sklearn", reason="the audit needs scikit-learn (pip install scikit-learn)")


def _build_383(tmp_path, name: str, *extra: str):
    rows = pq.read_table(shared("cryodrgn-50s", "manifest.parquet")).to_pylist()
    rows = [r for r in rows if r["emdb_id"] == "EMD-90000383"][::3]
    manifest = tmp_path / "m.parquet"
    pq.write_table(rows_to_table(rows), manifest)
    store = tmp_path / f"{name}.zarr"
    assert build_main(["--manifest", str(manifest), "--mirror", str(shared("cryodrgn-50s")), "--out", str(store),
                       "--scheduler", "synchronous", "--no-progress", *extra]) in (0, 3)
    return store


def _audit(tmp_path, store, name):
    assert audit_main([str(store), "--out", str(tmp_path / name)]) == 0
    return json.loads((tmp_path / name / "audit.json").read_text())


def test_audit_finds_the_shortcut_of_density_blob_negatives(tmp_path):
    store = _build_383(tmp_path, "blobs", "--background-kinds", "density")
    assert set(open_store(store).metadata["background_kind"].dropna()) == {"density"}
    res = _audit(tmp_path, store, "a-blobs")
    assert set(res["single_feature_unknown_vs_motif"]) == set(FEATURES)
    assert res["unknown_vs_motif_balanced_accuracy"] >= 0.9 and res["verdict"].startswith("SHORTCUT")
    assert max(res["single_feature_unknown_vs_motif"].values()) >= 0.9
    # one model in one map: grouped by the samples' structure (issue 25)
    assert res["cv"].startswith("grouped by structure (model coordinates + residues)")
    md = (tmp_path / "a-blobs" / "audit.md").read_text()
    assert "| zone_voxels |" in md and (tmp_path / "a-blobs" / "audit.png").read_bytes()[:4] == b"\x89PNG"


def test_structural_negatives_look_like_motifs(tmp_path):
    """Default negatives: real stems / RNA stretches with the strand layouts of the
    entry's motifs, no atom within 5 Å of a listed motif, passing the motifs' placement
    criterion, deterministic; the audit cannot tell them from motifs."""
    store = _build_383(tmp_path, "stems")
    s = open_store(store)
    meta = s.metadata
    bg, motifs = meta[meta.is_background], meta[~meta.is_background]
    assert len(bg) >= 10 and set(bg.background_kind) <= {"stem", "rna"} and "stem" in set(bg.background_kind)
    layouts = {tuple(sorted(strand_lengths(t))) for t in motifs.motif_type}
    for strands in bg.strand_sequences:
        assert tuple(sorted(len(x) for x in strands.split("-"))) in layouts
    assert (bg.fit_z >= 1.5).all() and (bg.frac_atoms_above_1sd >= 0.5).all()
    # no heavy atom of a background residue within 5 Å of a heavy atom of any manifest motif
    model = read_model(shared("cryodrgn-50s", "pdb", "pdb_0000v383.pdb.gz"))
    rows = pq.read_table(shared("cryodrgn-50s", "manifest.parquet")).to_pylist()
    rows = [r for r in rows if r["emdb_id"] == "EMD-90000383"][::3]
    motif_xyz = np.concatenate([model.atoms.subset(model.resolve(r["selection"])).xyz for r in rows])
    tree = cKDTree(motif_xyz)
    for sel in bg.residues:
        d, _ = tree.query(model.atoms.subset(model.resolve(sel)).xyz)
        assert d.min() >= 5.0, sel
    res = _audit(tmp_path, store, "a-stems")
    assert res["unknown_vs_motif_balanced_accuracy"] <= 0.60, res
    from rnamotif_data.release.audit import structure_groups

    groups = structure_groups(meta)
    assert len(set(groups)) == len(meta)  # one map: every sample its own structure
    # the same seed gives the same negatives
    again = open_store(_build_383(tmp_path, "again"))
    assert again.metadata[again.metadata.is_background].residues.tolist() == bg.residues.tolist()
