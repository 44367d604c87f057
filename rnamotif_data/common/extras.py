"""Optional dependencies: importing one, or saying in one line which extra brings it.

The core install (numpy, scipy, zarr, pyarrow, pandas, gemmi, mrcfile, requests, pooch)
reads stores, releases, maps and models. Everything else is an extra of ``pyproject.toml``:
``[learn]`` torch, ``[build]`` Dask, ``[split]`` parasail, ``[annotate]`` RNApolis,
``[audit]`` scikit-learn, ``[report]`` matplotlib, ``[hdf5]`` h5py, ``[embed]`` structRFM sequence features (torch, transformers), ``[publish]`` what a
release needs (report, audit, split); ``[all]`` every one.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rnamotif_data.errors import MissingDependencyError

__all__ = ["EXTRAS", "require"]

#: top-level module -> (the distribution pip installs, the extra that brings it)
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "learn"),
    "dask": ("dask[distributed]", "build"),
    "distributed": ("dask[distributed]", "build"),
    "parasail": ("parasail", "split"),
    "rnapolis": ("RNApolis", "annotate"),
    "sklearn": ("scikit-learn", "audit"),
    "matplotlib": ("matplotlib", "report"),
    "h5py": ("h5py", "hdf5"),
    "transformers": ("transformers", "embed"),
    "structRFM": ("structRFM", "embed"),
    "datasets": ("datasets", "embed"),
    "BPfold": ("BPfold", "embed"),
}


def require(module: str, what: str, extra: str | None = None) -> ModuleType:
    """Import the optional dependency ``module`` (``"torch"``, ``"matplotlib.pyplot"``...).

    ``what`` names the feature that needs it, for the message; ``extra`` the extra to name
    when it is not the module's usual one (structRFM's torch comes with ``[embed]``).

    Raises
    ------
    rnamotif_data.errors.MissingDependencyError
        In one line, when the module is not installed: e.g. ``the PyTorch dataset needs
        torch, which is not installed: pip install 'rnamotif-data[learn]'``. An import error
        raised inside an installed module is not masked.
    """
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != top:
            raise
        dist, usual = EXTRAS.get(top, (top, "all"))
        extra = extra or usual
        raise MissingDependencyError(
            f"{what} needs {dist}, which is not installed: pip install 'rnamotif-data[{extra}]'") from None
