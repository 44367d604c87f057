"""The shipped demos, ready to build without the network.

* the **training demo** (``rnamotif build`` with no ``--manifest``): 15 real models (14
  deposited X-ray entries and the 6V5B chain D; CC0) in ``demo/training/``, their RNA 3D
  Motif Atlas loops in ``demo/training/manifest.parquet``, and a map **simulated** from each
  model on first use into a cache (:func:`training_mirror`): enough independent entries to
  split into five folds, with all five classes, so the README runs build → split → train →
  evaluate on it;
* the **small demo** (``--demo small``): one entry, the 6V5B chain D with a shipped
  simulated map (``demo/manifest.parquet``, ``demo/mirror/``), the seconds-fast fixture of
  the tests.

The simulated maps are not experimental density; their EMDB IDs (``EMD-95001`` …) are made
up and name no real entry.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from rnamotif_data.em.maps import write_map
from rnamotif_data.em.simulate import simulate_map
from rnamotif_data.errors import MissingFileError
from rnamotif_data.inputs.sources import default_cache_dir
from rnamotif_data.rna.structure import read_model

log = logging.getLogger("rnamotif_data.inputs.demo")

__all__ = ["DEMO_DIR", "SMALL_MANIFEST", "SMALL_MIRROR", "TRAINING_DIR", "TRAINING_MANIFEST", "SIMULATION",
           "training_mirror"]

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
SMALL_MANIFEST = DEMO_DIR / "manifest.parquet"
SMALL_MIRROR = DEMO_DIR / "mirror"
TRAINING_DIR = DEMO_DIR / "training"
TRAINING_MANIFEST = TRAINING_DIR / "manifest.parquet"
#: how the training demo's maps are simulated (gemmi electron scattering; Å, Å, × map sd)
SIMULATION = {"resolution": 4.0, "voxel_size": 1.5, "noise_sd": 0.3, "padding": 8.0}


def _model_file(pdb_id: str) -> Path:
    if pdb_id == "6V5B":
        return SMALL_MIRROR / "pdb" / "6v5b.pdb"
    found = sorted((TRAINING_DIR / "models").glob(f"{pdb_id.lower()}.*"))
    if not found:
        raise MissingFileError(f"{TRAINING_DIR / 'models'}: no model file of {pdb_id} (the training demo is incomplete)")
    return found[0]


def training_mirror(dest: Path | None = None) -> Path:
    """The training demo's mirror (``pdb/``, ``emdb/``), made in ``dest`` (default
    ``<cache>/demo-training``, :func:`rnamotif_data.inputs.sources.default_cache_dir`) on first
    use: models linked (copied where links are impossible) from the repository, each map
    simulated from its model (:data:`SIMULATION`; seed = the entry's rank, so the bytes
    are the same on every machine) and written atomically. Returns ``dest``.

    Raises
    ------
    rnamotif_data.errors.MissingFileError
        If the repository's ``demo/training/`` is missing (an installed package without its
        source tree: clone the repository, or pass ``--manifest``).
    """
    if not TRAINING_MANIFEST.exists():
        raise MissingFileError(f"{TRAINING_MANIFEST}: the training demo ships with the repository, not the installed "
                               "package; run from a clone, or give --manifest")
    dest = Path(dest) if dest is not None else default_cache_dir() / "demo-training"
    entries = (pd.read_parquet(TRAINING_MANIFEST, columns=["pdb_id", "emdb_id"]).drop_duplicates()
               .sort_values("emdb_id").itertuples(index=False))
    made = 0
    for n, (pdb_id, emdb_id) in enumerate(entries):
        model_path = _model_file(pdb_id)
        link = dest / "pdb" / (pdb_id.lower() + "".join(model_path.suffixes[-2:] if model_path.name.endswith(".gz")
                                                         else model_path.suffixes[-1:]))
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.symlink(model_path, link)
            except OSError:
                shutil.copyfile(model_path, link)
        number = emdb_id.split("-")[1]
        map_path = dest / "emdb" / f"emd_{number}.map.gz"
        if map_path.exists():
            continue
        map_path.parent.mkdir(parents=True, exist_ok=True)
        model = read_model(model_path, name=pdb_id)
        m = simulate_map(model.atoms, SIMULATION["resolution"], SIMULATION["voxel_size"],
                         padding=SIMULATION["padding"], noise_sd=SIMULATION["noise_sd"], seed=n)
        tmp = map_path.with_name(f"emd_{number}.tmp-{os.getpid()}.map.gz")
        write_map(tmp, m.data, m.voxel_size, m.origin, placement="nstart")
        os.replace(tmp, map_path)
        made += 1
    if made:
        log.info("training demo: simulated %d maps (not experimental density) into %s", made, dest / "emdb")
    return dest
