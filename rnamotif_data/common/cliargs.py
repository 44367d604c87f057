"""Command-line flags generated from frozen config dataclasses, so the CLI and the library
never disagree on a default (:func:`add_config_arguments`, :func:`config_from_args`).

One flag per public field, named ``--{prefix}field-name``; its type, default and (for a
``bool``) its ``--no-`` form come from the dataclass:

* ``bool`` -> ``--flag / --no-flag``;
* ``X | None`` -> a value of type ``X``, or ``none`` for None;
* ``tuple[X, ...]`` -> one or more values (``--flag A B``), turned back into a tuple;
* a field without a default -> a required flag;
* a field with a ``default_factory`` (a folder computed at run time) -> left to the library
  when the flag is not given;
* a nested config (a field whose default is a dataclass) -> no flag: give it its own
  :func:`add_config_arguments` call and pass the result to :func:`config_from_args`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import types as _types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("rnamotif_data")

__all__ = ["add_config_arguments", "config_from_args", "config_flags"]


def _field_type(config_cls: type, f: dataclasses.Field) -> tuple[Any, bool, bool]:
    """(element type, optional, tuple) of a dataclass field, from its annotation."""
    try:
        hint = typing.get_type_hints(config_cls)[f.name]
    except Exception:  # an annotation that cannot be evaluated: fall back on the default's type
        hint = type(f.default) if f.default is not dataclasses.MISSING else str
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, _types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0] if len(args) == 1 else str
        origin = typing.get_origin(hint)
    if origin is tuple:
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        element = args[0] if args and isinstance(args[0], type) else str
        return element, optional, True
    if origin is not None or not isinstance(hint, type):
        return str, optional, False
    return hint, optional, False


def _or_none(parse: Callable) -> Callable:
    def parse_or_none(text: str):
        return None if text.lower() == "none" else parse(text)

    parse_or_none.__name__ = getattr(parse, "__name__", "value")  # argparse names it in errors
    return parse_or_none


def _nested(f: dataclasses.Field) -> bool:
    """A nested config: a field whose default (or default factory) is a dataclass."""
    factory = f.default_factory
    return ((factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory))
            or (f.default is not dataclasses.MISSING and dataclasses.is_dataclass(f.default)))


def config_flags(config_cls: type, prefix: str = "", exclude: Iterable[str] = (),
                 names: dict[str, str] | None = None) -> dict[str, str]:
    """``{field name: flag}`` of the fields :func:`add_config_arguments` makes a flag for
    (``names``: a field's flag when it is not ``--{prefix}field-name``)."""
    exclude, names = set(exclude), names or {}
    return {f.name: names.get(f.name) or "--" + (prefix + f.name).replace("_", "-")
            for f in dataclasses.fields(config_cls)
            if not f.name.startswith("_") and f.name not in exclude and not _nested(f)}


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type, prefix: str = "",
                         types: dict[str, Callable] | None = None, *, exclude: Iterable[str] = (),
                         helps: dict[str, str] | None = None, choices: dict[str, Iterable] | None = None,
                         names: dict[str, str] | None = None, title: str | None = None) -> Any:
    """Add one ``--{prefix}field-name`` flag per public field of a frozen config dataclass.

    Defaults come from the dataclass, so the CLI and the library never disagree (the
    module docstring says how each kind of field becomes a flag). ``types`` gives the
    parser of a field whose annotation says too little (e.g. ``int | None`` that also reads
    ``auto``); ``exclude`` leaves fields out (the program sets them); ``helps`` and
    ``choices`` add a field's help text and allowed values; ``names`` gives a field another
    flag (``{"cache_dir": "--cache"}``). Returns the argument group.
    """
    types, helps, choices = types or {}, helps or {}, choices or {}
    group = parser.add_argument_group(title or f"{config_cls.__name__} (defaults as in the library)")
    flags = config_flags(config_cls, prefix, exclude, names)
    for f in dataclasses.fields(config_cls):
        if f.name not in flags:
            continue
        flag, dest = flags[f.name], _dest(flags[f.name])
        element, optional, many = _field_type(config_cls, f)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
            shown = ("none" if default is None else " ".join(map(str, default)) if many
                     else repr(default) if default == "" else str(default))
            note = f"default: {shown}"
        elif required:
            default, note = None, "required"
        else:  # a default_factory: the library computes it when the flag is not given
            default, note = None, "default: set by the library"
        text = f"{helps[f.name]}; {note}" if f.name in helps else note
        text = text.replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": dest, "default": default, "help": text}
        if element is bool and not many:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, required=required, **kwargs)
            continue
        parse = types.get(f.name) or (Path if element is Path else element if element in (int, float) else str)
        if optional and f.name not in types:
            parse = _or_none(parse)
        if f.name in choices:
            kwargs["choices"] = list(choices[f.name])
        else:
            kwargs["metavar"] = f.name.upper()
        group.add_argument(flag, type=parse, required=required, nargs="+" if many else None, **kwargs)
    return group


def config_from_args(args: argparse.Namespace, config_cls: type, prefix: str = "", *,
                     exclude: Iterable[str] = (), names: dict[str, str] | None = None, **values):
    """Build a config dataclass from parsed arguments added by :func:`add_config_arguments`.

    ``values`` set fields directly (those in ``exclude``, or to override a flag). A field
    with a ``default_factory`` whose flag was not given is left to the library; tuple
    fields are given as tuples.
    """
    kwargs = dict(values)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for name, flag in config_flags(config_cls, prefix, exclude, names).items():
        if name in kwargs:
            continue
        value = getattr(args, _dest(flag))
        if value is None and fields[name].default_factory is not dataclasses.MISSING:
            continue
        kwargs[name] = tuple(value) if isinstance(value, list) else value
    return config_cls(**kwargs)
