"""Download a published dataset version and verify it.

``rnamotif download``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.storage.download`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.storage.download import ENV_HOME, STORE_DIRNAME, download, log
from rnamotif_data.storage.registry import ENV_REGISTRY, registry_path

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif download``."""
    p = argparse.ArgumentParser(prog="rnamotif download", description=__doc__.split("\n")[0])
    p.add_argument("--version", help="dataset version (default: the latest registered)")
    p.add_argument("--root", type=Path, help=f"download folder (default: ${ENV_HOME} or ~/.local/share/rnamotif-data)")
    p.add_argument("--registry", type=Path, help=f"versions registry (default: ${ENV_REGISTRY} or the shipped one)")
    p.add_argument("--offline", action="store_true", default=None, help="use the cache only")
    p.add_argument("--metadata-only", action="store_true", help="skip the zipped store")
    p.add_argument("--keep-archive", action="store_true", help="keep the zip after unpacking")
    p.add_argument("--verify", action="store_true", help="re-check a cached store's checksums")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rnamotif download``; returns 0."""
    args = parser().parse_args(argv)
    vdir = download(args.version, root=args.root, registry=args.registry, offline=args.offline,
                    metadata_only=args.metadata_only, keep_archive=args.keep_archive, verify=args.verify,
                    progress=not args.no_progress)
    log.info("registry %s; files in %s%s", registry_path(args.registry), vdir,
             "" if args.metadata_only else f"; store {vdir / STORE_DIRNAME}")
    return 0
