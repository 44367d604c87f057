"""Augmentations of sample tensors ``(C, D, H, W)`` (z-y-x), torchvision-style callables.

Geometric transforms move every channel identically (density, zone, labels and
nucleotide stay aligned); intensity transforms touch only the channels named in
``channels`` (default: channel 0, the density). Each transform draws from torch's
global generator (which a ``DataLoader`` reseeds per worker and per epoch), or, given a
``seed``, from a private generator derived from the seed and the worker's seed
(:class:`_Random`), so runs are reproducible either way and augmentations differ across
workers and epochs. :class:`~rnamotif_data.learn.dataset.RNAMotifDataset` applies transforms
before the zone mask, so intensity noise never leaks outside the zone.

* :class:`RandomRotation24`: one of the 24 proper rotations of the cube (the rotation
  group of the cube, chirality preserved). Cubes are centred on the motif, so rotations
  keep the motif centred. :class:`TileRotation24` rotates a tile's density and label
  volumes together (a dict item).
* :class:`RandomFlip`: mirror along random axes. **A mirror image of RNA is not RNA**:
  it changes the handedness of the helix and the chirality of the riboses, so flips are
  off by default and should be used only knowingly.
* :class:`GaussianNoise`, :class:`IntensityScale`: density noise and contrast.
* :class:`Compose`: chain transforms.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from rnamotif_data.learn.backend import torch

__all__ = ["PROPER_ROTATIONS", "rotate", "RandomRotation24", "TileRotation24", "RandomFlip", "GaussianNoise",
           "IntensityScale", "Compose"]


def _rotations() -> tuple[tuple[tuple[int, int, int], tuple[bool, bool, bool]], ...]:
    """The 24 proper rotations as (axis permutation, axis flips) of the spatial axes."""
    out = []
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((False, True), repeat=3):
            m = np.zeros((3, 3))
            for i, p in enumerate(perm):
                m[i, p] = -1.0 if flips[i] else 1.0
            if round(np.linalg.det(m)) == 1:
                out.append(((perm[0], perm[1], perm[2]), (flips[0], flips[1], flips[2])))
    return tuple(out)


#: The 24 proper rotations of the cube: ``(perm, flips)`` -- output spatial axis i is
#: input axis ``perm[i]``, reversed where ``flips[i]``. Index 0 is the identity.
PROPER_ROTATIONS = _rotations()
assert len(PROPER_ROTATIONS) == 24 and PROPER_ROTATIONS[0] == ((0, 1, 2), (False, False, False))


def rotate(x: torch.Tensor, k: int) -> torch.Tensor:
    """Apply proper rotation ``k`` (0-23) of :data:`PROPER_ROTATIONS` to ``x`` ``(..., D, H, W)``.

    Cubic volumes only (D = H = W) for rotations that swap axes.

    Raises
    ------
    IndexError
        If ``k`` is not in [0, 24).
    """
    if not 0 <= k < 24:
        raise IndexError(f"rotation index {k} not in [0, 24)")
    perm, flips = PROPER_ROTATIONS[k]
    lead = x.dim() - 3
    y = x.permute(*range(lead), *(lead + p for p in perm))
    dims = [lead + i for i, f in enumerate(flips) if f]
    return y.flip(dims) if dims else y


class _Random:
    """Random source of a transform.

    ``seed`` None (default): torch's global generator, which a ``DataLoader`` reseeds in
    every worker and every epoch. With a ``seed``, a private generator derived from the
    seed **and** the worker's torch seed (``get_worker_info().seed``, which differs per
    worker and per epoch and follows the loader's generator), made lazily in the process
    that uses it: reproducible for a seed, different across workers and epochs, and
    never pickled (spawned workers build their own; after the torchvision v2 transforms).
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._gen: torch.Generator | None = None
        self._key: tuple[int, int | None] | None = None

    @property
    def generator(self) -> torch.Generator | None:
        """The generator to draw from in this process (None: torch's global one)."""
        if self.seed is None:
            return None
        info = torch.utils.data.get_worker_info()
        key = (os.getpid(), None if info is None else info.seed)
        if key != self._key:
            seed = self.seed if info is None else (int(self.seed) * 1_000_003 + int(info.seed)) % (2**63 - 1)
            self._gen = torch.Generator().manual_seed(seed)
            self._key = key
        return self._gen

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_gen"] = state["_key"] = None
        return state

    def _randint(self, n: int) -> int:
        return int(torch.randint(n, (1,), generator=self.generator))

    def _rand(self) -> float:
        return float(torch.rand((1,), generator=self.generator))


class RandomRotation24(_Random):
    """One of the 24 proper cube rotations, uniformly, applied to all channels.

    Input and output ``(C, D, H, W)`` with D = H = W.
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return rotate(x, self._randint(24))

    def __repr__(self) -> str:
        return f"RandomRotation24(seed={self.seed})"


class TileRotation24(_Random):
    """One of the 24 proper cube rotations, uniformly, applied alike to every volume of a
    tile item (:class:`~rnamotif_data.learn.tiles.RNAMotifTiles`): the density ``(1, T, T, T)``
    and the label volumes ``(T, T, T)`` rotate together, so every voxel keeps its label.
    Other entries of the item (``tile_index`` ...) pass through. Returns a new dict."""

    def __call__(self, item: dict) -> dict:
        k = self._randint(24)
        return {key: rotate(v, k).contiguous() if isinstance(v, torch.Tensor) and v.dim() >= 3 else v
                for key, v in item.items()}

    def __repr__(self) -> str:
        return f"TileRotation24(seed={self.seed})"


class RandomFlip(_Random):
    """Mirror along each spatial axis with probability ``p`` (all channels).

    Changes the handedness of RNA (module docstring); not part of any default pipeline.
    """

    def __init__(self, p: float = 0.5, seed: int | None = None):
        super().__init__(seed)
        self.p = p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        dims = [x.dim() - 3 + i for i in range(3) if self._rand() < self.p]
        return x.flip(dims) if dims else x

    def __repr__(self) -> str:
        return f"RandomFlip(p={self.p}, seed={self.seed})"


class GaussianNoise(_Random):
    """Add N(0, sd²) noise to ``channels`` (normalised density units; default density only)."""

    def __init__(self, sd: float = 0.05, channels: tuple[int, ...] = (0,), seed: int | None = None):
        super().__init__(seed)
        self.sd, self.channels = sd, tuple(channels)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        for c in self.channels:
            x[c] += self.sd * torch.randn(x[c].shape, generator=self.generator, dtype=x.dtype)
        return x

    def __repr__(self) -> str:
        return f"GaussianNoise(sd={self.sd}, channels={self.channels}, seed={self.seed})"


class IntensityScale(_Random):
    """Multiply ``channels`` by a factor drawn uniformly from ``[low, high]``."""

    def __init__(self, low: float = 0.8, high: float = 1.2, channels: tuple[int, ...] = (0,),
                 seed: int | None = None):
        super().__init__(seed)
        self.low, self.high, self.channels = low, high, tuple(channels)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        f = self.low + (self.high - self.low) * self._rand()
        x = x.clone()
        for c in self.channels:
            x[c] *= f
        return x

    def __repr__(self) -> str:
        return f"IntensityScale({self.low}, {self.high}, channels={self.channels}, seed={self.seed})"


class Compose:
    """Apply transforms in order (as ``torchvision.transforms.Compose``)."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"
