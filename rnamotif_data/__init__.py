"""rnamotif-data: cryo-EM density maps and fitted RNA models as a dataset of RNA motifs.

The front door for dataset users::

    from rnamotif_data import open_store, download, read_split, RNAMotifDataset

    store = open_store("demo-out/rnamotif-demo.zarr")   # cubes (N, D, H, W), z-y-x, + metadata
    split = read_split(store, "similarity")             # None until 'rnamotif split' made one
    ds = RNAMotifDataset("data/rnamotif.zarr", split="fold1", subset="train")  # [learn] extra

Every name below is imported on first use, so ``import rnamotif_data`` is light and the
core install (no torch, no Dask) can read stores and releases; names that need an extra
raise :class:`~rnamotif_data.errors.MissingDependencyError` naming it.

Sub-packages, lowest layer first: :mod:`~rnamotif_data.storage` (the store),
:mod:`~rnamotif_data.rna` (models, motifs), :mod:`~rnamotif_data.em` (maps, quality),
:mod:`~rnamotif_data.samples` (cubes, negatives), :mod:`~rnamotif_data.inputs` (manifests,
sources), :mod:`~rnamotif_data.pipeline` (the build),
:mod:`~rnamotif_data.split`, :mod:`~rnamotif_data.learn`, :mod:`~rnamotif_data.release`;
the ``rnamotif`` command is :mod:`~rnamotif_data.cli`.
"""

from __future__ import annotations

import importlib

from rnamotif_data.common.version import __version__
from rnamotif_data.errors import (
    ConfigError,
    MapFormatError,
    MissingDependencyError,
    MotifOutsideMapError,
    RNAMotifError,
    SelectionError,
    SelectionSyntaxError,
    StoreError,
    StructureError,
)

#: public name -> the module that defines it (imported on first use)
_EXPORTS = {
    # reading a dataset (core install)
    "open_store": "rnamotif_data.storage.store",
    "RNAMotifStore": "rnamotif_data.storage.store",
    "download": "rnamotif_data.storage.download",
    "read_split": "rnamotif_data.split.splits",
    # learning ([learn] extra: torch)
    "RNAMotifDataset": "rnamotif_data.learn.dataset",
    "ShardBatchSampler": "rnamotif_data.learn.dataset",
    "build_network": "rnamotif_data.learn.networks",
    "Evaluator": "rnamotif_data.learn.evaluate",
    # the science
    "DensityMap": "rnamotif_data.em.maps",
    "MapStatistics": "rnamotif_data.em.maps",
    "read_map": "rnamotif_data.em.maps",
    "write_map": "rnamotif_data.em.maps",
    "map_statistics": "rnamotif_data.em.maps",
    "fit_z": "rnamotif_data.em.quality",
    "CLASS_NAMES": "rnamotif_data.rna.motifs",
    "FINE_TYPES": "rnamotif_data.rna.motifs",
    "motif_class": "rnamotif_data.rna.motifs",
    "class_index": "rnamotif_data.rna.motifs",
    "AtomTable": "rnamotif_data.rna.structure",
    "Model": "rnamotif_data.rna.structure",
    "Selection": "rnamotif_data.rna.structure",
    "parse_selection": "rnamotif_data.rna.structure",
    "read_model": "rnamotif_data.rna.structure",
    "SegmentConfig": "rnamotif_data.samples.cubes",
    "MotifCube": "rnamotif_data.samples.cubes",
    "cut_motif": "rnamotif_data.samples.cubes",
}

__all__ = [
    "__version__",
    "RNAMotifError", "MapFormatError", "StructureError", "SelectionError", "SelectionSyntaxError",
    "MotifOutsideMapError", "ConfigError", "StoreError", "MissingDependencyError",
    *_EXPORTS,
]


def __getattr__(name: str):
    """Import a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rnamotif_data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
