"""Manifest schema, validation, importers on every real source file, column dictionary."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnamotif_data.errors import ManifestError
from rnamotif_data.inputs.importers import import_cossmos, import_motif_atlas, import_upstream_folds, loop_type
from rnamotif_data.inputs.schema import SCHEMA, read_manifest, rows_to_table, validate_manifest

from ..conftest import REPO, shared

GOOD = {"pdb_id": "6PJ6", "motif_type": "hairpin3", "selection": "J:85-91", "emdb_id": "EMD-20353",
        "sequence": "GGUCUCC", "resolution": 3.0}


def _validate(*rows, strict=False):
    return validate_manifest(rows_to_table(list(rows)), strict=strict)


def test_good_row_passes():
    table, rejected = _validate(GOOD)
    assert table.num_rows == 1 and not rejected
    assert table.schema == SCHEMA


@pytest.mark.parametrize(
    "change, column, fragment",
    [
        ({"pdb_id": "6PJ"}, "pdb_id", "bad PDB ID"),
        ({"motif_type": "hairpin9"}, "motif_type", "unknown motif type"),
        ({"emdb_id": "20353"}, "emdb_id", "bad EMDB ID"),
        ({"selection": "J85-91"}, "selection", "CHAIN:RESIDUES"),
        ({"selection": None}, "residues", "neither residues nor selection"),
        ({"sequence": "GGUXUCC"}, "sequence", "nucleotide codes"),
        ({"resolution": -1.0}, "resolution", "not a positive finite number"),
        ({"resolution": float("inf")}, "resolution", "not a positive finite number"),
        ({"resolution": float("nan")}, "resolution", "not a positive finite number"),
        ({"residues": [], "selection": None}, "residues", "empty residue list"),
    ],
)
def test_bad_rows_are_rejected_with_row_and_reason(change, column, fragment):
    bad = {**GOOD, **change}
    table, rejected = _validate(GOOD | {"selection": "J:1-3"}, bad)
    assert table.num_rows == 1  # the good row survives
    assert len(rejected) == 1 and rejected[0].row == 1 and rejected[0].column == column
    assert fragment in rejected[0].reason
    with pytest.raises(ManifestError, match=rf"row 1.*column {column}"):
        _validate(GOOD | {"selection": "J:1-3"}, bad, strict=True)


def test_duplicates_and_sequence_length():
    res = [{"chain": "J", "seq_num": n, "icode": ""} for n in range(85, 88)]
    row = {"pdb_id": "6PJ6", "motif_type": "hairpin3", "residues": res}
    table, rejected = _validate(row, dict(row), row | {"sequence": "GG", "residues": res[:2] + res[:1]})
    assert [r.row for r in rejected] == [1, 2]
    assert "duplicate occurrence" in rejected[0].reason and "of row 0" in rejected[0].reason
    assert "2 letters for 3 residues" in rejected[1].reason


def test_missing_and_unknown_columns():
    with pytest.raises(ManifestError, match="missing required column.*motif_type"):
        validate_manifest(pa.table({"pdb_id": ["6PJ6"], "selection": ["J:1-3"]}))
    with pytest.raises(ManifestError, match="unknown column.*chain_id"):
        validate_manifest(pa.table({"pdb_id": ["6PJ6"], "motif_type": ["1x1"], "selection": ["J:1-3"],
                                    "chain_id": ["J"]}))
    with pytest.raises(ManifestError, match="resolution cannot be read"):
        validate_manifest(pa.table({"pdb_id": ["6PJ6"], "motif_type": ["1x1"], "selection": ["J:1"],
                                    "resolution": ["high"]}))


@pytest.mark.parametrize("a, b, t", [(3, None, "hairpin3"), (0, 2, "bulge2"), (4, 0, "bulge4"),
                                     (2, 2, "2x2"), (5, 1, "1x5"), (8, None, "hairpin8")])
def test_loop_type(a, b, t):
    assert loop_type(a, b) == t


def test_cossmos_2012_every_real_file():
    files = sorted(shared("cossmos-2012").glob("*.txt"))
    assert len(files) == 24
    rows, rejected = import_cossmos(files)
    assert not rejected  # the importer parses every record
    n_records = sum(len([ln for ln in f.read_text().splitlines() if ln.strip()]) - 1 for f in files)
    assert len(rows) == n_records
    table, dup = validate_manifest(rows_to_table(rows))
    assert table.num_rows + len(dup) == n_records
    assert all("duplicate occurrence" in r.reason for r in dup)
    by_id = {r["source_id"]: r for r in rows}
    r = by_id["CoSSMos_Search_Output_01-10-2012_125911.txt:1"]  # 1S72 GUUC / CCUUGCG
    assert r["motif_type"] == "2x5" and r["sequence"] == "GUUCCCUUGCG"
    assert [(x["chain"], x["seq_num"]) for x in r["residues"]] == [
        ("9", 110), ("9", 111), ("9", 112), ("9", 113), ("9", 72), ("9", 71), ("9", 70),
        ("9", 69), ("9", 68), ("9", 67), ("9", 66)]
    hp = by_id["CoSSMos_Search_Output_01-10-2012_110458.txt:1"]
    assert hp["motif_type"] == "hairpin3" and [x["seq_num"] for x in hp["residues"]] == list(range(118, 123))
    assert {x["chain"] for x in hp["residues"]} == {"0"}


def test_cossmos_motif_type_flag_rejects_other_types():
    f = shared("cossmos-2012", "CoSSMos_Search_Output_01-10-2012_125911.txt")
    rows, rejected = import_cossmos([f], motif_type="2x5")
    assert len(rows) == 1 and not rejected
    rows, rejected = import_cossmos([f], motif_type="hairpin3")
    assert not rows and "differs from --motif-type" in rejected[0].reason


def test_cossmos_2025_tab_format(tmp_path):
    """The 2025 export as described in ../shared/data/README.md: tab-separated, InternalID,
    unquoted one-character and quoted multi-character chains, insertion codes."""
    header = ["InternalID", "pdb", "Aseq", "Bseq", "Aseq_num", "Bseq_num",
              "A Residue Conformation 2", "B Residue Conformation 2", "B Residue Conformation 3"]
    lines = [
        "\t".join(header),
        "\t".join(["1187", "4V9F", "GAC", "GAUC", "188-G 189L-A 190-C", "1537-G 1538-A 1539-U 1540-C",
                   "P189L A C3p_endo anti", "'S2'1538 A C3p_endo anti", "'S2'1539 U C3p_endo anti"]),
        "\t".join(["1188", "4V9F", "GAAAAC", "", "264-G 265-A 266-A 267-A 268-A 269-C", "",
                   "P265 A C3p_endo anti", "", ""]),
        "\t".join(["1189", "4V9F", "GAC", "GAUC", "188-G 189-A", "", "", "", ""]),
    ]
    path = tmp_path / "cossmos_2025.tsv"
    path.write_text("\n".join(lines) + "\n")
    rows, rejected = import_cossmos([path])
    assert [r["cossmos_number"] for r in rows] == [1187, 1188]
    il = rows[0]
    assert il["motif_type"] == "1x2"
    assert [(x["chain"], x["seq_num"], x["icode"]) for x in il["residues"]] == [
        ("P", 188, ""), ("P", 189, "L"), ("P", 190, ""),
        ("S2", 1537, ""), ("S2", 1538, ""), ("S2", 1539, ""), ("S2", 1540, "")]
    assert rows[1]["motif_type"] == "hairpin4"
    assert len(rejected) == 1 and "lists 2 residues" in rejected[0].reason
    assert rejected[0].source_id == "cossmos_2025.tsv:3"


def test_motif_atlas_every_real_file():
    files = [shared("motif-atlas", "hl_4.5.json"), shared("motif-atlas", "il_4.5.json")]
    rows, rejected = import_motif_atlas(files)
    n_instances = sum(len(g["alignment"]) for f in files for g in __import__("json").loads(f.read_text()))
    assert len(rows) + len(rejected) == n_instances
    table, bad = validate_manifest(rows_to_table(rows))
    assert not bad and table.num_rows == len(rows)
    kinds = {r.reason.split(":")[0] for r in rejected}
    assert kinds == {"loop type outside the 25-type taxonomy", "symmetry mate, not in the deposited coordinates"}
    # 5 + 3 units listed, but the first strand runs 3338-3343 with 3342 skipped: 6 + 3 nt
    il = next(r for r in rows if r["source_id"] == "IL_8OI5_129")
    assert (il["motif_type"], il["selection"], il["skipped"]) == ("1x4", "1:3338-3343 1:3293-3295", "1:3342")
    assert il["motif_id"] == "IL_00086.1"
    # insertion codes: 6 units 47b-47g make a 6-nt hairpin strand (hairpin4), not 7
    hp = next(r for r in rows if r["source_id"] == "HL_9J4O_002")
    assert (hp["motif_type"], hp["selection"], hp["skipped"]) == ("hairpin4", "A:47b-47g", None)
    assert any(re.search(r":-?\d+[A-Z]", r["selection"]) for r in rows if r["pdb_id"] == "9DFE")  # icodes kept
    # typed from the strand's endpoints: A84-88 and A90 listed, 89 skipped by the alignment
    hl = next(r for r in rows if r["source_id"] == "HL_1U9S_001")
    assert (hl["motif_type"], hl["selection"], hl["skipped"], hl["sequence"]) == ("hairpin5", "A:84-90", "A:89", "GUAACNC")
    assert {r["motif_type"] for r in rows} == set(SCHEMA_TYPES)


SCHEMA_TYPES = ("1x1 2x2 3x3 4x4 5x5 bulge1 bulge2 bulge3 bulge4 bulge5 hairpin3 hairpin4 hairpin5 "
                "hairpin6 hairpin7 1x2 1x3 1x4 1x5 2x3 2x4 2x5 3x4 3x5 4x5").split()


def test_upstream_folds_real_files():
    rows, rejected = import_upstream_folds(shared("seed-folds"))
    assert len(rows) == 2285
    # the fold CSVs name 175 distinct EMDB entries (shared/data/README.md says 176)
    assert len({r.get("emdb_id") for r in rows} - {None}) == 175
    per_fold_class = {}
    from rnamotif_data.rna.motifs import motif_class
    for r in rows:
        key = (r["upstream_fold"], motif_class(r["motif_type"]))
        per_fold_class[key] = per_fold_class.get(key, 0) + 1
    # balanced: each fold holds the same count of every class (90, 91, 92, 92, 92)
    for fold in range(1, 6):
        assert len({n for (f, _), n in per_fold_class.items() if f == fold}) == 1
    assert sorted(per_fold_class[(f, "hairpin")] for f in range(1, 6)) == [90, 91, 92, 92, 92]
    motif_rows = [r for r in rows if r["motif_type"] != "unknown"]
    assert all(r["needs_residues"] and r["cossmos_number"] for r in motif_rows)
    table, bad = validate_manifest(rows_to_table(rows))
    assert not bad
    assert all("in no fold's val set" in r.reason for r in rejected)


def test_column_dictionary_matches_schema():
    text = (REPO / "manifests" / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|", text, re.M)
    documented = {name: (typ.strip(), req.strip()) for name, typ, req in rows}
    assert list(documented) == SCHEMA.names
    for f in SCHEMA:
        typ = documented[f.name][0]
        expected = {"string": pa.string(), "float64": pa.float64(), "int32": pa.int32(),
                    "int8": pa.int8(), "bool": pa.bool_()}.get(typ)
        if expected is None:
            assert typ.startswith("list<struct<") and pa.types.is_list(f.type), f.name
        else:
            assert f.type == expected, f.name
        assert (documented[f.name][1] == "yes") == (not f.nullable), f.name


@pytest.mark.parametrize("name", ["cossmos-2012-1S72", "motif-atlas-4.5", "upstream-folds"])
def test_shipped_manifests_are_valid(name):
    table, rejected = read_manifest(REPO / "manifests" / f"{name}.parquet", strict=True)
    assert table.num_rows > 200 and not rejected
    assert pq.read_table(REPO / "manifests" / f"{name}.rejected.parquet").num_rows > 0


def test_import_cli_prints_counts(tmp_path):
    out = tmp_path / "m.parquet"
    r = subprocess.run([sys.executable, "-m", "rnamotif_data", "manifest", "import", "cossmos",
                        *map(str, sorted(shared("cossmos-2012").glob("*.txt"))), "--out", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "rows kept: 225" in r.stdout and "rows rejected: 42" in r.stdout
    assert pq.read_table(out.with_name("m.rejected.parquet")).num_rows == 42
    strict = subprocess.run([sys.executable, "-m", "rnamotif_data", "manifest", "import", "cossmos",
                             *map(str, sorted(shared("cossmos-2012").glob("*.txt"))), "--out",
                             str(tmp_path / "s.parquet"), "--strict"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert strict.returncode == 1 and "duplicate occurrence" in strict.stderr
    assert "Traceback" not in strict.stderr


def test_rows_checked_against_the_model(rna_model):
    from rnamotif_data.inputs.schema import check_rows_against_model

    res = [{"chain": "D", "seq_num": n, "icode": ""} for n in (19, 20, 21, 22, 82, 83, 84, 85)]
    rows = [
        (0, {"pdb_id": "6V5B", "selection": "D:19-22,82-85", "sequence": "UCUAUUUA"}),
        (1, {"pdb_id": "6V5B", "residues": res, "sequence": "UCUAUUUA"}),
        (2, {"pdb_id": "6V5B", "selection": "D:40-45"}),  # 42-62 are not modelled
        (3, {"pdb_id": "6V5B", "residues": res, "sequence": "GCUAUUUA"}),
        (4, {"pdb_id": "6V5B", "selection": "E:1-3"}),
    ]
    bad = check_rows_against_model(rows, rna_model)
    assert [(b.row, b.column) for b in bad] == [(2, "residues"), (3, "sequence"), (4, "residues")]
    assert "chain D has no residue 45 (selection D:40-45)" in bad[0].reason
    assert "differs from the model's UCUAUUUA" in bad[1].reason
    assert "no chain E" in bad[2].reason


def test_resolve_upstream_rows_from_cossmos(tmp_path):
    """An upstream fold row is matched to a (2025-format) CoSSMos occurrence by PDB ID,
    type and CoSSMos number; an unmatched one is reported."""
    from rnamotif_data.inputs.schema import resolve_residues

    folds, _ = import_upstream_folds(shared("seed-folds"))
    target = next(r for r in folds if r["motif_type"] == "1x2")
    other = next(r for r in folds if r["motif_type"] == "hairpin5")
    export = tmp_path / "export.tsv"
    export.write_text(
        "InternalID\tpdb\tAseq\tBseq\tAseq_num\tBseq_num\tA Residue Conformation 2\t"
        "B Residue Conformation 2\tB Residue Conformation 3\n"
        f"{target['cossmos_number']}\t{target['pdb_id']}\tGAC\tGUUC\t10-G 11-A 12-C\t40-G 41-U 42-U 43-C\t"
        "A11 A C3p_endo anti\tA41 U C3p_endo anti\tA42 U C2p_endo anti\n")
    cossmos, rejected = import_cossmos([export])
    assert not rejected
    rows, missing = resolve_residues([target, other], cossmos)
    assert len(rows) == 1 and rows[0]["needs_residues"] is False
    assert [x["seq_num"] for x in rows[0]["residues"]] == [10, 11, 12, 40, 41, 42, 43]
    assert len(missing) == 1 and missing[0].row == 1 and "no CoSSMos occurrence matches" in missing[0].reason
    table, bad = validate_manifest(rows_to_table(rows))
    assert table.num_rows == 1 and not bad


def test_atlas_strands_are_measured_on_the_model_when_given(tmp_path):
    """An internal loop of 6V5B chain D (D:14-16 / D:88-90, a 1x1) listed as the Atlas does
    when its alignment skips a base (14, 16 | 88-90), in a copy of the model renumbered
    from 16 on (+1, so the chain jumps 15 -> 17 with nothing missing): by numbering the
    first strand looks like 14-17 (a 2x1 loop), on the model it is 3 nucleotides (1x1)."""
    import gemmi

    from rnamotif_data.inputs.importers import models_in

    st = gemmi.read_structure(str(REPO / "demo" / "mirror" / "pdb" / "6v5b.pdb"))
    for res in st[0]["D"]:
        if res.seqid.num >= 16:
            res.seqid = gemmi.SeqId(res.seqid.num + 1, " ")
    (tmp_path / "models").mkdir()
    st.write_pdb(str(tmp_path / "models" / "6v5b.pdb"))
    units = ["6V5B|1|D|U|14", "6V5B|1|D|C|17", "6V5B|1|D|U|89", "6V5B|1|D|G|90", "6V5B|1|D|A|91"]
    group = {"motif_id": "IL_00001.1", "chainbreak": ["2"],
             "alignment": {"IL_6V5B_001": {str(k + 1): u for k, u in enumerate(units)}}}
    path = tmp_path / "il_test.json"
    path.write_text(json.dumps([group]))
    by_numbers, _ = import_motif_atlas([path])
    assert by_numbers[0]["motif_type"] == "1x2" and by_numbers[0]["skipped"] == "D:15,16"
    on_model, rejected = import_motif_atlas([path], models_in(tmp_path / "models"))
    assert not rejected
    assert (on_model[0]["motif_type"], on_model[0]["selection"], on_model[0]["skipped"]) == (
        "1x1", "D:14-17 D:89-91", "D:15")
