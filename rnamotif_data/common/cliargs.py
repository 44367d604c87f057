"""Command-line flags generated from frozen config dataclasses, so the CLI and the library
never disagree on a default (:func:`add_config_arguments`, :func:`config_from_args`)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable

log = logging.getLogger("rnamotif_data")


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type, prefix: str = "",
                         types: dict[str, Callable] | None = None) -> None:
    """Add one ``--{prefix}field-name`` flag per public field of a frozen config dataclass.

    Defaults come from the dataclass, so the CLI and the library never disagree.
    ``types`` gives the parser of fields whose default is None (e.g. ``int | None``).
    """
    types = types or {}
    group = parser.add_argument_group(f"{config_cls.__name__} (defaults as in the library)")
    for f in dataclasses.fields(config_cls):
        if f.name.startswith("_"):
            continue
        flag = "--" + (prefix + f.name).replace("_", "-")
        dest = (prefix + f.name).replace("-", "_")
        default = f.default
        help_text = f"default: {default}"
        if isinstance(default, bool):
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                               default=default, help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=types.get(f.name, type(default)), default=default,
                               metavar=f.name.upper(), help=help_text)


def config_from_args(args: argparse.Namespace, config_cls: type, prefix: str = ""):
    """Build a config dataclass from parsed arguments added by :func:`add_config_arguments`."""
    names = [f.name for f in dataclasses.fields(config_cls) if not f.name.startswith("_")]
    return config_cls(**{n: getattr(args, (prefix + n).replace("-", "_")) for n in names})
