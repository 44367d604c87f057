"""Splits at each chain-homology level (issue 40): per fold, size, training kept and the
validation samples related to their fold's training by identity class / family / neither.

Inputs: the RNA 3D Motif Atlas 4.5 manifest (3,718 instances, metadata only) and the
multi-entry fixture's motifs (as ``benchmarks/chain_homology.py`` assembles them: the Atlas
instances of the 15 real models in ``../shared/data/atlas-models``, the 5 loops of 6V5B
chain D and every 3rd row of one cryoDRGN 50S volume; chains the BGSU table does not list
are compared by the sequences read off the models). Tables: ``../shared/data/homology``
(BGSU 4.24 'all', Rfam PDB mapping and clans). Timings include reading the tables.

Usage: python benchmarks/split_levels.py [--markdown]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.split.homology import (
    HomologySources,
    load_tables,
    model_chain_sequences,
    sample_chains,
    sample_homology,
)
from rnamotif_data.split.splits import SplitConfig, split_metadata

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def atlas_rows() -> tuple[pd.DataFrame, dict]:
    meta = pd.read_parquet(REPO / "manifests" / "motif-atlas-4.5.parquet")
    return meta, {}


def fixture_rows() -> tuple[pd.DataFrame, dict]:
    index = pd.read_csv(SHARED / "atlas-models" / "index.csv")
    paths = {str(r.pdb_id): SHARED / "atlas-models" / str(r.file) for r in index.itertuples()}
    paths["6V5B"] = SHARED / "rna-models" / "6v5b_drna.pdb"
    atlas = pd.read_parquet(REPO / "manifests" / "motif-atlas-4.5.parquet")
    rows = atlas[atlas.pdb_id.isin(list(paths))].to_dict("records")
    rows += pd.read_parquet(REPO / "demo" / "manifest.parquet").to_dict("records")
    fifty = pd.read_parquet(SHARED / "cryodrgn-50s" / "manifest.parquet")
    fifty = fifty[fifty.emdb_id == fifty.emdb_id.iloc[0]].iloc[::3]
    paths[str(fifty.pdb_id.iloc[0])] = next((SHARED / "cryodrgn-50s" / "pdb").glob("*.pdb.gz"))
    rows += fifty.to_dict("records")
    meta = pd.DataFrame(rows)
    meta["emdb_id"] = [f"EMD-9{n:04d}" for n in pd.factorize(meta["pdb_id"])[0]]  # one map per entry
    return meta, paths


def run(name: str, meta: pd.DataFrame, paths: dict, rows: list, timings: list) -> None:
    meta = meta.reset_index(drop=True)
    meta["sample_id"] = [f"row{i}" for i in range(len(meta))]
    meta["is_background"] = False
    for level in ("entry", "identity", "family"):
        t0 = time.perf_counter()
        tables = load_tables(HomologySources(directory=str(SHARED / "homology")))
        seqs = {}
        for pdb in {p for cs in sample_chains(meta) for p, c in cs if (p, c) not in tables.identity}:
            if pdb in paths:
                seqs.update({(pdb, c): s for c, s in model_chain_sequences(paths[pdb]).items()})
        homology = sample_homology(meta, tables, seqs)
        split, _ = split_metadata(meta, SplitConfig(level=level), homology=homology, name=name)
        timings.append((name, level, time.perf_counter() - t0))
        t = split.table
        fold = t["fold"].fillna(0).to_numpy(dtype=int)
        mask = t["train_exclusion"].to_numpy(dtype=np.int64)
        for f in range(1, 6):
            outside = (fold != f) & (fold > 0)
            kept = int((outside & ((mask >> (f - 1)) & 1 == 0)).sum())
            rel = t.loc[fold == f, "related_level"].value_counts()
            rows.append({"input": name, "level": level, "fold": f, "samples": int((fold == f).sum()),
                         "training": kept, "training %": 100 * kept / max(int(outside.sum()), 1),
                         **{f"val {x}": int(rel.get(x, 0)) for x in ("identity", "family", "none", "unknown")}})


def _markdown(df: pd.DataFrame) -> str:
    def cell(v):
        return f"{v:.0f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    rows: list = []
    timings: list = []
    run("Atlas 4.5 manifest", *atlas_rows(), rows, timings)
    run("multi-entry fixture", *fixture_rows(), rows, timings)
    df = pd.DataFrame(rows)
    total = df.groupby(["input", "level"], sort=False)[["samples", "val identity", "val family", "val none",
                                                         "val unknown"]].sum()
    if args.markdown:
        print(_markdown(df))
        print()
        print(_markdown(total.reset_index()))
    else:
        print(df.to_string(index=False, float_format=lambda v: f"{v:.0f}"))
        print(total.to_string())
    for name, level, s in timings:
        print(f"{name}, level {level}: {s:.2f} s (tables read, homology, split)")


if __name__ == "__main__":
    main()
