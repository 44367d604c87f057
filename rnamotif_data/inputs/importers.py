"""Importers: CoSSMos exports, RNA 3D Motif Atlas releases and the upstream fold CSVs
turned into manifest rows (see :mod:`rnamotif_data.inputs.schema`).

Each importer returns ``(rows, rejections)``: row dicts in manifest columns, and a
:class:`~rnamotif_data.inputs.schema.Rejection` for every record it could not turn into a row.
Nothing is dropped silently.

Sources
-------
* CoSSMos (Vanegas et al., Nucleic Acids Res. 40:D439, 2012; doi:10.1093/nar/gkr943)
  search exports, 2012 format (``#``-separated) and 2025 format (tab-separated). The
  residues are ``Aseq_num`` then ``Bseq_num``, exactly as listed (closing pairs
  included); chain ids come from the residue fields (``'0'119  A C3p_endo anti``,
  ``P265 C ...``, ``'S2'1538 C ...``).
* RNA 3D Motif Atlas (Petrov et al., RNA 19:1327, 2013; doi:10.1261/rna.039438.113)
  release JSON: unit ids ``PDB|model|chain|comp|number|atom|altloc|icode|symop``.
* The upstream benchmark's fold CSVs (file names ``EMD-xxxx_PDBID_type_n.mrc`` and
  ``cube_PDBID_n.mrc``).
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

from rnamotif_data.errors import ManifestError, MissingFileError, RNAMotifError
from rnamotif_data.inputs.schema import Rejection
from rnamotif_data.rna.motifs import FINE_TYPES, motif_class
from rnamotif_data.rna.structure import format_residues, read_model

# residue number, optional insertion code, then "-BASE": "110-G", "189L-G", "-3-A"
_SEQ_NUM = re.compile(r"^(-?\d+)([A-Za-z]?)-([A-Za-z0-9]+)$")
# residue field: chain (quoted or one character), number, icode, then the base
_RES_FIELD = re.compile(r"^\s*(?:'([^']+)'|([A-Za-z0-9]))(-?\d+)([A-Za-z]?)\s+([A-Za-z0-9]+)\b")


def loop_type(a: int, b: int | None) -> str:
    """Fine motif type from unpaired counts: hairpin (``b`` None), bulge, ``axb`` loop.

    The result may lie outside the taxonomy (e.g. ``hairpin12``); callers check.
    """
    if b is None:
        return f"hairpin{a}"
    if min(a, b) == 0:
        return f"bulge{max(a, b)}"
    return f"{min(a, b)}x{max(a, b)}"


# ----------------------------------------------------------------------- CoSSMos
def _split_cossmos(path: Path) -> tuple[list[str], list[list[str]]]:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    lines = [ln for ln in text if ln.strip()]
    if not lines:
        return [], []
    sep = "\t" if "\t" in lines[0] else "#"
    header = [h.strip() for h in lines[0].split(sep)]
    return header, [ln.split(sep) for ln in lines[1:]]


def import_cossmos(paths: list[Path], motif_type: str | None = None) -> tuple[list[dict], list[Rejection]]:
    """Import CoSSMos search exports (2012 ``#`` format or 2025 tab format).

    Parameters
    ----------
    paths:
        Export files.
    motif_type:
        Expected fine type. The type is always derived from the strand sequences
        (hairpin: A strand only; bulge: one strand with no unpaired nucleotide); a row
        whose derived type differs from ``motif_type`` is rejected.

    Returns
    -------
    rows, rejections
        ``source`` is ``cossmos``; ``source_id`` is ``FILE:ROW`` (1-based data row);
        ``cossmos_number`` is ``InternalID`` where the export has one, else the row.

    Raises
    ------
    ManifestError
        If a file is not a CoSSMos export (no ``pdb``, ``Aseq`` and ``Aseq_num`` header),
        naming it: an empty manifest is never written from the wrong file.
    """
    rows: list[dict] = []
    rejected: list[Rejection] = []
    n = 0
    for path in paths:
        header, records = _split_cossmos(Path(path))
        if "pdb" not in header or "Aseq" not in header or "Aseq_num" not in header:
            found = ", ".join(header[:5]) + (", ..." if len(header) > 5 else "") if header else "an empty file"
            raise ManifestError(f"{path}: not a CoSSMos export: expected a header line with the columns pdb, Aseq "
                                f"and Aseq_num ('#'- or tab-separated), found {found}")
        col = {h: i for i, h in enumerate(header)}
        for k, rec in enumerate(records, start=1):
            sid = f"{Path(path).name}:{k}"
            try:
                row = _cossmos_row(rec, col, motif_type)
            except ValueError as exc:
                column, _, reason = str(exc).partition("|")
                rejected.append(Rejection(n, column, reason, "cossmos", sid))
            else:
                row["source"] = "cossmos"
                row["source_id"] = sid
                if row.get("cossmos_number") is None:
                    row["cossmos_number"] = k
                rows.append(row)
            n += 1
    return rows, rejected


def _cossmos_row(rec: list[str], col: dict[str, int], expected: str | None) -> dict:
    def get(name: str) -> str:
        i = col.get(name)
        return rec[i].strip() if i is not None and i < len(rec) else ""

    pdb = get("pdb").upper()
    aseq, bseq = get("Aseq"), get("Bseq")
    strands = [("A", aseq, get("Aseq_num"))]
    if bseq:
        strands.append(("B", bseq, get("Bseq_num")))
    # chain of each (number, icode) from every residue field of the row
    chain_of: dict[tuple[int, str], set[str]] = {}
    for field in rec:
        m = _RES_FIELD.match(field)
        if m:
            chain = m.group(1) or m.group(2)
            chain_of.setdefault((int(m.group(3)), m.group(4)), set()).add(chain)
    residues = []
    for strand, seq, nums in strands:
        tokens = nums.split()
        if len(tokens) != len(seq):
            raise ManifestError(f"{strand}seq_num|{strand} strand lists {len(tokens)} residues for sequence {seq!r}")
        parsed = []
        for t in tokens:
            m = _SEQ_NUM.match(t)
            if not m:
                raise ManifestError(f"{strand}seq_num|bad residue {t!r} (expected NUMBER[ICODE]-BASE such as 189L-G)")
            parsed.append((int(m.group(1)), m.group(2)))
        known = Counter(c for key in parsed for c in chain_of.get(key, ()))
        if not known:
            raise ManifestError(f"{strand}seq_num|no chain id found for the {strand} strand residues")
        strand_chain = known.most_common(1)[0][0]
        for num, icode in parsed:
            cands = chain_of.get((num, icode), set())
            chain = next(iter(cands)) if len(cands) == 1 else strand_chain
            residues.append({"chain": chain, "seq_num": num, "icode": icode})
    a = len(aseq) - 2
    b = len(bseq) - 2 if bseq else None
    if a < 0 or (b is not None and b < 0):
        raise ManifestError("Aseq|a strand is shorter than its closing pair")
    mtype = loop_type(a, b)
    if mtype not in FINE_TYPES:
        raise ManifestError(f"motif_type|loop type outside the 25-type taxonomy: {mtype}")
    if expected is not None and mtype != expected:
        raise ManifestError(f"motif_type|derived type differs from --motif-type: {mtype} is not {expected}")
    internal = get("InternalID")
    return {
        "pdb_id": pdb,
        "motif_type": mtype,
        "residues": residues,
        "sequence": aseq + bseq,
        "cossmos_number": int(internal) if internal.isdigit() else None,
    }


# ------------------------------------------------------------- RNA 3D Motif Atlas
def _atlas_instances(path: str | Path):
    """``(motif group id, chain breaks, instance id, unit ids in alignment order)`` of every
    instance of an RNA 3D Motif Atlas release file (a JSON list of motif groups, each with
    ``motif_id``, ``alignment`` ``{instance: {position: unit id}}`` and optional
    ``chainbreak``).

    Raises
    ------
    ManifestError
        In one line naming the file (and the group) if it is not such a file.
    """
    try:
        groups = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not an RNA 3D Motif Atlas release file: not JSON ({exc.msg} at line "
                            f"{exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not an RNA 3D Motif Atlas release file: not text") from None
    if not isinstance(groups, list):
        raise ManifestError(f"{path}: not an RNA 3D Motif Atlas release file: expected a JSON list of motif "
                            f"groups, found a {type(groups).__name__}")
    for k, group in enumerate(groups):
        where = f"{path}: motif group {k + 1}"
        if not isinstance(group, dict) or not isinstance(group.get("motif_id"), str) \
                or not isinstance(group.get("alignment"), dict):
            raise ManifestError(f"{where}: expected an object with 'motif_id' and 'alignment' (RNA 3D Motif Atlas "
                                "release format)")
        gid = group["motif_id"]
        try:
            breaks = [int(b) for b in group.get("chainbreak", [])]
        except (TypeError, ValueError):
            raise ManifestError(f"{where} ({gid}): 'chainbreak' is not a list of positions: "
                                f"{str(group.get('chainbreak'))[:60]}") from None
        for iid, alignment in group["alignment"].items():
            if not isinstance(alignment, dict) or not all(isinstance(k, str) and k.isdigit() for k in alignment):
                raise ManifestError(f"{where} ({gid}): instance {iid}: expected {{position: unit id}} with numeric "
                                    "positions")
            yield gid, breaks, iid, [str(alignment[k]) for k in sorted(alignment, key=int)]


def _unit(uid: str) -> dict:
    f = uid.split("|")
    if len(f) < 5 or not f[4].lstrip("-").isdigit():
        raise ManifestError(f"malformed unit id: {uid!r}")
    sym = f[8] if len(f) > 8 else ""
    if sym not in ("", "P_1", "1_555"):
        raise ManifestError(f"symmetry mate, not in the deposited coordinates: unit {uid}")
    if f[1] != "1":
        raise ManifestError(f"not in model 1 (only model 1 is read): unit {uid}")
    return {"pdb": f[0].upper(), "chain": f[2], "comp": f[3], "seq_num": int(f[4]),
            "icode": f[7] if len(f) > 7 else ""}


def _atlas_strand(units: list[dict]) -> tuple[str, int, list[str]]:
    """A strand of Atlas units as a range from its first to its last unit (the closing
    pairs): ``(spec, length, skipped)`` with ``spec`` like ``84-90`` (ranges follow the
    model's residue order when built, so insertion codes inside are included), its length
    in nucleotides from the numbering, and the residue numbers the alignment skipped.

    Raises ManifestError if the strand changes chain or its numbering runs backwards.
    """
    first, last = units[0], units[-1]
    if len({u["chain"] for u in units}) != 1:
        raise ManifestError(f"strand changes chain: {first['chain']}{first['seq_num']} ... {last['chain']}{last['seq_num']}")
    if last["seq_num"] < first["seq_num"]:
        raise ManifestError(f"strand numbering runs backwards: {first['seq_num']} ... {last['seq_num']}")
    numbers = {u["seq_num"] for u in units}
    skipped = [str(n) for n in range(first["seq_num"], last["seq_num"] + 1) if n not in numbers]
    length = len(units) + len(skipped)  # the listed units plus the numbers between them no unit names
    spec = f"{first['seq_num']}{first['icode']}-{last['seq_num']}{last['icode']}"
    return spec, length, skipped


def _atlas_letters(units: list[dict]) -> str | None:
    """One letter per residue of a strand's range from its first to its last unit: the
    unit's base (``N`` for a modified one), ``N`` for a number the alignment skipped; None
    when an insertion code makes the numbering an unreliable count."""
    if any(u["icode"] for u in units):
        return None
    comp = {u["seq_num"]: (u["comp"] if len(u["comp"]) == 1 else "N") for u in units}
    return "".join(comp.get(n, "N") for n in range(units[0]["seq_num"], units[-1]["seq_num"] + 1))


def models_in(folder: Path):
    """A PDB ID -> Model lookup over a folder of model files (``{id}.cif``, ``.cif.gz``,
    ``.pdb``, ``.pdb.gz``, any case, directly or in a ``pdb/`` subfolder as in a builder
    mirror); None for an entry with no file. Each model is read once."""
    cache: dict[str, object] = {}
    files = {p.name.lower(): p for d in (folder, folder / "pdb") if d.is_dir() for p in d.iterdir()}

    def find(pdb_id: str):
        if pdb_id not in cache:
            key = pdb_id.lower()
            path = next((files[key + ext] for ext in (".cif", ".cif.gz", ".pdb", ".pdb.gz") if key + ext in files), None)
            cache[pdb_id] = read_model(path, name=pdb_id) if path is not None else None
        return cache[pdb_id]

    return find


def _retype_with_model(model, selection: str, listed: list[dict]) -> tuple[list[int], str | None]:
    """Strand lengths and skipped residues of an Atlas selection, read from the model:
    ranges follow the model's residues, so numbering jumps and insertion codes count as
    they are. Raises ManifestError if the model lacks an endpoint or a strand is broken."""
    try:
        idx = model.resolve(selection)
    except RNAMotifError as exc:
        raise ManifestError(f"not in the model: {exc}") from None
    strands = model.strands(idx)
    given = {(u["chain"], u["seq_num"], u["icode"]) for u in listed}
    skipped = [model.atoms.residues[i] for i in idx
               if (model.atoms.residues[i].chain, model.atoms.residues[i].seq_num,
                   model.atoms.residues[i].icode) not in given]
    return [len(st) for st in strands], (format_residues(skipped) or None)


def import_motif_atlas(paths: list[Path], models=None) -> tuple[list[dict], list[Rejection]]:
    """Import RNA 3D Motif Atlas release files (hairpin ``hl_*.json``, internal loop ``il_*.json``).

    Atlas alignments list the nucleotides aligned to the motif group and skip the others
    (a bulged base), so a strand's units can jump in numbering (``HL_1U9S_001`` lists
    A84-88 and A90: a 5-nt loop closed by 84·90). The type therefore comes from each
    strand's **endpoints** (its closing pairs): the row's ``selection`` is the range from
    the first to the last unit of each strand, its type ``hairpin(n-2)`` for a hairpin
    strand of n nucleotides, bulge or ``axb`` from the two strands' unpaired counts; the
    residues the alignment skipped are recorded in ``skipped``. The builder checks the
    strands against the model (a range over unmodelled residues, or one whose insertion
    codes change its length, is refused there). Loops outside the 25 types, junctions
    (more than one chain break), symmetry mates and malformed units are rejected with the
    reason. ``sequence`` covers each strand's whole range, in selection order, with ``N``
    for a residue the alignment skipped or a modified one (the builder compares ``N`` with
    any residue); it is null where insertion codes make the numbering no count.

    With ``models`` (a callable: PDB ID -> :class:`rnamotif_data.rna.structure.Model` or None)
    the strands are measured on the model instead of the numbering: a numbering jump
    with no residue behind it (``HL_4LFB_027`` lists 1165-1169 and 1171; 4LFB has no 1170)
    does not count, and a strand that is not continuous in the model is rejected.

    Returns
    -------
    rows, rejections
        ``source`` is ``motif-atlas``; ``motif_id`` the motif group (``HL_00317.1``);
        ``source_id`` the instance (``HL_6SVS_002``).
    """
    rows: list[dict] = []
    rejected: list[Rejection] = []
    n = 0
    for path in paths:
        for gid, breaks, iid, units_raw in _atlas_instances(path):
            try:
                units = [_unit(u) for u in units_raw]
                kind = gid.split("_")[0]
                if kind == "HL":
                    if breaks:
                        raise ManifestError("hairpin with a chain break: chainbreak {breaks}".format(breaks=breaks))
                    strands = [units]
                elif kind == "IL":
                    if len(breaks) != 1:
                        raise ManifestError(f"junction, not an internal loop: {len(breaks) + 1} strands")
                    strands = [units[:breaks[0]], units[breaks[0]:]]
                else:
                    raise ManifestError(f"motif group kind not imported (junction or other): {kind}")
                if len({u["pdb"] for u in units}) != 1:
                    raise ManifestError("units from several PDB entries: " + iid)
                parts = [_atlas_strand(st) for st in strands]
                chains = [st[0]["chain"] for st in strands]
                selection = " ".join(f"{c}:{spec}" for c, (spec, _, _) in zip(chains, parts))
                skipped: str | None = " ".join(f"{c}:{','.join(sk)}" for c, (_, _, sk) in zip(chains, parts) if sk)
                lengths = [length for _, length, _ in parts]
                model = models(units[0]["pdb"]) if models is not None else None
                if model is not None:
                    lengths, skipped = _retype_with_model(model, selection, units)
                    if len(lengths) != len(strands):
                        raise ManifestError(f"strands of {selection} are not continuous in the model")
                sizes = [length - 2 for length in lengths]
                mtype = loop_type(sizes[0], sizes[1] if len(sizes) > 1 else None)
                if mtype not in FINE_TYPES:
                    raise ManifestError(f"loop type outside the 25-type taxonomy: {mtype}")
            except ValueError as exc:
                rejected.append(Rejection(n, "residues", str(exc), "motif-atlas", iid))
            else:
                rows.append(_atlas_row(gid, iid, units, strands, lengths, mtype, selection, skipped))
            n += 1
    return rows, rejected


def _atlas_row(gid: str, iid: str, units: list[dict], strands: list[list[dict]], lengths: list[int], mtype: str,
               selection: str, skipped: str | None) -> dict:
    """The manifest row of one accepted Motif Atlas instance (:func:`import_motif_atlas`)."""
    letters = [s for s in (_atlas_letters(st) for st in strands) if s is not None]
    seq = "".join(letters) if len(letters) == len(strands) else None
    if seq is not None and len(seq) != sum(lengths):  # the model counts otherwise
        seq = None
    return {
        "pdb_id": units[0]["pdb"],
        "motif_type": mtype,
        "selection": selection,
        # skipped and modified residues are N (the builder's check lets N match any)
        "sequence": seq if seq and re.fullmatch(r"[ACGUTN]+", seq) else None,
        "skipped": skipped or None,
        "motif_id": gid,
        "source": "motif-atlas",
        "source_id": iid,
    }


# ------------------------------------------------------------- upstream fold CSVs
_FOLD_FILE = re.compile(r"^fold(\d)_(train|val)\.csv$")
_MOTIF_FILE = re.compile(r"^(EMD-\d+)_([0-9][A-Za-z0-9]{3})_([A-Za-z0-9]+)_(\d+)\.mrc$")
_CUBE_FILE = re.compile(r"^cube_([0-9][A-Za-z0-9]{3})_(\d+)\.mrc$")
_LABEL_CLASS = {"symmetricloop": "symmetric_loop", "bulge": "bulge", "hairpin": "hairpin",
                "asymmetricloop": "asymmetric_loop", "unknown": "unknown"}


def import_upstream_folds(folder: Path) -> tuple[list[dict], list[Rejection]]:
    """Import the upstream benchmark's fold CSVs (``fold{k}_train.csv``, ``fold{k}_val.csv``).

    Every sample appears in exactly one ``val`` file; that fold is its ``upstream_fold``.
    The CSVs carry no residues: motif rows are marked ``needs_residues`` (to be resolved
    from a CoSSMos export by PDB ID, type and ``cossmos_number``); ``unknown`` rows are
    the upstream's random background cubes.

    Returns
    -------
    rows, rejections
        ``source`` is ``upstream-folds``; ``source_id`` the upstream file name.

    Raises
    ------
    MissingFileError
        If the folder has no ``fold{k}_val.csv``.
    """
    folder = Path(folder)
    val_files = sorted(p for p in folder.glob("fold*_val.csv") if _FOLD_FILE.match(p.name))
    if not val_files:
        raise MissingFileError(f"{folder}: no fold{{k}}_val.csv files")
    rows: list[dict] = []
    rejected: list[Rejection] = []
    fold_of: dict[str, int] = {}
    n = 0
    for path in val_files:
        fold = int(_FOLD_FILE.match(path.name).group(1))  # type: ignore[union-attr]  # val_files all match
        with open(path, newline="") as fh:
            for rec in csv.DictReader(fh):
                name = Path(rec["filepath"]).name
                label = rec.get("label", "")
                try:
                    if name in fold_of:
                        raise ManifestError(f"in more than one val set: also fold {fold_of[name]}")
                    fold_of[name] = fold
                    row = _fold_row(name, label)
                except ValueError as exc:
                    rejected.append(Rejection(n, "filepath", f"{exc} ({path.name})", "upstream-folds", name))
                else:
                    row.update(source="upstream-folds", source_id=name, upstream_fold=fold)
                    rows.append(row)
                n += 1
    # a sample used in training must be some fold's validation sample
    for path in sorted(folder.glob("fold*_train.csv")):
        with open(path, newline="") as fh:
            for rec in csv.DictReader(fh):
                name = Path(rec["filepath"]).name
                if name not in fold_of:
                    rejected.append(Rejection(n, "filepath", f"train sample in no fold's val set: {path.name}",
                                              "upstream-folds", name))
                    fold_of[name] = -1
                    n += 1
    return rows, rejected


def _fold_row(name: str, label: str) -> dict:
    m = _MOTIF_FILE.match(name)
    if m:
        emdb, pdb, mtype, num = m.groups()
        if mtype not in FINE_TYPES:
            raise ManifestError(f"unknown motif type {mtype!r}")
        if _LABEL_CLASS.get(label) != motif_class(mtype):
            raise ManifestError(f"label {label!r} does not match type {mtype}")
        return {"pdb_id": pdb.upper(), "emdb_id": emdb, "motif_type": mtype,
                "cossmos_number": int(num), "needs_residues": True}
    m = _CUBE_FILE.match(name)
    if m:
        if label != "unknown":
            raise ManifestError(f"background cube labelled {label!r}")
        return {"pdb_id": m.group(1).upper(), "motif_type": "unknown", "cossmos_number": int(m.group(2))}
    raise ManifestError("file name is neither EMD-xxxx_PDBID_type_n.mrc nor cube_PDBID_n.mrc")
