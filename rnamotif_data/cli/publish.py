"""Publish a built store as a new version of the dataset on Zenodo.

``rnamotif publish``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.release.publish`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.common.output import REPORT
from rnamotif_data.release.package import load_zenodo_config
from rnamotif_data.release.publish import PublishOptions, default_out, log, publish
from rnamotif_data.release.zenodo import SANDBOX_API, ZENODO_API
from rnamotif_data.storage.registry import registry_path

__all__ = ["main", "parser"]

#: PublishOptions fields the program computes (from --out, --zenodo-config, --sandbox/--api-url, --registry)
COMPUTED = ("out", "config", "api_url", "registry")
PUBLISH_HELPS = {
    "store": "built store (local path)",
    "version": "dataset version to publish, e.g. 1.0.0",
    "notes": "what changed in this version (changelog)",
    "parent": "record id to make a new version of (none: the latest registered)",
    "new_concept": "start a new dataset (concept DOI), not a new version",
    "verify_values": "check the cube values too (--no-verify-values: store structure and checksums only)",
}


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif publish``."""
    p = argparse.ArgumentParser(prog="rnamotif publish", description=__doc__.split("\n")[0])
    add_config_arguments(p, PublishOptions, exclude=COMPUTED, helps=PUBLISH_HELPS, title="the release (PublishOptions)")
    p.add_argument("--out", type=Path, help="package folder (default: <store>-release-<version> beside the store)")
    p.add_argument("--zenodo-config", type=Path, help="Zenodo metadata YAML (default: the zenodo.yaml shipped in rnamotif_data/release)")
    p.add_argument("--dry-run", action="store_true", help="build the package, print it and the planned calls; no network")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sandbox", action="store_true", help="publish to sandbox.zenodo.org (its own tokens)")
    g.add_argument("--api-url", help="another Zenodo-compatible API base URL (e.g. a test server)")
    p.add_argument("--registry", type=Path, help="versions registry to update (default: see rnamotif_data.release.publish)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 on success."""
    p = parser()
    args = p.parse_args(argv)
    if args.parent is not None and args.new_concept:
        p.error("--parent and --new-concept exclude each other")
    api = (args.api_url or (SANDBOX_API if args.sandbox else ZENODO_API)).rstrip("/")
    out = args.out or default_out(args.store, args.version)
    if args.registry is not None:
        registry = args.registry
    elif api == ZENODO_API:
        registry = registry_path()
    else:
        registry = out / "versions.json"
        log.info("registry for %s: %s (pass --registry to choose another)", api, registry)
    opts = config_from_args(args, PublishOptions, exclude=COMPUTED, out=out,
                            config=load_zenodo_config(args.zenodo_config), api_url=api, registry=registry)
    result = publish(opts, dry_run=args.dry_run, progress=not args.no_progress)
    if isinstance(result, list):  # the dry run's lines
        REPORT.info("\n".join(result))
        return 0
    REPORT.info(f"published rnamotif-data {result.version}: https://doi.org/{result.doi} "
                f"(record {result.record_id}); registry {registry}")
    return 0
