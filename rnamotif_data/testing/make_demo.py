"""Regenerate the shipped demo map from the shipped demo model.

Usage::

    rnamotif make-demo [--out demo]

Writes ``demo/mirror/emdb/emd_21051.map.gz`` (the simulated map) and
``demo/manifest.parquet`` (the demo's motif occurrences); ``demo/mirror/pdb/6v5b.pdb`` is
the shipped model. ``rnamotif build`` with no arguments builds them.

The demo is a real, CC0 PDB model, chain D (78 nt) of PDB 6V5B (fitted in EMD-21051,
whose real map is not shipped), with a density map **simulated** from it, filed in the
demo mirror under the entry's EMDB ID so the builder finds it as it would the real one: gemmi's
electron-scattering calculator at 3.0 Å resolution, 1.0 Å voxels, plus Gaussian noise of
0.2 × the map's sd (seed 0). The map is written as EMDB writes maps: ``.map.gz``,
ORIGIN = 0, box placed by NSTART. It is not experimental data.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq

from rnamotif_data.em.maps import write_map
from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.inputs.schema import rows_to_table, validate_manifest
from rnamotif_data.rna.structure import read_model

log = logging.getLogger("rnamotif_data.testing.make_demo")

DEMO_MODEL = "mirror/pdb/6v5b.pdb"
DEMO_MAP = "mirror/emdb/emd_21051.map.gz"
DEMO_RESOLUTION = 3.0
DEMO_VOXEL_SIZE = 1.0
DEMO_NOISE_SD = 0.2
DEMO_SEED = 0
DEMO_MANIFEST = "manifest.parquet"
DEMO_PDB_ID = "6V5B"
DEMO_EMDB_ID = "EMD-21051"
#: The demo's motif occurrences (chain D of 6V5B; secondary structure from its base pairs).
DEMO_MOTIFS = {
    "D:14-16,88-90": "1x1",
    "D:19-22,82-85": "2x2",
    "D:30-31,72-74": "bulge1",
    "D:31-33,71-72": "bulge1",
    "D:3-9,95-100": "4x5",
}


def make_demo_map(model_path: Path):
    """Simulate the demo map (a :class:`~rnamotif_data.em.maps.DensityMap`) from the demo model."""
    model = read_model(model_path)
    return simulate_map(model.atoms, DEMO_RESOLUTION, DEMO_VOXEL_SIZE, padding=10.0,
                        noise_sd=DEMO_NOISE_SD, seed=DEMO_SEED, name=DEMO_MAP)


def demo_manifest_rows() -> list[dict]:
    """The demo manifest's rows (manifest schema, design §5)."""
    return [{"pdb_id": DEMO_PDB_ID, "emdb_id": DEMO_EMDB_ID, "motif_type": t, "selection": sel,
             "resolution": DEMO_RESOLUTION, "source": "demo (map simulated from 6V5B chain D)",
             "source_id": f"demo-{k}", "motif_id": f"demo-{k}"}
            for k, (sel, t) in enumerate(DEMO_MOTIFS.items())]


def write_demo(out: Path) -> tuple[Path, Path]:
    """Write the demo's simulated map (from the model already in ``out``) and its manifest
    under ``out`` (the layout of the module docstring); returns (map path, manifest path)."""
    m = make_demo_map(out / DEMO_MODEL)
    path = write_map(out / DEMO_MAP, m.data, m.voxel_size, m.origin, placement="nstart")
    log.info("wrote %s: %s voxels (z-y-x) at %.2f Å, origin %s Å", path, m.shape, DEMO_VOXEL_SIZE, m.origin)
    table, _ = validate_manifest(rows_to_table(demo_manifest_rows()), strict=True)
    pq.write_table(table, out / DEMO_MANIFEST)
    log.info("wrote %s: %d motif occurrences", out / DEMO_MANIFEST, table.num_rows)
    return path, out / DEMO_MANIFEST
