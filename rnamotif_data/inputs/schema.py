"""The manifest contract: schema, row rules, validation, reading and writing.

A manifest is a Parquet table with one row per motif occurrence (design §5;
the column dictionary is ``manifests/README.md``). Every entry point -- importers,
annotation, the builder, the fetcher -- validates through :func:`validate_manifest`.
The command line is :mod:`rnamotif_data.cli.manifest`; this module holds no CLI, so the importers
and the annotator can use it without importing the command line (no import cycle).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rnamotif_data.errors import (
    ManifestError,  # noqa: F401 (defined in rnamotif_data.errors)
    MissingFileError,
    SelectionError,
    SelectionSyntaxError,
)
from rnamotif_data.rna.motifs import FINE_TYPES
from rnamotif_data.rna.structure import Model, ResidueId, ResidueRange, Selection, parse_selection

log = logging.getLogger("rnamotif_data.inputs.manifest")

RESIDUE_TYPE = pa.struct([("chain", pa.string()), ("seq_num", pa.int32()), ("icode", pa.string())])

#: The manifest schema. Required columns: pdb_id, motif_type, and residues or selection.
SCHEMA = pa.schema([
    pa.field("pdb_id", pa.string(), nullable=False),
    pa.field("motif_type", pa.string(), nullable=False),
    pa.field("residues", pa.list_(RESIDUE_TYPE)),
    pa.field("selection", pa.string()),
    pa.field("emdb_id", pa.string()),
    pa.field("motif_id", pa.string()),
    pa.field("sequence", pa.string()),
    pa.field("resolution", pa.float64()),
    pa.field("source", pa.string()),
    pa.field("source_id", pa.string()),
    pa.field("cossmos_number", pa.int32()),
    pa.field("upstream_fold", pa.int8()),
    pa.field("flank_pairs", pa.int8()),
    pa.field("needs_residues", pa.bool_()),
    pa.field("annotator", pa.string()),
    pa.field("skipped", pa.string()),
])
REQUIRED = ("pdb_id", "motif_type")
# the same columns, all nullable: what rows are read into before validation
_LOOSE = pa.schema([f.with_nullable(True) for f in SCHEMA])

#: Schema of the rejected-rows table written beside an imported manifest.
REJECTED_SCHEMA = pa.schema([
    pa.field("row", pa.int64()),
    pa.field("source", pa.string()),
    pa.field("source_id", pa.string()),
    pa.field("column", pa.string()),
    pa.field("reason", pa.string()),
])

_PDB_ID = re.compile(r"^(?:[0-9][A-Z0-9]{3}|PDB_[0-9]{4}[0-9A-Z]{4})$")
_EMDB_ID = re.compile(r"^EMD-[0-9]{4,8}$")
_SEQUENCE = re.compile(r"^[ACGUTNacgutn]+$")
_TYPES = frozenset(FINE_TYPES + ("unknown",))


@dataclass(frozen=True)
class Rejection:
    """One rejected manifest row: its index, the column at fault and why."""

    row: int
    column: str
    reason: str
    source: str | None = None
    source_id: str | None = None


def empty_row() -> dict:
    """A manifest row with every column present and null (booleans false)."""
    row: dict[str, object] = {f.name: None for f in SCHEMA}
    row["needs_residues"] = False
    return row


def check_row(row: dict) -> tuple[str, str] | None:
    """Validate one manifest row; return ``(column, reason)`` for the first problem, or None."""
    pdb = row.get("pdb_id")
    if not isinstance(pdb, str) or not _PDB_ID.match(pdb):
        return "pdb_id", f"bad PDB ID {pdb!r}: expected 4 characters such as 6PJ6"
    mtype = row.get("motif_type")
    if mtype not in _TYPES:
        return "motif_type", f"unknown motif type {mtype!r}"
    emdb = row.get("emdb_id")
    if emdb is not None and not _EMDB_ID.match(emdb):
        return "emdb_id", f"bad EMDB ID {emdb!r}: expected EMD-NNNN such as EMD-20353"
    residues, selection = row.get("residues"), row.get("selection")
    if residues is not None:
        if len(residues) == 0:
            return "residues", "empty residue list"
        for r in residues:
            if not r.get("chain") or r.get("seq_num") is None:
                return "residues", f"residue {r} lacks a chain or residue number"
    if selection is not None:
        try:
            parse_selection(selection)
        except SelectionSyntaxError as exc:
            return "selection", str(exc)
    if residues is None and selection is None and mtype != "unknown" and not row.get("needs_residues"):
        return "residues", "neither residues nor selection given"
    seq = row.get("sequence")
    if seq is not None:
        if not _SEQUENCE.match(seq):
            return "sequence", f"sequence {seq!r} has characters other than nucleotide codes"
        if residues is not None and len(seq) != len(residues):
            return "sequence", f"sequence {seq!r} has {len(seq)} letters for {len(residues)} residues"
    res = row.get("resolution")
    if res is not None and not (math.isfinite(res) and res > 0):
        return "resolution", f"resolution {res} Å is not a positive finite number"
    if res is not None and not RESOLUTION_RANGE[0] <= res <= RESOLUTION_RANGE[1]:
        return "resolution", (f"resolution {res:g} Å is outside the plausible {RESOLUTION_RANGE[0]:g}-"
                              f"{RESOLUTION_RANGE[1]:g} Å (a unit mix-up?)")
    flank = row.get("flank_pairs")
    if flank is not None and flank not in (1, 2):
        return "flank_pairs", f"flank_pairs {flank}: a listing carries 1 or 2 closing pairs per side"
    return None


#: resolutions a manifest row may state (Å): sharper than the best maps or blurrier than any
#: map a motif can be read in is a typing or unit error (1e9 Å or 0.01 Å failed every row
#: inside gemmi)
RESOLUTION_RANGE = (0.5, 50.0)


def _occurrence_key(row: dict):
    """(PDB ID, EMDB ID, residues as a set): independent of the order strands or residues
    are listed in, so ``A:9-11,37-38`` and ``A:37-38,9-11`` are one occurrence."""
    entry = (row["pdb_id"].upper(), row.get("emdb_id"))
    if row.get("residues") is not None:
        return entry, frozenset((r["chain"], r["seq_num"], r.get("icode") or "") for r in row["residues"])
    if row.get("selection") is not None:
        return entry, frozenset(parse_selection(row["selection"]).items)
    return None


def validate_manifest(table: pa.Table, *, strict: bool = False, name: str = "manifest") -> tuple[pa.Table, list[Rejection]]:
    """Validate a manifest table against :data:`SCHEMA` and the row rules.

    PDB and EMDB IDs are read case-insensitively and stored upper case (``6pj6`` is
    ``6PJ6``). Row rules: PDB ID and EMDB ID syntax, a known motif type (design §4),
    residues or a parseable selection (not needed for ``unknown`` rows or rows marked
    ``needs_residues``), a sequence of nucleotide codes matching the residue count, a
    positive resolution within :data:`RESOLUTION_RANGE`, and no duplicate occurrence (same PDB ID, EMDB ID and residues in
    any order -- the canonical key, so strand-swapped listings are duplicates; the first
    is kept).

    Parameters
    ----------
    table:
        The manifest; missing optional columns are added as nulls.
    strict:
        Raise on the first bad row instead of rejecting it.
    name:
        Names the manifest in errors.

    Returns
    -------
    (valid, rejections)
        The valid rows, cast to :data:`SCHEMA`, in input order; one :class:`Rejection`
        per rejected row (``row`` is the 0-based input row).

    Raises
    ------
    ManifestError
        If a required column is missing, a column cannot be cast to its schema type, or
        (``strict``) any row is rejected; the message names the row and column.
    """
    missing = [c for c in REQUIRED if c not in table.column_names]
    if "residues" not in table.column_names and "selection" not in table.column_names:
        missing.append("residues or selection")
    if missing:
        raise ManifestError(f"{name}: missing required column(s): {', '.join(missing)}")
    unknown = [c for c in table.column_names if c not in SCHEMA.names]
    if unknown:
        raise ManifestError(f"{name}: unknown column(s) {', '.join(unknown)}; see manifests/README.md")
    arrays = []
    for f in SCHEMA:
        if f.name in table.column_names:
            got = table.schema.field(f.name).type
            if pa.types.is_string(f.type) and not (pa.types.is_string(got) or pa.types.is_large_string(got)
                                                   or pa.types.is_null(got)):
                raise ManifestError(f"{name}: column {f.name} must hold strings, got {got} "
                                    "(write IDs as text, e.g. '6PJ6', 'EMD-20353')")
            try:
                arrays.append(table[f.name].cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise ManifestError(f"{name}: column {f.name} cannot be read as {f.type}: {exc}") from None
        else:
            fill = False if f.name == "needs_residues" else None
            arrays.append(pa.array([fill] * table.num_rows, type=f.type))
    full = pa.Table.from_arrays(arrays, schema=_LOOSE)
    for col in ("pdb_id", "emdb_id"):  # IDs are case-insensitive: 6pj6 is 6PJ6, emd-20353 is EMD-20353
        i_col = full.schema.get_field_index(col)
        full = full.set_column(i_col, col, pc.utf8_upper(pc.utf8_trim_whitespace(full[col])))
    keep: list[int] = []
    rejections: list[Rejection] = []
    seen: dict = {}
    for i, row in enumerate(full.to_pylist()):
        problem = check_row(row)
        if problem is None:
            key = _occurrence_key(row)
            if key is not None and key in seen:
                problem = ("residues", f"duplicate occurrence (same entry and residues): of row {seen[key]}")
            elif key is not None:
                seen[key] = i
        if problem is not None:
            rej = Rejection(i, problem[0], problem[1], row.get("source"), row.get("source_id"))
            if strict:
                where = f" ({rej.source_id})" if rej.source_id else ""
                raise ManifestError(f"{name}: row {i}{where}, column {rej.column}: {rej.reason}")
            rejections.append(rej)
        else:
            keep.append(i)
    valid = full.take(pa.array(keep, type=pa.int64())).cast(SCHEMA)
    return valid, rejections


def row_selection(row: dict) -> Selection | None:
    """The residues of a manifest row as a :class:`Selection` (``residues`` win over
    ``selection``; each listed residue becomes one single-residue item), or None."""
    if row.get("residues") is not None:
        items = tuple(ResidueRange(ResidueId(r["chain"], int(r["seq_num"]), r.get("icode") or ""))
                      for r in row["residues"])
        return Selection(" ".join(str(i.start) for i in items), items)
    if row.get("selection") is not None:
        return parse_selection(row["selection"])
    return None


def check_rows_against_model(rows: list[tuple[int, dict]], model: Model) -> list[Rejection]:
    """Check manifest rows of one entry against its model.

    Parameters
    ----------
    rows:
        ``(row index, row dict)`` pairs, all of the model's PDB entry.
    model:
        The entry's model (:func:`rnamotif_data.rna.structure.read_model`).

    Returns
    -------
    One :class:`Rejection` per row whose residues are not all in the model (chain,
    number, insertion code), are not nucleotides, or whose ``sequence`` differs from
    the model's residues.
    """
    out = []
    for i, row in rows:
        sel = row_selection(row)
        if sel is None:
            continue
        try:
            atoms = model.select(sel)
        except SelectionError as exc:
            out.append(Rejection(i, "residues", str(exc), row.get("source"), row.get("source_id")))
            continue
        seq = row.get("sequence")
        if seq and seq.upper() != atoms.sequence():
            out.append(Rejection(i, "sequence", f"sequence {seq} differs from the model's {atoms.sequence()} "
                                 f"({model.name} {sel})", row.get("source"), row.get("source_id")))
    return out


def resolve_residues(rows: list[dict], cossmos_rows: list[dict]) -> tuple[list[dict], list[Rejection]]:
    """Fill the residues of rows marked ``needs_residues`` from CoSSMos manifest rows.

    Rows are matched by (PDB ID, motif type, ``cossmos_number``). Matched rows get the
    CoSSMos residues and sequence and lose the mark; unmatched ones are returned as
    rejections (``row`` is their index in ``rows``); other rows pass through unchanged.
    """
    index = {(r["pdb_id"], r["motif_type"], r.get("cossmos_number")): r for r in cossmos_rows}
    out, missing = [], []
    for i, row in enumerate(rows):
        if not row.get("needs_residues"):
            out.append(row)
            continue
        hit = index.get((row["pdb_id"], row["motif_type"], row.get("cossmos_number")))
        if hit is None:
            missing.append(Rejection(i, "residues", "no CoSSMos occurrence matches: "
                                     f"{row['pdb_id']} {row['motif_type']} #{row.get('cossmos_number')}",
                                     row.get("source"), row.get("source_id")))
            continue
        out.append({**row, "residues": hit["residues"], "sequence": hit.get("sequence"),
                    "needs_residues": False})
    return out, missing


def read_pdb_ids(path: Path) -> list[dict]:
    """Entries to annotate from a Parquet file with a ``pdb_id`` column (and optional
    ``emdb_id``, ``resolution``) or a text file of PDB IDs (one per line, ``#`` comments).
    Raises ManifestError, naming the file, for an unreadable one."""
    if path.suffix == ".parquet":
        try:
            t = pq.read_table(path)
        except pa.ArrowInvalid as exc:
            raise ManifestError(f"{path}: not a readable Parquet file ({exc})") from None
        if "pdb_id" not in t.column_names:
            raise ManifestError(f"{path}: no pdb_id column")
        cols = [c for c in ("pdb_id", "emdb_id", "resolution") if c in t.column_names]
        return t.select(cols).to_pylist()
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a text file of PDB IDs (or a .parquet file with a pdb_id column)") from None
    ids = [line.split("#")[0].strip() for line in text.splitlines()]
    return [{"pdb_id": i.upper()} for i in ids if i]


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Build a manifest table from row dicts (missing columns null), not yet validated."""
    filled = []
    for r in rows:
        row = empty_row()
        row.update(r)
        filled.append(row)
    return pa.Table.from_pylist(filled, schema=_LOOSE)


def write_manifest(rows: list[dict], rejected: list[Rejection], out: Path, *, strict: bool = False) -> tuple[pa.Table, list[Rejection]]:
    """Validate imported rows and write ``out`` and ``out.rejected.parquet``.

    ``rejected`` holds the importer's own rejections (rows it could not parse); their
    ``row`` indices count parsed records of the source. Returns the valid table and all
    rejections.

    Raises
    ------
    ManifestError
        With ``strict``, if any row was rejected by the importer or the validation.
    """
    if strict and rejected:
        r = rejected[0]
        raise ManifestError(f"{out.name}: {r.source_id}: column {r.column}: {r.reason}")
    table, bad = validate_manifest(rows_to_table(rows), strict=strict, name=str(out))
    everything = rejected + bad
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    rej_table = pa.Table.from_pylist(
        [{"row": r.row, "source": r.source, "source_id": r.source_id, "column": r.column, "reason": r.reason}
         for r in everything], schema=REJECTED_SCHEMA)
    pq.write_table(rej_table, rejected_path(out))
    return table, everything


def rejected_path(out: Path) -> Path:
    """Where the rejected rows of manifest ``out`` are written."""
    return out.with_name(out.name.removesuffix(".parquet") + ".rejected.parquet")


def read_manifest(path: str | Path, *, strict: bool = False) -> tuple[pa.Table, list[Rejection]]:
    """Read and validate a manifest Parquet file (see :func:`validate_manifest`).

    Raises
    ------
    MissingFileError
        If the file is missing.
    ManifestError
        If it is not a readable Parquet table or fails validation as described.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such manifest")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestError(f"{path}: not a readable Parquet manifest ({exc})") from None
    return validate_manifest(table, strict=strict, name=str(path))


def summary(table: pa.Table, rejections: list[Rejection]) -> str:
    """Counts for a person: rows kept, by motif type, and rows rejected by reason."""
    lines = [f"rows kept: {table.num_rows}"]
    types = Counter(table["motif_type"].to_pylist())
    if types:
        lines.append("  by type: " + ", ".join(f"{t} {n}" for t, n in sorted(types.items())))
    lines.append(f"rows rejected: {len(rejections)}")
    reasons = Counter(_reason_class(r.reason) for r in rejections)
    for reason, n in reasons.most_common():
        lines.append(f"  {n:6d}  {reason}")
    return "\n".join(lines)


def _reason_class(reason: str) -> str:
    """The general part of a reason (before its first ``:``), for counting."""
    return reason.split(":", 1)[0]


