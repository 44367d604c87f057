"""Make a store's cross-validation split and report its leakage.

``python -m builders.split STORE [--scheme sequence|entry|upstream] [--seed 0]
[--folds DIR] [--report] [--report-out FILE.md]``

Writes ``STORE/splits/<scheme>.parquet`` (sample_id -> fold, with the config and a
fingerprint; :mod:`rnamotif_data.splits`) and prints the fingerprint. ``--report`` prints
the leakage report: per fold, val samples sharing an EMDB entry, an identical (type,
sequence) or a parent chain sequence with train (counts and percent), and class counts.
For ``upstream``, ``--folds`` is the folder of the upstream ``fold{k}_{train,val}.csv``
files; samples are matched by EMDB id, PDB id, motif type and CoSSMos number and the
number matched is reported.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from rnamotif_data.splits import SCHEMES, SplitConfig, leakage_report, make_split, upstream_key, write_split
from rnamotif_data.store import open_store

from .cli import run
from .importers import import_upstream_folds

log = logging.getLogger("builders.split")


def read_upstream_folds(folder: Path) -> dict[tuple, int]:
    """Upstream fold CSVs -> {(EMDB id, PDB id, type, CoSSMos number): fold}."""
    rows, _ = import_upstream_folds(folder)
    return {upstream_key(r["emdb_id"], r["pdb_id"], r["motif_type"], r.get("cossmos_number")): int(r["upstream_fold"])
            for r in rows if r.get("motif_type") != "unknown"}


def format_report(report: pd.DataFrame, classes) -> str:
    """The leakage report as a Markdown table (one row per fold)."""
    head = ["fold", "train", "val", "val sharing EMDB entry", "val sharing (type, sequence)",
            "val sharing parent chain sequence"] + [f"val {c}" for c in classes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report.itertuples():
        d = r._asdict()
        cells = [r.fold, str(r.n_train), str(r.n_val),
                 f"{r.val_shared_entry} ({r.val_shared_entry_pct:.1f}%)",
                 f"{r.val_shared_type_sequence} ({r.val_shared_type_sequence_pct:.1f}%)",
                 f"{r.val_shared_parent_sequence} ({r.val_shared_parent_sequence_pct:.1f}%)"]
        cells += [str(d[f"val_{c}"]) for c in classes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0."""
    p = argparse.ArgumentParser(prog="python -m builders.split", description=__doc__.split("\n")[0])
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument("--scheme", choices=SCHEMES, default="sequence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=Path, help="upstream fold CSV folder (scheme upstream)")
    p.add_argument("--report", action="store_true", help="print the leakage report")
    p.add_argument("--report-out", type=Path, help="also write the report as Markdown here")
    args = p.parse_args(argv)

    store = open_store(args.store)
    config = SplitConfig(scheme=args.scheme, seed=args.seed)
    mapping = read_upstream_folds(args.folds) if args.folds else None
    split = make_split(store, config, upstream_folds=mapping)
    url = write_split(store, split)
    placed = int(split.table["fold"].notna().sum())
    log.info("%s: scheme %s, %d of %d samples placed in %d folds; fingerprint %s", url, args.scheme, placed,
             len(store), config.k, split.fingerprint)
    if args.scheme == "upstream":
        motifs = ~store.metadata["is_background"].to_numpy()
        matched = int((split.table["fold"].notna().to_numpy() & motifs).sum())
        log.info("upstream folds: %d of %d motif samples matched by EMDB id, PDB id, type and CoSSMos number%s",
                 matched, int(motifs.sum()), f" ({len(mapping)} upstream motif samples)" if mapping else "")
    if args.report or args.report_out:
        text = (f"Leakage report: {args.store}, scheme {args.scheme}, fingerprint {split.fingerprint[:16]}\n\n"
                + format_report(leakage_report(store, split), store.class_names))
        print(text)
        if args.report_out:
            args.report_out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
