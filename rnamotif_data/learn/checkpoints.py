"""Checkpoints and devices: choosing the torch device for ``--device``, and writing and reading
checkpoints as data only (``torch.load(weights_only=True)``).

Used by :mod:`~rnamotif_data.learn.train` and :mod:`~rnamotif_data.learn.evaluate`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnamotif_data.errors import ConfigError, DiskFullError, InputError, MissingFileError, one_line
from rnamotif_data.features.projection import Projection
from rnamotif_data.learn.backend import torch

__all__ = ["choose_device", "load_checkpoint", "save_checkpoint", "projection_state", "projection_from_state"]


def choose_device(name: str) -> torch.device:
    """The torch device for ``--device`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``...).

    Raises ConfigError, in one line, for a name torch does not know or a CUDA device this
    machine does not have."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name!r}: not a torch device (auto, cpu, cuda, cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available here (torch {torch.__version__}); "
                              "use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def load_checkpoint(path: str | Path, device) -> dict:
    """Load a checkpoint as data only (``torch.load(weights_only=True)``: tensors, numbers,
    strings, lists and dicts); a file that would need code to load is refused.

    Raises
    ------
    MissingFileError
        If the file is missing.
    InputError
        In one line naming the file, if it is not a readable checkpoint.
    """
    import pickle

    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        # the message never suggests loading the file unrestricted: that would run its code
        raise InputError(f"{path}: not a loadable checkpoint: it holds objects other than tensors and plain "
                            "data, and checkpoints are read as data only (a file of rnamotif train never does)") from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse an untrusted file is a bad checkpoint
        raise InputError(f"{path}: not a loadable checkpoint: truncated, or not a file of torch.save "
                            f"({type(exc).__name__})") from None


def save_checkpoint(obj: dict, path: Path) -> None:
    """Write a checkpoint ``obj`` to ``path``: ``torch.save`` to a temporary file beside it, then
    rename, so a reader never sees half a file.

    Raises
    ------
    DiskFullError
        When the write fails for want of room (an ``OSError`` such as ENOSPC, or torch's
        ``RuntimeError`` from ``inline_container.cc`` that a full disk gives); the temporary
        file is removed and the message names ``path``.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, RuntimeError) and "inline_container" not in str(exc) and "write" not in str(exc).lower():
            raise
        raise DiskFullError(f"{path}: the checkpoint could not be written (disk full? free space and rerun "
                            f"with --resume): {one_line(exc)}") from exc
    tmp.replace(path)


def projection_state(proj: Projection | None) -> dict | None:
    """The ``seq_proj`` basis a run trained with, as checkpoint data (float32 tensors
    ``mean`` ``(E,)``, ``components`` ``(k, E)``, ``explained_variance_ratio`` ``(k,)``);
    None without one. Saved so that the evaluator paints with the training basis, not the
    one the store holds for the subset it scores (:mod:`rnamotif_data.features.projection`
    fits one per training subset)."""
    if proj is None:
        return None
    return {k: torch.from_numpy(np.array(getattr(proj, k), np.float32))
            for k in ("mean", "components", "explained_variance_ratio")}


def projection_from_state(state: dict | None) -> Projection | None:
    """The :class:`~rnamotif_data.features.projection.Projection` of :func:`projection_state`'s
    data (None for None: a checkpoint without ``seq_proj``, or one made before 0.9)."""
    if not state:
        return None
    return Projection(*(np.asarray(state[k].cpu().numpy(), np.float32)
                        for k in ("mean", "components", "explained_variance_ratio")))
