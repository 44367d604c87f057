"""Real maps as they come (issue 14): permissive reading, per-motif placement, modified
nucleotides, one job per entry, one resolution, type against selection, background
shortfalls.

Real inputs: the cryoDRGN 50S volumes (zero machine stamp, parts of the model not yet
assembled) and the 6V5B chain D model with its simulated demo map."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gemmi
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rnamotif_data.cli.build import main as build_main
from rnamotif_data.cli.report import main as report_main
from rnamotif_data.em.maps import read_map
from rnamotif_data.errors import MapFormatError
from rnamotif_data.inputs.schema import rows_to_table
from rnamotif_data.rna.labels import residue_parts
from rnamotif_data.rna.modified import parent_letter, sequence_matches
from rnamotif_data.rna.structure import read_model
from rnamotif_data.storage.layout import get_attrs
from rnamotif_data.storage.store import open_store

from ..conftest import REPO, seed_mirror, shared

DEMO_MIRROR = REPO / "demo" / "mirror"
DEMO_ROWS = pq.read_table(REPO / "demo" / "manifest.parquet").to_pylist()


def _build(tmp_path, rows, mirror=DEMO_MIRROR, *extra) -> tuple[int, object]:
    manifest = tmp_path / "m.parquet"
    pq.write_table(rows_to_table(rows), manifest)
    out = tmp_path / "s.zarr"
    rc = build_main(["--manifest", str(manifest), "--mirror", str(mirror), "--cache", str(tmp_path / "cache"),
                     "--out", str(out), "--scheduler", "synchronous", "--no-progress", *extra])
    return rc, out


# ------------------------------------------------------------------ reading real maps
def test_cryodrgn_volume_with_zero_machine_stamp_reads_with_a_warning():
    path = shared("cryodrgn-50s", "emdb", "emd_90000116.mrc")
    assert path.read_bytes()[212:216] == b"\x00\x00\x00\x00"  # as cryoDRGN writes it
    m = read_map(path)
    assert m.shape == (64, 64, 64)
    np.testing.assert_allclose(m.voxel_size, 6.55, rtol=1e-6)
    assert any("machine stamp" in w for w in m.warnings)


def test_absurd_header_dimensions_are_refused_before_allocating(tmp_path):
    """NX = 100000 on a real 1 MiB volume would need 1.5 GiB: one line naming the file,
    never a MemoryError; gzip files are checked against their stored size."""
    raw = bytearray(shared("cryodrgn-50s", "emdb", "emd_90000018.mrc").read_bytes())
    raw[0:4] = np.int32(100000).tobytes()
    plain = tmp_path / "nx.mrc"
    plain.write_bytes(raw)
    with pytest.raises(MapFormatError, match=r"nx\.mrc: truncated, or header dimensions 100000 x 64 x 64"):
        read_map(plain)
    import gzip

    gz = tmp_path / "nx.mrc.gz"
    gz.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MapFormatError, match=r"nx\.mrc\.gz: .*needs 1\.5 GiB"):
        read_map(gz)


def test_header_anomalies_are_warnings_not_failures(tmp_path):
    raw = bytearray(shared("cryodrgn-50s", "emdb", "emd_90000018.mrc").read_bytes())
    raw[208:212] = b"XXXX"  # MAP id
    odd = tmp_path / "odd.mrc"
    odd.write_bytes(bytes(raw) + b"trailing")
    m = read_map(odd)
    np.testing.assert_array_equal(m.data, read_map(shared("cryodrgn-50s", "emdb", "emd_90000018.mrc")).data)
    assert any("Map ID" in w for w in m.warnings) and any("8 bytes after the data block" in w for w in m.warnings)


def test_cryodrgn_volume_builds_and_motifs_in_empty_density_are_rejected(tmp_path):
    """The immature volume 116: every row reaches a decision other than stage map;
    motifs in unassembled parts go to failures.parquet at stage placement with their
    values; the kept ones carry the machine-stamp warning; the report shows it all."""
    rows = pd.read_parquet(shared("cryodrgn-50s", "manifest.parquet"))
    rows = rows[rows["emdb_id"] == "EMD-90000116"].iloc[::4].to_dict("records")  # 39 rows
    rc, out = _build(tmp_path, rows, shared("cryodrgn-50s"))
    assert rc == 3
    store = open_store(out)
    meta, fail = store.metadata, store.failures
    assert "map" not in set(fail["stage"])
    assert set(fail["stage"]) == {"placement"} and len(fail) >= 5
    assert (fail["fit_z"] < 1.5).all() or (fail["frac_atoms_above_1sd"] < 0.5).all()
    assert fail[["fit_z", "frac_atoms_above_1sd"]].notna().all().all()
    assert fail["error"].str.contains("motif in empty density").all()
    motifs = meta[~meta["is_background"]]
    assert len(motifs) + len(fail) == len(rows)
    assert (motifs["fit_z"] >= 1.5).all() and (motifs["frac_atoms_above_1sd"] >= 0.5).all()
    assert meta["map_warnings"].map(lambda w: any("machine stamp" in x for x in w)).all()
    assert motifs["q_expected"].isna().all()  # 13.1 Å is outside the fitted range of Q_exp
    from rnamotif_data.cli.verify import main as verify_main

    assert verify_main([str(out)]) == 0  # every cube read back through the checking reader
    assert report_main([str(out), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "qc.md").read_text()
    assert "## Per-motif placement" in md and f"{len(fail)} rejected" in md
    assert "machine stamp" in md
    assert (tmp_path / "report" / "placement.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------ modified nucleotides
def _modified_model(tmp_path: Path) -> Path:
    """The real 6V5B chain D, with residues renamed to modified forms of the same base:
    15 C -> 5MC (parent only in the shipped table), 20 C -> OMC with its 2'-O-methyl
    carbon CM2 placed on O2' (gemmi knows it), 21 U -> PSU (gemmi), 22 A -> XA1 (parent
    only in the file's mmCIF categories). Written as mmCIF with _pdbx_struct_mod_residue
    and _chem_comp.mon_nstd_parent_comp_id."""
    st = gemmi.read_structure(str(DEMO_MIRROR / "pdb" / "6v5b.pdb"))
    st.remove_hydrogens()
    names = {15: "5MC", 20: "OMC", 21: "PSU", 22: "XA1"}
    for res in st[0]["D"]:
        if res.seqid.num in names:
            res.name = names[res.seqid.num]
            res.het_flag = "H"
            if res.name == "OMC":
                o2, c2 = res["O2'"][0].pos, res["C2'"][0].pos
                away = o2 - c2
                cm2 = gemmi.Atom()
                cm2.name, cm2.element = "CM2", gemmi.Element("C")
                cm2.pos = o2 + away * (1.42 / away.length())
                cm2.b_iso, cm2.occ = 40.0, 1.0
                res.add_atom(cm2)
    st.setup_entities()
    doc = st.make_mmcif_document()
    block = doc.sole_block()
    block.set_mmcif_category("_pdbx_struct_mod_residue.", {
        "id": ["1"], "auth_asym_id": ["D"], "auth_seq_id": ["22"], "auth_comp_id": ["XA1"],
        "label_comp_id": ["XA1"], "parent_comp_id": ["A"], "details": ["test"]})
    comps = sorted({r.name for r in st[0]["D"]})
    block.set_mmcif_category("_chem_comp.", {
        "id": comps, "type": ["RNA linking"] * len(comps),
        "mon_nstd_parent_comp_id": ["A" if c == "XA1" else "?" for c in comps]})
    path = tmp_path / "6v5b.cif"
    doc.write_file(str(path))
    return path


def test_modified_residue_parents_come_from_file_gemmi_and_shipped_table(tmp_path):
    model = read_model(_modified_model(tmp_path))
    atoms = model.select("D:14-16,19-22")
    names = dict(zip([r.seq_num for r in atoms.residues], atoms.residue_names))
    assert names[15] == "5MC" and names[20] == "OMC" and names[21] == "PSU" and names[22] == "XA1"
    assert parent_letter("XA1") == "N"  # unknown to gemmi and to the shipped table ...
    plain = read_model(DEMO_MIRROR / "pdb" / "6v5b.pdb").select("D:14-16,19-22")
    # ... but the file names its parent: every renamed residue reads as its parent
    assert atoms.sequence() == plain.sequence() == "UCCUCUA"
    renamed = [k for k, r in enumerate(atoms.residues) if r.seq_num in (15, 20, 21, 22)]
    assert atoms.sequence(modified_as_parent=False) == "".join(
        "N" if k in renamed else c for k, c in enumerate(plain.sequence()))
    # label parts: the 2'-O-methyl carbon sits on the ribose; every other atom as before
    omg = atoms.residue_index == [r.seq_num for r in atoms.residues].index(20)
    cm2 = omg & (atoms.atom_name == "CM2")
    assert cm2.sum() == 1 and atoms.part[cm2][0] == 2
    np.testing.assert_array_equal(atoms.part[~cm2], plain.part)
    np.testing.assert_array_equal(atoms.nucleotide[~cm2], plain.nucleotide)


def test_residue_parts_follow_bonds_for_non_standard_atoms():
    """A methyl on the base (5MC's C5 methyl, named CM5) is base; one on O2' is sugar."""
    names = ["C1'", "C2'", "O2'", "CM2", "C5", "CM5"]
    xyz = np.array([[0, 0, 0], [1.5, 0, 0], [2.2, 1.2, 0], [3.6, 1.2, 0], [-5, 0, 0], [-6.5, 0, 0]], float)
    np.testing.assert_array_equal(residue_parts(names, xyz), [2, 2, 2, 2, 3, 3])


def test_atlas_style_sequences_with_n_for_modified_residues_are_accepted(tmp_path):
    """Atlas rows write modified residues as N: compared after parent mapping, N matches."""
    assert sequence_matches("NCNNUG", "UCNGUG") and sequence_matches("ucngug", "UCNGUG")
    assert not sequence_matches("ACNNUG", "UCNGUG") and not sequence_matches("UCN", "UCNG")
    model_dir = tmp_path / "mirror"
    (model_dir / "pdb").mkdir(parents=True)
    shutil.copytree(DEMO_MIRROR / "emdb", model_dir / "emdb")
    shutil.copy(_modified_model(tmp_path), model_dir / "pdb" / "6v5b.cif")
    plain = read_model(DEMO_MIRROR / "pdb" / "6v5b.pdb").select("D:19-22,82-85").sequence()
    atlas_style = plain[0] + "NNN" + plain[4:]  # D:19-22,82-85 with OMC 20, PSU 21, XA1 22 written as N
    row = {**DEMO_ROWS[1], "sequence": atlas_style}
    rc, out = _build(tmp_path, [row], model_dir)
    assert rc == 0, open_store(out).failures["error"].tolist()
    assert open_store(out).metadata["sequence"].iloc[0] == plain


# ------------------------------------------------------------------ entries and rows
def test_rows_with_and_without_emdb_id_make_one_entry(tmp_path):
    """Two rows name EMD-21051, three leave it to the entry's record: one job, unique
    sample ids, one set of background cubes that avoids all five motifs."""
    mirror = tmp_path / "mirror"
    shutil.copytree(DEMO_MIRROR, mirror)
    (mirror / "pdb" / "6v5b.json").write_text(json.dumps({
        "exptl": [{"method": "ELECTRON MICROSCOPY"}],
        "rcsb_entry_info": {"resolution_combined": [3.0]},
        "rcsb_entry_container_identifiers": {"emdb_ids": ["EMD-21051"]},
        "pdbx_database_related": [{"db_name": "EMDB", "db_id": "EMD-21051", "content_type": "associated EM volume"}],
    }))
    rows = [dict(r) for r in DEMO_ROWS]
    for r in rows[2:]:
        r["emdb_id"] = None
    rc, out = _build(tmp_path, rows, mirror)
    assert rc == 0
    meta = open_store(out).metadata
    assert meta["sample_id"].is_unique and set(meta["emdb_id"]) == {"EMD-21051"}
    assert len(meta) == 7 and int(meta["is_background"].sum()) == 2  # ceil(5 / 4), once
    motif_res = {r for s in meta.loc[~meta["is_background"], "residues"] for r in _residue_numbers(s)}
    for s in meta.loc[meta["is_background"], "residues"]:
        assert not (_residue_numbers(s) & motif_res)


def _residue_numbers(selection: str) -> set[int]:
    out = set()
    for part in selection.split(":", 1)[1].split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def test_rows_that_disagree_on_resolution_fail_naming_the_rows(tmp_path):
    rows = [dict(r) for r in DEMO_ROWS]
    rows[3]["resolution"] = 3.5
    rc, out = _build(tmp_path, rows)
    assert rc == 3
    fail = open_store(out).failures
    assert len(fail) == 5 and set(fail["stage"]) == {"manifest"}
    assert fail["error"].str.contains(r"row 0: 3 Å.*row 3: 3\.5 Å").all()


def test_infinite_resolution_is_rejected_at_validation(tmp_path):
    rows = [dict(r) for r in DEMO_ROWS]
    rows[0]["resolution"] = float("inf")
    rc, out = _build(tmp_path, rows)
    fail = open_store(out).failures
    assert rc == 3 and fail["manifest_row"].tolist() == [0]
    assert "resolution inf Å is not a positive finite number" in fail["error"].iloc[0]
    assert len(open_store(out).metadata) == 5  # the other four motifs and ceil(4 / 4) background cube


def test_type_must_match_the_selection(tmp_path):
    """A 3 + 3 selection labelled bulge1 is refused, naming the row, the stated type, the
    type its base pairs make and the pairs (issue 25); a two-strand hairpin is refused by
    its strand count."""
    rows = [{**DEMO_ROWS[0], "motif_type": "bulge1"}, {**DEMO_ROWS[1], "motif_type": "hairpin4"},
            DEMO_ROWS[4]]
    rc, out = _build(tmp_path, rows)
    fail = open_store(out).failures
    assert rc == 3 and fail["manifest_row"].tolist() == [0, 1] and set(fail["stage"]) == {"selection"}
    assert ("(row 0): stated bulge1, but the base pairs make it 1x1 (unpaired 1 + 1 nt; closing pairs read: 14-90, 16-88"
            in fail["error"].iloc[0])
    assert "2 strand(s) of 4 + 4 nucleotides cannot be hairpin4, which has 1 strand(s)" in fail["error"].iloc[1]
    assert open_store(out).metadata["motif_type"].tolist()[0] == "4x5"


def test_background_shortfall_is_in_the_summary_and_report(tmp_path, caplog):
    """The seed hairpin box is too small for a background cube 12 Å from the motif: the
    summary and the report say 0 of 1 placed."""
    mirror = seed_mirror(tmp_path / "mirror")
    rows = [{"pdb_id": "6PJ6", "emdb_id": "EMD-20353", "motif_type": "hairpin3", "selection": "J:85-91",
             "resolution": 2.2}]
    with caplog.at_level("WARNING", logger="rnamotif_data.pipeline.builder"):
        rc, out = _build(tmp_path, rows, mirror)
    assert rc == 0
    assert "background: 0 of 1 requested cubes placed; entries short of sites: 6PJ6_EMD-20353 0/1" in caplog.text
    assert get_attrs(out)["background"] == {"requested": 1, "placed": 0, "short": {"6PJ6_EMD-20353": [0, 1]}}
    assert report_main([str(out), "--out", str(tmp_path / "r")]) == 0
    assert "| 6PJ6_EMD-20353 | 0 | 1 |" in (tmp_path / "r" / "qc.md").read_text()
