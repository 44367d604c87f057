"""``rnamotif detect`` (issue 37): the acceptance test on a real 50S volume (MRC files that
``mrcfile.validate`` accepts, on the input's grid), the identity network through the whole
path, the resampling back to the map's grid, the model tables, and the one-line errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.ndimage import map_coordinates

from rnamotif_data.cli import run
from rnamotif_data.cli.detect import main as detect_main
from rnamotif_data.em.maps import DensityMap, read_map, write_map
from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.errors import InputError
from rnamotif_data.learn.checkpoints import save_checkpoint
from rnamotif_data.learn.detect import (
    DetectConfig,
    density_volume,
    detect_volume,
    instance_scores,
    most_probable,
    predicted_sites,
    residue_predictions,
    to_map_grid,
    write_like,
)
from rnamotif_data.learn.networks import build_network
from rnamotif_data.learn.segnet import (
    SegmentationCheckpoint,
    UNet3D,
    load_segmentation_checkpoint,
    save_segmentation_checkpoint,
)
from rnamotif_data.rna.elements import ELEMENT_NAMES, assign_elements
from rnamotif_data.samples.volumes import VolumeConfig, VolumeGrid, label_volumes, volume_grid
from rnamotif_data.storage.outputs import output_state

from ..conftest import DEMO, shared, write_raw_mrc
from .test_segnet import randomise_norms

HEADER = ("nx", "ny", "nz", "mapc", "mapr", "maps", "nxstart", "nystart", "nzstart", "mx", "my", "mz")


def _checkpoint(path: Path, voxel_size: float = 1.0, *, width: int = 4, depth: int = 2) -> Path:
    torch.manual_seed(0)
    net = randomise_norms(UNet3D(width=width, depth=depth))
    return save_segmentation_checkpoint(net, path, network="unet3d", tile=32, class_names=ELEMENT_NAMES,
                                        volume_config=VolumeConfig(voxel_size=voxel_size))


def _cli(capsys, *argv) -> tuple[int, str]:
    rc = run(detect_main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _assert_on_the_grid_of(out: Path, map_path: Path, n_classes: int = len(ELEMENT_NAMES)) -> None:
    """Every MRC file of ``out`` validates and has the input's header geometry."""
    src = read_map(map_path)
    with warnings.catch_warnings():  # the 50S volumes' zero machine stamp
        warnings.simplefilter("ignore", RuntimeWarning)
        with mrcfile.open(map_path, permissive=True, header_only=True) as m:
            ref = m.header.copy()
    files = sorted(out.glob("*.mrc"))
    assert len(files) == 1 + n_classes
    for f in files:
        assert mrcfile.validate(str(f), print_file=open("/dev/null", "w")), f  # noqa: SIM115
        got = read_map(f)
        assert got.shape == src.shape and got.axis_order == src.axis_order and got.nstart_xyz == src.nstart_xyz
        np.testing.assert_array_equal(got.voxel_size, src.voxel_size)
        np.testing.assert_array_equal(got.origin, src.origin)
        assert got.header_origin == src.header_origin
        with mrcfile.open(f, header_only=True) as m:
            for name in HEADER:
                assert int(getattr(m.header, name)) == int(getattr(ref, name)), (f.name, name)
            assert int(m.header.mode) == (0 if f.name == "labels.mrc" else 2)


def test_detect_on_a_real_50s_volume(tmp_path, capsys):
    """Acceptance: the whole real 64³ cryoDRGN volume (6.55 Å, NSTART placement, zero machine
    stamp) and its model, a random unet3d on a 4 Å grid (104³; the 1 Å grid is the slow test)."""
    map_path = shared("cryodrgn-50s", "emdb", "emd_90000116.mrc")
    model = shared("cryodrgn-50s", "pdb", "pdb_0000v116.pdb.gz")
    ckpt = _checkpoint(tmp_path / "seg.pt", voxel_size=4.0)
    out = tmp_path / "det"
    rc, err = _cli(capsys, map_path, "--checkpoint", ckpt, "--out", out, "--model", model, "--no-progress",
                   "--device", "cpu")
    assert rc == 0, err
    _assert_on_the_grid_of(out, map_path)
    labels = read_map(out / "labels.mrc").data
    assert set(np.unique(labels).astype(int)) <= set(range(9))
    probs = np.stack([read_map(out / f"prob_{n}.mrc").data for n in ELEMENT_NAMES])
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-4)
    summary = json.loads((out / "detect.json").read_text())
    assert summary["grid_shape"] == [104, 104, 104] and summary["map_shape"] == [64, 64, 64]
    sites = pd.read_parquet(out / "sites.parquet")
    assert list(sites.columns[:6]) == ["site", "element", "x", "y", "z", "n_voxels"]
    assert set(sites["element"]) <= {"hairpin", "bulge", "internal", "junction"}
    assert (sites["volume_A3"] == sites["n_voxels"] * 64.0).all()
    residues = pd.read_parquet(out / "residues.parquet")
    assert len(residues) > 6000 and {"A", "B"} <= set(residues["chain"])
    instances = pd.read_parquet(out / "instances.parquet")
    assert len(instances) > 100 and instances["found"].dtype == bool


@pytest.mark.slow
def test_detect_on_a_real_50s_volume_at_1A(tmp_path, capsys):
    """The acceptance test on the 413³ grid at 1 Å with the default 8-16-32 network."""
    map_path = shared("cryodrgn-50s", "emdb", "emd_90000018.mrc")
    ckpt = _checkpoint(tmp_path / "seg.pt", 1.0, width=8, depth=3)
    rc, err = _cli(capsys, map_path, "--checkpoint", ckpt, "--out", tmp_path / "det", "--no-progress")
    assert rc == 0, err
    _assert_on_the_grid_of(tmp_path / "det", map_path)
    assert json.loads((tmp_path / "det" / "detect.json").read_text())["grid_shape"] == [413, 413, 413]


def test_a_permuted_axis_order_and_nstart_are_kept(tmp_path, capsys):
    """A crop of a real 50S volume written with MAPC/MAPR/MAPS = 2,3,1 and NSTART: the labels
    come back in the map's z-y-x and the file's own axis order."""
    src = read_map(shared("cryodrgn-50s", "emdb", "emd_90000288.mrc"))
    crop = src.data[20:34, 16:28, 18:35]
    path = write_raw_mrc(tmp_path / "crop.mrc", crop, src.voxel_size, nstart_xyz=(18, 16, 20), axis_order=(2, 3, 1))
    ckpt = _checkpoint(tmp_path / "seg.pt", 2.0)
    rc, err = _cli(capsys, path, "--checkpoint", ckpt, "--out", tmp_path / "det", "--no-progress")
    assert rc == 0, err
    _assert_on_the_grid_of(tmp_path / "det", path)
    dmap = read_map(path)
    ck = load_segmentation_checkpoint(ckpt)
    result = detect_volume(dmap, ck)
    np.testing.assert_array_equal(read_map(tmp_path / "det" / "labels.mrc").data,
                                  to_map_grid(result.labels, result.grid, dmap, 0))


class IdentityNet(torch.nn.Module):
    """Logits that are the one-hot of the class id stored in the input (``x × scale``)."""

    multiple = 1

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        ids = torch.round(x[:, 0] * self.scale).long()
        return torch.nn.functional.one_hot(ids, len(ELEMENT_NAMES)).permute(0, 4, 1, 2, 3).float() * 20.0


@pytest.fixture(scope="module")
def map_1a(rna_model):
    """6V5B chain D simulated at 3 Å on a 1 Å grid (the volume grid is the map's own)."""
    return simulate_map(rna_model.atoms, resolution=3.0, voxel_size=1.0, padding=6.0)


def test_identity_network_reproduces_the_label_volume(tmp_path, rna_model, map_1a):
    """The whole detect path (resample, normalise, stitch, argmax, back to the map's grid,
    MRC) with an identity network gives the stored label volume back exactly."""
    elements = assign_elements(rna_model)
    vol = label_volumes(map_1a, rna_model, elements)
    assert vol.grid.shape == map_1a.shape and len(np.unique(vol.element)) >= 4
    top = float(vol.element.max())
    labelled = write_map(tmp_path / "labels_as_density.mrc", vol.element.astype(np.float32), 1.0, map_1a.origin)
    dmap = read_map(labelled)
    ck = SegmentationCheckpoint(model=IdentityNet(top).eval(), network="identity", tile=32, class_names=ELEMENT_NAMES,
                                volume_config=VolumeConfig(normalise_percentile=100.0), extra={}, path=Path("id"))
    result = detect_volume(dmap, ck, "cpu", DetectConfig(tile=40, margin=8))
    np.testing.assert_array_equal(result.labels, vol.element)
    back = to_map_grid(result.labels, result.grid, dmap, 0)
    np.testing.assert_array_equal(back, vol.element)
    write_like(tmp_path / "labels.mrc", back, dmap)
    np.testing.assert_array_equal(read_map(tmp_path / "labels.mrc").data, vol.element)
    # with the true labels, every residue's vote and every instance are right
    residues = residue_predictions(rna_model, elements, result.labels, result.grid, ELEMENT_NAMES)
    voted = residues[residues["n_voxels"] > 0]
    assert len(voted) == len(residues) == 78
    assert (voted["predicted_element"] == voted["true_element"]).mean() >= 0.9
    instances = instance_scores(dmap, rna_model, elements, result.labels, ELEMENT_NAMES)
    assert len(instances) == len(elements.instances) >= 5
    seen = instances[instances["n_voxels"] > 0]  # a loop of no unpaired residue (6V5B D:97-98) has no voxel
    assert len(seen) >= 5 and seen["found"].all() and (seen["predicted_share"] == 1.0).all()
    assert not instances.loc[instances["n_voxels"] == 0, "found"].any()


def test_resampling_back_is_nearest_and_trilinear(sim_map):
    """On a 0.83 Å map: labels from the nearest 1 Å voxel, probabilities as scipy's
    trilinear interpolation at the map's voxel centres (clamped to the grid)."""
    grid = volume_grid(sim_map)
    rng = np.random.default_rng(0)
    probs = rng.random((2, *grid.shape)).astype(np.float32)
    labels = rng.integers(0, 9, grid.shape).astype(np.uint8)
    idx = np.indices(sim_map.shape).reshape(3, -1).astype(np.float64)
    t = idx * (sim_map.voxel_size[::-1, None] / grid.voxel_size)
    t = np.minimum(t, np.asarray(grid.shape)[:, None] - 1.0)
    got = to_map_grid(probs, grid, sim_map, 1)
    assert got.shape == (2, *sim_map.shape)
    for c in range(2):
        ref = map_coordinates(probs[c], t, order=1, mode="nearest").reshape(sim_map.shape)
        np.testing.assert_allclose(got[c], ref, atol=1e-6)
    near = map_coordinates(labels, np.floor(t + 0.5), order=0).reshape(sim_map.shape)
    np.testing.assert_array_equal(to_map_grid(labels, grid, sim_map, 0), near)


# ---------------------------------------------------------------------------- one-line errors
def _one_line(rc: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("INFO", "WARNING"))]
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def small_map(tmp_path) -> Path:
    data = np.random.default_rng(1).random((12, 10, 14)).astype(np.float32)
    return write_map(tmp_path / "small.mrc", data, 1.5, np.array([3.0, -2.0, 7.5]))


def test_a_cube_checkpoint_is_refused(tmp_path, capsys, small_map):
    cube = build_network("motif3dcnn", 1, 5, cube=40)
    save_checkpoint({"model": cube.state_dict(), "config": {"network": "motif3dcnn"}, "cube": 40}, tmp_path / "best.pt")
    line = _one_line(*_cli(capsys, small_map, "--checkpoint", tmp_path / "best.pt", "--out", tmp_path / "o",
                           "--no-progress"))
    assert "best.pt: not a segmentation checkpoint" in line
    assert not (tmp_path / "o").exists()  # a refused input leaves nothing behind


def test_a_tile_the_network_cannot_take_is_refused(tmp_path, capsys, small_map):
    ckpt = _checkpoint(tmp_path / "seg.pt")
    line = _one_line(*_cli(capsys, small_map, "--checkpoint", ckpt, "--out", tmp_path / "o", "--tile", "31",
                           "--no-progress"))
    assert "--tile 31" in line and "multiple of 2" in line
    deep = _checkpoint(tmp_path / "deep.pt", depth=3)
    line = _one_line(*_cli(capsys, small_map, "--checkpoint", deep, "--out", tmp_path / "o", "--margin", "3",
                           "--no-progress"))
    assert "--margin 3" in line and "multiple of 4" in line
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_not_a_map_is_refused(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "seg.pt")
    bad = tmp_path / "notes.mrc"
    bad.write_text("this is not a map\n" * 10)
    line = _one_line(*_cli(capsys, bad, "--checkpoint", ckpt, "--out", tmp_path / "o", "--no-progress"))
    assert "notes.mrc" in line
    line = _one_line(*_cli(capsys, tmp_path / "missing.mrc", "--checkpoint", ckpt, "--out", tmp_path / "o",
                           "--no-progress"))
    assert "missing.mrc: no such map file" in line


def test_an_out_folder_with_a_users_file_is_refused(tmp_path, capsys, small_map):
    ckpt = _checkpoint(tmp_path / "seg.pt")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "labels.mrc").write_bytes(b"my own labels\n")
    line = _one_line(*_cli(capsys, small_map, "--checkpoint", ckpt, "--out", out, "--no-progress"))
    assert "labels.mrc" in line
    assert (out / "labels.mrc").read_bytes() == b"my own labels\n"
    # its own folder: refused without --overwrite, replaced with it
    rc, err = _cli(capsys, small_map, "--checkpoint", ckpt, "--out", tmp_path / "o", "--no-progress")
    assert rc == 0, err
    assert "--overwrite" in _one_line(*_cli(capsys, small_map, "--checkpoint", ckpt, "--out", tmp_path / "o",
                                            "--no-progress"))
    rc, err = _cli(capsys, small_map, "--checkpoint", ckpt, "--out", tmp_path / "o", "--no-progress", "--overwrite")
    assert rc == 0, err
    _assert_on_the_grid_of(tmp_path / "o", small_map)


def test_sites_are_connected_components():
    """Two blobs of one loop class and one of another: three sites, centroids in Å."""
    grid = VolumeGrid(origin=(10.0, 20.0, 30.0), shape=(12, 12, 12), voxel_size=1.0)
    labels = np.zeros(grid.shape, np.uint8)
    labels[1:3, 1:3, 1:3] = 2  # hairpin, 8 voxels
    labels[3, 3, 3] = 2  # touches the first by a corner: the same site (26-connectivity)
    labels[8:10, 8:11, 8:10] = 2  # hairpin, 12 voxels
    labels[5, 9, 1] = 4  # internal, 1 voxel
    probs = np.zeros((9, *grid.shape), np.float32)
    probs[2] = 0.75
    probs[4] = 0.5
    sites = predicted_sites(labels, probs, grid, ELEMENT_NAMES)
    assert list(sites["element"]) == ["hairpin", "hairpin", "internal"]
    assert list(sites["n_voxels"]) == [12, 9, 1]
    np.testing.assert_allclose(sites.loc[0, ["x", "y", "z"]].to_numpy(float), [10 + 8.5, 20 + 9.0, 30 + 8.5])
    np.testing.assert_allclose(sites.loc[2, ["x", "y", "z"]].to_numpy(float), [11.0, 29.0, 35.0])
    assert list(sites["mean_probability"]) == [0.75, 0.75, 0.5]
    assert list(sites["site"]) == [1, 2, 3]


def test_density_is_the_label_volumes_density(rna_model, sim_map):
    """detect resamples and normalises exactly as the label volumes do (bit for bit)."""
    vol = label_volumes(sim_map, rna_model, assign_elements(rna_model))
    grid, density = density_volume(sim_map, VolumeConfig(slab=7))
    assert grid == vol.grid
    np.testing.assert_array_equal(density, vol.density)


def test_a_map_without_a_file_has_no_header_to_copy(tmp_path):
    dmap = DensityMap(data=np.zeros((4, 4, 4), np.float32), voxel_size=np.ones(3), origin=np.zeros(3))
    with pytest.raises(InputError, match="not a map file"):
        write_like(tmp_path / "x.mrc", np.zeros((4, 4, 4), np.uint8), dmap)


def test_detect_on_the_demo_map_with_its_model(tmp_path, capsys):
    """The shipped demo's gzipped EMDB-style map (NSTART placement, 1 Å) and 6V5B: the
    default 8-16-32 network at 1 Å, the files on the map's grid, every residue in a table."""
    map_path = DEMO / "mirror" / "emdb" / "emd_21051.map.gz"
    ckpt = _checkpoint(tmp_path / "seg.pt", 1.0, width=8, depth=3)
    out = tmp_path / "det"
    rc, err = _cli(capsys, map_path, "--checkpoint", ckpt, "--out", out, "--model", DEMO / "mirror" / "pdb" / "6v5b.pdb",
                   "--no-progress")
    assert rc == 0, err
    _assert_on_the_grid_of(out, map_path)
    summary = json.loads((out / "detect.json").read_text())
    assert summary["grid_shape"] == summary["map_shape"] == [138, 62, 55]
    residues = pd.read_csv(out / "residues.csv")
    assert len(residues) == 78 and (residues["n_voxels"] > 0).all()
    assert output_state(out) == "complete"


def test_a_model_without_rna_in_the_map_is_refused_before_any_work(tmp_path, capsys, small_map):
    """--model is checked before the network runs: one line, and nothing left in --out."""
    ckpt = _checkpoint(tmp_path / "seg.pt")
    model = DEMO / "mirror" / "pdb" / "6v5b.pdb"  # far from small.mrc's box
    line = _one_line(*_cli(capsys, small_map, "--checkpoint", ckpt, "--out", tmp_path / "o", "--model", model,
                           "--no-progress"))
    assert "6v5b.pdb" in line and "outside the map" in line
    assert not (tmp_path / "o").exists()
    line = _one_line(*_cli(capsys, small_map, "--checkpoint", ckpt, "--out", tmp_path / "o", "--model",
                           tmp_path / "none.pdb", "--no-progress"))
    assert "none.pdb: no such model file" in line


def test_most_probable_is_argmax_with_ties_to_the_lower_class():
    rng = np.random.default_rng(5)
    p = rng.integers(0, 4, (9, 7, 6, 5)).astype(np.float32)  # many ties
    got = most_probable(p)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, p.argmax(0))


def test_site_statistics_do_not_depend_on_the_chunk():
    """The components' statistics, read a plane at a time, equal those read at once."""
    from scipy import ndimage

    from rnamotif_data.learn import detect as detect_module

    rng = np.random.default_rng(7)
    comp, n = ndimage.label(rng.random((11, 9, 10)) > 0.93, structure=np.ones((3, 3, 3), bool))
    prob = rng.random((11, 9, 10)).astype(np.float32)
    whole = detect_module._component_stats(comp, n, prob)
    planes = detect_module._component_stats(comp, n, prob, chunk=1)
    assert n > 3
    for a, b in zip(whole, planes):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    index = np.arange(1, n + 1)
    np.testing.assert_allclose(whole[1], ndimage.center_of_mass(np.ones_like(prob), comp, index), rtol=1e-12)
    np.testing.assert_allclose(whole[2], ndimage.mean(prob, comp, index), rtol=1e-6)
    np.testing.assert_allclose(whole[3], ndimage.maximum(prob, comp, index), rtol=1e-7)
