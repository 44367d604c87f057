"""Shortcut audit of a store: can a model tell the classes apart without structure?

``rnamotif audit``: the flags and the exit status; the work is done by
:mod:`rnamotif_data.release.audit`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.release.audit import log, run_audit
from rnamotif_data.storage.outputs import claimed_output

__all__ = ["AUDIT_FILES", "main", "parser"]

#: the files ``rnamotif audit`` owns in its ``--out`` folder; a rerun replaces them
AUDIT_FILES = ("audit.md", "audit.json", "audit.png")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif audit``."""
    p = argparse.ArgumentParser(prog="rnamotif audit", description=__doc__.split("\n")[0])
    p.add_argument("store")
    p.add_argument("--out", type=Path, help="output folder (default: <store>-audit beside the store)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``rnamotif audit STORE [--out DIR]``; 0 when the audit ran."""
    args = parser().parse_args(argv)
    base = Path(str(args.store).rstrip("/"))
    out = args.out or base.with_name(base.stem + "-audit")
    with claimed_output(out, "audit", AUDIT_FILES):
        res = run_audit(args.store, out, args.seed)
    log.info("%s: unknown vs motif balanced accuracy %.3f (%s); 5 classes %.3f; strongest single feature %s "
             "%.3f", args.store, res["unknown_vs_motif_balanced_accuracy"], res["verdict"],
             res["five_class_balanced_accuracy"], *next(iter(res["single_feature_unknown_vs_motif"].items())))
    return 0
