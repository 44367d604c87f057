"""Shared fixtures: real data from ../shared/data (skipped with a reason when absent)
and maps simulated from real models."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from rnamotif_data.em.maps import DensityMap
from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.rna.structure import read_model

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RNAMOTIF_SHARED_DATA", REPO.parent / "shared" / "data"))
# `rnamotif split` reads the homology tables from here, never from the network (issue 40)
os.environ.setdefault("RNAMOTIF_HOMOLOGY_DIR", str(SHARED_DATA / "homology"))
SEED_HAIRPIN = SHARED_DATA / "seed-sample" / "EMD-20353_6PJ6_hairpin3_2606"
DEMO = REPO / "demo"

#: Motifs read off 6V5B chain D (../shared/data/README.md), with their fine types.
MOTIFS_6V5B = {
    "D:14-16,88-90": "1x1",
    "D:19-22,82-85": "2x2",
    "D:30-31,72-74": "bulge1",
    "D:31-33,71-72": "bulge1",
    "D:3-9,95-100": "4x5",
}


def shared(*parts: str) -> Path:
    """Path under ../shared/data; skips the test with a clear reason if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not available: {path} (set RNAMOTIF_SHARED_DATA)")
    return path


def seed_mirror(dest: Path) -> Path:
    """A builder mirror (``pdb/6pj6.pdb``, ``emdb/emd_20353.mrc``) of the real seed hairpin
    box of EMD-20353 / 6PJ6, copied under ``dest`` (tests only; never into the project)."""
    box = shared("seed-sample", SEED_HAIRPIN.name)
    (dest / "pdb").mkdir(parents=True)
    (dest / "emdb").mkdir()
    shutil.copy(box / "6PJ6_hairpin3_2606.pdb", dest / "pdb" / "6pj6.pdb")
    shutil.copy(box / "EMD-20353_6PJ6_hairpin3_2606.mrc", dest / "emdb" / "emd_20353.mrc")
    return dest


@pytest.fixture(scope="session")
def seed_map_path() -> Path:
    """Real EMD-20353 box around the 6PJ6 J:85-91 hairpin (ORIGIN-placed, 0.822 Å)."""
    return shared("seed-sample", SEED_HAIRPIN.name, f"{SEED_HAIRPIN.name}.mrc")


@pytest.fixture(scope="session")
def seed_model_path() -> Path:
    """Deposited 6PJ6 coordinates of the 7 hairpin nucleotides (with hydrogens)."""
    return shared("seed-sample", SEED_HAIRPIN.name, "6PJ6_hairpin3_2606.pdb")


@pytest.fixture(scope="session")
def rna_model_path() -> Path:
    """Real 78-nt RNA chain D of PDB 6V5B (shipped in demo/, CC0)."""
    return DEMO / "mirror" / "pdb" / "6v5b.pdb"


@pytest.fixture(scope="session")
def rna_model(rna_model_path):
    return read_model(rna_model_path)


@pytest.fixture(scope="session")
def sim_map(rna_model) -> DensityMap:
    """Noise-free map simulated from 6V5B chain D at 3 Å, 0.83 Å voxels (EMDB-like)."""
    return simulate_map(rna_model.atoms, resolution=3.0, voxel_size=0.83, padding=8.0)


def write_raw_mrc(path: Path, data_zyx: np.ndarray, voxel_size, *, origin=(0.0, 0.0, 0.0),
                  nstart_xyz=(0, 0, 0), axis_order=(1, 2, 3)) -> Path:
    """Write a map with mrcfile directly, with any axis order and placement.

    Independent of the package's writer: the array is stored in the file's
    column/row/section order given by ``axis_order`` = (MAPC, MAPR, MAPS), and NSTART is
    written per file axis (columns, rows, sections) as the CCP4 convention says.
    """
    mapc, mapr, maps = axis_order
    # file data axes are (sections, rows, columns) labelled (maps, mapr, mapc);
    # data_zyx axes are labelled (3, 2, 1)
    src_axis = {3: 0, 2: 1, 1: 2}
    file_data = np.ascontiguousarray(data_zyx.transpose([src_axis[maps], src_axis[mapr], src_axis[mapc]]))
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=float), (3,))
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(file_data.astype(np.float32))
        h = mrc.header
        h.mapc, h.mapr, h.maps = mapc, mapr, maps
        n_xyz = [data_zyx.shape[2], data_zyx.shape[1], data_zyx.shape[0]]
        h.mx, h.my, h.mz = n_xyz
        h.cella = tuple(float(n * v) for n, v in zip(n_xyz, vs))
        h.origin = tuple(float(v) for v in origin)
        crs = [nstart_xyz[a - 1] for a in axis_order]
        h.nxstart, h.nystart, h.nzstart = crs
        mrc.update_header_stats()
    return path


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> str:
    """The shipped demo built once (7 samples), as a path string."""
    from rnamotif_data.cli.build import main as build_main

    out = tmp_path_factory.mktemp("demo") / "demo.zarr"
    assert build_main(["--demo", "small", "--out", str(out), "--scheduler", "synchronous", "--no-progress"]) == 0
    return str(out)


@pytest.fixture(scope="session")
def tiled_store(tmp_path_factory) -> str:
    """The small demo (one entry, 6V5B chain D) built once with ``--tiles``, 32³ tiles every
    16 voxels (``TileConfig(size=32, stride=16)``), synchronously, as a path string (~5 s).
    Read only: a test that damages it copies it first."""
    from rnamotif_data.inputs.demo import SMALL_MANIFEST, SMALL_MIRROR
    from rnamotif_data.inputs.sources import SourceConfig
    from rnamotif_data.pipeline.builder import build
    from rnamotif_data.pipeline.config import BuildConfig
    from rnamotif_data.samples.tiles import TileConfig

    out = tmp_path_factory.mktemp("tiled") / "tiled.zarr"
    base = tmp_path_factory.getbasetemp()
    build(SMALL_MANIFEST, str(out), BuildConfig(tiles=True, tile=TileConfig(size=32, stride=16)),
          source_config=SourceConfig(cache_dir=base / "tiled-cache", mirror=SMALL_MIRROR, offline=True),
          scheduler="synchronous", progress=False)
    return str(out)


@pytest.fixture(scope="session")
def multi_entry_store(tmp_path_factory) -> str:
    """The multi-entry fixture (rnamotif_data.testing.multi_entry): 15 real Atlas models + 6V5B chain D
    with simulated maps, and the 4 real cryoDRGN 50S volumes (every 4th row), built once
    into one store (about 2 minutes on 2 cores)."""
    from rnamotif_data.cli.build import main as build_main
    from rnamotif_data.testing.multi_entry import make_fixture

    for part in ("atlas-models", "rna-models", "cryodrgn-50s"):
        shared(part)  # skips with the reason when the shared data are absent
    out = tmp_path_factory.mktemp("multi")
    manifest = make_fixture(SHARED_DATA, out)
    store = out / "store.zarr"
    assert build_main(["--manifest", str(manifest), "--mirror", str(out / "mirror"), "--out", str(store),
                       "--no-progress"]) in (0, 3)
    return str(store)


def store_tree(root: Path) -> dict[str, bytes]:
    """Every file's bytes under a store; the group's zarr.json without ``build_timing``
    (seconds measured by the run, the one thing two builds of the same inputs may not
    share; asserted present)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p == root / "zarr.json":
                meta = json.loads(data)
                assert set(meta["attributes"].pop("build_timing")["cpu"]) >= {"read", "background", "writing"}
                data = json.dumps(meta, sort_keys=True).encode()
            out[str(p.relative_to(root))] = data
    return out


@pytest.fixture(scope="session")
def tiled_training_store(tmp_path_factory) -> str:
    """The shipped training demo (15 real models, simulated maps) built once with ``--tiles``
    (64³ tiles every 32 voxels) and its tile split at level ``entry`` (no homology tables
    needed), as a path string."""
    from rnamotif_data.cli.build import main as build_main
    from rnamotif_data.cli.split import main as split_main

    out = tmp_path_factory.mktemp("tiled") / "demo.zarr"
    assert build_main(["--tiles", "--out", str(out), "--scheduler", "synchronous", "--no-progress"]) == 0
    assert split_main([str(out), "--tiles", "--level", "entry"]) == 0
    return str(out)
