"""torch for the learning package, imported in one place: typed for the checker, and a
one-line :class:`~rnamotif_data.errors.MissingDependencyError` naming the ``[learn]`` extra
at run time when torch is not installed. Modules use ``from rnamotif_data.learn.backend
import torch, nn``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnamotif_data.common.extras import require

__all__ = ["torch", "nn"]

if TYPE_CHECKING:
    import torch
    from torch import nn
else:
    torch = require("torch", "the learning package (training, evaluation, the PyTorch dataset)")
    nn = torch.nn
