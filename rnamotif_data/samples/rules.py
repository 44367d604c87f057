"""The rules a sample must pass: its strands, its placement in the map, its quality.

Pure functions over a model, atoms, a map and its statistics, and frozen threshold
configs; a rejection is a :class:`SampleRejected` naming the stage that refused the sample
and the values that decided it (what ``failures.parquet`` records). The build
(:mod:`rnamotif_data.pipeline.entry`) applies them to every manifest row, and the
background selection (:func:`rnamotif_data.samples.background.select_background_sites`)
applies the placement rule to its candidates itself.

* :func:`check_strands`: a row's stated motif type against its residues' strands and
  closing base pairs (stage ``selection``);
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
from rnamotif_data.errors import ConfigError, RNAMotifError
from rnamotif_data.rna.motifs import layout_mismatch
from rnamotif_data.rna.pairs import read_loops
from rnamotif_data.rna.structure import AtomTable, Model

__all__ = ["CONTEXT_FLANK", "SOURCE_FLANK_PAIRS", "PlacementRules", "QualityRules", "SampleRejected",
           "check_placement", "check_quality", "check_strands", "placement_values", "source_flank_pairs"]

#: Chain neighbours on each side of each strand in ``context_sequence`` (homology of
#: contexts in the splits).
CONTEXT_FLANK = 8

#: closing pairs per side a source lists, where the model's pairs cannot tell
#: (manifest column ``flank_pairs`` overrides): CoSSMos, the RNA 3D Motif Atlas and our
#: annotator list one, the upstream benchmark two
SOURCE_FLANK_PAIRS = {"upstream": 2, "upstream-folds": 2}


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


def check_strands(model: Model, residue_indices, motif_type: str, what: str, partner=None,
                  fallback: int = 1) -> dict:
    """Check a row's stated type against its residues; returns the metadata columns
    ``loop_lengths``, ``flank_pairs`` and ``loop_note``.

    The strand count must fit the type (one for a hairpin, two otherwise). With
    ``partner`` (:func:`rnamotif_data.rna.pairs.watson_crick_partners` of the model) the
    loop lengths are read off the closing pairs (:func:`rnamotif_data.rna.pairs.read_loops`;
    one or two listed pairs per side both pass), and a type that contradicts them fails
    stage ``selection`` naming the stated type, the type read and the pairs; a side
    without a readable closing pair uses ``fallback`` pairs (the source's convention) and
    says so in ``loop_note``. Without ``partner``: strand lengths as for ``fallback``
    pairs (:func:`rnamotif_data.rna.motifs.layout_mismatch`).

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
        return {"loop_lengths": None, "flank_pairs": None, "loop_note": "loop lengths not read (no base pairs)"}
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
            "loop_note": reading.note}


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
