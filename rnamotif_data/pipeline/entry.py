"""The per-entry pipeline of a build: one Dask task per entry (PDB ID, EMDB map).

:func:`stage_entry` fetches the entry's model and map once, computes the map statistics
once, checks the placement of the whole model (entry fit_z), then for each manifest row:
checks that the selection's strands fit the motif type, checks the sequence, checks the
motif's own placement (per-motif fit_z and fraction of atoms above mean + 1 sd), segments
and labels the cube and computes its quality; then chooses the entry's background cubes.
Everything is written to one staging file (:mod:`rnamotif_data.pipeline.staging`). A failure in one
row is recorded for that row only; a failure of the entry (download, parse, placement)
for each of its rows. The rules a sample must pass live in :mod:`rnamotif_data.samples.rules`;
what the entry derives from its model file alone comes from its
:class:`~rnamotif_data.pipeline.context.ModelContext`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnamotif_data.em.maps import DensityMap, header_statistics_notes, read_map
from rnamotif_data.em.quality import (
    QualityConfig,
    correlation_boxes,
    expected_q_score,
    fit_z,
    motif_quality,
    q_reference,
)
from rnamotif_data.errors import RNAMotifError, is_environment_failure, one_line
from rnamotif_data.inputs.schema import row_selection
from rnamotif_data.inputs.sources import SourceConfig, Sources
from rnamotif_data.pipeline.config import BuildConfig
from rnamotif_data.pipeline.context import MODELS, ModelContext, ModelUse
from rnamotif_data.pipeline.staging import part_inputs, write_part
from rnamotif_data.pipeline.timing import StageClock
from rnamotif_data.pipeline.volumes import EntryVolumes, failed_volumes, stage_volumes
from rnamotif_data.rna.modified import sequence_matches
from rnamotif_data.rna.motifs import class_index, motif_class
from rnamotif_data.rna.structure import format_residues
from rnamotif_data.samples.background import ShapeDistribution, background_count, select_background_sites
from rnamotif_data.samples.cubes import atoms_key, cut_model_motif, cut_motif
from rnamotif_data.samples.rules import (
    CONTEXT_FLANK,
    SampleRejected,
    apply_loop_convention,
    check_placement,
    check_quality,
    check_strands,
    source_flank_pairs,
    source_residues,
)
from rnamotif_data.storage.checksums import sha256_file
from rnamotif_data.storage.layout import failures_row, metadata_row

log = logging.getLogger("rnamotif_data.pipeline.builder")

__all__ = ["EntryJob", "stage_entry", "failure_row", "current_inputs"]


@dataclass(frozen=True)
class EntryJob:
    """The manifest rows of one entry: ``rows`` are ``(manifest row, row dict)`` pairs;
    ``resolution`` (Å) is the one the rows agree on, or None (then the RCSB record's);
    ``error``: why every row of the entry is refused before any file is read (rows that
    disagree on the resolution); ``shapes``: the strand layouts of the whole manifest's
    motifs, from which background samples draw theirs."""

    pdb_id: str
    emdb_id: str | None
    rows: tuple
    resolution: float | None = None
    error: str | None = None
    shapes: ShapeDistribution = ShapeDistribution(())

    @property
    def key(self) -> str:
        """File-name-safe entry key, e.g. ``6PJ6_EMD-20353`` (``6PJ6_primary`` when the
        map could not be determined before staging)."""
        return f"{self.pdb_id}_{self.emdb_id or 'primary'}"


def failure_row(i: int, row: dict, emdb: str | None, stage: str, exc: BaseException | str,
                values: dict | None = None) -> dict:
    """A failures.parquet row for manifest row ``i``; ``values`` adds measured columns
    (``fit_z``, ``frac_atoms_above_1sd``, ``q_score``; another name raises ``TypeError``,
    :func:`~rnamotif_data.storage.layout.failures_row`)."""
    sel = row_selection(row) if row.get("residues") is not None or row.get("selection") is not None else None
    return failures_row(**{
        "manifest_row": int(i), "pdb_id": row.get("pdb_id"), "emdb_id": emdb or row.get("emdb_id"),
        "motif_type": row.get("motif_type"), "residues": str(sel) if sel is not None else None,
        "source": row.get("source"), "source_id": row.get("source_id"), "stage": stage,
        "error_type": getattr(exc, "error_type", type(exc).__name__) if isinstance(exc, BaseException) else "Rejected",
        "error": str(exc), "fit_z": None, "frac_atoms_above_1sd": None, "q_score": None, **(values or {}),
    })


def _sample_id(emdb: str, pdb: str, mtype: str, residues: str) -> str:
    compact = residues.replace(":", "").replace(" ", "_").replace(",", "+")
    return f"{emdb}_{pdb}_{mtype}_{compact}"


def _resolution(sources: Sources, job: EntryJob) -> float | None:
    if job.resolution is not None:
        return job.resolution
    try:
        return sources.entry(job.pdb_id).resolution
    except (RNAMotifError, ValueError, OSError) as exc:
        log.debug("%s: no resolution from the RCSB record (%s)", job.pdb_id, exc)
        return None


def stage_entry(job: EntryJob, config: BuildConfig, source_config: SourceConfig, root: str) -> dict:
    """Process one entry and write its staging file; the Dask task of the build.

    Returns a small summary dict (``key``, ``n_samples``, ``n_failed``, ``reasons``,
    ``seconds``, ``read_seconds``, ``map_warnings``, ``background_requested``,
    ``background_placed``) -- the cubes stay in the staging file, never in the scheduler.
    """
    t0 = time.perf_counter()
    clock = StageClock()
    samples, failures, entry_failed, read_s = [], [], False, 0.0
    dmap: DensityMap | None = None  # released before the cubes are written (below)
    ctx: _Entry | None = None
    emdb = job.emdb_id
    stage = "fetch"
    extra: dict[str, Any] = {"map_warnings": [], "background_requested": 0, "background_placed": 0,
                             "inputs": part_inputs(config.config_hash(), emdb)}
    try:
        if job.error:
            stage = "manifest"
            raise RNAMotifError(job.error)
        with clock("fetch"):
            sources = Sources(source_config)
            if emdb is None:
                emdb, _ = sources.map_id(job.pdb_id)
            model_path = sources.model(job.pdb_id)
            map_path = sources.map(emdb)
            extra["inputs"] = part_inputs(config.config_hash(), emdb, sha256_file(model_path), sha256_file(map_path))
        stage = "model"
        with clock("read"):
            use = MODELS.enter(model_path, job.pdb_id, config.quality)
            model = use.model
            stage = "map"
            t1 = time.perf_counter()
            dmap = read_map(map_path)
        with clock("statistics"):
            stats = dmap.statistics(config.segment.normalise_percentile)
            extra["map_warnings"] = list(dmap.warnings) + header_statistics_notes(dmap, stats)
        read_s = time.perf_counter() - t1
        extra["map_shape"], extra["n_atoms"] = list(dmap.shape), int(len(model.atoms.xyz))
        stage = "placement"
        with clock("placement"):
            inside = dmap.contains(model.atoms.xyz)
            if not inside.any():
                raise RNAMotifError(f"{job.pdb_id} / {emdb} ({map_path.name}): no atom of the model lies inside "
                                    "the map box")
            z = fit_z(dmap, model.atoms.xyz[inside], stats)
        if z < config.min_fit_z:
            raise RNAMotifError(f"{job.pdb_id} / {emdb} ({map_path.name}): model atoms inside the map have fit_z "
                                f"{z:.2f} < min_fit_z {config.min_fit_z:g}; map misplaced or wrong model")
        resolution = _resolution(sources, job)
        with clock("quality"):
            ctx = _Entry(job, emdb, use, dmap, stats, resolution, config, extra["map_warnings"], clock)
        if config.tiles:  # before the cubes: a worker never holds the cubes and the volumes' slabs at once
            with clock("volumes"):
                extra["volumes"] = _entry_volumes(job, emdb, root, ctx, config, stage)
        samples, failures, motif_xyz, targets = _segment_rows(ctx)
        n_ok = len(samples)
        if n_ok == 0 and job.rows:
            entry_failed = True
        else:
            extra["background_requested"] = background_count(n_ok, config.background)
            with clock("background"):
                samples += _background(ctx, motif_xyz, extra["background_requested"], targets)
            extra["background_placed"] = len(samples) - n_ok
    except Exception as exc:  # noqa: BLE001 - an entry failure is recorded, never fatal
        if is_environment_failure(exc):  # a full disk fails the build, never the rows
            raise
        log.debug("%s: %s failed: %s", job.key, stage, exc)
        samples, entry_failed = [], True
        failures = [failure_row(i, row, emdb, stage, exc) for i, row in job.rows]
    if config.tiles and "volumes" not in extra:  # the entry stopped before its map was placed
        extra["volumes"] = _entry_volumes(job, emdb, root, None, config, stage)
    ctx = dmap = None  # the map is not needed to write the cubes: a worker's peak stays below map + cubes
    extra["timing"] = clock.to_dict()
    with clock("staging"):
        write_part(root, job.key, samples, failures, entry_failed, extra)
    return {"key": job.key, "n_samples": len(samples), "n_failed": len(failures),
            "reasons": dict(Counter(f["stage"] for f in failures)),
            "seconds": time.perf_counter() - t0, "read_seconds": read_s, **extra, "timing": clock.to_dict()}


class _Entry:
    """Per-entry context: model, map, statistics, one KD-tree of every model atom, one
    Q-score reference, the chains' sequences, the map's warnings."""

    def __init__(self, job, emdb, use: ModelUse, dmap, stats, resolution, config: BuildConfig, map_warnings,
                 clock: StageClock | None = None):
        model = use.model
        self.job, self.emdb, self.model, self.dmap, self.stats = job, emdb, model, dmap, stats
        self.clock = clock or StageClock()
        self.resolution, self.config, self.map_warnings = resolution, config, list(map_warnings)
        self.context: ModelContext = use.context
        self.tree, self.points, self.memo = use.context.tree, use.context.points, use.memo
        # the map grid: with the model, it fixes the correlation boxes (pipeline.memo)
        self.grid = (dmap.origin.tobytes(), dmap.voxel_size.tobytes())
        # background seed key: the model's coordinates, so one model fitted to several maps
        # gets the same background residues wherever the maps allow them (like its motifs)
        self.model_key = use.context.key
        self.reference = q_reference(stats)
        # a chain's sequence: its polymer nucleotides, never ligands, ions or waters (Model.chain_sequence)
        self.chain_sequences = {c: model.chain_sequence(c) for c in model.chain_index}
        with self.clock("segment"):  # the pairs serve the rows' type checks (stage segment)
            self.partner = self.context.partners(config.pairs, model)

    def cut(self, atoms, description: str):
        """:func:`~rnamotif_data.samples.cubes.cut_model_motif` of the model's ``atoms``; from
        the model's second map on, their cube labels are made once (:mod:`rnamotif_data.pipeline.memo`)."""
        return cut_model_motif(self.dmap, atoms, self.config.segment, model_atoms=self.model.atoms,
                               stats=self.stats, description=description, kept=self.memo)

    def quality_columns(self, atoms, rows=None) -> dict:
        """Quality columns of ``atoms`` (``rows``: their rows in the model, if known)."""
        q: QualityConfig = self.config.quality
        boxes = None
        if self.memo is not None and rows is not None and self.resolution:  # the model's atoms
            boxes = self.memo.get(("cc", atoms_key(atoms.xyz), self.grid, float(self.resolution),
                                   q.cc_mask_padding, q.cc_local_radius),
                                  lambda: correlation_boxes(self.dmap, atoms, self.resolution, q))
        mq = motif_quality(self.dmap, atoms, self.tree, self.stats, self.resolution, q, self.reference,
                           atom_rows=rows, points=self.points if rows is not None else None, boxes=boxes)
        q_exp = expected_q_score(self.resolution, q.q_sigma)
        return {"fit_z": mq.fit_z, "q_score": _nan_none(mq.q_score),
                "q_score_min_residue": _nan_none(mq.q_score_min_residue), "cc_mask": _nan_none(mq.cc_mask),
                "cc_local": _nan_none(mq.cc_local), "frac_atoms_above_1sd": mq.frac_atoms_above_1sd,
                "q_expected": _nan_none(q_exp), "q_score_minus_expected": _nan_none(mq.q_score - q_exp)}

    def strand_columns(self, residue_indices) -> dict:
        """``strand_sequences`` (strands in model order, '-'-joined, parents for modified
        residues) and ``context_sequence`` (each strand with up to
        :data:`CONTEXT_FLANK` chain neighbours on both sides) of the given residues."""
        if len(residue_indices) == 0:
            return {"strand_sequences": None, "context_sequence": None}
        parents = self.model.atoms.parents or ()
        letter = (lambda i: parents[i]) if parents else (lambda i: "N")
        strands, contexts = [], []
        for strand in self.model.strands(residue_indices):
            strands.append("".join(letter(i) for i in strand))
            contexts.append(self.model.sequence_context(strand, CONTEXT_FLANK))  # polymer neighbours only
        return {"strand_sequences": "-".join(strands), "context_sequence": "-".join(contexts)}

    def parent_sequence(self, residues) -> str | None:
        """Hash of the full sequences of the chains of ``residues`` (splits' leakage key)."""
        chains = sorted({r.chain for r in residues})
        if not chains:
            return None
        blob = "/".join(sorted(self.chain_sequences[c] for c in chains))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def current_inputs(job: EntryJob, recorded: dict | None, config: BuildConfig, source_config: SourceConfig) -> dict:
    """What :func:`stage_entry` would record as the entry's ``inputs`` now
    (:func:`~rnamotif_data.pipeline.staging.part_inputs`), for ``--resume`` to compare with a
    staged part's record. The map is the one the part used (``recorded["emdb_id"]``) when
    the manifest names none; a file that cannot be found now is recorded as None (changed).
    """
    emdb = job.emdb_id or (recorded or {}).get("emdb_id")
    sources = Sources(source_config)
    digests: list[str | None] = []
    for find, name in ((sources.model, job.pdb_id), (sources.map, emdb)):
        try:
            digests.append(sha256_file(find(name)) if name else None)
        except (RNAMotifError, OSError) as exc:
            log.info("%s: %s cannot be read now (%s)", job.key, name, one_line(exc))
            digests.append(None)
    return part_inputs(config.config_hash(), emdb, *digests)


def _entry_volumes(job: EntryJob, emdb: str | None, root: str, ctx: _Entry | None, config: BuildConfig,
                   stage: str) -> dict:
    """The entry's volumes and tiles (:func:`rnamotif_data.pipeline.volumes.stage_volumes`), or,
    when the entry stopped before its map was placed, a record of why it has none."""
    resolution = ctx.resolution if ctx is not None else job.resolution
    who = EntryVolumes(root, job.key, job.pdb_id, emdb, resolution, job.rows)
    if ctx is None:
        return failed_volumes(who, config, f"{job.key}: the entry failed at stage {stage} (failures.parquet)")
    return stage_volumes(who, ctx.model, ctx.dmap, ctx.stats, ctx.partner, config)


def _nan_none(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _segment_rows(ctx: _Entry):
    job, model, config, clock = ctx.job, ctx.model, ctx.config, ctx.clock
    samples, failures, motif_xyz, targets = [], [], [], []
    for i, row in job.rows:
        stage = "manifest"
        try:
            if row.get("needs_residues"):
                raise RNAMotifError(f"row {i} ({row.get('source_id')}) has no residues; resolve it first "
                                    "(rnamotif manifest resolve)")
            sel = row_selection(row)
            if sel is None:
                raise RNAMotifError(f"row {i}: no residues or selection")
            stage = "segment"
            with clock("segment"):
                resolved = model.resolve(sel)
                desc = f"{job.pdb_id} {sel} (row {i})"
                loop_cols = check_strands(model, resolved, row["motif_type"], desc, ctx.partner,
                                          source_flank_pairs(row), source_residues(model, resolved, row, desc))
                mtype, loop_cols = apply_loop_convention(loop_cols, row["motif_type"], config.loop_convention, desc)
                atoms = model.atoms.subset(resolved)
                motif_xyz.append(atoms.xyz)
                seq = atoms.sequence()
                if row.get("sequence") and not sequence_matches(row["sequence"], seq):
                    raise SampleRejected(f"row {i}: sequence {row['sequence']} differs from the model's {seq} "
                                    f"({job.pdb_id} {sel}; modified residues compared as their parents)", "selection")
            with clock("placement"):
                check_placement(ctx.dmap, atoms, ctx.stats, config.placement_rules, f"{desc} {row['motif_type']}")
            with clock("segment"):
                cube = ctx.cut(atoms, desc)
            stage = "quality"
            with clock("quality"):
                qcols = ctx.quality_columns(atoms, model.atoms.residue_rows(resolved))
                check_quality(qcols, config.quality_rules, f"{desc} {row['motif_type']}")
            with clock("segment"):
                residues = format_residues(atoms.residues)
            targets.append((tuple(len(s) for s in model.strands(resolved)), resolved))  # kept motifs
            samples.append(_sample(
                cube, sample_id=_sample_id(ctx.emdb, job.pdb_id, mtype, residues),
                is_background=False, background_kind=None, manifest_row=int(i),
                pdb_id=job.pdb_id, emdb_id=ctx.emdb, motif_id=row.get("motif_id"),
                motif_type=mtype, motif_class=motif_class(mtype),
                class_index=class_index(mtype), residues=residues, sequence=seq,
                **ctx.strand_columns(resolved), model_hash=ctx.model_key, **loop_cols,
                parent_sequence=ctx.parent_sequence(atoms.residues),
                resolution=ctx.resolution, n_residues=len(atoms.residues),
                **qcols, map_warnings=ctx.map_warnings,
                source=row.get("source"), source_id=row.get("source_id"),
                cossmos_number=row.get("cossmos_number"), upstream_fold=row.get("upstream_fold"),
            ))
        except SampleRejected as exc:
            failures.append(failure_row(i, row, ctx.emdb, exc.stage, exc, exc.values))
        except Exception as exc:  # noqa: BLE001 - one motif's failure never loses the others
            failures.append(failure_row(i, row, ctx.emdb, stage, exc))
    xyz = np.concatenate(motif_xyz) if motif_xyz else np.zeros((0, 3))
    return samples, failures, xyz, targets


def _background(ctx: _Entry, motif_xyz, n: int, targets) -> list[dict]:
    job, config = ctx.job, ctx.config
    pool = (ctx.context.background_pool(ctx.model, motif_xyz, config.background)
            if n > 0 and (job.shapes.shapes or targets) else None)
    sites = select_background_sites(ctx.model, ctx.dmap, motif_xyz, n, job.shapes, config.background,
                                    placement=config.placement_rules, segment=config.segment, kept=ctx.memo,
                                    targets=targets, stats=ctx.stats, key=ctx.model_key, pool=pool)
    if len(sites) < n:
        log.info("%s: %d of %d background samples found", job.key, len(sites), n)
    out = []
    for k, site in enumerate(sites):
        desc = f"{job.pdb_id} background {k}"
        try:
            modelled = site.kind != "density"
            cube = site.cube if modelled else None
            if cube is None:
                with ctx.clock("segment"):
                    cube = (ctx.cut(site.atoms, desc) if modelled else
                            cut_motif(ctx.dmap, site.atoms, config.segment, stats=ctx.stats, description=desc))
            with ctx.clock("quality"):
                qcols = (ctx.quality_columns(site.atoms, ctx.model.atoms.residue_rows(site.residue_indices))
                         if modelled else _density_site_quality(ctx, site))
        except Exception as exc:  # noqa: BLE001
            log.warning("%s: background sample %d skipped: %s", job.key, k, exc)
            continue
        res_ids = [ctx.model.atoms.residues[i] for i in site.residue_indices]
        out.append(_sample(
            cube, sample_id=f"{ctx.emdb}_{job.pdb_id}_unknown_bg{k}", is_background=True,
            background_kind=site.kind, manifest_row=None, pdb_id=job.pdb_id, emdb_id=ctx.emdb,
            motif_id=None, motif_type="unknown", motif_class="unknown",
            class_index=class_index("unknown"), residues=format_residues(res_ids) or None,
            sequence=site.atoms.sequence() if modelled else None,
            **ctx.strand_columns(site.residue_indices),
            model_hash=ctx.model_key, loop_lengths=None, flank_pairs=None, loop_note=None,
            source_loop_lengths=None, source_motif_type=None,
            parent_sequence=ctx.parent_sequence(res_ids),
            resolution=ctx.resolution, n_residues=len(res_ids),
            **qcols, map_warnings=ctx.map_warnings, source="background", source_id=None,
            cossmos_number=None, upstream_fold=None,
        ))
    return out


def _density_site_quality(ctx: _Entry, site) -> dict:
    """Unmodelled-density sites have no atoms to score: only fit_z of the pseudo-atoms."""
    cols = dict.fromkeys(("q_score", "q_score_min_residue", "cc_mask", "cc_local", "q_expected",
                          "q_score_minus_expected"))
    return {**cols, "fit_z": fit_z(ctx.dmap, site.atoms.xyz, ctx.stats), "frac_atoms_above_1sd": None}


def _sample(cube, **columns) -> dict:
    """A staged sample: its cube's arrays and its metadata row (``columns`` and the cube's
    position columns; :func:`~rnamotif_data.storage.layout.metadata_row`, so a missing or
    unknown column raises ``TypeError``)."""
    meta = metadata_row(**columns, origin_xyz=[float(v) for v in cube.origin],
                        centroid_xyz=[float(v) for v in cube.centroid], n_atoms=int(cube.n_atoms),
                        fraction_outside=float(cube.fraction_outside))
    return {"meta": meta, "density": cube.density.astype(np.float16), "zone": cube.zone,
            "labels": cube.labels, "nucleotide": cube.nucleotide}
