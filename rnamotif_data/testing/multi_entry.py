"""A multi-entry fixture from real structures: many entries, so splits and the audit are
tested on more than one map.

``rnamotif multi-entry --shared ../shared/data --out DIR [--no-50s] [--build]``

Writes ``DIR/mirror/`` (``pdb/``, ``emdb/``) and ``DIR/manifest.parquet``:

* the 15 real deposited models of ``atlas-models/`` (X-ray; CC0) and the real 6V5B chain
  of ``rna-models/``, each with a map **simulated** from it (gemmi electron scattering at
  ``resolution`` Å on a ``voxel_size`` Å grid, Gaussian noise of ``noise_sd`` × the map's
  sd; :func:`rnamotif_data.em.simulate.simulate_map`) under a made-up EMDB ID
  ``EMD-95001`` ... (never a real entry; the PDB IDs are the real ones);
* their motifs: the RNA 3D Motif Atlas 4.5 instances of those entries
  (``manifests/motif-atlas-4.5.parquet``; every residue is modelled) and the 5 loops of
  6V5B chain D (``demo/manifest.parquet``);
* optionally the four real cryoDRGN 50S volumes and their manifest (every ``fifty_s_step``-th
  row), read in place from ``cryodrgn-50s/`` (never copied into the project).

The shared model files and 50S volumes are linked into ``DIR/mirror`` (symbolic links;
copies only where links are impossible, and only there, outside the project), so one
build reads everything: ``rnamotif build --manifest DIR/manifest.parquet
--mirror DIR/mirror --out STORE`` (``--build`` runs it into ``DIR/store.zarr``).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from rnamotif_data.em.maps import write_map
from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.inputs.schema import rows_to_table
from rnamotif_data.rna.structure import read_model

log = logging.getLogger("rnamotif_data.testing.multi_entry")

__all__ = ["FixtureConfig", "make_fixture"]

_REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class FixtureConfig:
    """How the fixture's maps are simulated and which rows it holds.

    Attributes
    ----------
    resolution:
        Å, of the simulated maps.
    voxel_size:
        Å, of the simulated maps.
    noise_sd:
        Noise as a fraction of the simulated map's sd.
    fifty_s_step:
        Every n-th manifest row of the 50S volumes (0: no 50S entries).
    """

    resolution: float = 4.0
    voxel_size: float = 1.5
    noise_sd: float = 0.3
    fifty_s_step: int = 4


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        return
    try:
        os.symlink(src.resolve(), dest)
    except OSError:
        shutil.copyfile(src, dest)


def make_fixture(shared: Path, out: Path, config: FixtureConfig = FixtureConfig()) -> Path:
    """Write the fixture's mirror and manifest into ``out``; returns the manifest path.

    Raises
    ------
    FileNotFoundError
        If ``shared`` lacks ``atlas-models/`` or ``rna-models/``.
    """
    models = shared / "atlas-models"
    index = pd.read_csv(models / "index.csv")
    atlas = pd.read_parquet(_REPO / "manifests" / "motif-atlas-4.5.parquet")
    mirror = out / "mirror"
    rows: list[dict] = []
    entries = [(str(r.pdb_id), models / str(r.file)) for r in index.itertuples()]
    entries.append(("6V5B", shared / "rna-models" / "6v5b_drna.pdb"))
    for n, (pdb_id, path) in enumerate(sorted(entries)):
        emdb = f"EMD-{95001 + n}"
        suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
        _link(path, mirror / "pdb" / f"{pdb_id.lower()}{suffix}")
        mpath = mirror / "emdb" / f"emd_{95001 + n}.map.gz"
        if not mpath.exists():
            model = read_model(path, name=pdb_id)
            m = simulate_map(model.atoms, config.resolution, config.voxel_size, padding=8.0,
                             noise_sd=config.noise_sd, seed=n)
            write_map(mpath, m.data, m.voxel_size, m.origin, placement="nstart")
        if pdb_id == "6V5B":
            demo = pd.read_parquet(_REPO / "demo" / "manifest.parquet")
            sub = demo.assign(emdb_id=emdb, resolution=config.resolution, source="demo")
        else:
            sub = atlas[atlas["pdb_id"] == pdb_id].assign(emdb_id=emdb, resolution=config.resolution)
        rows += sub.to_dict("records")
        log.info("%s / %s: %d motifs", pdb_id, emdb, len(sub))
    if config.fifty_s_step:
        src = shared / "cryodrgn-50s"
        for d in ("pdb", "emdb"):
            for f in sorted((src / d).iterdir()):
                _link(f, mirror / d / f.name)
        fifty = pd.read_parquet(src / "manifest.parquet").iloc[:: config.fifty_s_step]
        rows += fifty.to_dict("records")
    manifest = out / "manifest.parquet"
    clean = [{k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in r.items()} for r in rows]
    pq.write_table(rows_to_table(clean), manifest)
    log.info("fixture %s: %d manifest rows, %d entries", out, len(rows), len({(r['pdb_id'], r['emdb_id'])
                                                                              for r in rows}))
    return manifest
