"""The shipped demos, ready to build without the network.

* the **training demo** (``rnamotif build`` with no ``--manifest``): 15 real models (14
  deposited X-ray entries and the 6V5B chain D; CC0) in ``demo/training/``, their RNA 3D
  Motif Atlas loops in ``demo/training/manifest.parquet``, and a map **simulated** from each
  model on first use into a cache (:func:`training_mirror`, keyed by content): enough independent entries to
  split into five folds, with all five classes, so the README runs build → split → train →
  evaluate on it;
* the **small demo** (``--demo small``): one entry, the 6V5B chain D with a shipped
  simulated map (``demo/manifest.parquet``, ``demo/mirror/``), the seconds-fast fixture of
  the tests.

The simulated maps are not experimental density; their EMDB IDs (``EMD-95001`` …) are made
up and name no real entry.
"""

from __future__ import annotations

import json
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
from rnamotif_data.storage.checksums import sha256_file

log = logging.getLogger("rnamotif_data.inputs.demo")

__all__ = ["DEMO_DIR", "SMALL_MANIFEST", "SMALL_MIRROR", "TRAINING_DIR", "TRAINING_MANIFEST", "SIMULATION",
           "RECORD", "training_mirror", "simulated_maps_note"]

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


#: the record of what the cached training mirror was made from (in the mirror's folder)
RECORD = "made-from.json"


def _copy_atomic(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` by a temporary file and a rename (never half a file,
    never through a link left at ``dest``)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)  # replaces a (dangling) link itself, not its target


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def training_mirror(dest: Path | None = None) -> Path:
    """The training demo's mirror (``pdb/``, ``emdb/``), made in ``dest`` (default
    ``<cache>/demo-training``, :func:`rnamotif_data.inputs.sources.default_cache_dir`) on first
    use: models **copied** from the repository, each map simulated from its model
    (:data:`SIMULATION`; seed = the entry's rank, so the bytes are the same on every
    machine) and written atomically. Returns ``dest``.

    The cache is keyed by content, never by a link into the clone that made it first:
    ``made-from.json`` records each map's model sha256, seed and simulation settings. A
    cached model whose bytes differ from this clone's (or a link, dangling or not) is
    copied again, and a map whose record differs (or is missing) is simulated again, so
    deleting or changing another clone never breaks this one.

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
    record_path = dest / RECORD
    record = _read_record(record_path)
    made = copied = 0
    for n, (pdb_id, emdb_id) in enumerate(entries):
        model_path = _model_file(pdb_id)
        model_sha = sha256_file(model_path)
        cached = dest / "pdb" / (pdb_id.lower() + "".join(model_path.suffixes[-2:] if model_path.name.endswith(".gz")
                                                           else model_path.suffixes[-1:]))
        if cached.is_symlink() or not cached.is_file() or sha256_file(cached) != model_sha:
            _copy_atomic(model_path, cached)
            copied += 1
        number = emdb_id.split("-")[1]
        map_path = dest / "emdb" / f"emd_{number}.map.gz"
        made_from = {"model_sha256": model_sha, "seed": n, "simulation": SIMULATION}
        if map_path.is_file() and not map_path.is_symlink() and record.get(map_path.name) == made_from:
            continue
        map_path.parent.mkdir(parents=True, exist_ok=True)
        model = read_model(model_path, name=pdb_id)
        m = simulate_map(model.atoms, SIMULATION["resolution"], SIMULATION["voxel_size"],
                         padding=SIMULATION["padding"], noise_sd=SIMULATION["noise_sd"], seed=n)
        tmp = map_path.with_name(f"emd_{number}.tmp-{os.getpid()}.map.gz")
        write_map(tmp, m.data, m.voxel_size, m.origin, placement="nstart")
        os.replace(tmp, map_path)
        record[map_path.name] = made_from
        made += 1
    if made:  # written after its maps: a record never vouches for a map not yet there
        tmp = record_path.with_name(f"{RECORD}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, record_path)
        log.info("training demo: simulated %d maps (not experimental density) into %s", made, dest / "emdb")
    if copied:
        log.info("training demo: copied %d models into %s", copied, dest / "pdb")
    return dest


def simulated_maps_note(attrs: dict) -> str | None:
    """A sentence saying that a store's maps are simulated, when its attributes record a build
    of a shipped demo manifest (``manifest_sha256`` equal to :data:`TRAINING_MANIFEST`'s or
    :data:`SMALL_MANIFEST`'s: their made-up EMDB IDs name no real map, so a build of them
    always read simulated maps); None for any other store. The QC report and the dataset card
    print it, so Q-scores far above what the resolution predicts are explained."""
    digest = attrs.get("manifest_sha256")
    if not digest:
        return None
    for manifest, what in ((TRAINING_MANIFEST, f"the shipped training demo: each map simulated from its model "
                                               f"(gemmi electron scattering, {SIMULATION['resolution']} Å, "
                                               f"{SIMULATION['voxel_size']} Å voxels, Gaussian noise "
                                               f"{SIMULATION['noise_sd']} × the map's sd)"),
                           (SMALL_MANIFEST, "the shipped small demo: one map simulated from 6V5B chain D")):
        if manifest.is_file() and sha256_file(manifest) == digest:
            return (f"**The maps are simulated** ({what}), not experimental density: Q-scores and CC_mask are "
                    "far above what the stated resolution predicts for deposited maps.")
    return None
