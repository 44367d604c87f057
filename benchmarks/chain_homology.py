"""Chain-level homology across folds (issue 25, item 3): a measurement.

How many validation samples of the default split sit on an RNA chain homologous to a
chain of their fold's training set, when chains are compared whole (the way RNA3DB groups
chains): local alignment (parasail Smith-Waterman, NUC.4.4, gap open 5, extend 2), related
when identity ≥ 80 % over an aligned stretch covering ≥ 50 % of the shorter chain.

Rows: the multi-entry fixture's motifs without building it (the RNA 3D Motif Atlas 4.5
instances of the 15 real models in ``../shared/data/atlas-models``, the 5 loops of 6V5B
chain D and every 3rd row of one cryoDRGN 50S volume), split by ``split_metadata`` as
``rnamotif split --manifest`` does; chain sequences read off the models.

Usage: python benchmarks/chain_homology.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import parasail
from split_levels import fixture_rows  # noqa: E402 - the benchmark beside this one (run as a script)

from rnamotif_data.inputs.schema import row_selection
from rnamotif_data.rna.structure import read_model
from rnamotif_data.split.splits import SplitConfig, split_metadata

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def chain_sequences(path: Path) -> dict[str, str]:
    """One-letter sequence (parents of modified residues) of every nucleic-acid chain."""
    model = read_model(path)
    seqs: dict[str, list[str]] = {}
    nt = np.zeros(len(model.atoms.residues), dtype=bool)
    nt[model.atoms.residue_index[model.atoms.nucleotide > 0]] = True
    for chain, (order, _) in model.chain_index.items():
        letters = [model.atoms.parents[i] for i in order if nt[i]]
        if len(letters) >= 10:
            seqs[chain] = "".join(letters)
    return {c: "".join(v) for c, v in seqs.items()}


def homologous(a: str, b: str) -> bool:
    short = min(len(a), len(b))
    r = parasail.sw_stats_striped_16(a.replace("U", "T"), b.replace("U", "T"), 5, 2, parasail.nuc44)
    return r.length >= 0.5 * short and r.matches >= 0.8 * r.length


def main() -> None:
    meta, paths = fixture_rows()  # the same rows as split_levels.py measures
    meta["sample_id"] = [f"row{i}" for i in range(len(meta))]
    meta["is_background"] = False
    split, _ = split_metadata(meta, SplitConfig())
    chains = {pdb: chain_sequences(p) for pdb, p in paths.items()}
    keys = [(pdb, c) for pdb in chains for c in chains[pdb]]
    related: dict[tuple, set] = {k: set() for k in keys}
    for x in range(len(keys)):
        for y in range(x + 1, len(keys)):
            a, b = keys[x], keys[y]
            if a[0] != b[0] and homologous(chains[a[0]][a[1]], chains[b[0]][b[1]]):
                related[a].add(b)
                related[b].add(a)
    sample_chains = [{(r["pdb_id"], it.start.chain) for it in row_selection(r).items} if row_selection(r) else set()
                     for r in meta.astype(object).where(meta.notna(), None).to_dict("records")]
    fold = split.table["fold"].fillna(0).to_numpy()
    n_val, hits, by_pair = 0, 0, {}
    for k in range(1, 6):
        train = set(split.indices(f"fold{k}", "train"))
        train_chains = set().union(*(sample_chains[i] for i in train)) if train else set()
        for i in split.indices(f"fold{k}", "val"):
            n_val += 1
            hit = [c for c in sample_chains[i] if related.get(c, set()) & train_chains]
            if hit:
                hits += 1
                for c in hit:
                    by_pair[c] = by_pair.get(c, 0) + 1
    print(f"{len(meta)} rows, {len(keys)} RNA chains of >= 10 nt in {len(chains)} models; "
          f"{sum(len(v) for v in related.values()) // 2} homologous chain pairs across entries")
    print(f"validation samples on a chain homologous to a chain of their fold's training: {hits} of {n_val} "
          f"({100 * hits / max(n_val, 1):.1f} %)")
    for c, n in sorted(by_pair.items(), key=lambda kv: -kv[1])[:8]:
        print(f"    {c[0]} chain {c[1]} ({len(chains[c[0]][c[1]])} nt): {n} samples; homologous to "
              + ", ".join(f"{p} {q}" for p, q in sorted(related[c])))
    print(f"(fold sizes: {np.bincount(fold.astype(int), minlength=6)[1:].tolist()})")


if __name__ == "__main__":
    main()
