"""Make the multi-entry fixture (manifest + mirror) from ../shared/data, and build it with ``--build``.

``rnamotif multi-entry``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.testing.multi_entry`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.cli import build
from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.testing.multi_entry import FixtureConfig, make_fixture

__all__ = ["main", "parser"]

#: ../shared/data beside the repository
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

FIXTURE_HELPS = {
    "resolution": "Å, of the simulated maps",
    "voxel_size": "Å, of the simulated maps",
    "noise_sd": "noise as a fraction of the simulated map's sd",
    "fifty_s_step": "every n-th manifest row of the 50S volumes (0: none)",
}


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif multi-entry``."""
    p = argparse.ArgumentParser(prog="rnamotif multi-entry", description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder (default %(default)s)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-50s", action="store_true", help="leave the cryoDRGN 50S volumes out (--fifty-s-step 0)")
    p.add_argument("--build", action="store_true", help="also build OUT/store.zarr")
    add_config_arguments(p, FixtureConfig, helps=FIXTURE_HELPS, title="the fixture (FixtureConfig)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the builder's status with ``--build``, else 0."""
    args = parser().parse_args(argv)
    config = (config_from_args(args, FixtureConfig, fifty_s_step=0) if args.no_50s
              else config_from_args(args, FixtureConfig))
    manifest = make_fixture(args.shared, args.out, config)
    if args.build:
        return build.main(["--manifest", str(manifest), "--mirror", str(args.out / "mirror"),
                           "--out", str(args.out / "store.zarr"), "--overwrite"])
    return 0
