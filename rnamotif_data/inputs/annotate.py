"""A manifest of every motif in some models (the work of ``rnamotif annotate``).

    rnamotif annotate MODEL [MODEL ...] --out M.parquet
    rnamotif annotate --pdb-ids ids.parquet|ids.txt [--cache DIR]
        [--mirror DIR] [--offline] --out M.parquet

Each model's loops are read off its nested canonical secondary structure
(:mod:`rnamotif_data.rna.annotate`, RNApolis Annotator). Loops of the 25 fine types whose
strands are covalently continuous become manifest rows (residues in model order with
the closing pairs, the selection string, the sequence with modified residues as their
parents, ``source`` = ``annotated``, ``annotator`` = the annotator and its version).
Every other loop -- junctions, loops outside the 25 types, broken strands -- goes to
``M.other.parquet`` with its kind, sizes and the reason, never silently dropped.

With ``--pdb-ids`` the models are fetched (or found in the mirror/cache) as
``rnamotif_data.inputs.fetch`` does; a ``pdb_id`` column in a Parquet file (``rnamotif
search`` writes one) or one PDB ID per line in a text file. ``emdb_id`` and
``resolution`` columns, when present, are copied onto the rows.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import gemmi
import pyarrow as pa
import pyarrow.parquet as pq

from rnamotif_data.errors import AnnotationError, RNAMotifError
from rnamotif_data.inputs.schema import Rejection, empty_row, write_manifest
from rnamotif_data.rna.annotate import Annotation, annotate_model
from rnamotif_data.rna.structure import Model, read_model

log = logging.getLogger("rnamotif_data.inputs.manifest")

__all__ = ["OTHER_SCHEMA", "annotation_rows", "annotate_entries", "other_path"]

#: Schema of ``M.other.parquet``: loops that became no row, and why.
OTHER_SCHEMA = pa.schema([
    pa.field("pdb_id", pa.string()),
    pa.field("kind", pa.string()),
    pa.field("motif_type", pa.string()),
    pa.field("sizes", pa.list_(pa.int32())),
    pa.field("selection", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("annotator", pa.string()),
])


def other_path(out: Path) -> Path:
    """``M.other.parquet`` beside ``M.parquet``."""
    return out.with_name(out.name.removesuffix(".parquet") + ".other.parquet")


def annotation_rows(ann: Annotation, model: Model, *, emdb_id: str | None = None,
                    resolution: float | None = None) -> tuple[list[dict], list[dict]]:
    """Manifest rows and "other" rows of one annotated model.

    Every row's selection is resolved against ``model`` (our reading of the same file):
    the sequence comes from it (parents for modified residues), and a selection it
    cannot resolve makes an "other" row with the reason instead.
    """
    rows: list = []
    other: list = []
    per_type: Counter = Counter()
    for loop in ann.loops:
        sel = ann.selection(loop)
        base = {"pdb_id": ann.pdb_id, "kind": loop.kind, "motif_type": loop.motif_type,
                "sizes": list(loop.sizes), "selection": sel, "annotator": ann.annotator}
        if loop.broken:
            other.append({**base, "reason": f"strand not covalently continuous: {loop.broken}"})
            continue
        if loop.motif_type is None:
            what = {"junction": f"{len(loop.sizes)}-way junction"}.get(loop.kind, f"{loop.kind} {'x'.join(map(str, loop.sizes))}")
            other.append({**base, "reason": f"outside the 25 fine types: {what}"})
            continue
        try:
            atoms = model.select(sel)
        except RNAMotifError as exc:
            other.append({**base, "reason": f"not resolved in the model: {exc}"})
            continue
        k = per_type[loop.motif_type]
        per_type[loop.motif_type] += 1
        row = empty_row()
        row.update({
            "pdb_id": ann.pdb_id, "motif_type": loop.motif_type, "selection": sel,
            "residues": [{"chain": r.chain, "seq_num": r.seq_num, "icode": r.icode} for r in ann.residue_ids(loop)],
            "sequence": atoms.sequence(), "emdb_id": emdb_id, "resolution": resolution,
            "motif_id": f"{ann.pdb_id}_{loop.motif_type}_{k}", "source": "annotated",
            "source_id": f"{ann.pdb_id}:{sel}", "annotator": ann.annotator,
        })
        rows.append(row)
    return rows, other


def annotate_entries(models: list[tuple[dict, Path]], out: Path) -> tuple[pa.Table, list[dict], list[Rejection]]:
    """Annotate ``(entry dict, model path)`` pairs and write ``out`` and its other file.

    An entry that cannot be annotated is a rejection naming the file, never a crash of
    the others. Returns the valid manifest table, the other rows and the rejections.
    """
    rows, other, rejected = [], [], []
    for k, (entry, path) in enumerate(models):
        try:
            ann = annotate_model(path, entry["pdb_id"])
            model = read_model(path, name=entry["pdb_id"])
        except (AnnotationError, RNAMotifError, OSError) as exc:
            rejected.append(Rejection(k, "model", str(exc), "annotated", entry["pdb_id"]))
            continue
        r, o = annotation_rows(ann, model, emdb_id=entry.get("emdb_id"), resolution=entry.get("resolution"))
        log.info("%s: %d motifs, %d other loops (%d canonical pairs, %d pseudoknotted)", entry["pdb_id"],
                 len(r), len(o), ann.n_pairs, ann.n_pseudoknot_pairs)
        rows += r
        other += o
    table, rejected = write_manifest(rows, rejected, out)
    pq.write_table(pa.Table.from_pylist(other, schema=OTHER_SCHEMA), other_path(out))
    return table, other, rejected


def em_metadata(path: Path) -> tuple[str | None, float | None]:
    """``(EMDB ID, resolution in Å)`` an mmCIF model file records for its map, else None for
    each: the ``_pdbx_database_related`` row of ``db_name`` EMDB whose ``content_type`` is
    the associated EM volume (else the only EMDB row), and
    ``_em_3d_reconstruction.resolution``. PDB-format files record neither in a form read
    here: both None."""
    name = path.name.lower()
    if not (name.endswith(".cif") or name.endswith(".cif.gz") or name.endswith(".mmcif")):
        return None, None
    try:
        block = gemmi.cif.read(str(path)).sole_block()
    except (RuntimeError, ValueError):
        return None, None
    emdb = None
    related = block.find("_pdbx_database_related.", ["db_name", "db_id", "?content_type"])
    rows = [(r[1], r[2] if r.has(2) else "") for r in related if gemmi.cif.as_string(r[0]).upper() == "EMDB"]
    primary = [db for db, kind in rows if "associated em volume" in gemmi.cif.as_string(kind).lower()]
    pick = primary[0] if primary else (rows[0][0] if len(rows) == 1 else None)
    if pick is not None:
        text = gemmi.cif.as_string(pick).upper()
        emdb = text if text.startswith("EMD-") else f"EMD-{text}" if text.isdigit() else None
    resolution = None
    value = block.find_value("_em_3d_reconstruction.resolution")
    if value is not None and not gemmi.cif.is_null(value):
        try:
            resolution = float(gemmi.cif.as_string(value))
        except ValueError:
            resolution = None
    return emdb, resolution
