"""Build a motif dataset store from a manifest: the main job.

Usage::

    python -m builders.build                                  # the shipped demo
    python -m builders.build --manifest M.parquet --out data/rnamotif.zarr
        [--mirror DIR | --cache DIR] [--offline]
        [--workers N] [--threads-per-worker T] [--memory-limit 4GiB]
        [--scheduler synchronous | tcp://host:8786]
        [--resume] [--overwrite] [--retry-failed]
        [--background-per-entry K] [--min-fit-z Z] [--shard-size S] [--dataset-version V]
        [segmentation flags: --cube-size, --zone-radius, ...]

How it works (DESIGN.md sections 1, 7 and 9):

1. The manifest is validated; invalid rows go straight to ``failures.parquet``.
2. Rows are grouped by entry (PDB ID, EMDB ID); entries are ordered by key.
3. **Stage** -- one Dask task per entry fetches the model and map once (``--mirror``
   means no network), computes the map statistics once, checks the placement (fit_z of
   the model's atoms inside the map), segments every motif of the entry and chooses its
   background sites, and writes everything to one staging file
   ``OUT/_staging/<entry>.npz``, atomically. A failure in one motif is recorded for that
   row only; a failure of the entry (download, parse, placement) is recorded for each of
   its rows. The staging file's existence marks the entry finished, so ``--resume`` skips
   it.
4. **Commit** -- sample indices are assigned in entry order (each entry's motifs in
   manifest order, then its background samples), the arrays are created, and each shard
   is written by exactly one task from the staging files; then ``metadata.parquet``,
   ``failures.parquet``, ``checksums.sha256``, and last the ``build_state: complete``
   attribute. The result is independent of the scheduler and of interruptions:
   multi-worker, synchronous and resumed builds give byte-identical stores.

Exit status: 0 when every manifest row became a sample, 2 when the store is complete but
some rows failed (the summary and ``failures.parquet`` say which and why), 1 on an error
that stops the build (bad manifest, store built with another config, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
import pyarrow as pa
from tqdm import tqdm

import rnamotif_data
from rnamotif_data.background import BackgroundConfig, background_count, select_background_sites
from rnamotif_data.errors import ConfigError, RNAMotifError
from rnamotif_data.labels import one_letter
from rnamotif_data.maps import read_map
from rnamotif_data.motifs import CLASS_NAMES, class_index, motif_class
from rnamotif_data.quality import QualityConfig, expected_q_score, fit_z, motif_quality, q_reference
from rnamotif_data.segment import SegmentConfig, segment_motif
from rnamotif_data.store import (
    ARRAY_DTYPES, ARRAYS, FAILURES_FILE, FAILURES_SCHEMA, FORMAT_VERSION, LABEL_NAMES,
    METADATA_FILE, METADATA_SCHEMA, NUCLEOTIDE_NAMES, StoreError, _join,
    create_arrays, get_attrs, put_bytes, set_attrs, sha256_file, url_to_fs, write_checksums, write_shard,
    write_table,
)
from rnamotif_data.structure import format_residues, read_model

from .cli import add_config_arguments, config_from_args, run
from .manifest import read_manifest, row_selection
from .sources import SourceConfig, Sources, default_cache_dir

log = logging.getLogger("builders.build")

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"
DEMO_MANIFEST = DEMO_DIR / "manifest.parquet"
DEMO_MIRROR = DEMO_DIR / "mirror"
DEMO_OUT = Path("demo-out") / "rnamotif-demo.zarr"
STAGING = "_staging"


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines a store's content (hashed into its attributes).

    Attributes
    ----------
    segment:
        Cube, zone and label choices (:class:`SegmentConfig`).
    background:
        Background site choices (:class:`BackgroundConfig`).
    min_fit_z:
        An entry whose model atoms inside the map have a fit z-score below this fails
        (stage ``placement``): a misplaced map or a wrong model. The real seed-sample
        hairpin gives +3.3; atoms shifted by 8 Å give under +1 (DESIGN.md section 2).
    quality:
        Q-score and CC_mask parameters (:class:`QualityConfig`).
    min_q_score, min_cc_mask:
        Motifs whose Q-score (motif mean) or CC_mask is below these, or undefined, go to
        ``failures.parquet`` (stage ``quality``) with the value in the message; None
        (default) keeps every motif. Background samples are never filtered.
    shard_size:
        Samples per shard (one writer each).
    compression_level:
        zstd level of the arrays.
    """

    segment: SegmentConfig = field(default_factory=SegmentConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    min_fit_z: float = 1.5
    quality: QualityConfig = field(default_factory=QualityConfig)
    min_q_score: float | None = None
    min_cc_mask: float | None = None
    shard_size: int = 64
    compression_level: int = 3

    def __post_init__(self) -> None:
        if int(self.shard_size) != self.shard_size or self.shard_size < 1:
            raise ConfigError(f"shard_size must be an integer >= 1, got {self.shard_size}")

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every field, nested configs included."""
        return asdict(self)

    def config_hash(self) -> str:
        """Stable sha256 (hex, first 16 characters) of the canonical JSON of the fields."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EntryJob:
    """The manifest rows of one entry: ``rows`` are ``(manifest row, row dict)`` pairs."""

    pdb_id: str
    emdb_id: str | None
    rows: tuple

    @property
    def key(self) -> str:
        """File-name-safe entry key, e.g. ``6PJ6_EMD-20353`` (``6PJ6_primary`` when the
        manifest names no map)."""
        return f"{self.pdb_id}_{self.emdb_id or 'primary'}"


# ---------------------------------------------------------------------------- stage
def _failure(i: int, row: dict, emdb: str | None, stage: str, exc: BaseException | str) -> dict:
    sel = row_selection(row) if row.get("residues") is not None or row.get("selection") is not None else None
    return {
        "manifest_row": int(i), "pdb_id": row.get("pdb_id"), "emdb_id": emdb or row.get("emdb_id"),
        "motif_type": row.get("motif_type"), "residues": str(sel) if sel is not None else None,
        "source": row.get("source"), "source_id": row.get("source_id"), "stage": stage,
        "error_type": type(exc).__name__ if isinstance(exc, BaseException) else "Rejected",
        "error": str(exc),
    }


def _sample_id(emdb: str, pdb: str, mtype: str, residues: str) -> str:
    compact = residues.replace(":", "").replace(" ", "_").replace(",", "+")
    return f"{emdb}_{pdb}_{mtype}_{compact}"


def _resolution(sources: Sources, pdb: str, rows) -> float | None:
    for _, row in rows:
        if row.get("resolution") is not None:
            return float(row["resolution"])
    try:
        return sources.entry(pdb).resolution
    except (RNAMotifError, ValueError, OSError) as exc:
        log.debug("%s: no resolution from the RCSB record (%s)", pdb, exc)
        return None


def stage_entry(job: EntryJob, config: BuildConfig, source_config: SourceConfig, root: str) -> dict:
    """Process one entry and write its staging file; the Dask task of the build.

    Returns a small summary dict (``key``, ``n_samples``, ``n_failed``, ``reasons``,
    ``seconds``, ``read_seconds``) -- the cubes stay in the staging file, never in the
    scheduler.
    """
    t0 = time.perf_counter()
    samples, failures, entry_failed, read_s = [], [], False, 0.0
    emdb = job.emdb_id
    stage = "fetch"
    try:
        sources = Sources(source_config)
        if emdb is None:
            emdb, _ = sources.map_id(job.pdb_id)
        model_path = sources.model(job.pdb_id)
        map_path = sources.map(emdb)
        stage = "model"
        model = read_model(model_path, name=job.pdb_id)
        stage = "map"
        t1 = time.perf_counter()
        dmap = read_map(map_path)
        stats = dmap.statistics(config.segment.normalise_percentile)
        read_s = time.perf_counter() - t1
        stage = "placement"
        inside = dmap.contains(model.atoms.xyz)
        if not inside.any():
            raise RNAMotifError(f"{job.pdb_id} / {emdb} ({map_path.name}): no atom of the model lies inside the map box")
        z = fit_z(dmap, model.atoms.xyz[inside], stats)
        if z < config.min_fit_z:
            raise RNAMotifError(f"{job.pdb_id} / {emdb} ({map_path.name}): model atoms inside the map have fit_z "
                                f"{z:.2f} < min_fit_z {config.min_fit_z}; map misplaced or wrong model")
        resolution = _resolution(sources, job.pdb_id, job.rows)
        quality = _Quality(dmap, model, stats, resolution, config.quality)
        quality.chain_sequences = _chain_sequences(model)
        samples, failures, motif_xyz = _segment_rows(job, emdb, model, dmap, stats, config, resolution, quality)
        n_ok = len(samples)
        if n_ok == 0 and job.rows:
            entry_failed = True
        else:
            samples += _background(job, emdb, model, dmap, stats, config, resolution, motif_xyz, n_ok, quality)
    except Exception as exc:  # noqa: BLE001 - an entry failure is recorded, never fatal
        log.debug("%s: %s failed: %s", job.key, stage, exc)
        samples, entry_failed = [], True
        failures = [_failure(i, row, emdb, stage, exc) for i, row in job.rows]
    _write_part(root, job.key, samples, failures, entry_failed)
    return {"key": job.key, "n_samples": len(samples), "n_failed": len(failures),
            "reasons": dict(Counter(f["stage"] for f in failures)),
            "seconds": time.perf_counter() - t0, "read_seconds": read_s}


class _Quality:
    """Per-entry quality context: one KD-tree of every model atom, one Q-score reference."""

    def __init__(self, dmap, model, stats, resolution, config: QualityConfig):
        self.dmap, self.model, self.stats, self.resolution, self.config = dmap, model, stats, resolution, config
        self.tree = cKDTree(model.atoms.xyz)
        self.reference = q_reference(stats)

    def columns(self, atoms, rows=None) -> dict:
        """Quality columns of ``atoms`` (``rows``: their rows in the model, if known)."""
        mq = motif_quality(self.dmap, atoms, self.tree, self.stats, self.resolution, self.config,
                           self.reference, atom_rows=rows)
        q_exp = expected_q_score(self.resolution)
        return {"fit_z": mq.fit_z, "q_score": _nan_none(mq.q_score),
                "q_score_min_residue": _nan_none(mq.q_score_min_residue), "cc_mask": _nan_none(mq.cc_mask),
                "frac_atoms_above_1sd": mq.frac_atoms_above_1sd, "q_expected": _nan_none(q_exp),
                "q_score_minus_expected": _nan_none(mq.q_score - q_exp)}


def _chain_sequences(model) -> dict[str, str]:
    """One-letter sequence of every chain of the model (modified residues as parent)."""
    seqs: dict[str, list[str]] = {}
    for rid, name in zip(model.atoms.residues, model.atoms.residue_names):
        seqs.setdefault(rid.chain, []).append(one_letter(name))
    return {c: "".join(v) for c, v in seqs.items()}


def _parent_sequence(chain_sequences: dict[str, str], residues) -> str | None:
    """Hash of the full sequences of the chains of ``residues`` (splits' leakage key)."""
    chains = sorted({r.chain for r in residues})
    if not chains:
        return None
    blob = "/".join(sorted(chain_sequences[c] for c in chains))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _nan_none(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _check_quality(cols: dict, config: BuildConfig, what: str) -> None:
    """Raise if a motif is below the configured Q-score / CC_mask thresholds."""
    for name, label, limit in (("q_score", "Q-score", config.min_q_score), ("cc_mask", "CC_mask", config.min_cc_mask)):
        if limit is None:
            continue
        v = cols[name]
        if v is None:
            why = " (no resolution known)" if name == "cc_mask" else ""
            raise RNAMotifError(f"{what}: {label} is undefined{why}; --min-{name.replace('_', '-')} {limit} needs it")
        if v < limit:
            raise RNAMotifError(f"{what}: {label} {v:.3f} < --min-{name.replace('_', '-')} {limit}")


def _segment_rows(job, emdb, model, dmap, stats, config, resolution, quality):
    samples, failures, motif_xyz = [], [], []
    for i, row in job.rows:
        stage = "manifest"
        try:
            if row.get("needs_residues"):
                raise RNAMotifError(f"row {i} ({row.get('source_id')}) has no residues; resolve it first "
                                    "(python -m builders.manifest resolve)")
            sel = row_selection(row)
            if sel is None:
                raise RNAMotifError(f"row {i}: no residues or selection")
            stage = "segment"
            rows = model.atoms.residue_rows(model.resolve(sel))
            atoms = model.select(sel)
            motif_xyz.append(atoms.xyz)
            seq = atoms.sequence()
            if row.get("sequence") and row["sequence"].upper() != seq:
                raise RNAMotifError(f"row {i}: sequence {row['sequence']} differs from the model's {seq} "
                                    f"({job.pdb_id} {sel})")
            desc = f"{job.pdb_id} {sel} (row {i})"
            cube = segment_motif(dmap, atoms, config.segment, context=model.atoms, stats=stats, description=desc)
            stage = "quality"
            qcols = quality.columns(atoms, rows)
            _check_quality(qcols, config, f"{desc} {row['motif_type']}")
            residues = format_residues(atoms.residues)
            samples.append(_sample(cube, {
                "sample_id": _sample_id(emdb, job.pdb_id, row["motif_type"], residues),
                "is_background": False, "background_kind": None, "manifest_row": int(i),
                "pdb_id": job.pdb_id, "emdb_id": emdb, "motif_id": row.get("motif_id"),
                "motif_type": row["motif_type"], "motif_class": motif_class(row["motif_type"]),
                "class_index": class_index(row["motif_type"]), "residues": residues, "sequence": seq,
                "parent_sequence": _parent_sequence(quality.chain_sequences, atoms.residues),
                "resolution": resolution, "n_residues": len(atoms.residues),
                **qcols,
                "source": row.get("source"), "source_id": row.get("source_id"),
                "cossmos_number": row.get("cossmos_number"), "upstream_fold": row.get("upstream_fold"),
            }))
        except Exception as exc:  # noqa: BLE001 - one motif's failure never loses the others
            failures.append(_failure(i, row, emdb, stage, exc))
    xyz = np.concatenate(motif_xyz) if motif_xyz else np.zeros((0, 3))
    return samples, failures, xyz


def _background(job, emdb, model, dmap, stats, config, resolution, motif_xyz, n_ok, quality):
    n = background_count(n_ok, config.background)
    sites = select_background_sites(dmap, model.atoms, motif_xyz, n, config.background, stats=stats,
                                    key=f"{job.pdb_id}/{emdb}")
    if len(sites) < n:
        log.info("%s: %d of %d background sites found", job.key, len(sites), n)
    out = []
    for k, site in enumerate(sites):
        try:
            cube = segment_motif(dmap, site.atoms, config.segment, stats=stats,
                                 description=f"{job.pdb_id} background {k}")
        except Exception as exc:  # noqa: BLE001
            log.warning("%s: background site %d skipped: %s", job.key, k, exc)
            continue
        res_ids = sorted({site.atoms.residues[r] for r in np.unique(site.atoms.residue_index)},
                         key=lambda r: (r.chain, r.seq_num, r.icode)) if site.kind == "atoms" else []
        out.append(_sample(cube, {
            "sample_id": f"{emdb}_{job.pdb_id}_unknown_bg{k}", "is_background": True,
            "background_kind": site.kind, "manifest_row": None, "pdb_id": job.pdb_id, "emdb_id": emdb,
            "motif_id": None, "motif_type": "unknown", "motif_class": "unknown",
            "class_index": class_index("unknown"), "residues": format_residues(res_ids) or None,
            "sequence": None, "parent_sequence": _parent_sequence(quality.chain_sequences, res_ids),
            "resolution": resolution, "n_residues": len(res_ids),
            **(quality.columns(site.atoms) if site.kind == "atoms" else _density_site_quality(dmap, site, stats)),
            "source": "background", "source_id": None,
            "cossmos_number": None, "upstream_fold": None,
        }))
    return out


def _density_site_quality(dmap, site, stats) -> dict:
    """Unmodelled-density sites have no atoms to score: only fit_z of the pseudo-atoms."""
    cols = dict.fromkeys(("q_score", "q_score_min_residue", "cc_mask", "q_expected", "q_score_minus_expected"))
    return {**cols, "fit_z": fit_z(dmap, site.atoms.xyz, stats), "frac_atoms_above_1sd": None}


def _sample(cube, meta: dict) -> dict:
    meta = {**meta, "origin_xyz": [float(v) for v in cube.origin],
            "centroid_xyz": [float(v) for v in cube.centroid], "n_atoms": int(cube.n_atoms),
            "fraction_outside": float(cube.fraction_outside)}
    return {"meta": meta, "density": cube.density.astype(np.float16), "zone": cube.zone,
            "labels": cube.labels, "nucleotide": cube.nucleotide}


def _part_url(root: str, key: str) -> str:
    return _join(root, STAGING, f"{key}.npz")


def _write_part(root: str, key: str, samples: list[dict], failures: list[dict], entry_failed: bool) -> None:
    shape = None
    arrays = {}
    for name in ARRAYS:
        if samples:
            arrays[name] = np.stack([s[name] for s in samples]).astype(ARRAY_DTYPES[name])
            shape = arrays[name].shape[1:]
        else:
            arrays[name] = np.zeros((0, 1, 1, 1), dtype=ARRAY_DTYPES[name])
    info = {"meta": [s["meta"] for s in samples], "failures": failures, "entry_failed": entry_failed,
            "shape": list(shape) if shape else None}
    buf = io.BytesIO()
    np.savez(buf, info=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8), **arrays)
    put_bytes(_part_url(root, key), buf.getvalue())


def _read_part(root: str, key: str, arrays: bool = False) -> dict:
    fs, path = url_to_fs(_part_url(root, key))
    with fs.open(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()))
        out = json.loads(bytes(data["info"]).decode())
        if arrays:
            out.update({name: data[name] for name in ARRAYS})
    return out


def _part_exists(root: str, key: str) -> bool:
    fs, path = url_to_fs(_part_url(root, key))
    return fs.exists(path)


# ---------------------------------------------------------------------------- commit
def commit_shard(root: str, start: int, pieces: list[tuple[str, int, int]]) -> int:
    """Write one shard (samples ``start ...``) from staging files; the only writer of it.

    ``pieces`` are ``(entry key, first, stop)`` slices of the entries' staged samples, in
    sample order. Returns the number of samples written.
    """
    chunks = {name: [] for name in ARRAYS}
    for key, a, b in pieces:
        part = _read_part(root, key, arrays=True)
        for name in ARRAYS:
            chunks[name].append(part[name][a:b])
    data = {name: np.concatenate(v) for name, v in chunks.items()}
    write_shard(root, start, data)
    return len(data["density"])


def plan_shards(counts: list[tuple[str, int]], shard_size: int) -> list[tuple[int, list[tuple[str, int, int]]]]:
    """Split entries' sample counts, in order, into shard-sized pieces.

    Returns ``[(shard start, [(entry key, first, stop), ...]), ...]``.
    """
    shards: list[tuple[int, list]] = []
    pos = 0
    for key, n in counts:
        done = 0
        while done < n:
            if pos % shard_size == 0:
                shards.append((pos, []))
            take = min(n - done, shard_size - pos % shard_size)
            shards[-1][1].append((key, done, done + take))
            done += take
            pos += take
    return shards


# ---------------------------------------------------------------------------- driver
def group_entries(table: pa.Table, row_numbers: list[int]) -> list[EntryJob]:
    """Group manifest rows by (PDB ID, EMDB ID), entries sorted by key, rows in manifest order."""
    groups: dict[tuple[str, str | None], list] = {}
    for i, row in zip(row_numbers, table.to_pylist()):
        groups.setdefault((row["pdb_id"].upper(), row.get("emdb_id")), []).append((i, row))
    jobs = [EntryJob(p, e, tuple(rows)) for (p, e), rows in groups.items()]
    return sorted(jobs, key=lambda j: j.key)


class _Runner:
    """Runs tasks synchronously or on a Dask cluster, yielding results as they finish."""

    def __init__(self, scheduler: str | None, workers: int | None, threads: int, memory_limit: str):
        self.client = self.cluster = None
        if scheduler == "synchronous":
            return
        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.WARNING)
        if scheduler:
            self.client = Client(scheduler)
        else:
            n = workers or max(1, os.cpu_count() or 1)
            self.cluster = LocalCluster(n_workers=n, threads_per_worker=threads, memory_limit=memory_limit,
                                        processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
        log.info("Dask: %s", self.client)

    def submit(self, fn, *args):
        """Start ``fn(*args)``; returns a handle for :meth:`as_completed`. Synchronously,
        runs it now."""
        if self.client is None:
            self._n = getattr(self, "_n", 0) + 1
            try:
                self._done = getattr(self, "_done", [])
                self._done.append((self._n, fn(*args)))
            except Exception as exc:  # noqa: BLE001 - reported to the caller as a result
                self._done.append((self._n, exc))
            return self._n
        fut = self.client.submit(fn, *args, pure=False)
        if getattr(self, "_ac", None) is not None:
            self._ac.add(fut)
        return fut

    def as_completed(self, pending: dict):
        """Yield ``(handle, result or exception)`` until ``pending`` (which the caller may
        add to while iterating) is empty."""
        if self.client is None:
            while pending:
                if not self._done:
                    raise RuntimeError("synchronous runner: a pending task has no result")
                yield self._done.pop(0)
            return
        from distributed import as_completed

        self._ac = as_completed(list(pending))
        try:
            for fut in self._ac:
                try:
                    yield fut, fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed for memory
                    yield fut, exc
                fut.release()
                if not pending:
                    break
        finally:
            self._ac = None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


@dataclass
class BuildResult:
    """What a build did: counts for the summary and the exit status."""

    root: str
    n_samples: int = 0
    n_background: int = 0
    n_failed_rows: int = 0
    reasons: Counter = field(default_factory=Counter)
    entries: int = 0
    entries_staged: int = 0
    noop: bool = False
    stage_seconds: float = 0.0
    read_seconds: float = 0.0
    commit_seconds: float = 0.0

    @property
    def exit_status(self) -> int:
        """0 if every row became a sample, else 2."""
        return 0 if self.n_failed_rows == 0 else 2


def build(manifest: str | Path, root: str, config: BuildConfig = BuildConfig(), *,
          source_config: SourceConfig | None = None, scheduler: str | None = "synchronous",
          workers: int | None = None, threads_per_worker: int = 1, memory_limit: str = "auto",
          resume: bool = False, overwrite: bool = False, retry_failed: bool = False,
          dataset_version: str = "0.0.0-dev", progress: bool = True,
          stop_after: int | None = None) -> BuildResult:
    """Build (or resume) a store from a manifest; see the module docstring.

    Parameters
    ----------
    manifest:
        Manifest Parquet file (validated; invalid rows become failures).
    root:
        Store location, a local path or an fsspec URL.
    config:
        Build configuration; hashed into the store, and checked on resume.
    source_config:
        Where models and maps come from.
    scheduler:
        ``"synchronous"`` (in-process), None (a new LocalCluster of ``workers`` processes)
        or a Dask scheduler address.
    resume, overwrite, retry_failed:
        Continue an interrupted build; delete an existing store first; on resume, redo
        entries that failed as a whole (downloads, parsing, placement).
    stop_after:
        Stop (without committing) after staging this many entries: for tests of resume.

    Returns
    -------
    BuildResult

    Raises
    ------
    StoreError
        If ``root`` holds a store of another config or manifest, an interrupted build
        without ``resume``, or anything that is not a store, without ``overwrite``.
    ManifestError, FileNotFoundError
        For an unreadable manifest.
    """
    source_config = dataclasses.replace(source_config or SourceConfig(), verify_found=False)
    manifest = Path(manifest)
    table, rejections = read_manifest(manifest)
    n_rows = table.num_rows + len(rejections)
    rejected_rows = {r.row for r in rejections}
    row_numbers = [i for i in range(n_rows) if i not in rejected_rows]
    jobs = group_entries(table, row_numbers)
    manifest_sha = sha256_file(manifest)
    raw_rows = _raw_rows(manifest, rejected_rows)
    attrs = {
        "format_version": FORMAT_VERSION, "dataset_version": dataset_version,
        "build_config": config.to_dict(), "config_hash": config.config_hash(),
        "manifest": manifest.name, "manifest_sha256": manifest_sha, "manifest_rows": n_rows,
        "class_names": list(CLASS_NAMES), "label_names": list(LABEL_NAMES),
        "nucleotide_names": list(NUCLEOTIDE_NAMES), "voxel_size": config.segment.voxel_size,
        "cube_shape": list(config.segment.shape), "shard_size": int(config.shard_size),
        "package_version": rnamotif_data.__version__,
    }
    result = BuildResult(root=str(root), entries=len(jobs))
    existing = _prepare_root(str(root), attrs, resume=resume, overwrite=overwrite)
    if existing == "complete":
        fails = _read_failures_count(str(root))
        result.noop, result.n_failed_rows = True, fails[0]
        result.reasons = fails[1]
        result.n_samples = int(get_attrs(str(root)).get("n_samples", 0))
        _clean_staging(str(root))
        return result
    set_attrs(str(root), {**attrs, "build_state": "building"})

    todo = []
    for job in jobs:
        if _part_exists(str(root), job.key):
            if retry_failed and _read_part(str(root), job.key)["entry_failed"]:
                todo.append(job)
            continue
        todo.append(job)
    if stop_after is not None:
        todo = todo[:stop_after]
    log.info("%d entries, %d rows (%d rejected by validation); %d entries to stage",
             len(jobs), n_rows, len(rejections), len(todo))

    t0 = time.perf_counter()
    runner = _Runner(scheduler, workers, threads_per_worker, memory_limit)
    try:
        counts: dict[str, int] = {}
        todo_keys = {j.key for j in todo}
        for job in jobs:  # entries staged by an earlier run
            if job.key not in todo_keys and _part_exists(str(root), job.key):
                counts[job.key] = len(_read_part(str(root), job.key)["meta"])
        # shards are written while entries are still being staged, as soon as every entry
        # before them is staged; the arrays start at an upper bound of N and shrink at the end
        n_max = sum(counts.get(j.key, len(j.rows) + background_count(len(j.rows), config.background))
                    for j in jobs)
        if stop_after is None:
            create_arrays(str(root), max(n_max, 1), config.segment.shape, config.shard_size,
                          config.compression_level)
        writer = _ShardWriter(jobs, config.shard_size, counts)
        n_samples = n_failed = 0
        bar = tqdm(total=len(todo), desc="entries", unit="entry", disable=not progress)
        pending = {runner.submit(stage_entry, job, config, source_config, str(root)): ("stage", job)
                   for job in todo}
        if stop_after is None:
            for shard in writer.ready():
                pending[runner.submit(commit_shard, str(root), *shard)] = ("shard", shard)
        for handle, out in runner.as_completed(pending):
            kind, item = pending.pop(handle)
            if kind == "shard":
                if isinstance(out, BaseException):
                    raise StoreError(f"{root}: writing the shard at sample {item[0]} failed: {out}") from out
                continue
            job = item
            if isinstance(out, BaseException):  # the task itself died: record every row
                failures = [_failure(i, row, job.emdb_id, "entry", out) for i, row in job.rows]
                _write_part(str(root), job.key, [], failures, True)
                out = {"n_samples": 0, "n_failed": len(failures), "read_seconds": 0.0}
            n_samples += out["n_samples"]
            n_failed += out["n_failed"]
            result.read_seconds += out["read_seconds"]
            bar.set_postfix(samples=n_samples, failed_rows=n_failed)
            bar.update(1)
            writer.staged(job.key, out["n_samples"])
            if stop_after is None:
                for shard in writer.ready():
                    pending[runner.submit(commit_shard, str(root), *shard)] = ("shard", shard)
        bar.close()
        result.entries_staged = len(todo)
        result.stage_seconds = time.perf_counter() - t0
        if stop_after is not None:
            return result
        t1 = time.perf_counter()
        _commit(str(root), jobs, rejections, raw_rows, config, runner, writer, result)
        result.commit_seconds = time.perf_counter() - t1
    finally:
        runner.close()
    _clean_staging(str(root))
    return result


class _ShardWriter:
    """Which shards can be written: those whose samples all come from staged entries, the
    entries before them included (sample order is entry order)."""

    def __init__(self, jobs: list[EntryJob], shard_size: int, counts: dict[str, int]):
        self.keys = [j.key for j in jobs]
        self.shard_size = shard_size
        self.counts = dict(counts)
        self.prefix = 0  # entries 0 .. prefix-1 are staged
        self.done_samples = 0  # samples of those entries
        self.next_shard = 0  # first shard not yet handed out
        self.pieces: list[tuple[str, int]] = []  # (key, count) of the staged prefix

    def staged(self, key: str, n: int) -> None:
        """Record that an entry is staged with ``n`` samples."""
        self.counts[key] = n

    def ready(self, final: bool = False) -> list[tuple[int, list]]:
        """Shards now complete (all of them, the last partial one included, if ``final``)."""
        while self.prefix < len(self.keys) and self.keys[self.prefix] in self.counts:
            key = self.keys[self.prefix]
            self.pieces.append((key, self.counts[key]))
            self.done_samples += self.counts[key]
            self.prefix += 1
        out = []
        for start, pieces in plan_shards(self.pieces, self.shard_size):
            if start // self.shard_size < self.next_shard:
                continue
            if start + self.shard_size <= self.done_samples or final:
                out.append((start, pieces))
                self.next_shard = start // self.shard_size + 1
        return out


def _prepare_root(root: str, attrs: dict, *, resume: bool, overwrite: bool) -> str:
    fs, path = url_to_fs(root)
    old = get_attrs(root) if fs.exists(path) else None
    if overwrite and fs.exists(path):
        fs.rm(path, recursive=True)
        fs.makedirs(path, exist_ok=True)
        return "new"
    if old is None:
        if fs.exists(path) and fs.ls(path):
            raise StoreError(f"{root}: exists and is not an rnamotif-data store; choose another --out "
                             "or pass --overwrite")
        fs.makedirs(path, exist_ok=True)
        return "new"
    for key in ("config_hash", "manifest_sha256", "format_version"):
        if old.get(key) != attrs[key]:
            raise StoreError(f"{root}: was built with a different {key.replace('_', ' ')} "
                             f"({old.get(key)} vs {attrs[key]}); choose another --out or pass --overwrite")
    if old.get("build_state") == "complete":
        return "complete"
    if not resume:
        raise StoreError(f"{root}: holds an interrupted build; pass --resume to continue it "
                         "or --overwrite to start again")
    return "resume"


def _read_failures_count(root: str) -> tuple[int, Counter]:
    from rnamotif_data.store import read_table

    t = read_table(_join(root, FAILURES_FILE))
    return t.num_rows, Counter(t["stage"].to_pylist())


def _clean_staging(root: str) -> None:
    fs, path = url_to_fs(_join(root, STAGING))
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _raw_rows(manifest: Path, rows: set[int]) -> dict[int, dict]:
    """The rejected rows as read, for naming them in failures.parquet."""
    if not rows:
        return {}
    import pyarrow.parquet as pq

    t = pq.read_table(manifest)
    cols = [c for c in ("pdb_id", "emdb_id", "motif_type") if c in t.column_names]
    t = t.select(cols).take(pa.array(sorted(rows), type=pa.int64()))
    return dict(zip(sorted(rows), t.to_pylist()))


def _commit(root, jobs, rejections, raw_rows, config, runner, writer, result) -> None:
    metas, failures = [], []
    for rej in rejections:
        row = raw_rows.get(rej.row) or {}
        failures.append({"manifest_row": rej.row, "pdb_id": row.get("pdb_id"), "emdb_id": row.get("emdb_id"),
                         "motif_type": row.get("motif_type"), "residues": None, "source": rej.source,
                         "source_id": rej.source_id, "stage": "manifest", "error_type": "Rejected",
                         "error": f"column {rej.column}: {rej.reason}"})
    for job in jobs:
        part = _read_part(root, job.key)
        metas += part["meta"]
        failures += part["failures"]
    n = len(metas)
    for k, m in enumerate(metas):
        m["sample_index"] = k
    import zarr

    from rnamotif_data.store import zarr_location

    group = zarr.open_group(zarr_location(root), mode="r+")
    if n == 0:
        create_arrays(root, 0, config.segment.shape, config.shard_size, config.compression_level)
    else:
        for name in ARRAYS:
            group[name].resize((n, *config.segment.shape))
    last = writer.ready(final=True)
    pending = {runner.submit(commit_shard, root, start, pieces): start for start, pieces in last}
    for handle, out in runner.as_completed(pending):
        start = pending.pop(handle)
        if isinstance(out, BaseException):
            raise StoreError(f"{root}: writing the shard at sample {start} failed: {out}") from out
    meta_table = pa.Table.from_pylist([{c: m.get(c) for c in METADATA_SCHEMA.names} for m in metas],
                                      schema=METADATA_SCHEMA)
    failures.sort(key=lambda f: f["manifest_row"])
    fail_table = pa.Table.from_pylist(failures, schema=FAILURES_SCHEMA)
    write_table(_join(root, METADATA_FILE), meta_table)
    write_table(_join(root, FAILURES_FILE), fail_table)
    set_attrs(root, {"n_samples": n, "n_failed_rows": len(failures)})
    write_checksums(root)
    set_attrs(root, {"build_state": "complete"})
    result.n_samples = n
    result.n_background = sum(1 for m in metas if m["is_background"])
    result.n_failed_rows = len(failures)
    result.reasons = Counter(f["stage"] for f in failures)


# ---------------------------------------------------------------------------- CLI
def _int_or_auto(text: str) -> int | None:
    return None if text == "auto" else int(text)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 all rows built, 2 some rows failed, 1 error)."""
    p = argparse.ArgumentParser(prog="python -m builders.build", description=__doc__.split("\n")[0])
    p.add_argument("--manifest", type=Path, help="manifest Parquet (default: the shipped demo, "
                   "with its mirror)")
    p.add_argument("--out", help=f"store path or fsspec URL (default for the demo: {DEMO_OUT})")
    p.add_argument("--cache", type=Path, help="download cache (default $RNAMOTIF_CACHE or ~/.cache/rnamotif-data)")
    p.add_argument("--mirror", type=Path, help="local mirror with the cache layout; implies --offline "
                   "unless --online")
    p.add_argument("--offline", action="store_true", help="never use the network")
    p.add_argument("--online", action="store_true", help="allow downloads of what the mirror lacks")
    p.add_argument("--scheduler", help="'synchronous', or a Dask scheduler address (tcp://host:8786); "
                   "default: a new LocalCluster")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: CPU count)")
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--memory-limit", default="auto", help="per worker, e.g. 4GiB (default: auto)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted build")
    p.add_argument("--overwrite", action="store_true", help="delete an existing store at --out first")
    p.add_argument("--retry-failed", action="store_true", help="with --resume, redo entries that failed")
    p.add_argument("--dataset-version", default="0.0.0-dev")
    p.add_argument("--min-fit-z", type=float, default=BuildConfig.min_fit_z)
    p.add_argument("--min-q-score", type=float, default=None,
                   help="motifs with a lower (or undefined) Q-score go to failures.parquet (stage quality)")
    p.add_argument("--min-cc-mask", type=float, default=None,
                   help="motifs with a lower (or undefined) CC_mask go to failures.parquet (stage quality)")
    p.add_argument("--shard-size", type=int, default=BuildConfig.shard_size)
    p.add_argument("--compression-level", type=int, default=BuildConfig.compression_level)
    p.add_argument("--no-progress", action="store_true")
    add_config_arguments(p, SegmentConfig)
    add_config_arguments(p, BackgroundConfig, prefix="background_", types={"per_entry": _int_or_auto})
    add_config_arguments(p, QualityConfig, types={"cc_mask_radius": float})
    args = p.parse_args(argv)

    mirror = args.mirror
    if args.manifest is None:
        args.manifest, mirror = DEMO_MANIFEST, mirror or DEMO_MIRROR
        args.out = args.out or str(DEMO_OUT)
        log.info("no --manifest: building the shipped demo (%s) into %s", DEMO_MANIFEST, args.out)
    if not args.out:
        p.error("--out is required with --manifest")
    config = BuildConfig(segment=config_from_args(args, SegmentConfig),
                         background=config_from_args(args, BackgroundConfig, prefix="background_"),
                         min_fit_z=args.min_fit_z, quality=config_from_args(args, QualityConfig),
                         min_q_score=args.min_q_score, min_cc_mask=args.min_cc_mask, shard_size=args.shard_size,
                         compression_level=args.compression_level)
    source_config = SourceConfig(cache_dir=args.cache or default_cache_dir(), mirror=mirror,
                                 offline=args.offline or (mirror is not None and not args.online))
    t0 = time.perf_counter()
    result = build(args.manifest, args.out, config, source_config=source_config,
                   scheduler=args.scheduler, workers=args.workers,
                   threads_per_worker=args.threads_per_worker, memory_limit=args.memory_limit,
                   resume=args.resume, overwrite=args.overwrite, retry_failed=args.retry_failed,
                   dataset_version=args.dataset_version, progress=not args.no_progress)
    _summary(result, time.perf_counter() - t0)
    return result.exit_status


def _summary(result: BuildResult, seconds: float) -> None:
    if result.noop:
        log.info("%s: already complete with the same config and manifest; nothing to do", result.root)
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(result.reasons.items())) or "none"
    log.info("store %s: %d samples (%d background); %d manifest rows failed (%s); %.1f s",
             result.root, result.n_samples, result.n_background, result.n_failed_rows, reasons, seconds)
    if result.n_failed_rows:
        log.warning("%d rows did not become samples; see %s", result.n_failed_rows,
                    _join(result.root, FAILURES_FILE))


if __name__ == "__main__":
    sys.exit(run(main))
