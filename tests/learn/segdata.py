"""Label volumes of real models with simulated maps, for the segmentation tests: the
density and element/instance volumes of :func:`rnamotif_data.samples.volumes.label_volumes`,
plus each voxel's residue (the residue of the atom that labels it, found independently
with a KD-tree), and tiles cut from them in memory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.rna.elements import assign_elements
from rnamotif_data.rna.structure import read_model
from rnamotif_data.samples.volumes import VolumeConfig, label_atoms, label_volumes

from ..conftest import DEMO

#: 6V5B chain D (78 nt), shipped in demo/ (CC0): always present
MODEL_6V5B = DEMO / "mirror" / "pdb" / "6v5b.pdb"


@lru_cache(maxsize=4)
def entry_volumes(path: Path, resolution: float, noise_sd: float = 0.0) -> dict:
    """``density`` (normalised), ``element``, ``instance`` and ``residue`` (-1 none) volumes,
    ``(D, H, W)`` z-y-x at 1 Å, of a map simulated from the model at ``resolution`` Å
    (0.83 Å voxels, resampled to 1 Å as the build does)."""
    model = read_model(path)
    sim = simulate_map(model.atoms, resolution=resolution, voxel_size=0.83, padding=8.0, noise_sd=noise_sd)
    elements = assign_elements(model)
    vol = label_volumes(sim, model, elements, VolumeConfig())
    atoms = label_atoms(model, elements)
    idx = np.indices(vol.grid.shape).reshape(3, -1).T
    d, j = cKDTree(atoms.xyz).query(vol.grid.point(idx), k=1)
    residue = np.where(d <= 1.5, model.atoms.residue_index[atoms.rows[j]], -1).reshape(vol.grid.shape)
    return {"density": vol.density, "element": vol.element, "instance": vol.instance.astype(np.int64),
            "residue": residue.astype(np.int64), "n_residues": len(model.atoms.residues)}


def cut_tiles(vol: dict, tile: int, *, min_rna: int = 1) -> list[dict]:
    """Non-overlapping ``tile``³ tiles of a volume dict (edges dropped) holding at least
    ``min_rna`` RNA voxels, as the tile dataset yields them: ``density`` float32
    ``(1, T, T, T)``, ``element`` int64 ``(T, T, T)``, ``tile_index``, plus ``residue``
    and ``instance``."""
    import torch

    D, H, W = vol["element"].shape
    out = []
    for z in range(0, D - tile + 1, tile):
        for y in range(0, H - tile + 1, tile):
            for x in range(0, W - tile + 1, tile):
                box = (slice(z, z + tile), slice(y, y + tile), slice(x, x + tile))
                el = vol["element"][box]
                if int(np.isin(el, (1, 2, 3, 4, 5, 6)).sum()) < min_rna:
                    continue
                out.append({"density": torch.from_numpy(np.ascontiguousarray(vol["density"][box][None])),
                            "element": torch.from_numpy(el.astype(np.int64)), "tile_index": len(out),
                            "residue": torch.from_numpy(vol["residue"][box].copy()),
                            "instance": torch.from_numpy(vol["instance"][box].copy())})
    return out
