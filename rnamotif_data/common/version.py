"""The installed package's version (``importlib.metadata``), for stores, reports and cards."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("rnamotif-data")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
