"""A store of many samples made from a few real cubes, for loader tests and benchmarks.

``rnamotif synthetic-store --source demo-out/rnamotif-demo.zarr --n 2000 --out DIR``

Each sample is one of the source store's cubes (density, zone, labels, nucleotide) under
one of the 24 proper rotations, so the arrays compress like real ones; the metadata is
made up but shaped like a real dataset: ``n / 25`` EMDB entries, motif types drawn from
the 25 fine types, motif sequences drawn from a small pool per type (so the same
(type, sequence) recurs across entries, as rRNA motifs do), parent chain sequences
shared by groups of entries, and one background sample in five. Not a dataset: a
fixture with the real store layout.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np

from rnamotif_data.common.names import LABEL_NAMES, NUCLEOTIDE_NAMES
from rnamotif_data.errors import ConfigError, StoreError
from rnamotif_data.inputs.demo import SMALL_MANIFEST, SMALL_MIRROR
from rnamotif_data.inputs.sources import SourceConfig
from rnamotif_data.learn.backend import torch
from rnamotif_data.learn.transforms import rotate
from rnamotif_data.pipeline.builder import build
from rnamotif_data.rna.motifs import CLASS_NAMES, FINE_TYPES, class_index, motif_class
from rnamotif_data.split.splits import SplitConfig, make_split, write_split
from rnamotif_data.storage.layout import ARRAYS, FORMAT_VERSION
from rnamotif_data.storage.outdir import check_out, clear_store
from rnamotif_data.storage.shards import DEFAULT_CODEC
from rnamotif_data.storage.store import open_store
from rnamotif_data.storage.writer import ArraySpec, StoreTables, StoreWriter

log = logging.getLogger("rnamotif_data.testing.synthetic_store")

_NT = "ACGU"
#: the columns a synthetic sample has no value for (no model, no map): stated as nulls
_UNMEASURED = dict.fromkeys((
    "strand_sequences", "context_sequence", "model_hash", "loop_lengths", "flank_pairs", "loop_note",
    "source_loop_lengths", "source_motif_type", "q_score",
    "q_score_min_residue", "cc_mask", "cc_local", "frac_atoms_above_1sd", "q_expected", "q_score_minus_expected",
    "map_warnings", "cossmos_number", "upstream_fold"))


def _claim_root(root: str, n: int, overwrite: bool) -> None:
    """Check ``n`` and ``root`` before anything is written: a built store there is cleared only
    with ``overwrite`` (raises ConfigError / StoreError as :func:`make_synthetic_store` says)."""
    if n < 1:
        raise ConfigError(f"--n {n}: the number of samples must be at least 1")
    if check_out(str(root), overwrite=overwrite) is not None:
        if not overwrite:
            raise StoreError(f"{root}: holds a store already; pass --overwrite to replace it, or choose another "
                             "--out; nothing was changed")
        clear_store(str(root))


def make_synthetic_store(source: str, root: str, n: int, *, seed: int = 0, shard_size: int = 64,
                         identities: list[dict] | None = None, n_entries: int | None = None,
                         codec: str = DEFAULT_CODEC, splits: tuple[str, ...] = ("similarity",),
                         overwrite: bool = False) -> str:
    """Write a complete store of ``n`` samples at ``root`` from the cubes of ``source``.

    ``identities`` (optional) give the first samples real ``emdb_id``, ``pdb_id``,
    ``motif_type`` and ``cossmos_number`` values (e.g. upstream fold rows, to test
    matching). ``n_entries``: how many made-up entries the samples spread over (default
    ``n // 25``, at least 1). ``codec``: the arrays' chunk codec
    (:data:`rnamotif_data.storage.shards.CODECS`). ``splits``: the split schemes written
    into ``root/splits/`` (seed 0), as ``rnamotif split`` would, so the store trains at once;
    a scheme the store is too small for (fewer independent groups than folds) is skipped
    with a log line. Returns ``root``. Deterministic in ``seed``.

    Raises
    ------
    ConfigError
        If ``n`` is below 1.
    StoreError
        If ``root`` is a file or a folder with other content, or holds a store and
        ``overwrite`` is False (a built store is replaced only with ``overwrite``); nothing
        is changed then.
    """
    _claim_root(root, n, overwrite)
    src = open_store(source)
    cubes = src.read_batch(slice(0, len(src)))
    rng = np.random.default_rng(seed)
    n_entries = min(999, max(1, n // 25)) if n_entries is None else int(n_entries)
    pool = {t: ["".join(rng.choice(list(_NT), size=6 + len(t) % 5)) for _ in range(4)] for t in FINE_TYPES}
    parents = [hashlib.sha256(f"chain{i}".encode()).hexdigest()[:16] for i in range(max(1, n_entries // 3))]
    rows = []
    for i in range(n):
        entry = int(rng.integers(n_entries))
        bg = rng.random() < 0.2
        mtype = "unknown" if bg else str(rng.choice(FINE_TYPES))
        rows.append({
            **_UNMEASURED, "sample_index": i, "is_background": bool(bg), "background_kind": "atoms" if bg else None,
            "manifest_row": None if bg else i, "pdb_id": f"9{entry:03d}",
            "emdb_id": f"EMD-{90000 + entry}", "motif_id": None, "motif_type": mtype,
            "motif_class": "unknown" if bg else motif_class(mtype), "class_index": class_index(mtype),
            "residues": None, "sequence": None if bg else str(rng.choice(pool[mtype])),
            "parent_sequence": parents[entry % len(parents)], "resolution": float(rng.uniform(2.2, 4.5)),
            "origin_xyz": [0.0, 0.0, 0.0], "centroid_xyz": [0.0, 0.0, 0.0], "n_atoms": 200, "n_residues": 10,
            "fraction_outside": 0.0, "fit_z": 5.0, "source": "synthetic", "source_id": str(i),
        })
    for r, ident in zip(rows, identities or []):
        mtype = ident["motif_type"]
        r.update(emdb_id=ident["emdb_id"], pdb_id=ident["pdb_id"], motif_type=mtype,
                 cossmos_number=ident.get("cossmos_number"), is_background=mtype == "unknown",
                 motif_class=motif_class(mtype), class_index=class_index(mtype))
    for r in rows:
        r["sample_id"] = f"{r['emdb_id']}_{r['pdb_id']}_{r['motif_type']}_s{r['sample_index']}"
    pick = rng.integers(len(src), size=n)
    rot = rng.integers(24, size=n)
    with StoreWriter(root, ArraySpec(src.cube_shape, shard_size, codec)) as writer:
        writer.begin({"format_version": FORMAT_VERSION, "dataset_version": "synthetic",
                      "build_config": {"synthetic": True, "seed": seed, "source": str(source)},
                      "config_hash": hashlib.sha256(f"synthetic{seed}{n}".encode()).hexdigest()[:16],
                      "manifest": None, "manifest_sha256": None, "manifest_rows": 0,
                      "class_names": list(CLASS_NAMES), "label_names": list(LABEL_NAMES),
                      "nucleotide_names": list(NUCLEOTIDE_NAMES), "voxel_size": src.voxel_size,
                      "cube_shape": list(src.cube_shape), "shard_size": shard_size, "package_version": "synthetic"})
        writer.create_arrays(n)
        for start in range(0, n, shard_size):
            stop = min(start + shard_size, n)
            block = {name: np.stack([rotate(torch.from_numpy(cubes[name][pick[i]]), int(rot[i])).numpy()
                                     for i in range(start, stop)]) for name in ARRAYS}
            writer.write_shard(start, block)
        writer.write_tables(StoreTables(metadata=rows))
        writer.complete({"n_samples": n, "n_failed_rows": 0})
    store = open_store(root)
    for scheme in splits:
        try:
            write_split(store, make_split(store, SplitConfig(scheme=scheme, seed=0)))
        except ConfigError as exc:
            log.info("%s: no %s split (%s)", root, scheme, exc)
    return root


def demo_synthetic_store(work: Path, n: int, seed: int = 0, codec: str = DEFAULT_CODEC,
                         source: Path | None = None) -> Path:
    """``work/synthetic-<n>[-<codec>].zarr`` made from the cubes of ``source`` (default: the
    demo store ``work/demo.zarr``, built with the synchronous scheduler if missing), its
    arrays in ``codec`` (the suffix is left out for the default); reused when complete."""

    demo = Path(source) if source is not None else work / "demo.zarr"
    if source is None and not (demo / "metadata.parquet").exists():
        result = build(SMALL_MANIFEST, str(demo.resolve()), source_config=SourceConfig(mirror=SMALL_MIRROR.resolve(), offline=True),
                       scheduler="synchronous", overwrite=True, progress=False)
        if result.exit_status != 0:
            raise RuntimeError(f"building the demo store at {demo} failed")
    root = work / (f"synthetic-{n}.zarr" if codec == DEFAULT_CODEC else f"synthetic-{n}-{codec}.zarr")
    if not (root / "metadata.parquet").exists():
        shutil.rmtree(root, ignore_errors=True)
        make_synthetic_store(str(demo), str(root), n, seed=seed, codec=codec, splits=())  # benchmarks read split='all'
    return root
