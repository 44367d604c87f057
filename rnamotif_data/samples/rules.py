"""The rules a sample must pass: its strands, its placement in the map, its quality.

Pure functions over a model, atoms, a map and its statistics, and frozen threshold
configs; a rejection is a :class:`SampleRejected` naming the stage that refused the sample
and the values that decided it (what ``failures.parquet`` records). The build
(:mod:`rnamotif_data.pipeline.entry`) applies them to every manifest row, and the
background selection (:func:`rnamotif_data.samples.background.select_background_sites`)
applies the placement rule to its candidates itself.

* :func:`check_strands`: a row's stated motif type against its residues' strands and
  closing base pairs (stage ``selection``), and the loop lengths of the source's own
  residue list (:func:`source_residues`) beside them;
* :func:`apply_loop_convention`: which of the two the stored fine type follows
  (:data:`LOOP_CONVENTIONS`, ``rnamotif build --loop-convention``);
* :func:`check_placement`: a motif's own fit_z and fraction of heavy atoms above map mean
  + 1 sd (:class:`PlacementRules`; stage ``placement``); defaults and why:
  ``docs/placement.md``;
* :func:`check_quality`: a motif's Q-score and CC_mask (:class:`QualityRules`; stage
  ``quality``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rnamotif_data.em.maps import DensityMap, MapStatistics
from rnamotif_data.em.quality import fit_z, fraction_above
from rnamotif_data.errors import ConfigError, RNAMotifError, SelectionSyntaxError
from rnamotif_data.rna.motifs import FINE_TYPES, layout_mismatch
from rnamotif_data.rna.pairs import loop_type, read_loops
from rnamotif_data.rna.structure import AtomTable, Model, parse_selection

__all__ = ["CONTEXT_FLANK", "SOURCE_FLANK_PAIRS", "LOOP_CONVENTIONS", "UNIT_LIST_SOURCES", "PlacementRules",
           "QualityRules", "SampleRejected", "apply_loop_convention", "check_placement", "check_quality",
           "check_strands", "placement_values", "source_flank_pairs", "source_residues"]

#: Chain neighbours on each side of each strand in ``context_sequence`` (homology of
#: contexts in the splits).
CONTEXT_FLANK = 8

#: closing pairs per side a source lists, where the model's pairs cannot tell
#: (manifest column ``flank_pairs`` overrides): CoSSMos, the RNA 3D Motif Atlas and our
#: annotator list one, the upstream benchmark two
SOURCE_FLANK_PAIRS = {"upstream": 2, "upstream-folds": 2}

#: how a motif's loop lengths, and so its fine type, are counted (``BuildConfig.loop_convention``):
#: ``span``, every nucleotide between the closing pairs (the build's convention, CoSSMos-like);
#: ``source``, only those the source's own residue list names (:func:`source_residues`;
#: the RNA 3D Motif Atlas's types), where the source has such a list
LOOP_CONVENTIONS = ("span", "source")

#: sources whose ``selection`` names each strand's span and whose ``skipped`` the residues
#: inside it that the source's own list leaves out: the RNA 3D Motif Atlas importer's rows
#: (``motif-atlas``, ``motif-atlas-4.5``, ...), whose unit ids are the selection less ``skipped``
UNIT_LIST_SOURCES = ("motif-atlas",)


class SampleRejected(RNAMotifError):
    """A sample refused by a rule: ``stage`` (``selection``, ``placement`` or ``quality``)
    and ``values``, the measured columns that decided it (``fit_z``,
    ``frac_atoms_above_1sd``, ``q_score``; empty for ``selection``)."""

    #: what ``failures.parquet`` records in ``error_type`` for a rejection: the name stores
    #: since 0.8 carry (the class's name when it lived in the pipeline), so rebuilds stay
    #: byte-identical
    error_type = "_RowError"

    def __init__(self, message: str, stage: str, values: dict | None = None):
        super().__init__(message)
        self.stage, self.values = stage, values or {}

    def __reduce__(self):
        return type(self), (str(self), self.stage, self.values)



def _check_finite(owner: str, **limits: float | None) -> None:
    for name, v in limits.items():
        if v is not None and not math.isfinite(v):
            raise ConfigError(f"{owner}: {name} must be a finite number, got {v}")


@dataclass(frozen=True)
class PlacementRules:
    """Per-motif placement thresholds (None disables a criterion).

    Attributes
    ----------
    min_motif_fit_z:
        A motif whose own fit_z is below this sits in empty density (a part of the model
        that is not in this map).
    min_motif_frac_above_1sd:
        A motif whose fraction of heavy atoms above map mean + 1 sd is below this, too.
    """

    min_motif_fit_z: float | None = 1.5
    min_motif_frac_above_1sd: float | None = 0.5

    def __post_init__(self) -> None:
        _check_finite("placement rules", min_motif_fit_z=self.min_motif_fit_z,
                      min_motif_frac_above_1sd=self.min_motif_frac_above_1sd)


@dataclass(frozen=True)
class QualityRules:
    """Per-motif quality thresholds (None, the default, keeps every motif).

    Attributes
    ----------
    min_q_score:
        A motif whose Q-score (motif mean) is below this, or undefined, is refused.
    min_cc_mask:
        A motif whose CC_mask is below this, or undefined (no resolution known), is refused.
    """

    min_q_score: float | None = None
    min_cc_mask: float | None = None

    def __post_init__(self) -> None:
        _check_finite("quality rules", min_q_score=self.min_q_score, min_cc_mask=self.min_cc_mask)


def source_flank_pairs(row: dict) -> int:
    """The closing-pair convention of a manifest row: its ``flank_pairs`` if given, else
    :data:`SOURCE_FLANK_PAIRS` by ``source`` (1 for any other source)."""
    given = row.get("flank_pairs")
    if given is not None and given == given:  # not None / NaN
        return int(given)
    return SOURCE_FLANK_PAIRS.get(str(row.get("source") or "").split(" ")[0], 1)


def source_residues(model: Model, residue_indices, row: dict, what: str = "") -> list[int] | None:
    """The residues a manifest row's source lists itself, or None where it lists none of its own.

    ``residue_indices``: the row's resolved residues (indices into ``model.atoms.residues``,
    :meth:`~rnamotif_data.rna.structure.Model.resolve` of its ``residues`` or ``selection``);
    the result is the subset the source names. A row with ``residues`` (a CoSSMos export
    lists every residue) names them all. A row with ``skipped``, or of a
    :data:`UNIT_LIST_SOURCES` source, names its ``selection`` less ``skipped``: an RNA 3D
    Motif Atlas instance's unit ids (``HL_1U9S_001`` lists A:84-88 and A:90; its row's
    selection is A:84-90, ``skipped`` A:89). A row that gives only ranges (``selection``
    without ``skipped``: the annotator, the demo, a user's own) names nothing but its span:
    None.

    Raises :class:`SampleRejected` (stage ``selection``) if ``skipped`` is not a selection;
    ``what`` names the row.
    """
    if row.get("residues") is not None:
        return [int(i) for i in residue_indices]
    skipped = row.get("skipped")
    skipped = str(skipped).strip() if isinstance(skipped, str) else ""
    if not skipped and not str(row.get("source") or "").split(" ")[0].startswith(UNIT_LIST_SOURCES):
        return None
    try:
        items = parse_selection(skipped).items if skipped else ()
    except SelectionSyntaxError as exc:
        raise SampleRejected(f"{what}: skipped {skipped!r} is not a selection: {exc}", "selection") from None
    ids = model.atoms.residues
    return [int(i) for i in residue_indices
            if not any(item.start.chain == ids[int(i)].chain and _within(item, ids[int(i)]) for item in items)]


def _within(item, rid) -> bool:
    """Whether residue id ``rid`` (same chain) is the item's residue or in its range (by number, then insertion code)."""
    key = (rid.seq_num, rid.icode)
    end = item.end or item.start
    return (item.start.seq_num, item.start.icode) <= key <= (end.seq_num, end.icode)


def _source_loops(strands: list[list[int]], flanks: tuple[int, ...], listed) -> dict:
    """``source_loop_lengths`` and ``source_motif_type``: per strand, the nucleotides between
    the closing pairs read (``flanks`` as :class:`~rnamotif_data.rna.pairs.LoopReading` has
    them) that ``listed`` names; nulls without ``listed``."""
    if listed is None:
        return {"source_loop_lengths": None, "source_motif_type": None}
    if len(strands) == 1:
        s, c = strands[0], flanks[0]
        loops = [s[c:len(s) - c]]
    else:
        (a, b), (outer, inner) = strands, flanks
        loops = [a[outer:len(a) - inner], b[inner:len(b) - outer]]
    keep = set(listed)
    lengths = [sum(1 for i in loop if i in keep) for loop in loops]
    return {"source_loop_lengths": lengths, "source_motif_type": loop_type(tuple(lengths))}


def check_strands(model: Model, residue_indices, motif_type: str, what: str, partner=None,
                  fallback: int = 1, listed=None) -> dict:
    """Check a row's stated type against its residues; returns the metadata columns
    ``loop_lengths``, ``flank_pairs``, ``loop_note``, ``source_loop_lengths`` and
    ``source_motif_type``.

    The strand count must fit the type (one for a hairpin, two otherwise). With
    ``partner`` (:func:`rnamotif_data.rna.pairs.watson_crick_partners` of the model) the
    loop lengths are read off the closing pairs (:func:`rnamotif_data.rna.pairs.read_loops`;
    one or two listed pairs per side both pass), and a type that contradicts them fails
    stage ``selection`` naming the stated type, the type read and the pairs; a side
    without a readable closing pair uses ``fallback`` pairs (the source's convention) and
    says so in ``loop_note``. Without ``partner``: strand lengths as for ``fallback``
    pairs (:func:`rnamotif_data.rna.motifs.layout_mismatch`), and no loop lengths.

    ``loop_lengths`` count every nucleotide between the closing pairs (the span);
    ``source_loop_lengths`` only those of ``listed`` (:func:`source_residues`; null
    without it or without loop lengths), and ``source_motif_type`` is the fine type they
    make (:func:`~rnamotif_data.rna.pairs.loop_type`; it may lie outside the 25 types).

    Raises :class:`SampleRejected` (stage ``selection``) on a mismatch; ``what`` names the
    row in the message.
    """
    strands = model.strands(residue_indices)
    why = layout_mismatch([len(s) for s in strands], motif_type, flank_pairs=(1, 2))
    if why and len(strands) != (1 if motif_type.startswith("hairpin") else 2):
        raise SampleRejected(f"{what}: {why}", "selection")
    if partner is None:
        why = layout_mismatch([len(s) for s in strands], motif_type, flank_pairs=(fallback,))
        if why:
            raise SampleRejected(f"{what}: {why}", "selection")
        return {"loop_lengths": None, "flank_pairs": None, "loop_note": "loop lengths not read (no base pairs)",
                **_source_loops(strands, (), None)}
    reading = read_loops(strands, partner, fallback)
    if reading.motif_type != motif_type:
        ids = model.atoms.residues
        pairs = ", ".join(f"{ids[i].seq_num}{ids[i].icode}-{ids[j].seq_num}{ids[j].icode}"
                          for i, j in reading.pairs) or "none"
        got = reading.motif_type or "no loop"
        raise SampleRejected(f"{what}: stated {motif_type}, but the base pairs make it {got} (unpaired "
                             f"{' + '.join(str(n) for n in reading.loop_lengths)} nt; closing pairs read: {pairs}"
                             + (f"; {reading.note}" if reading.note else "") + ")", "selection")
    return {"loop_lengths": list(reading.loop_lengths), "flank_pairs": list(reading.flank_pairs),
            "loop_note": reading.note, **_source_loops(strands, reading.flank_pairs, listed)}


def apply_loop_convention(cols: dict, motif_type: str, convention: str, what: str) -> tuple[str, dict]:
    """The fine type a sample is stored with and its loop columns, under ``convention``
    (:data:`LOOP_CONVENTIONS`).

    ``cols``: :func:`check_strands`' columns for a row stated ``motif_type``. ``span`` (the
    default) keeps both. ``source``, where the row has ``source_loop_lengths`` and they make
    another type: that type, ``loop_lengths`` set to ``source_loop_lengths`` and
    ``loop_note`` saying what the span gives; rows without a list of their own keep the
    span's. The cube, ``residues`` and ``sequence`` are the span's under either.

    Raises
    ------
    ConfigError
        For a convention not in :data:`LOOP_CONVENTIONS`.
    SampleRejected
        Stage ``selection``, under ``source``, when the source's list makes no type of the
        25 (``hairpin2``, a stem), naming both types.
    """
    if convention not in LOOP_CONVENTIONS:
        raise ConfigError(f"loop_convention must be one of {', '.join(LOOP_CONVENTIONS)}, got {convention!r}")
    source_type, lengths = cols.get("source_motif_type"), cols.get("source_loop_lengths")
    if convention == "span" or lengths is None or source_type == motif_type:
        return motif_type, cols
    span = " + ".join(str(n) for n in cols["loop_lengths"])
    if source_type not in FINE_TYPES:
        raise SampleRejected(f"{what}: --loop-convention source: the source's residue list leaves "
                             f"{' + '.join(str(n) for n in lengths)} nt between the closing pairs "
                             f"({source_type or 'no loop'}), not one of the 25 types (the span: {motif_type}, "
                             f"{span} nt)", "selection")
    note = (f"loop lengths follow the source's residue list (--loop-convention source); the span between the "
            f"closing pairs makes {motif_type} ({span} nt)")
    return source_type, {**cols, "loop_lengths": list(lengths),
                         "loop_note": "; ".join(n for n in (cols.get("loop_note"), note) if n)}


def placement_values(density_map: DensityMap, atoms: AtomTable, stats: MapStatistics) -> dict:
    """``fit_z`` and ``frac_atoms_above_1sd`` of ``atoms`` in ``density_map`` (whole-map
    ``stats``): :func:`~rnamotif_data.em.quality.fit_z` and
    :func:`~rnamotif_data.em.quality.fraction_above`."""
    return {"fit_z": fit_z(density_map, atoms.xyz, stats),
            "frac_atoms_above_1sd": fraction_above(density_map, atoms.xyz, stats)}


def check_placement(density_map: DensityMap, atoms: AtomTable, stats: MapStatistics, rules: PlacementRules,
                    what: str) -> dict:
    """The motif's placement values (:func:`placement_values`); raises
    :class:`SampleRejected` (stage ``placement``, with the values) below ``rules``'
    thresholds, naming ``what`` and every criterion missed."""
    values = placement_values(density_map, atoms, stats)
    why = []
    if rules.min_motif_fit_z is not None and values["fit_z"] < rules.min_motif_fit_z:
        why.append(f"fit_z {values['fit_z']:.2f} < min_motif_fit_z {rules.min_motif_fit_z:g}")
    if rules.min_motif_frac_above_1sd is not None and values["frac_atoms_above_1sd"] < rules.min_motif_frac_above_1sd:
        why.append(f"fraction of atoms above mean + 1 sd {values['frac_atoms_above_1sd']:.2f} < "
                   f"min_motif_frac_above_1sd {rules.min_motif_frac_above_1sd:g}")
    if why:
        raise SampleRejected(f"{what}: motif in empty density: {'; '.join(why)}", "placement", values)
    return values


def check_quality(cols: dict, rules: QualityRules, what: str) -> None:
    """Raise :class:`SampleRejected` (stage ``quality``, with ``fit_z``,
    ``frac_atoms_above_1sd`` and ``q_score`` of ``cols``) if the motif's ``q_score`` or
    ``cc_mask`` column is below ``rules``' thresholds, or undefined where a threshold is set."""
    values = {k: cols[k] for k in ("fit_z", "frac_atoms_above_1sd", "q_score")}
    for name, label, limit in (("q_score", "Q-score", rules.min_q_score), ("cc_mask", "CC_mask", rules.min_cc_mask)):
        if limit is None:
            continue
        v = cols[name]
        if v is None:
            why = " (no resolution known)" if name == "cc_mask" else ""
            raise SampleRejected(f"{what}: {label} is undefined{why}; --min-{name.replace('_', '-')} {limit} needs it",
                                 "quality", values)
        if v < limit:
            raise SampleRejected(f"{what}: {label} {v:.3f} < --min-{name.replace('_', '-')} {limit}", "quality",
                                 values)
