"""The build's geometric Watson-Crick rule against RNApolis's canonical base pairs.

The build reads closing pairs with :func:`rnamotif_data.rna.pairs.watson_crick_partners`
(N1-N3 ≤ 3.4 Å, mutual nearest): milliseconds per model, where RNApolis (Zok et al. 2018,
the annotator ``rnamotif annotate`` uses) takes ~20 s for a 50S model. This compares the
two on real models: pairs both find, pairs only RNApolis finds (by kind of pair), pairs
only the rule finds.

Usage: python benchmarks/validate_pairs.py [MODEL ...]   (default: the 50S model and 4LFB)
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from rnamotif_data.rna.annotate import rnapolis_mapping
from rnamotif_data.rna.pairs import watson_crick_partners
from rnamotif_data.rna.structure import read_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def rnapolis_pairs(path: Path) -> set:
    """Canonical pairs (cWW, pseudoknots included) as sorted (chain, number, icode) pairs."""
    mapping = rnapolis_mapping(path)
    out = set()
    for e in mapping.bpseq.entries:
        if e.pair > e.index_:
            a, b = mapping.bpseq_index_to_residue_map[e.index_], mapping.bpseq_index_to_residue_map[e.pair]
            ka = (a.auth.chain, int(a.auth.number), (a.auth.icode or "").strip())
            kb = (b.auth.chain, int(b.auth.number), (b.auth.icode or "").strip())
            out.add(tuple(sorted((ka, kb))))
    return out


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or [next((SHARED / "cryodrgn-50s" / "pdb").glob("*.pdb.gz")),
                                                SHARED / "atlas-models" / "4lfb.cif.gz"]
    for path in paths:
        model = read_model(path)
        is_nt = np.zeros(len(model.atoms.residues), dtype=bool)
        is_nt[model.atoms.residue_index[model.atoms.nucleotide > 0]] = True
        t = time.perf_counter()
        partner = watson_crick_partners(model.atoms, is_nt, wobble=True)  # as the build reads loops
        t_rule = time.perf_counter() - t
        ids = model.atoms.residues
        key = lambda i: (ids[i].chain, ids[i].seq_num, ids[i].icode)  # noqa: E731
        rule = {tuple(sorted((key(i), key(int(j))))) for i, j in enumerate(partner) if j > i}
        t = time.perf_counter()
        ref = rnapolis_pairs(path)
        t_ref = time.perf_counter() - t
        parents = dict(zip((key(i) for i in range(len(ids))), model.atoms.parents))
        kinds = Counter("".join(sorted(parents.get(a, "?") + parents.get(b, "?"))) for a, b in ref - rule)
        both = len(rule & ref)
        print(f"{path.name}: RNApolis {len(ref)} canonical pairs ({t_ref:.1f} s), rule {len(rule)} ({t_rule:.3f} s); "
              f"both {both} ({100 * both / max(len(ref), 1):.1f} % of RNApolis's), only RNApolis {len(ref - rule)} "
              f"({', '.join(f'{k} {v}' for k, v in kinds.most_common(4))}), only the rule {len(rule - ref)}")


if __name__ == "__main__":
    main()
