"""3D CNN classifiers of motif cubes.

* ``motif3dcnn`` -- :class:`Motif3DCNN`, the upstream baseline architecture (3DEM RNA
  motif dataset, ``train_motif_classifier.py``): three stages of Conv3d 3×3×3 (padding 1)
  + ReLU + MaxPool3d(2) with 16/32/64 channels, then Linear 128 + ReLU and Linear to the
  classes. Adapted here to the cube size and channel count (the flattened size is
  ``64 * (cube // 8)³``; 8,000 for 40³ cubes).
* ``motif3dcnn_bn`` -- :class:`Motif3DCNNBN`, a stronger variant: each convolution
  followed by BatchNorm3d (Ioffe & Szegedy 2015, arXiv:1502.03167), a fourth 128-channel
  stage, global average pooling (Lin et al. 2014, arXiv:1312.4400) and dropout 0.3 before
  the classifier: fewer parameters (0.29 M vs 1.09 M), and independent of cube size.
* ``motif3dcnn_seq`` -- :class:`Motif3DCNNSeq`, density and sequence with late fusion: the
  ``motif3dcnn`` trunk up to its 128-unit layer, a sequence branch (a shared Linear E -> 64
  + ReLU on each residue's features, then masked mean and max pooling over residues, as
  in DeepSets, Zaheer et al. 2017, arXiv:1703.06114) and a classifier on both 128-unit
  codes concatenated. Inputs ``(x, s, m)``: cubes, residue features ``(B, R, E)``, mask ``(B, R)``.

Inputs ``(B, C, D, H, W)`` float32 (z-y-x); outputs ``(B, num_classes)`` logits.
"""

from __future__ import annotations

from rnamotif_data.errors import ConfigError
from rnamotif_data.learn.backend import nn, torch

__all__ = ["Motif3DCNN", "Motif3DCNNBN", "Motif3DCNNSeq", "NETWORKS", "SEQUENCE_NETWORKS", "build_network",
           "MODELS", "build_model"]


class Motif3DCNN(nn.Module):
    """The upstream baseline 3D CNN.

    Parameters
    ----------
    in_channels:
        C of the input ``(B, C, D, H, W)``.
    num_classes:
        Output classes (5: sym, bul, hp, asymm, unk).
    cube:
        Cube edge D = H = W in voxels (>= 8).

    Raises
    ------
    ConfigError
        If ``cube < 8``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 5, *, cube: int):
        super().__init__()
        if cube < 8:
            raise ConfigError(f"cube must be >= 8 voxels, got {cube}")
        layers, c = [], in_channels
        for out in (16, 32, 64):
            layers += [nn.Conv3d(c, out, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool3d(2)]
            c = out
        self.features = nn.Sequential(*layers)
        side = cube // 8
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * side ** 3, 128), nn.ReLU(inplace=True),
                                        nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, D, H, W)`` -> ``(B, num_classes)`` logits."""
        return self.classifier(self.features(x))


class Motif3DCNNBN(nn.Module):
    """BatchNorm + global-average-pooling variant (module docstring); any cube >= 16."""

    def __init__(self, in_channels: int = 1, num_classes: int = 5, *, cube: int):
        super().__init__()
        layers, c = [], in_channels
        for out in (16, 32, 64, 128):
            layers += [nn.Conv3d(c, out, 3, padding=1, bias=False), nn.BatchNorm3d(out), nn.ReLU(inplace=True),
                       nn.MaxPool3d(2)]
            c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Dropout(0.3),
                                        nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, D, H, W)`` -> ``(B, num_classes)`` logits."""
        return self.classifier(self.features(x))


class Motif3DCNNSeq(nn.Module):
    """Density + sequence, late fusion (module docstring).

    Parameters
    ----------
    in_channels, num_classes, cube:
        As :class:`Motif3DCNN`.
    seq_dim:
        E, features per residue (5 one-hot, 768 structRFM).

    Raises
    ------
    ConfigError
        If ``cube < 8`` or ``seq_dim < 1``.
    """

    #: forward takes ``(x, s, m)`` (the trainer and evaluator pass residue features)
    takes_sequence = True

    def __init__(self, in_channels: int = 1, num_classes: int = 5, *, cube: int, seq_dim: int):
        super().__init__()
        if seq_dim < 1:
            raise ConfigError(f"seq_dim must be >= 1, got {seq_dim}")
        trunk = Motif3DCNN(in_channels, num_classes, cube=cube)
        self.features = trunk.features
        self.density_code = nn.Sequential(*list(trunk.classifier)[:3])  # Flatten, Linear 128, ReLU
        self.residue = nn.Sequential(nn.Linear(seq_dim, 64), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor, s: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``(B, C, D, H, W)``, ``(B, R, E)``, ``(B, R)`` bool -> ``(B, num_classes)`` logits."""
        d = self.density_code(self.features(x))
        h = self.residue(s)
        w = m.unsqueeze(-1).to(h.dtype)
        mean = (h * w).sum(1) / w.sum(1).clamp(min=1.0)
        mx = h.masked_fill(~m.unsqueeze(-1), float("-inf")).amax(1)
        mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))  # a sample without residues
        return self.classifier(torch.cat([d, mean, mx], dim=1))


#: the networks by name (``rnamotif train --network NAME``)
NETWORKS = {"motif3dcnn": Motif3DCNN, "motif3dcnn_bn": Motif3DCNNBN, "motif3dcnn_seq": Motif3DCNNSeq}
#: the networks that take ``(x, s, m)``: cubes and residue features
SEQUENCE_NETWORKS = ("motif3dcnn_seq",)


def build_network(name: str, in_channels: int, num_classes: int = 5, *, cube: int, seq_dim: int | None = None) -> nn.Module:
    """A neural network by name (:data:`NETWORKS`) for inputs ``(B, in_channels, cube, cube, cube)``
    (and residue features of ``seq_dim`` per residue for :data:`SEQUENCE_NETWORKS`).

    ``cube`` is the edge of the store's cubes in voxels (its ``cube_shape``); there is no
    default, so the network always matches the data it is trained or evaluated on.

    Raises
    ------
    ConfigError
        For an unknown name, or a sequence network without ``seq_dim``.
    """
    if name not in NETWORKS:
        raise ConfigError(f"unknown network {name!r}; choose one of {', '.join(NETWORKS)}")
    if name in SEQUENCE_NETWORKS:
        if not seq_dim:
            raise ConfigError(f"network {name} needs sequence features (seq_dim)")
        return NETWORKS[name](in_channels=in_channels, num_classes=num_classes, cube=cube, seq_dim=seq_dim)
    return NETWORKS[name](in_channels=in_channels, num_classes=num_classes, cube=cube)


#: Deprecated aliases (0.7 names; removed in 0.9): the atomic model is ``rna.structure.Model``.
MODELS = NETWORKS
build_model = build_network
