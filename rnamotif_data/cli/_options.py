"""Flags several programs share: where files come from (:class:`~rnamotif_data.inputs.sources.SourceConfig`).

``--cache``, ``--mirror`` and ``--offline`` are the config's ``cache_dir``, ``mirror`` and
``offline``; ``--online`` lets a program with a mirror (offline by default then) download
what the mirror lacks. The other fields (URL templates, timeout, retries, ...) get their
flags from the dataclass (:func:`~rnamotif_data.common.cliargs.add_config_arguments`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.inputs.sources import SourceConfig, default_cache_dir

#: the flags of SourceConfig fields whose flag is not --field-name
SOURCE_NAMES = {"cache_dir": "--cache"}
SOURCE_HELPS = {
    "cache_dir": "download cache ($RNAMOTIF_CACHE, else ~/.cache/rnamotif-data)",
    "mirror": "local mirror with the cache layout, searched before the cache; implies --offline unless --online",
    "offline": "never use the network",
    "entry_url": "URL template of the RCSB entry record",
    "model_url": "URL template of a model file",
    "map_url": "URL template of an EMDB map",
    "timeout": "seconds for connecting and between bytes",
    "retries": "retries of one request on connection errors, timeouts, 429 and 5xx",
    "attempts": "whole-download attempts when a body breaks off or fails its check",
    "backoff": "base of the exponential backoff, seconds",
    "verify_found": "check files found in the mirror or cache before using them",
}


def add_source_arguments(parser: argparse.ArgumentParser, *, exclude: Iterable[str] = (),
                         online: bool = True) -> None:
    """Add the :class:`SourceConfig` flags (``exclude``: fields the program sets itself) and,
    with ``online``, ``--online``."""
    helps = dict(SOURCE_HELPS)
    if not online:
        helps["mirror"] = "local mirror with the cache layout, searched before the cache"
    group = add_config_arguments(parser, SourceConfig, exclude=exclude, names=SOURCE_NAMES, helps=helps,
                                 title="where models and maps come from (SourceConfig)")
    if online:
        group.add_argument("--online", action="store_true", help="with --mirror, download what the mirror lacks")


def source_config_from_args(args: argparse.Namespace, *, exclude: Iterable[str] = (), resolve: bool = False,
                            **values) -> SourceConfig:
    """The :class:`SourceConfig` of the flags added by :func:`add_source_arguments`: a mirror
    means offline unless ``--online``; ``resolve`` makes the cache and mirror absolute
    (for workers elsewhere); ``values`` set fields directly."""
    exclude = set(exclude)
    if "offline" not in exclude and "offline" not in values:
        values["offline"] = bool(args.offline or (args.mirror is not None and not getattr(args, "online", False)))
    if resolve:
        values.setdefault("cache_dir", Path(args.cache or default_cache_dir()).resolve())
        if "mirror" not in exclude and args.mirror is not None:
            values.setdefault("mirror", Path(args.mirror).resolve())
    return config_from_args(args, SourceConfig, exclude=exclude, names=SOURCE_NAMES, **values)
