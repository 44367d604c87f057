"""PyTorch dataset over a store's tiles: ``RNAMotifTiles(root, split="fold1")``.

Each item is one tile of an entry's 1 Å volumes (``rnamotif build --tiles``;
:mod:`rnamotif_data.storage.volumes`), read out of the stored blocks on the fly: a dict

* ``density``: float32 ``(1, T, T, T)`` (z-y-x), the normalised density in [0, 1] (0
  outside the map);
* ``element``: int64 ``(T, T, T)``, the element id of every voxel
  (:data:`rnamotif_data.rna.elements.ELEMENT_NAMES`: 0 none, 1 stem, 2 hairpin, 3 bulge,
  4 internal, 5 junction, 6 single strand, 7 protein, 8 other), :data:`OUTSIDE` (255)
  where a clipped tile runs past the map (give it as ``ignore_index`` to the loss);
* with ``volumes=``: ``part``, ``nucleotide``, ``instance`` (int64 ``(T, T, T)``, 255 /
  0 outside as above for part/nucleotide, 0 for instance);
* ``tile_index``: the tile's row of ``tiles.parquet``; ``entry`` (its entry key) and
  ``resolution`` (Å, NaN when unknown), which the segmentation metrics group by.

Folds come from ``STORE/splits/tiles.parquet`` (``rnamotif split STORE --tiles``,
:mod:`rnamotif_data.split.tiles`): every tile of an entry in one fold, no chain of a
validation entry homologous to a training chain at the split's level; the subsets
(``train``, ``val``, ``test``, ``inner_train``, ``inner_val``) are the cube dataset's.

Workers and checks are the cube dataset's: the store must be complete and match its
attribute checksum; each shard file is checked against ``checksums.sha256`` when first
opened and every block against its CRC32C (a damaged block is an error naming it, never
zeros); open files are never pickled, so any ``num_workers`` and start method work.
Augmentation: :class:`rnamotif_data.learn.transforms.TileRotation24` (the 24 proper cube
rotations, density and labels together).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from rnamotif_data.errors import ConfigError, MissingFileError
from rnamotif_data.learn.backend import torch
from rnamotif_data.rna.elements import ELEMENT_NAMES
from rnamotif_data.samples.tiles import OUTSIDE
from rnamotif_data.split.splits import Split, validate_split_name
from rnamotif_data.split.tiles import read_tile_split
from rnamotif_data.storage.checksums import read_checksums
from rnamotif_data.storage.layout import join, read_table, url_to_fs
from rnamotif_data.storage.store import open_store
from rnamotif_data.storage.volumes import TILES_FILE, VOLUME_ARRAYS, VOLUMES, VOLUMES_FILE, VolumeReader

log = logging.getLogger(__name__)

__all__ = ["RNAMotifTiles", "OUTSIDE"]

_OUTSIDE_VALUE = {"density": 0, "element": OUTSIDE, "part": OUTSIDE, "nucleotide": OUTSIDE, "instance": 0}


class RNAMotifTiles(torch.utils.data.Dataset):
    """The tiles of one subset of one fold of a store (module docstring).

    Parameters
    ----------
    root:
        Store path or fsspec URL (built with ``rnamotif build --tiles``).
    split:
        ``fold1`` ... ``fold5``, or ``all`` (every tile, ``train`` only; no split needed).
    subset:
        ``train``, ``val``, ``test``, ``inner_train`` or ``inner_val``.
    volumes:
        The volumes each item carries, ``density`` and ``element`` by default (others:
        ``part``, ``nucleotide``, ``instance``).
    transform:
        A callable on the item dict (e.g. :class:`~rnamotif_data.learn.transforms.TileRotation24`).
    rna_only:
        Leave out the RNA-free tiles.

    Raises
    ------
    MissingFileError
        If there is no store at ``root``.
    ConfigError
        For an unknown split, subset or volume; a store without tiles; no stored tile
        split (the message gives the command).
    rnamotif_data.errors.StoreError
        If the store is incomplete or its attributes differ from its checksums.
    """

    def __init__(self, root: str | os.PathLike, split: str = "fold1", subset: str = "train", *,
                 volumes: Sequence[str] = ("density", "element"), transform=None, rna_only: bool = False):
        self.root = str(root)
        validate_split_name(split, subset)
        bad = [v for v in volumes if v not in VOLUME_ARRAYS]
        if bad or "density" not in volumes:
            raise ConfigError(f"volumes must include 'density' and come from {', '.join(VOLUME_ARRAYS)}; got "
                              f"{list(volumes)}")
        fs, path = url_to_fs(self.root)
        if not fs.exists(path):
            raise MissingFileError(f"no store at {self.root}; build one with 'rnamotif build --tiles --out {self.root}'")
        store = open_store(self.root)
        if not fs.exists(url_to_fs(join(self.root, TILES_FILE))[1]):
            raise ConfigError(f"{self.root}: the store has no tiles (built without --tiles); build it with "
                              f"'rnamotif build ... --tiles'")
        tiles = read_table(join(self.root, TILES_FILE)).to_pandas()
        self.entries = read_table(join(self.root, VOLUMES_FILE)).to_pandas().set_index("entry")
        self.split, self.subset, self.volumes = split, subset, tuple(volumes)
        self.transform = transform
        self._split: Split | None = None
        if split == "all":
            keep = np.arange(len(tiles)) if subset in ("train", "inner_train") else np.arange(0)
        else:
            self._split = read_tile_split(store)
            if self._split is None:
                raise ConfigError(f"{self.root}: no stored tile split (STORE/splits/tiles.parquet); make it with "
                                  f"'rnamotif split {self.root} --tiles'")
            keep = np.sort(self._split.indices(split, subset))
        sub = tiles.iloc[keep]
        if rna_only:
            sub = sub[sub["holds_rna"]]
        self._tiles = sub.reset_index(drop=True)
        # per item, as plain arrays (a DataFrame row costs ~0.3 ms)
        self._entry = self._tiles["entry"].astype(str).to_numpy()
        self._origin = (np.stack(self._tiles["origin_voxel"].to_numpy()).astype(np.int64) if len(self._tiles)
                        else np.zeros((0, 3), np.int64))
        self._size = self._tiles["size"].to_numpy(dtype=np.int64)
        self._clipped = self._tiles["clipped"].to_numpy(dtype=bool)
        self._index = self._tiles["tile_index"].to_numpy(dtype=np.int64)
        self._resolution = self._tiles["resolution"].to_numpy(dtype=np.float64, na_value=np.nan)
        self._readers: dict[str, VolumeReader] = {}
        self._pid: int | None = None
        self._sums: dict[str, str] | None = None

    # ------------------------------------------------------------------ info
    @property
    def voxel_size(self) -> float:
        """Å per voxel of the store's volumes (one grid spacing for every entry; 1.0 for a
        store whose entries all lack volumes)."""
        v = self.entries["voxel_size"].dropna().unique() if "voxel_size" in self.entries else []
        return float(v[0]) if len(v) else 1.0

    @property
    def tile_split(self) -> Split | None:
        """The store's tile split this dataset reads (None for ``split="all"``)."""
        return self._split

    @property
    def tiles(self) -> pd.DataFrame:
        """The subset's rows of ``tiles.parquet`` (row i = item i)."""
        return self._tiles

    @property
    def class_names(self) -> tuple[str, ...]:
        """Element names, index = the ``element`` value."""
        return ELEMENT_NAMES

    @property
    def tile_size(self) -> int:
        """T, voxels per tile edge (0 for an empty subset)."""
        return int(self._tiles["size"].iloc[0]) if len(self._tiles) else 0

    @property
    def element_counts(self) -> np.ndarray:
        """``(9,)`` int64 voxels per element over the subset's tiles (inside the map)."""
        if not len(self._tiles):
            return np.zeros(len(ELEMENT_NAMES), dtype=np.int64)
        return np.asarray(np.stack(self._tiles["voxels_per_element"].to_numpy()).sum(axis=0), dtype=np.int64)

    @property
    def split_fingerprint(self) -> str:
        """Fingerprint of the tile split in use; ``"all:<tiles>"`` without one."""
        return self._split.fingerprint if self._split is not None else f"all:{len(self._tiles)}"

    def __len__(self) -> int:
        return len(self._tiles)

    def __repr__(self) -> str:
        return (f"RNAMotifTiles(root={self.root!r}, split={self.split!r}, subset={self.subset!r}, "
                f"volumes={self.volumes})\n    {len(self)} tiles of {self._tiles['entry'].nunique()} entries, "
                f"{self.tile_size}³ voxels; split fingerprint {self.split_fingerprint[:16]}")

    # ------------------------------------------------------------------ reading
    def __getstate__(self):
        return {**self.__dict__, "_readers": {}, "_pid": None}

    def _reader(self, entry: str) -> VolumeReader:
        if self._pid != os.getpid():
            self._readers, self._pid = {}, os.getpid()
        r = self._readers.get(entry)
        if r is None:
            if self._sums is None:
                self._sums = read_checksums(self.root)
            prefix = f"{VOLUMES}/{entry}/"
            digests = {k[len(prefix):]: v for k, v in self._sums.items() if k.startswith(prefix)}
            row = self.entries.loc[entry]
            r = self._readers[entry] = VolumeReader(self.root, entry, [int(v) for v in row["grid_shape"]],
                                                    int(row["block"]), digests)
        return r

    def read_entry(self, entry: str, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """An entry's whole volumes ``(D, H, W)`` (z-y-x, stored dtypes; ``names``: default
        this dataset's ``volumes``), read from its blocks (checked as the tiles are).

        Raises
        ------
        KeyError
            For an entry without volumes in this store.
        """
        row = self.entries.loc[entry]
        return self._reader(entry).read_box((0, 0, 0), [int(v) for v in row["grid_shape"]],
                                            tuple(names or self.volumes))

    def read(self, item: int) -> dict[str, np.ndarray]:
        """Tile ``item``'s volumes as numpy arrays ``(T, T, T)`` (stored dtypes), voxels
        past the map set to their outside values, without transforms."""
        reader = self._reader(str(self._entry[item]))
        origin = [int(v) for v in self._origin[item]]
        size = int(self._size[item])
        out = reader.read_box(origin, size, self.volumes)
        if self._clipped[item]:
            inside = [min(size, n - o) for n, o in zip(reader.grid_shape, origin)]
            outside = np.ones((size, size, size), dtype=bool)
            outside[:inside[0], :inside[1], :inside[2]] = False
            for name, a in out.items():
                if _OUTSIDE_VALUE[name]:
                    a[outside] = _OUTSIDE_VALUE[name]
        return out

    def __getitem__(self, item: int) -> dict:
        if not isinstance(item, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(item).__name__}")
        if not 0 <= int(item) < len(self):
            raise IndexError(f"index {int(item)} out of range [0, {len(self)}) of {self.split}/{self.subset}")
        arrays = self.read(int(item))
        out: dict = {"density": torch.from_numpy(arrays.pop("density")).float().unsqueeze(0)}
        for name, a in arrays.items():
            out[name] = torch.from_numpy(a.astype(np.int64))
        out["tile_index"] = int(self._index[int(item)])
        out["entry"] = str(self._entry[int(item)])
        out["resolution"] = float(self._resolution[int(item)])
        return self.transform(out) if self.transform is not None else out
