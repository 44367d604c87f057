"""Whole volumes through a network tile by tile, every voxel predicted from a tile's centre.

Stitching rule
--------------
A volume of ``(D, H, W)`` voxels is cut into cubic tiles of ``tile`` voxels whose
**central** ``(tile - 2 margin)³`` crops tile the volume exactly, without overlap:

1. The volume is padded with **zeros** (the value of normalised density where there is
   none, and the value :meth:`~rnamotif_data.em.maps.DensityMap.sample_box` gives outside
   a map) by ``margin`` voxels before each axis and by ``margin`` plus what the last crop
   needs after it (nothing is allocated: each tile is filled from the volume where it
   overlaps it, zeros elsewhere).
2. Tiles start every ``stride = tile - 2 margin`` voxels: tile ``(a, b, c)`` covers the
   volume's voxels ``a stride - margin .. a stride - margin + tile - 1`` (z; y, x alike),
   ``ceil(n / stride)`` tiles per axis.
3. Only each tile's centre crop ``[margin, margin + stride)³`` is kept, and it becomes the
   volume's voxels ``a stride .. a stride + stride - 1`` (clipped at the volume's end). So
   every voxel is predicted exactly once, from a tile in which it lies at least
   ``margin`` voxels from every face; no averaging, no seams of blended values.

Consequence (the rule ``tests/learn/test_stitch.py`` checks): a network whose output at a
voxel depends only on the input within ``r`` voxels of it (receptive field ``2r + 1``) and
which is equivariant to the tiles' shifts (for a U-Net of depth ``d``: strides that are
multiples of ``2**(d-1)``, the pooling grid) gives the **same volume, up to float
rounding, for every tile size**, provided ``margin >= r``: each kept voxel sees the same
zero-padded input it would see in one infinite tile. With ``margin < r`` a voxel may also
see a tile face's zero padding, and tile sizes may differ there. The default margin of
``rnamotif detect`` (16 voxels) is below the 8-16-32 U-Net's theoretical half-width (22);
measured with random weights on a real map in 64³ tiles (``benchmarks/bench_detect.py
--margins``), the probabilities differ from those of a margin of 24 by at most 6e-8 at
margin 16, 2e-6 at 8 and 2e-3 at 0, with no label changed; a trained network's effective
reach may be longer, so a user can raise ``--margin``.

``predict_fn`` sees batches ``(B, 1, tile, tile, tile)`` float32 (z-y-x) and returns
``(B, C, tile, tile, tile)`` float32 (class probabilities, or any per-voxel scores); it
may be a wrapped torch network (:func:`torch_predict_fn`) or plain numpy (an identity for tests).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np

from rnamotif_data.errors import ConfigError, InputError
from rnamotif_data.learn.backend import torch

__all__ = ["tile_grid", "predict_volume", "torch_predict_fn"]

PredictFn = Callable[[np.ndarray], np.ndarray]


def tile_grid(shape, tile: int, margin: int) -> tuple[int, tuple[int, int, int]]:
    """The stride and the tiles per axis of the stitching rule for a volume of ``shape``
    ``(D, H, W)``: ``(tile - 2 margin, (ceil(D / stride), ceil(H / stride), ceil(W / stride)))``.

    Raises
    ------
    ConfigError
        If ``tile``/``margin`` are not whole numbers, ``margin < 0`` or ``tile <= 2 margin``.
    InputError
        If ``shape`` is not three positive sizes.
    """
    if int(tile) != tile or int(margin) != margin or margin < 0 or tile - 2 * margin < 1:
        raise ConfigError(f"tile {tile!r} and margin {margin!r}: need whole numbers with tile > 2 × margin >= 0")
    dims = tuple(int(n) for n in shape)
    if len(dims) != 3 or min(dims) < 1:
        raise InputError(f"volume shape must be three positive sizes (D, H, W), got {tuple(shape)}")
    stride = int(tile) - 2 * int(margin)
    return stride, (-(-dims[0] // stride), -(-dims[1] // stride), -(-dims[2] // stride))


def _cut(volume: np.ndarray, start: tuple[int, ...], tile: int) -> np.ndarray:
    """The ``tile³`` block of ``volume`` from ``start`` (voxels, may be negative or run past
    the end), zeros where it leaves the volume."""
    out = np.zeros((tile, tile, tile), np.float32)
    src, dst = [], []
    for s, n in zip(start, volume.shape):
        lo, hi = max(s, 0), min(s + tile, n)
        src.append(slice(lo, max(hi, lo)))
        dst.append(slice(lo - s, max(hi, lo) - s))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def _batches(n_tiles: tuple[int, int, int], batch_size: int) -> Iterator[list[tuple[int, ...]]]:
    batch: list[tuple[int, ...]] = []
    for abc in itertools.product(*(range(n) for n in n_tiles)):
        batch.append(abc)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_volume(density: np.ndarray, predict_fn: PredictFn, tile: int = 128, margin: int = 16,
                   batch_size: int = 1, *, progress: bool = False) -> np.ndarray:
    """Per-voxel scores of a whole volume, tile by tile (the stitching rule of the module docstring).

    Parameters
    ----------
    density:
        ``(D, H, W)`` float32, z-y-x (the normalised density on the 1 Å grid).
    predict_fn:
        ``(B, 1, tile, tile, tile)`` float32 -> ``(B, C, tile, tile, tile)`` float32.
    tile, margin:
        Voxels: the tile edge and the margin dropped on each face (stride ``tile - 2 margin``).
    batch_size:
        Tiles per call of ``predict_fn``.
    progress:
        Show a tqdm bar over the tiles.

    Returns
    -------
    ``(C, D, H, W)`` float32, z-y-x; 4 C bytes per voxel.

    Raises
    ------
    ConfigError
        For a bad tile, margin or batch size (:func:`tile_grid`).
    InputError
        If ``density`` is not 3D, or ``predict_fn`` returns another shape.
    """
    density = np.asarray(density, dtype=np.float32)
    if density.ndim != 3:
        raise InputError(f"density must be a (D, H, W) volume, got shape {density.shape}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError(f"batch size must be a positive whole number, got {batch_size!r}")
    stride, n_tiles = tile_grid(density.shape, tile, margin)
    out: np.ndarray | None = None
    bar = _progress(int(np.prod(n_tiles)), progress)
    try:
        for batch in _batches(n_tiles, int(batch_size)):
            starts = [tuple(a * stride - margin for a in abc) for abc in batch]
            x = np.stack([_cut(density, s, tile) for s in starts])[:, None]
            y = np.asarray(predict_fn(x), dtype=np.float32)
            if y.ndim != 5 or y.shape[0] != len(batch) or y.shape[2:] != (tile,) * 3:
                raise InputError(f"predict_fn returned shape {y.shape} for tiles {x.shape}; expected (B, C, {tile}, {tile}, {tile})")
            if out is None:
                out = np.empty((y.shape[1], *density.shape), np.float32)
            for k, abc in enumerate(batch):
                lo = [a * stride for a in abc]
                keep = [min(stride, n - s) for s, n in zip(lo, density.shape)]
                out[:, lo[0]:lo[0] + keep[0], lo[1]:lo[1] + keep[1], lo[2]:lo[2] + keep[2]] = \
                    y[k, :, margin:margin + keep[0], margin:margin + keep[1], margin:margin + keep[2]]
            bar.update(len(batch))
    finally:
        bar.close()
    assert out is not None  # at least one tile
    return out


def _progress(total: int, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="tiles", unit="tile", disable=not show, leave=False)


def torch_predict_fn(model, device, *, autocast: bool | None = None) -> PredictFn:
    """A :data:`predict_volume` function of a torch segmentation network: logits to class
    probabilities (softmax over channels), under ``torch.no_grad``; float32 on CPU,
    bfloat16 autocast on CUDA (``autocast=None``: on CUDA only). ``model`` must be in eval mode."""
    dev = torch.device(device)
    use_autocast = dev.type == "cuda" if autocast is None else bool(autocast)

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(x)).to(dev, non_blocking=True)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_autocast):
                logits = model(t)
            return torch.softmax(logits.float(), dim=1).cpu().numpy()

    return predict
