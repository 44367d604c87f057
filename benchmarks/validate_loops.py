"""Loop lengths from base pairs against the shipped manifests (issue 25).

For every row of a shipped manifest whose model is at hand (the RNA 3D Motif Atlas rows of
the 15 real models in ``../shared/data/atlas-models``, the training demo, the cryoDRGN 50S
manifest, the real seed hairpin box), reads the closing pairs and loop lengths off the
model (:func:`rnamotif_data.rna.pairs.read_loops`, the build's check) and counts rows that
pass with one listed pair per side, with two, by the source's convention (no closing pair
read), and rows that fail, with why.

Usage: python benchmarks/validate_loops.py
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from rnamotif_data.errors import RNAMotifError
from rnamotif_data.inputs.schema import row_selection
from rnamotif_data.rna.pairs import watson_crick_partners
from rnamotif_data.rna.structure import read_model
from rnamotif_data.samples.rules import check_strands, source_flank_pairs

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _models(folder: Path) -> dict[str, Path]:
    return {p.name.split(".")[0].upper(): p for p in folder.glob("*") if p.suffix in (".cif", ".pdb", ".gz")}


def check(name: str, rows: list[dict], models: dict[str, Path]) -> None:
    tally: Counter = Counter()
    why: Counter = Counter()
    cache: dict = {}
    for row in rows:
        path = models.get(str(row["pdb_id"]).upper())
        if path is None:
            tally["model not at hand"] += 1
            continue
        if path not in cache:
            model = read_model(path)
            is_nt = np.zeros(len(model.atoms.residues), dtype=bool)
            is_nt[model.atoms.residue_index[model.atoms.nucleotide > 0]] = True
            cache[path] = (model, watson_crick_partners(model.atoms, is_nt, wobble=True))
        model, partner = cache[path]
        try:
            resolved = model.resolve(row_selection(row))
            cols = check_strands(model, resolved, row["motif_type"], row["pdb_id"], partner, source_flank_pairs(row))
        except RNAMotifError as exc:
            tally["fail"] += 1
            text = str(exc)
            why[text.split("make it ")[1].split(" (")[0] if "make it" in text else text.split(": ", 1)[-1][:60]] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - a row the model cannot resolve
            tally["unresolved"] += 1
            why[type(exc).__name__] += 1
            continue
        flank = max(cols["flank_pairs"])
        tally[("by convention, " if cols["loop_note"] and "convention" in cols["loop_note"] else "") +
              f"{flank} pair(s)"] += 1
    print(f"{name}: {sum(tally.values())} rows: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    for k, v in why.most_common(8):
        print(f"    fail: {v} x read as {k}")


def main() -> None:
    atlas = pq.read_table(REPO / "manifests" / "motif-atlas-4.5.parquet").to_pylist()
    local = _models(SHARED / "atlas-models")
    check("RNA 3D Motif Atlas 4.5 (rows of the 15 local models)",
          [r for r in atlas if str(r["pdb_id"]).upper() in local], local)
    demo = pq.read_table(REPO / "demo" / "training" / "manifest.parquet").to_pylist()
    check("training demo", demo, {**_models(REPO / "demo" / "training" / "models"),
                                  "6V5B": REPO / "demo" / "mirror" / "pdb" / "6v5b.pdb"})
    d50 = pq.read_table(SHARED / "cryodrgn-50s" / "manifest.parquet").to_pylist()
    check("cryoDRGN 50S (annotated, one volume)", [r for r in d50 if r["pdb_id"] == d50[0]["pdb_id"]],
          _models(SHARED / "cryodrgn-50s" / "pdb"))
    seed = SHARED / "seed-sample" / "EMD-20353_6PJ6_hairpin3_2606" / "6PJ6_hairpin3_2606.pdb"
    check("upstream seed box (source upstream-folds)", [{"pdb_id": "6PJ6", "motif_type": "hairpin3",
          "selection": "J:85-91", "source": "upstream-folds"}], {"6PJ6": seed})
    cossmos = pq.read_table(REPO / "manifests" / "cossmos-2012-1S72.parquet").to_pylist()
    check("CoSSMos 2012 (1S72)", cossmos, {})
    upstream = pq.read_table(REPO / "manifests" / "upstream-folds.parquet").to_pylist()
    check("upstream folds", upstream, {})


if __name__ == "__main__":
    main()
