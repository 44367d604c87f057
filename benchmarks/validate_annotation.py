"""Our annotated motifs against the RNA 3D Motif Atlas 4.5 (a peer's table).

For every real deposited model in ``../shared/data/atlas-models/`` (index.csv), the
hairpin and internal-loop instances of Atlas 4.5 in that entry (imported with
``rnamotif_data.inputs.importers.import_motif_atlas`` with the models: typed from the strands'
endpoints measured on the model, skipped residues included) are compared with the loops ``rnamotif_data.rna.annotate`` reads off the
same file (RNApolis canonical pairs, pseudoknots removed).

An Atlas instance is **recovered** when one of our rows has exactly its residues and its
type. Its closing pairs are the first and last nucleotides of a hairpin strand, and
(first of strand 1, last of strand 2) and (last of strand 1, first of strand 2) of an
internal loop; they are **canonical** when RNApolis calls each a canonical pair
(Watson-Crick or G·U, before pseudoknot removal). Every missed instance is put in one
class:

* ``closing pair not canonical``: the Atlas closes the loop with a non-canonical pair;
* ``closing pair pseudoknotted``: canonical, but removed as a pseudoknot;
* ``canonical pair inside``: a canonical nested pair inside the Atlas loop splits it (our
  loops are the nested structure's faces);
* ``other loop of ours``: the same closing pairs give one of our loops outside the 25
  types (a junction, a longer hairpin) or a broken strand;
* ``type differs`` and ``residues differ`` for anything else (listed).

Usage: ``python benchmarks/validate_annotation.py [--models DIR] [--atlas DIR]``; prints
a Markdown table per entry and the totals (recorded in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rnamotif_data.errors import RNAMotifError  # noqa: E402
from rnamotif_data.inputs.importers import import_motif_atlas, models_in  # noqa: E402
from rnamotif_data.rna.annotate import annotate_model, annotator_version  # noqa: E402
from rnamotif_data.rna.structure import read_model  # noqa: E402

SHARED = Path(os.environ.get("RNAMOTIF_SHARED_DATA", REPO.parent / "shared" / "data"))


def canonical_pairs(path: Path) -> tuple[set, set]:
    """(all canonical pairs, nested canonical pairs) as frozensets of two ResidueIds."""

    from rnamotif_data.rna.annotate import rnapolis_mapping
    from rnamotif_data.rna.structure import ResidueId

    mapping = rnapolis_mapping(path)
    rmap = mapping.bpseq_index_to_residue_map

    def rid(i):
        r = rmap[i]
        return ResidueId(r.auth.chain, int(r.auth.number), (r.auth.icode or "").strip())

    full = {frozenset((rid(e.index_), rid(e.pair))) for e in mapping.bpseq.entries if e.pair > e.index_}
    nested = {frozenset((rid(e.index_), rid(e.pair))) for e in mapping.bpseq.without_pseudoknots().entries
              if e.pair > e.index_}
    return full, nested


def classify(strands, mtype, ours: dict, ours_other: dict, full: set, nested: set) -> str:
    """Why an Atlas instance (strands of ResidueIds) is not among our rows."""
    if len(strands) == 1:
        closing = [frozenset((strands[0][0], strands[0][-1]))]
    else:
        closing = [frozenset((strands[0][0], strands[1][-1])), frozenset((strands[0][-1], strands[1][0]))]
    if not all(c in full for c in closing):
        return "closing pair not canonical"
    if not all(c in nested for c in closing):
        return "closing pair pseudoknotted"
    residues = {r for s in strands for r in s}
    inner = [p for p in nested if p <= residues and p not in closing]
    if inner:
        return "canonical pair inside"
    key = frozenset(residues)
    if key in ours_other:
        return f"other loop of ours ({ours_other[key]})"
    if key in ours:
        return f"type differs (ours {ours[key]}, Atlas {mtype})"
    return "residues differ"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, default=SHARED / "atlas-models")
    p.add_argument("--atlas", type=Path, default=SHARED / "motif-atlas")
    args = p.parse_args(argv)
    index = list(csv.DictReader((args.models / "index.csv").open()))
    # typed with the models: strands measured on the residues the model has
    find = models_in(args.models)
    entries = {e["pdb_id"].upper() for e in index}
    rows, _ = import_motif_atlas([args.atlas / "hl_4.5.json", args.atlas / "il_4.5.json"],
                                 lambda pdb: find(pdb) if pdb in entries else None)
    by_pdb: dict[str, list[dict]] = {}
    for r in rows:
        by_pdb.setdefault(r["pdb_id"], []).append(r)
    print(f"Atlas 4.5 instances vs {annotator_version()} + rnamotif_data.rna.annotate, {date.today()}\n")
    print("| entry | Atlas instances (25 types) | closing pairs canonical | recovered | recall (canonical) "
          "| our rows | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    totals, reasons, examples = Counter(), Counter(), {}
    for entry in index:
        pdb, path = entry["pdb_id"].upper(), args.models / entry["file"]
        t0 = time.perf_counter()
        ann = annotate_model(path, pdb)
        model = read_model(path, name=pdb)
        full, nested = canonical_pairs(path)
        ours, ours_other = {}, {}
        for lp in ann.loops:
            key = frozenset(ann.residue_ids(lp))
            if lp.motif_type and not lp.broken:
                ours[key] = lp.motif_type
            else:
                ours_other[key] = lp.broken and "broken strand" or f"{lp.kind} {'x'.join(map(str, lp.sizes))}"
        n = n_can = n_rec = n_rec_can = 0
        for inst in by_pdb.get(pdb, []):
            try:
                strands = [[model.atoms.residues[i] for i in s] for s in model.strands(model.resolve(inst["selection"]))]
            except RNAMotifError as exc:
                reasons["not in the model"] += 1
                examples.setdefault("not in the model", f"{inst['source_id']}: {exc}")
                n += 1
                continue
            if len(strands) != (1 if inst["motif_type"].startswith("hairpin") else 2):
                reasons["strand not continuous in the model"] += 1
                examples.setdefault("strand not continuous in the model", f"{inst['source_id']} {inst['selection']}")
                n += 1
                continue
            # the Atlas lists the strands in its own order; compare in model order
            closing_ok = classify(strands, inst["motif_type"], {}, {}, full, nested) not in (
                "closing pair not canonical", "closing pair pseudoknotted")
            key = frozenset(r for s in strands for r in s)
            hit = ours.get(key) == inst["motif_type"]
            n += 1
            n_can += closing_ok
            n_rec += hit
            n_rec_can += hit and closing_ok
            if not hit:
                why = classify(strands, inst["motif_type"], ours, ours_other, full, nested)
                reasons[why.split(" (")[0]] += 1
                examples.setdefault(why.split(" (")[0], f"{inst['source_id']} {inst['selection']}: {why}")
        totals.update(n=n, can=n_can, rec=n_rec, rec_can=n_rec_can, ours=len(ours))
        recall = f"{n_rec_can / n_can:.1%}" if n_can else "–"
        print(f"| {pdb} | {n} | {n_can} | {n_rec} | {recall} | {len(ours)} | {time.perf_counter() - t0:.1f} |")
    print(f"| **all** | {totals['n']} | {totals['can']} | {totals['rec']} | "
          f"**{totals['rec_can'] / max(totals['can'], 1):.1%}** | {totals['ours']} | |")
    print(f"\nRecall over instances with canonical closing pairs: {totals['rec_can']} / {totals['can']} "
          f"= {totals['rec_can'] / max(totals['can'], 1):.1%} (goal >= 90 %); over all: "
          f"{totals['rec']} / {totals['n']} = {totals['rec'] / max(totals['n'], 1):.1%}.\n")
    print("Missed instances by class (one example each):\n")
    for why, k in reasons.most_common():
        print(f"* {why}: {k} — e.g. {examples[why]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
