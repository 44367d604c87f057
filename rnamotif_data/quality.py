"""Map-model quality metrics for a motif.

``fit_z`` (DESIGN.md section 2): how far above the map's mean the density at the motif's
heavy atoms lies, in map standard deviations,

    fit_z = (mean over heavy atoms of the trilinearly interpolated raw map value
             - map mean) / map sd.

A correctly placed model on a real map sits several sd above the mean (the upstream
seed-sample hairpin of EMD-20353 gives about +3.3); the same atoms shifted by 8 Å give
under +1. It is a placement check, not a resolution-aware fit score (Q-score and CC_mask
measure that).
"""

from __future__ import annotations

import numpy as np

from .maps import DensityMap, MapStatistics

__all__ = ["fit_z"]


def fit_z(density_map: DensityMap, atom_xyz: np.ndarray, stats: MapStatistics | None = None) -> float:
    """Map-model fit z-score of a set of atoms.

    Parameters
    ----------
    density_map:
        The map, in the model's frame.
    atom_xyz:
        ``(N, 3)`` heavy-atom coordinates, Å, x-y-z.
    stats:
        Whole-map statistics (computed and cached on the map if omitted).

    Returns
    -------
    float
        ``(mean map value at the atoms - map mean) / map sd``; atoms outside the map's
        box read as zero (zero padding), never as wrapped density.

    Raises
    ------
    ValueError
        If ``atom_xyz`` is empty or the map has zero standard deviation.
    """
    atom_xyz = np.asarray(atom_xyz, dtype=np.float64).reshape(-1, 3)
    if atom_xyz.shape[0] == 0:
        raise ValueError("fit_z needs at least one atom")
    if stats is None:
        stats = density_map.statistics()
    if stats.sd == 0:
        raise ValueError(f"{density_map.path}: map is constant (sd = 0); fit_z is undefined")
    values = density_map.interpolate(atom_xyz)
    return float((values.mean() - stats.mean) / stats.sd)
