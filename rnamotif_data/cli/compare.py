"""``rnamotif compare``: two training arms paired by fold and seed.

Usage::

    rnamotif compare runs/density runs/onehot --names density one-hot [--metric macro_sensitivity]
        [--out comparison.md]

Each arm is a ``cv_summary.json`` that ``rnamotif train --all-folds [--seeds N]`` wrote, or the
run folder that holds it. The runs are paired by (fold, seed); the report gives each arm's
mean ± sd, the mean difference with its 95 % bootstrap interval, the paired t-test and
Wilcoxon signed-rank p-values, and names constant predictors
(:func:`rnamotif_data.learn.references.compare_runs`). A difference is worth stating only
where the paired test gives p < 0.05.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from rnamotif_data.errors import ConfigError, InputError, MissingFileError
from rnamotif_data.learn.references import compare_runs, comparison_markdown

__all__ = ["main", "parser", "read_arm"]


def read_arm(path: str | Path) -> dict:
    """The summary of one arm: ``path`` is a ``cv_summary.json`` or a folder holding one.

    Raises
    ------
    MissingFileError
        If there is no such file.
    InputError
        If it is not a summary of ``rnamotif train --all-folds`` (no ``runs``/``folds`` list).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "cv_summary.json"
    if not p.is_file():
        raise MissingFileError(f"{p}: no such file; give a cv_summary.json of rnamotif train --all-folds, or its folder")
    try:
        summary = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not readable as JSON ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("runs", summary.get("folds")), list):
        raise InputError(f"{p}: not a cross-validation summary (no list of runs); it is written by "
                         "rnamotif train --all-folds")
    return summary


def _runs(summary: dict) -> list[dict]:
    return list(summary.get("runs", summary.get("folds", [])))


def _check_comparable(args, a: dict, b: dict) -> None:
    """Refuse a metric no run has, and two arms scored under different protocols or subsets
    (a nested test fold against an upstream validation fold is no pair)."""
    for path, arm in ((args.a, a), (args.b, b)):
        keys = {k for run in _runs(arm) for k, v in run.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if args.metric not in keys:
            raise ConfigError(f"--metric {args.metric}: no run of {path} has it; its runs have "
                              f"{', '.join(sorted(keys - {'seed'}))}")
    for what, get in (("protocol", lambda arm: {arm.get("protocol")}),
                      ("scored subset", lambda arm: {run.get("subset") for run in _runs(arm)})):
        if get(a) != get(b):
            raise InputError(f"{args.a} and {args.b}: scored under another {what} ({', '.join(map(str, sorted(get(a), key=str)))} "
                             f"against {', '.join(map(str, sorted(get(b), key=str)))}); their runs are not pairs")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif compare``."""
    p = argparse.ArgumentParser(prog="rnamotif compare", description=__doc__.split("\n")[0])
    p.add_argument("a", help="first arm: cv_summary.json or its run folder")
    p.add_argument("b", help="second arm: cv_summary.json or its run folder")
    p.add_argument("--names", nargs=2, metavar=("NAME_A", "NAME_B"), help="names of the arms (default: the paths)")
    p.add_argument("--metric", default="macro_sensitivity", help="the run metric compared (default %(default)s)")
    p.add_argument("--out", type=Path, help="also write the Markdown here (a new file)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rnamotif compare``; prints the comparison, returns 0."""
    args = parser().parse_args(argv)
    if args.out is not None and args.out.exists():
        raise ConfigError(f"--out {args.out}: exists; choose a new file name (compare never replaces a file)")
    a, b = read_arm(args.a), read_arm(args.b)
    _check_comparable(args, a, b)
    with warnings.catch_warnings():  # scipy's precision notes on near-constant differences
        warnings.simplefilter("ignore", RuntimeWarning)
        cmp = compare_runs(a, b, metric=args.metric)
    if cmp["n_pairs"] == 0:
        raise InputError(f"{args.a} and {args.b}: no run of one has a partner of the same fold and seed in the other "
                         f"with a value of {args.metric}; nothing to compare")
    text = comparison_markdown(cmp, tuple(args.names or (str(args.a), str(args.b))))
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text)
    return 0
