"""Regenerate the shipped demo map from the shipped demo model.

Usage::

    python -m builders.make_demo [--out demo]

The demo is a real, CC0 PDB model, chain D (78 nt) of PDB 6V5B (fitted in EMD-21051,
whose map is not shipped), with a density map **simulated** from it: gemmi's
electron-scattering calculator at 3.0 Å resolution, 1.0 Å voxels, plus Gaussian noise of
0.2 × the map's sd (seed 0). The map is written as EMDB writes maps: ``.map.gz``,
ORIGIN = 0, box placed by NSTART. It is not experimental data.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rnamotif_data.maps import write_mrc
from rnamotif_data.simulate import simulate_map
from rnamotif_data.structure import read_model

from .cli import run

log = logging.getLogger("builders.make_demo")

DEMO_MODEL = "6v5b_drna.pdb"
DEMO_MAP = "6v5b_drna_simulated_3A.map.gz"
DEMO_RESOLUTION = 3.0
DEMO_VOXEL_SIZE = 1.0
DEMO_NOISE_SD = 0.2
DEMO_SEED = 0


def make_demo_map(model_path: Path):
    """Simulate the demo map (a :class:`~rnamotif_data.maps.DensityMap`) from the demo model."""
    model = read_model(model_path)
    return simulate_map(model.atoms, DEMO_RESOLUTION, DEMO_VOXEL_SIZE, padding=10.0,
                        noise_sd=DEMO_NOISE_SD, seed=DEMO_SEED, name=DEMO_MAP)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m builders.make_demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "demo")
    args = p.parse_args(argv)
    m = make_demo_map(args.out / DEMO_MODEL)
    path = write_mrc(args.out / DEMO_MAP, m.data, m.voxel_size, m.origin, placement="nstart")
    log.info("wrote %s: %s voxels (z-y-x) at %.2f Å, origin %s Å", path, m.shape, DEMO_VOXEL_SIZE, m.origin)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
