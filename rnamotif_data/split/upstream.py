"""The upstream benchmark's folds (``fold{k}_{train,val}.csv``) as the split scheme ``upstream``
reads them: motif samples keyed by EMDB id, PDB id, motif type and CoSSMos number, background
samples by PDB entry (:func:`read_upstream_folds`; used by ``rnamotif split --folds``)."""

from __future__ import annotations

from pathlib import Path

from rnamotif_data.inputs.importers import import_upstream_folds
from rnamotif_data.split.splits import upstream_key

__all__ = ["read_upstream_folds"]


def read_upstream_folds(folder: Path) -> tuple[dict[tuple, int], dict[str, list[int]]]:
    """Upstream fold CSVs -> ({(EMDB id, PDB id, type, CoSSMos number): fold} of motif rows,
    {PDB ID: folds of the entry's ``cube_*`` background rows, in cube-number order})."""
    rows, _ = import_upstream_folds(folder)
    motifs = {upstream_key(r["emdb_id"], r["pdb_id"], r["motif_type"], r.get("cossmos_number")): int(r["upstream_fold"])
              for r in rows if r.get("motif_type") != "unknown"}
    cubes: dict[str, list[tuple[int, int]]] = {}
    for r in rows:
        if r.get("motif_type") == "unknown":
            cubes.setdefault(str(r["pdb_id"]).upper(), []).append((int(r.get("cossmos_number") or 0),
                                                                   int(r["upstream_fold"])))
    return motifs, {pdb: [f for _, f in sorted(c)] for pdb, c in cubes.items()}
