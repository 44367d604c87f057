"""Simulated entries for tests and benchmarks: a mirror of models and maps made from a
real RNA model, placed by rigid transforms, with maps simulated at chosen resolutions.

Every simulated entry is a copy of a real model (e.g. 6V5B chain D, CC0) rotated and
translated, with a map simulated from it by gemmi's electron-scattering calculator
(:func:`rnamotif_data.em.simulate.simulate_map`) and written EMDB-style (``.map.gz``, NSTART).
They are not experimental data; their PDB and EMDB IDs are made up (``9S01``,
``EMD-90001``) and must never enter a released dataset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import gemmi
import numpy as np
from scipy.spatial.transform import Rotation

from rnamotif_data.em.maps import write_map
from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.rna.structure import read_model

log = logging.getLogger("rnamotif_data.testing.simulate_entries")


@dataclass(frozen=True)
class SimulatedEntry:
    """One simulated entry: IDs, resolution (Å), and the rigid transform of the model."""

    pdb_id: str
    emdb_id: str
    resolution: float
    seed: int
    voxel_size: float = 1.0
    padding: float = 10.0
    noise_sd: float = 0.2
    map_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def number(self) -> str:
        """EMDB number (``EMD-90001`` -> ``90001``)."""
        return self.emdb_id.split("-")[1]


def transformed_model(model_path: Path, out: Path, seed: int) -> Path:
    """Write ``model_path`` rotated by a seeded random rotation about its centroid and
    translated by up to 50 Å, as PDB, to ``out``."""
    st = gemmi.read_structure(str(model_path))
    st.remove_hydrogens()
    rng = np.random.default_rng(seed)
    rot = Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix()
    shift = rng.uniform(-50, 50, size=3)
    xyz = np.array([a.pos.tolist() for ch in st[0] for res in ch for a in res])
    centre = xyz.mean(axis=0)
    for ch in st[0]:
        for res in ch:
            for a in res:
                p = rot @ (np.array(a.pos.tolist()) - centre) + centre + shift
                a.pos = gemmi.Position(*p)
    out.parent.mkdir(parents=True, exist_ok=True)
    st.setup_entities()
    st.write_pdb(str(out))
    return out


def write_entry(model_path: Path, mirror: Path, entry: SimulatedEntry) -> tuple[Path, Path]:
    """Write one simulated entry into ``mirror`` (``pdb/{id}.pdb``, ``emdb/emd_{n}.map.gz``).

    ``map_shift`` (Å, x-y-z) moves the map's origin away from the model: a misplaced map,
    as an ORIGIN/NSTART mix-up would give.
    """
    pdb = transformed_model(model_path, mirror / "pdb" / f"{entry.pdb_id.lower()}.pdb", entry.seed)
    model = read_model(pdb)
    m = simulate_map(model.atoms, entry.resolution, entry.voxel_size, padding=entry.padding,
                     noise_sd=entry.noise_sd, seed=entry.seed)
    origin = m.origin + np.asarray(entry.map_shift, dtype=float)
    path = write_map(mirror / "emdb" / f"emd_{entry.number}.map.gz", m.data, m.voxel_size, origin,
                     placement="origin" if any(entry.map_shift) else "nstart")
    return pdb, path
