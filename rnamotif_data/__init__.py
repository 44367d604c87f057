"""rnamotif-data: cryo-EM density maps and fitted RNA models as a dataset of RNA motifs.

The science core (maps, structure, labels, segment, quality, simulate) imports neither
torch nor Dask, so workers stay light.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnamotif-data")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from .errors import (  # noqa: E402
    ConfigError,
    MapFormatError,
    MotifOutsideMapError,
    RNAMotifError,
    SelectionError,
    SelectionSyntaxError,
    StructureError,
)
from .maps import DensityMap, MapStatistics, map_statistics, read_map, write_mrc  # noqa: E402
from .motifs import CLASS_NAMES, FINE_TYPES, class_index, motif_class  # noqa: E402
from .quality import fit_z  # noqa: E402
from .segment import MotifCube, SegmentConfig, segment_motif  # noqa: E402
from .structure import AtomTable, Model, Selection, parse_selection, read_model  # noqa: E402

__all__ = [
    "__version__",
    "RNAMotifError", "MapFormatError", "StructureError", "SelectionError",
    "SelectionSyntaxError", "MotifOutsideMapError", "ConfigError",
    "DensityMap", "MapStatistics", "read_map", "write_mrc", "map_statistics",
    "CLASS_NAMES", "FINE_TYPES", "motif_class", "class_index",
    "fit_z",
    "SegmentConfig", "MotifCube", "segment_motif",
    "AtomTable", "Model", "Selection", "parse_selection", "read_model",
]


def __getattr__(name: str):
    """Lazy exports that import torch: ``RNAMotifDataset``, ``ShardBatchSampler``."""
    if name in ("RNAMotifDataset", "ShardBatchSampler"):
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'rnamotif_data' has no attribute {name!r}")
