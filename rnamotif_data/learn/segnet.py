"""3D segmentation networks of whole maps: a voxel's element class from the density around it.

* ``unet3d`` -- :class:`UNet3D`, the 3D U-Net of Çiçek et al. 2016 ("3D U-Net: learning
  dense volumetric segmentation from sparse annotation", MICCAI, doi:10.1007/978-3-319-46723-8_49):
  an encoder of ``depth`` levels, each two Conv3d 3×3×3 (padding 1) + BatchNorm3d + ReLU,
  the levels joined by MaxPool3d(2) and the channels doubled at each level (``width``,
  ``2 width``, ...); a decoder of ConvTranspose3d(2, stride 2) up-sampling, concatenation
  with the encoder's features of the same level (the skip connections), two convolutions
  each; a 1×1×1 convolution to ``n_classes`` logits. Smaller than the paper's (32-64-128-256
  channels, four levels): the default 8-16-32 (``width=8, depth=3``, 85,249 parameters,
  receptive field 44 voxels) makes 2.0-2.7 × 10⁵ voxels of the 1 Å grid per second on the
  2-core development machine, the whole of ``rnamotif detect`` included
  (``benchmarks/bench_detect.py``; RESULTS.md, "Detection speed (issue 37)").

Inputs ``(B, 1, D, H, W)`` float32, the normalised density (z-y-x, 1 Å voxels by default,
:class:`~rnamotif_data.samples.volumes.VolumeConfig`); outputs ``(B, n_classes, D, H, W)``
logits, classes :data:`rnamotif_data.rna.elements.ELEMENT_NAMES` by default. ``D, H, W``
must be multiples of ``2 ** (depth - 1)`` (:meth:`UNet3D.check_tile`).

Checkpoints
-----------
:func:`save_segmentation_checkpoint` writes, through
:func:`~rnamotif_data.learn.checkpoints.save_checkpoint` (atomic), a dict with
``kind = "segmentation"``, ``network`` (a name of :data:`SEGMENTATION_NETWORKS`),
``network_args`` (``in_channels``, ``n_classes``, ``width``, ``depth``), ``tile`` (the edge
of the training tiles, voxels), ``class_names``, ``volume_config`` (every
:class:`~rnamotif_data.samples.volumes.VolumeConfig` field: ``voxel_size`` Å,
``label_radius`` Å, ``normalise_percentile``, ...), ``state_dict`` and ``extra``
(anything the trainer adds: epoch, fold, metrics). :func:`load_segmentation_checkpoint`
refuses, in one line naming the file, a checkpoint of another kind (a cube classifier of
``rnamotif train``) and one whose tile does not fit its network.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from rnamotif_data.errors import CheckpointMismatchError, ConfigError, InputError
from rnamotif_data.learn.backend import nn, torch
from rnamotif_data.learn.checkpoints import load_checkpoint, save_checkpoint
from rnamotif_data.rna.elements import ELEMENT_NAMES
from rnamotif_data.samples.volumes import VolumeConfig

__all__ = ["UNet3D", "SEGMENTATION_NETWORKS", "SEGMENTATION_KIND", "SegmentationCheckpoint",
           "build_segmentation_network", "save_segmentation_checkpoint", "load_segmentation_checkpoint"]

_VOLUME_DEFAULT = VolumeConfig()

#: the ``kind`` field of a segmentation checkpoint
SEGMENTATION_KIND = "segmentation"


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """Two Conv3d 3×3×3 (padding 1) + BatchNorm3d + ReLU."""
    return nn.Sequential(nn.Conv3d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True),
                         nn.Conv3d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))


class UNet3D(nn.Module):
    """A small 3D U-Net (module docstring).

    Parameters
    ----------
    in_channels:
        Input channels (1: the normalised density).
    n_classes:
        Output channels, one logit per class (9: :data:`~rnamotif_data.rna.elements.ELEMENT_NAMES`).
    width:
        Channels of the first level; level ``l`` has ``width * 2**l``.
    depth:
        Levels (1 = no pooling); inputs must be multiples of ``2 ** (depth - 1)`` voxels.

    Raises
    ------
    ConfigError
        For a width, depth, channel or class count below 1 (depth above 6).
    """

    def __init__(self, in_channels: int = 1, n_classes: int = len(ELEMENT_NAMES), *, width: int = 8, depth: int = 3):
        super().__init__()
        for name, v, hi in (("in_channels", in_channels, 64), ("n_classes", n_classes, 255), ("width", width, 256),
                            ("depth", depth, 6)):
            if int(v) != v or not 1 <= v <= hi:
                raise ConfigError(f"unet3d: {name} must be a whole number in 1..{hi}, got {v!r}")
        self.in_channels, self.n_classes, self.width, self.depth = int(in_channels), int(n_classes), int(width), int(depth)
        chans = [width * 2 ** level for level in range(depth)]
        self.down = nn.ModuleList([_block(c_in, c) for c_in, c in zip([in_channels, *chans[:-1]], chans)])
        self.pool = nn.MaxPool3d(2)
        self.up = nn.ModuleList([nn.ConvTranspose3d(chans[level + 1], chans[level], 2, stride=2)
                                 for level in range(depth - 1)])
        self.merge = nn.ModuleList([_block(2 * chans[level], chans[level]) for level in range(depth - 1)])
        self.head = nn.Conv3d(chans[0], n_classes, 1)

    @property
    def multiple(self) -> int:
        """Voxels an input's edges must be a multiple of: ``2 ** (depth - 1)``."""
        return 2 ** (self.depth - 1)

    @property
    def receptive_field(self) -> int:
        """Edge (voxels) of the input region that can reach one output voxel: each level's
        two 3×3×3 convolutions on the way down and up, and the pooling."""
        rf, jump = 1, 1
        for level in range(self.depth):
            rf += 4 * jump  # two 3-wide convolutions
            if level < self.depth - 1:
                rf += jump  # MaxPool3d(2)
                jump *= 2
        for _level in range(self.depth - 1):
            jump //= 2
            rf += 4 * jump  # the decoder's two convolutions (the transposed convolution adds nothing)
        return rf

    def check_tile(self, tile: int, what: str = "tile") -> int:
        """``tile`` if it is a positive multiple of :attr:`multiple`, else a one-line
        :class:`~rnamotif_data.errors.ConfigError` naming ``what``."""
        if int(tile) != tile or tile < self.multiple or tile % self.multiple:
            raise ConfigError(f"{what} {tile!r}: unet3d of depth {self.depth} needs a multiple of {self.multiple} voxels")
        return int(tile)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, D, H, W)`` -> ``(B, n_classes, D, H, W)`` logits."""
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < self.depth - 1:
                skips.append(x)
                x = self.pool(x)
        for level in reversed(range(self.depth - 1)):
            x = self.merge[level](torch.cat([skips[level], self.up[level](x)], dim=1))
        return self.head(x)


#: the segmentation networks by name (``build_segmentation_network``)
SEGMENTATION_NETWORKS = {"unet3d": UNet3D}


def build_segmentation_network(name: str, in_channels: int = 1, n_classes: int = len(ELEMENT_NAMES), *,
                               width: int = 8, depth: int = 3) -> UNet3D:
    """A segmentation network by name (:data:`SEGMENTATION_NETWORKS`), randomly initialised
    (seed torch first for reproducible weights).

    Raises
    ------
    ConfigError
        For an unknown name or bad sizes (:class:`UNet3D`).
    """
    if name not in SEGMENTATION_NETWORKS:
        raise ConfigError(f"unknown segmentation network {name!r}; choose one of {', '.join(SEGMENTATION_NETWORKS)}")
    return SEGMENTATION_NETWORKS[name](in_channels=in_channels, n_classes=n_classes, width=width, depth=depth)


@dataclasses.dataclass(frozen=True, eq=False)
class SegmentationCheckpoint:
    """A loaded segmentation checkpoint (:func:`load_segmentation_checkpoint`).

    Attributes
    ----------
    model:
        The network with its weights, in eval mode, on the device asked for.
    network:
        Its name (:data:`SEGMENTATION_NETWORKS`).
    tile:
        Edge (voxels) of the tiles it was trained on.
    class_names:
        Output channel names, in channel order.
    volume_config:
        The grid it was trained on (voxel size, normalisation).
    extra:
        The trainer's extra fields.
    path:
        The file.
    """

    model: nn.Module
    network: str
    tile: int
    class_names: tuple[str, ...]
    volume_config: VolumeConfig
    extra: dict
    path: Path


def save_segmentation_checkpoint(model: nn.Module, path: str | os.PathLike, *, network: str, tile: int,
                                 class_names, volume_config: VolumeConfig = _VOLUME_DEFAULT,
                                 extra: dict | None = None, n_classes: int | None = None) -> Path:
    """Write ``model`` as a segmentation checkpoint (module docstring) to ``path``, atomically.

    ``n_classes``, when given, must be the model's (it is read from the model either way).

    Raises
    ------
    ConfigError
        For an unknown network, a model that is not a :class:`UNet3D`, class names (or
        ``n_classes``) that do not match its outputs, or a tile its depth cannot take.
    DiskFullError
        As :func:`~rnamotif_data.learn.checkpoints.save_checkpoint`.
    """
    if network not in SEGMENTATION_NETWORKS or not isinstance(model, UNet3D):
        raise ConfigError(f"network {network!r}: not the name of this segmentation network ({type(model).__name__}); "
                          f"choose one of {', '.join(SEGMENTATION_NETWORKS)}")
    names = tuple(str(n) for n in class_names)
    if n_classes is not None and n_classes != model.n_classes:
        raise ConfigError(f"n_classes {n_classes} for a network of {model.n_classes} outputs")
    if len(names) != model.n_classes:
        raise ConfigError(f"{len(names)} class names for a network of {model.n_classes} outputs")
    model.check_tile(tile)
    obj = {"kind": SEGMENTATION_KIND, "network": network,
           "network_args": {"in_channels": model.in_channels, "n_classes": model.n_classes,
                            "width": model.width, "depth": model.depth},
           "tile": int(tile), "class_names": list(names), "volume_config": dataclasses.asdict(volume_config),
           "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "extra": dict(extra or {})}
    path = Path(path)
    save_checkpoint(obj, path)
    return path


def _flat(obj):
    """A training checkpoint (:func:`rnamotif_data.learn.segtrain.train_segmentation`: weights
    under ``model``, the run's ``kind``, ``network_args`` and ``volume_config`` in its
    ``config``) in the layout of :func:`save_segmentation_checkpoint`; others as they are."""
    if not isinstance(obj, dict) or "state_dict" in obj or "model" not in obj:
        return obj
    config: dict = obj["config"] if isinstance(obj.get("config"), dict) else {}
    if config.get("kind") != SEGMENTATION_KIND:
        return obj
    extra = {k: obj[k] for k in ("epoch", "train_counts", "split_fingerprint", "best_epoch", "best_score",
                                 "selection_metric") if k in obj}
    return {**obj, "kind": SEGMENTATION_KIND, "network_args": config.get("network_args"),
            "volume_config": config.get("volume_config"), "state_dict": obj["model"],
            "extra": {**extra, "config": config}}


def load_segmentation_checkpoint(path: str | os.PathLike, device="cpu") -> SegmentationCheckpoint:
    """Read a checkpoint of :func:`save_segmentation_checkpoint`, or a ``best.pt``/``last.pt``
    of ``rnamotif train --network unet3d`` (as data only), and build its network.

    Raises
    ------
    MissingFileError, InputError
        As :func:`~rnamotif_data.learn.checkpoints.load_checkpoint` (missing, unreadable).
    CheckpointMismatchError
        One line naming the file: a checkpoint of another kind (a cube classifier of
        ``rnamotif train``), an unknown network, weights that do not fit it, or a tile
        its depth cannot take.
    """
    path = Path(path)
    obj = _flat(load_checkpoint(path, device))
    if not isinstance(obj, dict) or obj.get("kind") != SEGMENTATION_KIND:
        config = obj.get("config") if isinstance(obj, dict) else None
        net = config.get("network") if isinstance(config, dict) else None
        what = f"a cube classifier{f' ({net})' if net else ''}" if isinstance(obj, dict) and "cube" in obj else \
            f"kind {obj.get('kind')!r}" if isinstance(obj, dict) else "not a dict"
        raise CheckpointMismatchError(f"{path}: not a segmentation checkpoint ({what}, e.g. of rnamotif train); "
                                      "detect needs a whole-map network such as unet3d")
    try:
        args = dict(obj["network_args"])
        model = build_segmentation_network(str(obj["network"]), **args)
        model.load_state_dict(obj["state_dict"])
        config = VolumeConfig(**obj["volume_config"])
        names = tuple(str(n) for n in obj["class_names"])
        tile = int(obj["tile"])
    except (KeyError, TypeError, RuntimeError, InputError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointMismatchError(f"{path}: a damaged segmentation checkpoint ({text[:200]})") from None
    if len(names) != model.n_classes:
        raise CheckpointMismatchError(f"{path}: {len(names)} class names for {model.n_classes} outputs")
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z0-9_-]+", n)]
    if bad or len(set(names)) != len(names):
        raise CheckpointMismatchError(f"{path}: class names must be distinct words (letters, digits, _ and -; they "
                                      f"name files), got {bad[0] if bad else 'a repeated name'}")
    try:
        model.check_tile(tile)
    except ConfigError as exc:
        raise CheckpointMismatchError(f"{path}: {exc}") from None
    model.to(device).eval()
    return SegmentationCheckpoint(model=model, network=str(obj["network"]), tile=tile, class_names=names,
                                  volume_config=config, extra=dict(obj.get("extra") or {}), path=path)
