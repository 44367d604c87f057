"""PyTorch dataset over a built store: ``RNAMotifDataset(split="fold1")``.

Items are ``(x, y)``: ``x`` a float32 tensor ``(C, D, H, W)`` (z-y-x, 40³ at 1 Å by
default) with the requested channels, ``y`` the class index (0 symmetric_loop, 1 bulge,
2 hairpin, 3 asymmetric_loop, 4 unknown; the upstream order). Splits come from
:mod:`rnamotif_data.split.splits` (no entry, overlap, same or near-identical motif or
homologous context on both sides under the default ``similarity`` scheme).

Channels (``channels=``, in the order given):

* ``density``: normalised density in [0, 1]; with ``masked=True`` multiplied by the
  zone (the upstream model's input: density within 5 Å of the motif), else the context
  cube;
* ``zone``: 1 inside the zone;
* ``labels``: label index (0 none, 1 backbone, 2 sugar, 3 base) as float;
* ``labels_onehot``: three channels, backbone / sugar / base;
* ``nucleotide``: nucleotide id (0 none, 1 A, 2 C, 3 G, 4 U, 5 other) as float;
* ``seq_proj``: ``projection_dim`` channels: the sequence features ``sequence`` of each
  voxel's residue (the residue of the nearest labelled atom, as ``labels``), projected
  onto their first principal components fitted on the split's training subset only
  (:func:`rnamotif_data.features.projection.fitted_projection`, stored next to the split);
  0 where no residue is.

Sequence features (``sequence="structrfm"``, ``"onehot"``, any name made by
``rnamotif embed``): items become ``((x, s, m), y)`` with ``s`` the sample's residue
features ``(R, E)`` float32 in selection order, padded to the store's largest sample
(R residues), and ``m`` ``(R,)`` bool marking real residues with features.

Worker safety: the Zarr arrays are opened lazily, in the process that reads (handles are
never pickled), so the dataset works with any ``num_workers`` and with the fork and
spawn start methods. ``__getitems__`` reads a whole batch in one call (PyTorch's
DataLoader uses it automatically), and :class:`ShardBatchSampler` makes batches that
stay within shards (each batch touches one or two shard files: fewer requests on a remote
store; on a local disk random order reads as fast, ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.errors import ConfigError, MissingFileError, StoreError
from rnamotif_data.features.projection import Projection, fitted_projection
from rnamotif_data.features.stored import StoredFeatures, open_features, paint
from rnamotif_data.learn.backend import torch
from rnamotif_data.rna.motifs import class_index, motif_class
from rnamotif_data.split.folds import independent_groups
from rnamotif_data.split.splits import Split, read_split, validate_split_name
from rnamotif_data.storage.download import STORE_DIRNAME, data_home, version_dir
from rnamotif_data.storage.download import download as fetch
from rnamotif_data.storage.layout import url_to_fs
from rnamotif_data.storage.shards import mask_density
from rnamotif_data.storage.store import RNAMotifStore, open_store

log = logging.getLogger(__name__)

__all__ = ["RNAMotifDataset", "ShardBatchSampler", "CHANNELS", "default_root", "ENV_ROOT"]

#: Environment variable naming the default store.
ENV_ROOT = "RNAMOTIF_DATA"
#: Channel names and the number of tensor channels each produces.
#: ``seq_proj`` produces ``projection_dim`` channels.
CHANNELS = {"density": 1, "zone": 1, "labels": 1, "labels_onehot": 3, "nucleotide": 1, "seq_proj": 8}
_SOURCE = {"density": "density", "zone": "zone", "labels": "labels", "labels_onehot": "labels",
           "nucleotide": "nucleotide", "seq_proj": "labels"}


def default_root(version: str | None = None) -> Path:
    """Default store location.

    Without ``version``: ``$RNAMOTIF_DATA``, else ``data_home()/rnamotif.zarr``; with it,
    where :func:`rnamotif_data.storage.download.download` unpacks that version:
    ``data_home()/<version>/rnamotif.zarr`` (``data_home()``: ``$RNAMOTIF_DATA_HOME``,
    ``$XDG_DATA_HOME/rnamotif-data`` or ``~/.local/share/rnamotif-data``)."""
    if version is not None:
        return version_dir(version) / STORE_DIRNAME
    env = os.environ.get(ENV_ROOT)
    return Path(env) if env else data_home() / "rnamotif.zarr"


def _check_classes(root: str, meta: pd.DataFrame) -> None:
    """The label columns must follow the fine type (:func:`rnamotif_data.rna.motifs.class_index`),
    as ``rnamotif verify`` checks: a table edited (and re-hashed) to say otherwise would train
    on wrong labels. Raises :class:`~rnamotif_data.errors.StoreError` naming the first row."""
    types = meta["motif_type"].astype(str).to_numpy()
    index = {t: class_index(t) for t in set(types)}
    want = np.array([index[t] for t in types], dtype=np.int64)
    got = meta["class_index"].to_numpy(dtype=np.int64)
    names = meta["motif_class"].astype(str).to_numpy()
    bad = np.flatnonzero((want != got) | (names != np.array([motif_class(t) for t in types], dtype=object)))
    if bad.size:
        i = int(bad[0])
        raise StoreError(f"{root}: metadata.parquet: the class of {bad.size} sample(s) disagrees with their motif "
                         f"type (first: sample {meta['sample_id'].iloc[i]}, {types[i]} is class {want[i]} "
                         f"{motif_class(types[i])}, the table says {got[i]} {names[i]}); the store was edited or "
                         f"damaged: run rnamotif verify {root}")


class RNAMotifDataset(torch.utils.data.Dataset):
    """RNA motif cubes of one subset of one split of a store.

    Parameters
    ----------
    root:
        Store path or fsspec URL; default :func:`default_root`. With ``version``, the
        folder holding downloaded versions instead (default
        :func:`rnamotif_data.storage.download.data_home`); the store is ``root/<version>/rnamotif.zarr``.
    split:
        ``fold1`` ... ``fold5`` or ``all`` (every sample, ``train`` only; no split is
        made, so a single-entry store works).
    subset:
        One of :data:`rnamotif_data.split.splits.SUBSETS` (``train``, ``val``, ``test``,
        ``inner_train``, ``inner_val``); removed samples are in no validation subset, and a
        fold's training subsets leave out the samples related to its validation samples.
    scheme:
        Split scheme (``similarity``, ``entry``, ``upstream``): the stored
        ``STORE/splits/<scheme>.parquet``, made by ``rnamotif split STORE --scheme S``
        (:func:`rnamotif_data.split.splits.make_split`). The dataset never computes a
        split itself; without a stored one it raises
        :class:`~rnamotif_data.errors.ConfigError` naming that command.
    channels:
        Names from :data:`CHANNELS`, in output order.
    masked:
        Multiply the density channel by the zone.
    transform, target_transform:
        Callables applied to ``x`` ``(C, D, H, W)`` and to ``y`` (see
        :mod:`rnamotif_data.learn.transforms`).
    version:
        A published dataset version (``"1.0.0"``; see :mod:`rnamotif_data.storage.registry`).
    download:
        With ``version``: fetch and verify it unless it is already in the cache
        (:func:`rnamotif_data.storage.download.download`; offline with ``RNAMOTIF_OFFLINE=1``).
    return_metadata:
        Items are dicts ``{"x", "y", "sample_id", "sample_index"}`` (and ``"sequence"``,
        ``"sequence_mask"`` with ``sequence``) instead of tuples.
    sequence:
        Name of stored sequence features (``STORE/features/<name>``, made by ``rnamotif
        embed``): items carry the residues' features and mask (module docstring).
    projection_dim:
        Channels of ``seq_proj`` (principal components kept).

    Raises
    ------
    ConfigError
        For an unknown split, subset or channel.
    MissingFileError
        If the store does not exist (the message says how to build or download it).
    rnamotif_data.storage.registry.RegistryError
        If ``version`` is not a published version.
    rnamotif_data.storage.download.DownloadError
        If a download fails or does not verify.
    rnamotif_data.errors.StoreError
        If the store is incomplete.
    rnamotif_data.errors.ConfigError
        If the store has no stored split of ``scheme`` (the message gives the command).
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "fold1", subset: str = "train",
                 scheme: str = "similarity", channels: tuple[str, ...] | list[str] = ("density",),
                 masked: bool = True, transform=None, target_transform=None, version: str | None = None,
                 download: bool = False, return_metadata: bool = False, sequence: str | None = None,
                 projection_dim: int = 8):
        channels = (channels,) if isinstance(channels, str) else tuple(channels)
        bad = [c for c in channels if c not in CHANNELS]
        if bad or not channels:
            raise ConfigError(f"unknown channel(s) {bad or channels!r}; choose from {', '.join(CHANNELS)}")
        validate_split_name(split, subset)
        if "seq_proj" in channels and not sequence:
            raise ConfigError("channel 'seq_proj' paints sequence features: pass sequence='NAME' (features made by "
                             "'rnamotif embed STORE --model NAME')")
        if projection_dim < 1:
            raise ConfigError(f"projection_dim must be >= 1, got {projection_dim}")
        if version is not None:
            if download:

                self.root = str(fetch(version, root=root) / STORE_DIRNAME)
            else:
                self.root = str(version_dir(version, root) / STORE_DIRNAME)
                if not Path(self.root).exists():
                    raise MissingFileError(
                        f"dataset version {version} is not in {Path(self.root).parent}; pass download=True or run "
                        f"'rnamotif download --version {version}'")
        elif download:
            raise ConfigError("download=True needs version= (a published version, e.g. version='1.0.0'; see "
                             "'rnamotif download --help')")
        else:
            self.root = str(root) if root is not None else str(default_root())
        fs, path = url_to_fs(self.root)
        if not fs.exists(path):
            raise MissingFileError(
                f"no RNA motif store at {self.root}. Build one with 'rnamotif build --manifest "
                f"MANIFEST --out {self.root}' (the shipped demo: 'rnamotif build'), or set "
                f"${ENV_ROOT} / pass root=")
        store = open_store(self.root)
        self.split, self.subset, self.scheme = split, subset, scheme
        self.channels, self.masked = channels, masked
        self.transform, self.target_transform = transform, target_transform
        self.return_metadata = return_metadata
        self.class_names = store.class_names
        self.shard_size = store.shard_size
        if split == "all":  # no split needed: every sample (training subsets) or none
            self._split: Split | None = None
            n = len(store)
            self.indices = np.arange(n) if subset in ("train", "inner_train") else np.arange(0)
        else:
            split_file = read_split(store, scheme)
            if split_file is None:
                n_groups = len(np.unique(independent_groups(store.metadata)))
                if n_groups < 5 and scheme != "upstream":
                    raise ConfigError(f"{self.root}: no stored {scheme!r} split, and none can be made: the store holds "
                                      f"{n_groups} independent group(s) of samples, fewer than the 5 folds; use "
                                      "split='all' (every sample) or a store of more entries")
                raise ConfigError(f"{self.root}: no stored {scheme!r} split (STORE/splits/{scheme}.parquet); make it with "
                                  f"'rnamotif split {self.root} --scheme {scheme}'")
            self._split = split_file
            self.indices = np.sort(self._split.indices(split, subset))  # store sample indices
        meta = store.metadata
        _check_classes(self.root, meta)
        self._targets = meta["class_index"].to_numpy(dtype=np.int64)[self.indices]
        self._sample_ids = meta["sample_id"].astype(str).to_numpy()[self.indices]
        self._metadata = meta.iloc[self.indices].reset_index(drop=True)
        self._store: RNAMotifStore | None = None  # opened lazily per process
        self._pid: int | None = None
        self.sequence, self.projection_dim = sequence, int(projection_dim)
        self._features: StoredFeatures | None = None
        self.projection: Projection | None = None
        if sequence:
            feats = open_features(store, sequence)  # a missing or stale feature set fails here, in one line
            self.sequence_dim = feats.dim
            self.max_residues = max(int(np.diff(feats.arrays["residue_offsets"]).max(initial=0)), 1)
            if "seq_proj" in channels:
                self.projection = fitted_projection(store, feats, self._split, split, subset, scheme,
                                                    self.projection_dim)

    # ------------------------------------------------------------------ info
    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, index = target value."""
        return tuple(self.class_names)

    @property
    def class_counts(self) -> dict[str, int]:
        """Samples per class in this subset."""
        counts = np.bincount(self._targets, minlength=len(self.class_names))
        return {c: int(n) for c, n in zip(self.class_names, counts)}

    @property
    def metadata(self) -> pd.DataFrame:
        """The subset's rows of ``metadata.parquet`` (row i = item i)."""
        return self._metadata

    @property
    def targets(self) -> np.ndarray:
        """``(len,)`` class index of every item."""
        return self._targets

    @property
    def split_columns(self) -> pd.DataFrame | None:
        """The split file's rows of this subset (row i = item i: ``fold``, ``removed``,
        ``train_exclusion``, ``max_identity_to_train`` ...), or None for ``split="all"``."""
        if self._split is None:
            return None
        table = self._split.table.set_index("sample_index")
        return table.loc[self.indices].reset_index()

    @property
    def split_fingerprint(self) -> str:
        """Fingerprint of the split in use (record it with a training run); for
        ``split="all"`` (no split) ``"all:<number of samples>"``."""
        return self._split.fingerprint if self._split is not None else f"all:{len(self.indices)}"

    @property
    def cube_shape(self) -> tuple[int, int, int]:
        """``(D, H, W)`` of the store's cubes in voxels (z-y-x), from the store's attributes."""
        return tuple(int(v) for v in self._open().cube_shape)  # type: ignore[return-value]

    @property
    def n_channels(self) -> int:
        """C of the items' ``(C, D, H, W)``."""
        return sum(self._width(c) for c in self.channels)

    def _width(self, channel: str) -> int:
        return self.projection_dim if channel == "seq_proj" else CHANNELS[channel]

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        counts = ", ".join(f"{c} {n}" for c, n in self.class_counts.items())
        return (f"RNAMotifDataset(root={self.root!r}, split={self.split!r}, subset={self.subset!r}, "
                f"scheme={self.scheme!r}, channels={self.channels}, masked={self.masked}"
                + (f", sequence={self.sequence!r}" if self.sequence else "") + ")\n"
                f"    {len(self)} samples: {counts}\n    split fingerprint {self.split_fingerprint[:16]}"
                + (f"\n    transform: {self.transform!r}" if self.transform is not None else ""))

    # ------------------------------------------------------------------ reading
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_store"], state["_pid"], state["_features"] = None, None, None  # never pickle open handles
        return state

    def _open(self) -> RNAMotifStore:
        if self._store is None or self._pid != os.getpid():
            self._store = open_store(self.root)
            self._pid = os.getpid()
            self._features = None
        return self._store

    def _feats(self) -> StoredFeatures:
        store = self._open()
        if self._features is None:
            if not self.sequence:
                raise ConfigError("this dataset has no sequence features: pass sequence='NAME'")
            self._features = open_features(store, self.sequence)
        return self._features

    def sequence_features(self, items) -> tuple[torch.Tensor, torch.Tensor]:
        """Residue features ``(B, R, E)`` float32 and mask ``(B, R)`` bool of ``items``
        (positions in this subset), padded to the store's largest sample (R residues)."""
        pos = self._positions(items)
        feats = self._feats()
        s = torch.zeros((len(pos), self.max_residues, self.sequence_dim), dtype=torch.float32)
        m = torch.zeros((len(pos), self.max_residues), dtype=torch.bool)
        for k, i in enumerate(self.indices[pos]):
            f, mask = feats.residues(int(i))
            s[k, :len(f)] = torch.from_numpy(np.asarray(f, dtype=np.float32))
            m[k, :len(mask)] = torch.from_numpy(np.array(mask, dtype=bool))
        return s, m

    def _positions(self, items) -> np.ndarray:
        pos = np.asarray(items, dtype=np.int64).reshape(-1)
        n = len(self)
        bad = pos[(pos < 0) | (pos >= n)]
        if bad.size:
            raise IndexError(f"index {int(bad[0])} out of range [0, {n}) of {self.split}/{self.subset}")
        return pos

    def _tensors(self, pos: np.ndarray, masked: bool | None = None, zone_channel: bool = False) -> list[torch.Tensor]:
        """Items ``pos`` (positions in this subset) as float32 tensors ``(C, D, H, W)``, one
        per sample (plus the zone as a last channel with ``zone_channel``).

        The masked density is read from the store's ``density_masked`` array (format 5:
        the model's input, stored) where it has one, else made from ``density`` and
        ``zone`` (:func:`rnamotif_data.storage.shards.mask_density`); the values are the same.
        Samples are read one at a time into reused buffers
        (:meth:`rnamotif_data.storage.store.RNAMotifStore.iter_samples`) and each item is filled
        while its cubes are in the CPU cache: no batch-sized temporaries (a DataLoader
        copies the items into its batch anyway). The float16 -> float32 cast runs in torch
        (numpy's is ~6x slower).
        """
        store = self._open()
        masked = self.masked if masked is None else masked
        mask = masked and "density" in self.channels
        stored = mask and "density_masked" in store.array_names
        source = {**_SOURCE, "density": "density_masked" if stored else "density"}
        names = {source[c] for c in self.channels} | ({"zone"} if (mask and not stored) or zone_channel else set())
        shape = store.cube_shape
        keep = np.empty(shape, dtype=np.int16) if mask and not stored else None
        n = self.n_channels + int(zone_channel)
        items = []
        feats = self._feats() if "seq_proj" in self.channels else None
        for i, a in zip(self.indices[pos], store.iter_samples(self.indices[pos], sorted(names))):
            x = torch.empty((n, *shape), dtype=torch.float32)
            if zone_channel:
                x[-1].copy_(torch.from_numpy(a["zone"]))
            if mask and not stored:
                mask_density(a["density"], a["zone"], keep)
            c0 = 0
            for c in self.channels:
                t = torch.from_numpy(a[source[c]])
                if c == "labels_onehot":
                    for k in (1, 2, 3):
                        x[c0 + k - 1].copy_(t == k)
                elif c == "seq_proj":
                    assert feats is not None and self.projection is not None  # both made when seq_proj is a channel
                    f, fmask = feats.residues(int(i))
                    proj = self.projection.apply(np.asarray(f, np.float32), np.asarray(fmask))
                    x[c0:c0 + self.projection_dim].copy_(torch.from_numpy(paint(shape, a["labels"], feats.slots(int(i)), proj)))
                else:
                    x[c0].copy_(t)
                c0 += self._width(c)
            items.append(x)
        return items

    def get_batch(self, items) -> tuple[torch.Tensor | tuple[torch.Tensor, ...], torch.Tensor]:
        """Items ``items`` (positions in this subset) read in one call.

        Returns ``x`` ``(B, C, D, H, W)`` float32 and ``y`` ``(B,)`` int64, without
        transforms; with ``sequence``, ``x`` is ``(cubes, features (B, R, E), mask (B, R))``. One chunk is read per sample and array; each shard's index once per
        process.
        """
        pos = self._positions(items)
        cubes = self._tensors(pos)
        x = torch.stack(cubes) if cubes else torch.empty((0, self.n_channels, *self._open().cube_shape))
        if self.sequence:
            return (x, *self.sequence_features(pos)), torch.from_numpy(self._targets[pos])
        return x, torch.from_numpy(self._targets[pos])

    def _deferred_mask(self) -> bool:
        """Mask after the transforms (so noise and scaling stay inside the zone)."""
        return self.transform is not None and self.masked and "density" in self.channels

    def _transformed(self, items) -> list[torch.Tensor]:
        """B tensors ``(C, D, H, W)``: transforms applied to the unmasked density with the
        zone carried as an extra last channel (geometric transforms move it alike; intensity
        transforms touch only their channels), then the density masked by the moved zone."""
        pos = self._positions(items)
        x = self._tensors(pos, masked=False, zone_channel=True)
        d = self.channels.index("density")
        out = []
        for k in range(len(pos)):
            t = self.transform(x[k])
            x_k = t[:-1].clone()
            x_k[d] = x_k[d] * (t[-1] > 0.5)
            out.append(x_k)
        return out

    def _batch(self, items) -> tuple[list[torch.Tensor], bool]:
        """The inputs ``(C, D, H, W)`` of ``items`` and whether the transforms were applied."""
        if self._deferred_mask():
            return self._transformed(items), True
        return self._tensors(self._positions(items)), False

    def _item(self, x: torch.Tensor, p: int, transformed: bool = False, seq=None):
        y = int(self._targets[p])
        if self.transform is not None and not transformed:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        if self.return_metadata:
            out = {"x": x, "y": y, "sample_id": str(self._sample_ids[p]), "sample_index": int(self.indices[p])}
            if seq is not None:
                out["sequence"], out["sequence_mask"] = seq
            return out
        return ((x, *seq), y) if seq is not None else (x, y)

    def __getitem__(self, item: int):
        if not isinstance(item, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(item).__name__}")
        x, done = self._batch([item])
        seq = None
        if self.sequence:
            s, m = self.sequence_features([item])
            seq = (s[0], m[0])
        return self._item(x[0], int(item), done, seq)

    def __getitems__(self, items: list[int]) -> list:
        """Batch fetch used by ``DataLoader``: one store read for all ``items``."""
        x, done = self._batch(items)
        if self.sequence:
            s, m = self.sequence_features(items)
            return [self._item(x[i], int(p), done, (s[i], m[i])) for i, p in enumerate(items)]
        return [self._item(x[i], int(p), done) for i, p in enumerate(items)]


class ShardBatchSampler(torch.utils.data.Sampler):
    """Batches of dataset positions that stay within store shards.

    Shards are visited in a (seeded, per-epoch) random order and shuffled inside; a batch
    never spans shards unless a shard's remainder is smaller than the batch, so each batch
    touches at most two shard files. Use as ``DataLoader(ds, batch_sampler=ShardBatchSampler(ds, 32))``.
    """

    def __init__(self, dataset: RNAMotifDataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        self.dataset, self.batch_size, self.shuffle, self.seed, self.drop_last = dataset, batch_size, shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffling order (call once per epoch)."""
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        shard = self.dataset.indices // self.dataset.shard_size
        order: list = []
        shards = np.unique(shard)
        if self.shuffle:
            shards = rng.permutation(shards)
        for s in shards:
            pos = np.nonzero(shard == s)[0]
            order.extend((rng.permutation(pos) if self.shuffle else pos).tolist())
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
