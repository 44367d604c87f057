"""rnamotif build --tiles (issue 36): the stored label volumes are the library's and an
independent nearest-atom labelling's, the density is the cubes' map at 1 Å, the tile table
counts what the volumes hold, entries that cannot be tiled get a one-line error, and the
store's bytes do not depend on the scheduler or on a resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import gemmi
import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.ndimage import map_coordinates
from scipy.spatial import cKDTree

from rnamotif_data.cli.build import main as build_main
from rnamotif_data.em.maps import read_map, write_map
from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.errors import StoreError
from rnamotif_data.inputs.demo import SMALL_MANIFEST, SMALL_MIRROR
from rnamotif_data.inputs.schema import rows_to_table
from rnamotif_data.inputs.sources import SourceConfig
from rnamotif_data.pipeline.builder import build
from rnamotif_data.pipeline.config import BuildConfig
from rnamotif_data.release.verify import verify_store
from rnamotif_data.rna.elements import assign_elements
from rnamotif_data.rna.structure import read_model
from rnamotif_data.samples.cubes import normalise_density
from rnamotif_data.samples.tiles import RNA_ELEMENTS, TileConfig
from rnamotif_data.samples.volumes import label_volumes
from rnamotif_data.storage.store import open_store
from rnamotif_data.storage.volumes import VOLUME_ARRAYS, VolumeReader

MODEL = SMALL_MIRROR / "pdb" / "6v5b.pdb"
MAP = SMALL_MIRROR / "emdb" / "emd_21051.map.gz"
TILED = BuildConfig(tiles=True, tile=TileConfig(size=32, stride=16))
#: the edge store's tiles: 64³ every 32 (the small demo's 62-voxel y axis is too short), half
#: as many RNA-free tiles as RNA tiles
EDGE = BuildConfig(tiles=True, tile=TileConfig(size=64, stride=32, rna_free_share=0.5))


def _volumes(root) -> dict:
    return {r["entry"]: r for r in pq.read_table(Path(root) / "volumes.parquet").to_pylist()}


def _read_whole(root, row) -> dict[str, np.ndarray]:
    reader = VolumeReader(str(root), row["entry"], row["grid_shape"], row["block"])
    try:
        return reader.read_box((0, 0, 0), row["grid_shape"], VOLUME_ARRAYS)
    finally:
        reader.close()


@pytest.fixture(scope="module")
def library():
    """label_volumes of the small demo's model and map, as the build makes them."""
    model, dmap = read_model(MODEL), read_map(MAP)
    elements = assign_elements(model, "geometric")
    return model, dmap, elements, label_volumes(dmap, model, elements, TILED.volume_config)


@pytest.fixture(scope="module")
def stored(tiled_store):
    (row,) = _volumes(tiled_store).values()
    return row, _read_whole(tiled_store, row)


def test_stored_labels_are_the_librarys(stored, library):
    row, vols = stored
    _, _, _, lv = library
    assert row["error"] is None
    assert tuple(row["grid_shape"]) == lv.grid.shape and tuple(row["origin_xyz"]) == lv.grid.origin
    for name in ("element", "part", "nucleotide", "instance"):
        assert np.array_equal(vols[name], getattr(lv, name)), name
    assert vols["element"].any() and vols["instance"].any()
    assert np.array_equal(vols["density"], lv.density.astype(np.float16))


def test_element_agrees_with_an_independent_nearest_atom_labelling(stored, library):
    """Every voxel's element from the nearest heavy atom (no water) within 1.5 Å, ties to
    the lower atom index, by a KD-tree written here."""
    row, vols = stored
    model, _, elements, _ = library
    atoms = model.atoms
    water = np.isin(np.char.strip(np.asarray(atoms.residue_names, dtype=str)), ["HOH", "WAT", "DOD"])
    keep = np.flatnonzero(~water[atoms.residue_index] & (np.char.upper(np.asarray(atoms.element, dtype=str)) != "H"))
    tree = cKDTree(atoms.xyz[keep])
    D, H, W = row["grid_shape"]
    k, j, i = np.meshgrid(np.arange(D), np.arange(H), np.arange(W), indexing="ij")
    points = np.asarray(row["origin_xyz"]) + np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(float)
    d, idx = tree.query(points, k=4, distance_upper_bound=1.5 + 1e-9)
    hit = d[:, 0] <= 1.5
    nearest = np.where(d == d[:, :1], idx, len(keep)).min(axis=1)  # ties: the lowest index
    expected = np.zeros(len(points), dtype=np.uint8)
    expected[hit] = elements.element[atoms.residue_index[keep[nearest[hit]]]]
    assert hit.sum() > 1000
    assert np.array_equal(vols["element"].ravel(), expected)


def test_density_is_the_maps_point_at_the_tile_origin_plus_kji(tiled_store, stored, library):
    """A tile's voxel (i, j, k) is the map at origin_xyz + (k, j, i) Å, normalised as the cubes."""
    row, vols = stored
    _, dmap, _, lv = library
    tiles = pq.read_table(Path(tiled_store) / "tiles.parquet").to_pylist()
    reader = VolumeReader(tiled_store, row["entry"], row["grid_shape"], row["block"])
    for t in (tiles[0], tiles[len(tiles) // 2], tiles[-1]):
        box = reader.read_box(t["origin_voxel"], t["size"], ("density",))["density"]
        inside = tuple(slice(0, min(t["size"], n - o)) for n, o in zip(row["grid_shape"], t["origin_voxel"]))
        raw, _ = dmap.sample_box(np.asarray(t["origin_xyz"]), box[inside].shape, 1.0)
        assert np.array_equal(box[inside], normalise_density(raw, lv.stats).astype(np.float16))
        assert not box[tuple(slice(s.stop, None) for s in inside)].any()  # past the grid: 0
    reader.close()


def test_cubes_agree_with_the_volume_density(tiled_store, stored):
    """The store's cubes (off the 1 Å grid: their origins follow the motifs' centroids) are
    the volume's density interpolated trilinearly at their points. This map's voxels are
    1 Å on the volume's grid, so the volume holds the map's normalised voxels, and the two
    agree to float16 rounding (tolerance 1e-3) wherever none of the 8 voxels around a cube
    point was clipped to 0 or 1 by the normalisation (clipping before vs after
    interpolation differs there)."""
    row, vols = stored
    store = open_store(tiled_store)
    meta = pq.read_table(Path(tiled_store) / "metadata.parquet").to_pylist()
    cubes = store.read_batch(slice(0, len(meta)), ["density"])["density"].astype(np.float32)
    volume = vols["density"].astype(np.float32)
    top = np.asarray(volume.shape)[:, None] - 1
    checked = 0
    for m, cube in zip(meta, cubes):
        offset = (np.asarray(m["origin_xyz"]) - np.asarray(row["origin_xyz"]))[::-1]  # z-y-x voxels
        coords = np.indices(cube.shape).reshape(3, -1) + offset[:, None]
        inside = np.all((coords >= 0) & (coords <= top), axis=0)
        coords = coords[:, inside]
        low = np.floor(coords).astype(np.int64)
        corners = np.stack([volume[tuple(np.minimum(low + np.array(c)[:, None], top))]
                            for c in np.ndindex(2, 2, 2)])
        ok = np.all((corners > 0) & (corners < 1), axis=0)
        sampled = map_coordinates(volume, coords[:, ok], order=1)
        assert np.abs(cube.ravel()[inside][ok] - sampled).max() < 1e-3, m["sample_id"]
        checked += int(ok.sum())
    assert checked > 2_000  # the demo map is 0 (clipped) over 40% of its voxels


def test_tile_table_counts_what_the_volumes_hold(tiled_store, stored):
    row, vols = stored
    tiles = pq.read_table(Path(tiled_store) / "tiles.parquet").to_pylist()
    grid = np.asarray(row["grid_shape"])
    n_rna = 0
    for t in tiles:
        o = np.asarray(t["origin_voxel"])
        box = tuple(slice(a, a + t["size"]) for a in o)
        e, inst = vols["element"][box], vols["instance"][box]
        assert t["voxels_per_element"] == np.bincount(e.ravel(), minlength=9).tolist()
        assert t["instances"] == sorted(int(v) for v in np.unique(inst) if v)
        assert t["clipped"] == bool(np.any(o + t["size"] > grid))
        assert t["holds_rna"] == bool(np.isin(e, RNA_ELEMENTS).any())
        n_rna += t["holds_rna"]
    # every tile of the grid that holds RNA is listed
    starts = [range(0, max(n - 32, 0) + 16, 16) for n in grid]
    all_rna = sum(bool(np.isin(vols["element"][z:z + 32, y:y + 32, x:x + 32], RNA_ELEMENTS).any())
                  for z in starts[0] for y in starts[1] for x in starts[2])
    assert n_rna == all_rna == row["n_tiles"] - (len(tiles) - n_rna)
    assert row["voxels_per_element"] == np.bincount(vols["element"].ravel(), minlength=9).tolist()
    assert any(t["clipped"] for t in tiles) and not all(t["clipped"] for t in tiles)


# --- a store of entries that cannot be tiled, and one with RNA-free tiles -----------------

def _edge_inputs(base: Path) -> tuple[Path, Path]:
    """A mirror and manifest of four entries: 9A01 protein only (no RNA), 9A02 a map of 40% of
    its box in z (two thirds of the model outside it), 6V5B the small demo (62 voxels in y:
    a 64³ tile is larger than the map) and 9A04 the demo model in a wide map."""
    mirror = base / "mirror"
    (mirror / "pdb").mkdir(parents=True)
    (mirror / "emdb").mkdir()
    shutil.copy(MODEL, mirror / "pdb" / "6v5b.pdb")
    shutil.copy(MAP, mirror / "emdb" / "emd_21051.map.gz")
    st = gemmi.read_structure(str(MODEL))
    st.write_pdb(str(mirror / "pdb" / "9a02.pdb"))
    st.write_pdb(str(mirror / "pdb" / "9a04.pdb"))
    for res in st[0][0]:
        res.name = "ALA"
    st.write_pdb(str(mirror / "pdb" / "9a01.pdb"))
    atoms = read_model(MODEL).atoms
    for number, pad, keep in (("91001", 20.0, 1.0), ("91002", 40.0, 0.4), ("91004", 40.0, 1.0)):
        m = simulate_map(atoms, 3.5, 1.0, padding=pad, noise_sd=0.05, seed=int(number))
        nz = int(m.data.shape[0] * keep) if keep < 1 else m.data.shape[0]
        write_map(mirror / "emdb" / f"emd_{number}.map.gz", m.data[:nz], m.voxel_size, m.origin, placement="nstart")
    demo = pq.read_table(SMALL_MANIFEST).to_pylist()[0]
    rows = [{**demo, "pdb_id": p, "emdb_id": e} for p, e in
            (("9A01", "EMD-91001"), ("9A02", "EMD-91002"), ("6V5B", "EMD-21051"), ("9A04", "EMD-91004"))]
    manifest = base / "edge.parquet"
    pq.write_table(rows_to_table(rows), manifest)
    return manifest, mirror


def _build(manifest, mirror, out, config=EDGE, **kw):
    return build(manifest, str(out), config, source_config=SourceConfig(
        cache_dir=Path(out).parent / "cache", mirror=mirror, offline=True), progress=False, **kw)


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    base = tmp_path_factory.mktemp("edge")
    manifest, mirror = _edge_inputs(base)
    out = base / "edge.zarr"
    _build(manifest, mirror, out, scheduler="synchronous")
    return manifest, mirror, out


def test_entries_that_cannot_be_tiled_have_a_one_line_error(edge):
    _, _, out = edge
    vols = _volumes(out)
    for key, words in (("9A01_EMD-91001", "has no RNA nucleotide"), ("9A02_EMD-91002", "lie outside the map"),
                       ("6V5B_EMD-21051", "is larger than the map")):
        err = vols[key]["error"]
        assert err.startswith(f"{key}: ") and words in err and "\n" not in err, err
        assert vols[key]["n_tiles"] == 0 and vols[key]["grid_shape"] is None
        assert not (out / "volumes" / key).exists()
    assert vols["9A04_EMD-91004"]["error"] is None
    tiles = pq.read_table(out / "tiles.parquet").to_pylist()
    assert {t["entry"] for t in tiles} == {"9A04_EMD-91004"}
    assert verify_store(str(out))[0] == []


def test_rna_free_tiles_are_the_documented_share(edge):
    _, _, out = edge
    row = _volumes(out)["9A04_EMD-91004"]
    vols = _read_whole(out, row)
    tiles = pq.read_table(out / "tiles.parquet").to_pylist()
    n_rna = sum(t["holds_rna"] for t in tiles)
    grid = row["grid_shape"]
    per_axis = [-(-(n - 64) // 32) + 1 for n in grid]
    n_free_all = int(np.prod(per_axis)) - n_rna
    assert n_rna > 0 and n_free_all > 0
    assert len(tiles) - n_rna == min(n_free_all, round(0.5 * n_rna))
    for t in tiles:
        box = tuple(slice(a, a + 64) for a in t["origin_voxel"])
        assert t["holds_rna"] == bool(np.isin(vols["element"][box], RNA_ELEMENTS).any())


def test_a_killed_build_resumes_to_the_same_bytes(edge, tmp_path):
    manifest, mirror, out = edge
    part = tmp_path / "resumed.zarr"
    _build(manifest, mirror, part, scheduler="synchronous", stop_after=2)
    assert not (part / "checksums.sha256").exists()
    _build(manifest, mirror, part, scheduler="synchronous", resume=True)
    assert (part / "checksums.sha256").read_bytes() == (out / "checksums.sha256").read_bytes()


def test_local_cluster_and_synchronous_builds_are_byte_identical(edge, tmp_path):
    manifest, mirror, out = edge
    cluster = tmp_path / "cluster.zarr"
    _build(manifest, mirror, cluster, scheduler=None, workers=2)
    assert (cluster / "checksums.sha256").read_bytes() == (out / "checksums.sha256").read_bytes()


def test_overwrite_deletes_only_the_stores_files(tiled_store, tmp_path):
    copy = tmp_path / "copy.zarr"
    shutil.copytree(tiled_store, copy)
    entry = next(iter(_volumes(copy)))
    args = ["--demo", "small", "--tiles", "--tile-size", "32", "--tile-stride", "16", "--out", str(copy),
            "--scheduler", "synchronous", "--no-progress", "--overwrite"]
    (copy / "volumes" / entry / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match=f"did not write \\(volumes/{entry}/notes.txt\\)"):
        build_main(args)
    assert (copy / "volumes" / entry / "notes.txt").read_text() == "mine"
    assert (copy / "volumes" / entry / "element" / "zarr.json").exists()  # nothing deleted
    (copy / "volumes" / entry / "notes.txt").unlink()
    assert build_main(args) == 0
    assert (copy / "checksums.sha256").read_bytes() == (Path(tiled_store) / "checksums.sha256").read_bytes()
