"""Loop conventions (issue 38, item 5): a build stores the loop lengths the source's own
residue list gives (``source_loop_lengths``, ``source_motif_type``) beside the span's
(``loop_lengths``), and ``--loop-convention source`` labels the samples by them.

The entries: 1U9S of the training demo (its RNA 3D Motif Atlas rows; the map simulated as
the demo does) and 6V5B chain D of the small demo (rows that give only ranges)."""

from __future__ import annotations

import hashlib
import shutil

import pyarrow.parquet as pq
import pytest

from rnamotif_data.cli.build import main as build_main
from rnamotif_data.em.maps import write_map
from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.inputs.demo import SIMULATION, SMALL_MANIFEST, SMALL_MIRROR, TRAINING_DIR, TRAINING_MANIFEST
from rnamotif_data.inputs.schema import rows_to_table
from rnamotif_data.inputs.sources import SourceConfig
from rnamotif_data.pipeline.builder import build
from rnamotif_data.pipeline.config import BuildConfig
from rnamotif_data.pipeline.staging import read_part, write_part
from rnamotif_data.release.verify import verify_store
from rnamotif_data.rna.structure import read_model
from rnamotif_data.storage.layout import ARRAYS, LATER_METADATA_COLUMNS, METADATA_COLUMNS, STAGING, get_attrs
from rnamotif_data.storage.store import open_store

from ..conftest import store_tree

#: the hash of a default BuildConfig, as every store built since 0.8 records it
DEFAULT_CONFIG_HASH = "a46ffe181b2fae95"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple:
    """``(manifest, SourceConfig)``: the 1U9S rows of the training demo and the small demo's 6V5B rows."""
    root = tmp_path_factory.mktemp("loops")
    mirror = root / "mirror"
    for sub in ("pdb", "emdb"):
        (mirror / sub).mkdir(parents=True)
    shutil.copy(TRAINING_DIR / "models" / "1u9s.cif.gz", mirror / "pdb")
    model = read_model(mirror / "pdb" / "1u9s.cif.gz", name="1U9S")
    m = simulate_map(model.atoms, SIMULATION["resolution"], SIMULATION["voxel_size"], padding=SIMULATION["padding"],
                     noise_sd=SIMULATION["noise_sd"], seed=1)
    write_map(mirror / "emdb" / "emd_95002.map.gz", m.data, m.voxel_size, m.origin, placement="nstart")
    shutil.copy(SMALL_MIRROR / "pdb" / "6v5b.pdb", mirror / "pdb")
    shutil.copy(SMALL_MIRROR / "emdb" / "emd_21051.map.gz", mirror / "emdb")
    rows = [r for r in pq.read_table(TRAINING_MANIFEST).to_pylist() if r["pdb_id"] == "1U9S"]
    rows += pq.read_table(SMALL_MANIFEST).to_pylist()
    manifest = root / "manifest.parquet"
    pq.write_table(rows_to_table(rows), manifest)
    return manifest, SourceConfig(cache_dir=root / "cache", mirror=mirror, offline=True)


@pytest.fixture(scope="module")
def stores(inputs, tmp_path_factory) -> dict:
    """``{"span": store path, "source": store path}``: the manifest built under each convention."""
    manifest, sources = inputs
    root = tmp_path_factory.mktemp("stores")
    out = {}
    for convention in ("span", "source"):
        out[convention] = root / f"{convention}.zarr"
        build(manifest, str(out[convention]), BuildConfig(loop_convention=convention), source_config=sources,
              progress=False)
    return out


def _null(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # None or NaN (pandas' null)


def _by_source_id(store) -> dict:
    meta = open_store(store).metadata
    return {r["source_id"]: r for r in meta[~meta["is_background"]].to_dict("records")}


def test_span_store_keeps_its_types_and_holds_the_source_lengths_beside_them(stores):
    rows = _by_source_id(stores["span"])
    hl = rows["HL_1U9S_001"]  # A:84-88 + A:90: the Atlas's units skip A:89
    assert hl["motif_type"] == "hairpin5" and list(hl["loop_lengths"]) == [5]
    assert list(hl["source_loop_lengths"]) == [4] and hl["source_motif_type"] == "hairpin4"
    il = rows["IL_1U9S_002"]
    assert (il["motif_type"], list(il["loop_lengths"]), list(il["source_loop_lengths"]), il["source_motif_type"]) \
        == ("bulge3", [3, 0], [2, 0], "bulge2")
    assert list(rows["HL_1U9S_004"]["source_loop_lengths"]) == list(rows["HL_1U9S_004"]["loop_lengths"]) == [4]
    ranges_only = [r for k, r in rows.items() if k.startswith("demo-")]
    assert len(ranges_only) == 5 and all(_null(r["source_loop_lengths"]) and _null(r["source_motif_type"])
                                         and not _null(r["loop_lengths"]) for r in ranges_only)
    meta = open_store(stores["span"]).metadata
    assert meta.loc[meta["is_background"], "source_loop_lengths"].isna().all()
    attrs = get_attrs(str(stores["span"]))
    assert attrs["config_hash"] == BuildConfig().config_hash() == DEFAULT_CONFIG_HASH
    assert "loop_convention" not in attrs["build_config"] and "loop_convention" not in BuildConfig().to_dict()
    assert verify_store(str(stores["span"]))[0] == []


def test_source_convention_labels_atlas_rows_by_their_units_and_leaves_the_others(stores):
    span, source = _by_source_id(stores["span"]), _by_source_id(stores["source"])
    hl = source["HL_1U9S_001"]
    assert (hl["motif_type"], hl["motif_class"], hl["class_index"]) == ("hairpin4", "hairpin", 2)
    assert list(hl["loop_lengths"]) == [4] and list(hl["source_loop_lengths"]) == [4]
    assert hl["sample_id"] == "EMD-95002_1U9S_hairpin4_A84-90" and hl["residues"] == span["HL_1U9S_001"]["residues"]
    assert "the span between the closing pairs makes hairpin5 (5 nt)" in hl["loop_note"]
    assert source["IL_1U9S_002"]["motif_type"] == "bulge2"
    changed = {k for k in source if source[k]["motif_type"] != span[k]["motif_type"]}
    assert changed == {k for k, r in span.items() if not _null(r["source_motif_type"])
                       and r["source_motif_type"] != r["motif_type"]}
    for k in (k for k in source if k.startswith("demo-")):  # no list of their own: as under span
        assert [source[k][c] for c in ("motif_type", "sample_id", "residues")] == \
               [span[k][c] for c in ("motif_type", "sample_id", "residues")]
        note, span_note = source[k]["loop_note"], span[k]["loop_note"]
        assert (note == span_note or _null(note) and _null(span_note)) and _null(source[k]["source_loop_lengths"])
        assert list(source[k]["loop_lengths"]) == list(span[k]["loop_lengths"])
    # IL_1U9S_003 (A:116-117 + A:224-227, 225-226 skipped): its units leave no unpaired nucleotide
    assert "IL_1U9S_003" in span and "IL_1U9S_003" not in source
    failed = open_store(stores["source"]).failures.set_index("source_id").loc["IL_1U9S_003"]
    assert failed["stage"] == "selection" and "--loop-convention source" in failed["error"]
    attrs = get_attrs(str(stores["source"]))
    assert attrs["build_config"]["loop_convention"] == "source" and attrs["config_hash"] != DEFAULT_CONFIG_HASH
    assert verify_store(str(stores["source"]))[0] == []


def test_a_store_built_before_the_source_columns_still_opens_and_verifies(stores, tmp_path):
    """Format 5 without ``source_loop_lengths`` / ``source_motif_type`` (built by 0.9.0): the
    reader adds them as nulls in their place; verify accepts their absence."""
    old = tmp_path / "old.zarr"
    shutil.copytree(stores["span"], old)
    table = pq.read_table(old / "metadata.parquet")
    pq.write_table(table.drop_columns(list(LATER_METADATA_COLUMNS)), old / "metadata.parquet", compression="zstd")
    digest = hashlib.sha256((old / "metadata.parquet").read_bytes()).hexdigest()
    sums = old / "checksums.sha256"
    sums.write_text("".join(f"{digest}  metadata.parquet\n" if line.endswith("  metadata.parquet\n") else line
                            for line in sums.read_text().splitlines(keepends=True)))
    meta = open_store(old).metadata
    assert list(meta.columns) == list(METADATA_COLUMNS)
    assert meta["source_loop_lengths"].isna().all() and meta["source_motif_type"].isna().all()
    assert verify_store(str(old))[0] == []
    assert "source_motif_type" not in pq.read_schema(old / "metadata.parquet").names


def test_resume_stages_again_a_part_staged_without_the_source_columns(inputs, stores, tmp_path, caplog):
    """A build interrupted under 0.9.0 and resumed by this package: its staged samples lack
    the new columns, so the entry is staged again (not a TypeError at the commit)."""
    manifest, sources = inputs
    out = tmp_path / "resumed.zarr"
    build(manifest, str(out), source_config=sources, progress=False, stop_after=1)
    (part_path,) = (out / STAGING).glob("*.npz")
    part = read_part(str(out), part_path.stem, arrays=True)
    samples = [{"meta": {k: v for k, v in meta.items() if k not in LATER_METADATA_COLUMNS},
                **{name: part[name][k] for name in ARRAYS}} for k, meta in enumerate(part["meta"])]
    extra = {k: v for k, v in part.items() if k not in (*ARRAYS, "meta", "failures", "entry_failed", "shape")}
    write_part(str(out), part_path.stem, samples, part["failures"], part["entry_failed"], extra)
    with caplog.at_level("WARNING", logger="rnamotif_data.pipeline.builder"):
        build(manifest, str(out), source_config=sources, progress=False, resume=True)
    assert f"{part_path.stem}: the staged part has no source_loop_lengths, source_motif_type column(s)" in caplog.text
    assert store_tree(out) == store_tree(stores["span"])


def test_loop_convention_flag_refuses_an_unknown_convention(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        build_main(["--demo", "small", "--out", str(tmp_path / "x.zarr"), "--loop-convention", "atlas"])
    assert info.value.code == 2 and "invalid choice: 'atlas'" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()
