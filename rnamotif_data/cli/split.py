"""Make a store's (or a manifest's) cross-validation split and report its leakage.

``rnamotif split STORE [--scheme similarity|entry|upstream] [--seed 0]
[--identity 0.8] [--folds DIR] [--report] [--report-out FILE.md]``

``--level entry|identity|family`` (default identity) is the chain homology kept apart:
BGSU equivalence classes (else ≥ 95 % sequence identity) or Rfam families merged by clan
(:mod:`rnamotif_data.split.homology`). The tables come from ``--homology-dir DIR`` (local
copies, offline) or are downloaded once into a cache (``--bgsu-release``,
``--rfam-release`` pick other releases than the pinned ones; ``--offline`` forbids the
download). ``--models DIR`` reads the chain sequences of entries the BGSU table does not
list off ``DIR/<pdb id>.{cif,pdb}[.gz]``.

``rnamotif split --manifest FILE.parquet --out SPLIT.parquet [...]`` splits a
manifest before anything is built (metadata only: the strands stand in for the flanking
contexts, and zones are unknown).

Writes ``STORE/splits/<scheme>.parquet`` (sample_id -> fold, removed, highest identity to
another fold; config and fingerprint in the file; :mod:`rnamotif_data.split.splits`) and prints
the fingerprint and the removed count. ``--report`` makes the leakage report
(:mod:`rnamotif_data.split.leakage`; each fold K as the test fold, as ``rnamotif evaluate``
calls it): per fold and relation, test samples related to training, removed counts, identity
to training, class counts. It prints the headline columns and saves the full table as
``STORE/splits/<scheme>-report.md`` (or ``--report-out FILE``; with ``--manifest`` and no
``--report-out`` the full table is printed). For ``upstream``,
``--folds`` is the folder of the upstream ``fold{k}_{train,val}.csv`` files: motif
samples are matched by EMDB id, PDB id, motif type and CoSSMos number, and background
samples take the fold of their PDB entry's upstream ``cube_*`` rows.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.common.output import REPORT
from rnamotif_data.errors import ConfigError, SourceError, StoreError
from rnamotif_data.inputs.schema import read_manifest
from rnamotif_data.rna.motifs import CLASS_NAMES, class_index
from rnamotif_data.split.homology import LEVELS, HomologySources, HomologyTables, load_tables, model_chain_sequences, sample_chains, sample_homology
from rnamotif_data.split.leakage import compact_report, format_report, leakage_report, write_report
from rnamotif_data.split.similarity import strand_column
from rnamotif_data.split.splits import (
    PRUNE_MODES,
    SplitConfig,
    check_split_target,
    make_split,
    split_metadata,
    split_path,
    split_table,
    store_relations,
    write_split,
)
from rnamotif_data.split.tiles import make_tile_split, tile_split_path, write_tile_split
from rnamotif_data.split.upstream import read_upstream_folds
from rnamotif_data.storage.layout import SPLIT_SCHEMES
from rnamotif_data.storage.store import open_store

log = logging.getLogger("rnamotif_data.cli.split")

__all__ = ["REPORT_MARKER", "level_summary", "main", "parser"]

#: the first line of a report ``--report-out`` writes (an HTML comment: invisible in the
#: rendered Markdown); a file without it is a user's and is never replaced (issue 39)
REPORT_MARKER = "<!-- written by rnamotif split --report-out; a rerun replaces this file -->"


def _check_report_out(path: Path | None) -> None:
    """Refuse, before any work, a ``--report-out`` that exists and is not a report of this
    command (its first line is not :data:`REPORT_MARKER`); nothing is changed.

    Raises
    ------
    StoreError
        Naming the file.
    """
    if path is None or not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"--report-out {path}: is a folder; give a file name (e.g. split-report.md)")
    with open(path, "rb") as f:
        first = f.readline().decode("utf-8", "replace").rstrip("\r\n")
    if first != REPORT_MARKER:
        raise StoreError(f"--report-out {path}: exists and is not a report `rnamotif split` wrote; move it or "
                         "choose another file; nothing was changed")


#: help of SplitConfig fields (their defaults and choices come from the library)
SPLIT_HELPS = {
    "scheme": "similarity: no similarity crosses folds; entry: by PDB entry; upstream: the upstream folds (--folds)",
    "k": "number of folds",
    "seed": "seed of the order of equal-size groups",
    "identity": "context identity of homologs",
    "min_context": "contexts shorter than this (nt) are never homologs",
    "max_group_share": "a component of related samples larger than this x N / k is divided and pruned",
    "prune": "scheme similarity: related samples leave the training data of the folds they are related to "
             "(train: every sample is scored once) or leave validation (val, the earlier rule)",
}
#: the flags of HomologySources fields whose flag is not --field-name
HOMOLOGY_NAMES = {"directory": "--homology-dir", "cache": "--homology-cache"}
HOMOLOGY_HELPS = {
    "bgsu_release": "BGSU representative-set release",
    "bgsu_resolution": "resolution cutoff of the BGSU list (all: every chain)",
    "rfam_release": "Rfam release",
    "directory": "folder of local copies of the homology tables (offline): nrlist_<release>_<resolution>.csv, "
                 "pdb_full_region.txt, Rfam.clanin ($RNAMOTIF_HOMOLOGY_DIR when not given)",
    "cache": "download cache of the homology tables (none: $RNAMOTIF_CACHE/homology)",
    "bgsu_url": "URL template of the BGSU list",
    "rfam_url": "URL template of the Rfam release folder",
    "min_identity": "sequence identity over the shorter chain (0-1) at which two chains the BGSU table does not "
                    "list are one identity class",
}


def _without_sequence(meta) -> int:
    """Motif samples (not background) whose strands cannot be known (no sequence)."""
    strands = strand_column(meta)
    background = meta["is_background"].to_numpy(dtype=bool) if "is_background" in meta else [False] * len(meta)
    return sum(1 for s, b in zip(strands, background) if not b and not s)


def _models_sequences(folder: Path, chains) -> dict[tuple[str, str], str]:
    """Sequences of ``chains`` ((PDB, chain)) read off ``folder/<pdb>.{cif,pdb}[.gz]`` (any case)."""
    files = {p.name.split(".")[0].upper(): p for p in sorted(folder.iterdir()) if p.is_file()}
    out: dict[tuple[str, str], str] = {}
    for pdb in sorted({p for p, _ in chains}):
        if pdb in files:
            out.update({(pdb, c): s for c, s in model_chain_sequences(files[pdb]).items()})
    return out


def level_summary(split) -> str:
    """Per fold: size, training share kept, validation samples by related level (text)."""
    t = split.table
    k = split.config.k
    fold = t["fold"].fillna(0).to_numpy(dtype=int)
    mask = t["train_exclusion"].to_numpy(dtype="int64")
    lines = [f"level {split.config.level}: fold | samples | training (of the other folds) | test fold related to "
             "training by identity / family / none / unknown"]
    for f in range(1, k + 1):
        outside = (fold != f) & (fold > 0)
        kept = int((outside & ((mask >> (f - 1)) & 1 == 0)).sum())
        rel = t.loc[fold == f, "related_level"].value_counts() if "related_level" in t else {}
        lines.append(f"  fold{f} | {int((fold == f).sum())} | {kept} ({100 * kept / max(int(outside.sum()), 1):.0f} %)"
                     f" | " + " / ".join(str(int(rel.get(x, 0))) for x in ("identity", "family", "none", "unknown")))
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnamotif split``: a flag per :class:`SplitConfig` and
    :class:`~rnamotif_data.split.homology.HomologySources` field."""
    p = argparse.ArgumentParser(prog="rnamotif split", description=__doc__.split("\n")[0])
    p.add_argument("store", nargs="?", help="store path or fsspec URL")
    p.add_argument("--manifest", type=Path, help="split a manifest instead of a store (needs --out)")
    p.add_argument("--out", type=Path, help="split file to write for --manifest")
    p.add_argument("--folds", type=Path, help="upstream fold CSV folder (scheme upstream)")
    p.add_argument("--report", action="store_true", help="print the leakage report's headline columns and save the "
                   "full report as STORE/splits/<scheme>-report.md (or --report-out)")
    p.add_argument("--report-out", type=Path, help="also write the report as Markdown here")
    group = add_config_arguments(p, SplitConfig, exclude=("level",), helps=SPLIT_HELPS,
                                 choices={"scheme": SPLIT_SCHEMES, "prune": PRUNE_MODES}, title="the split (SplitConfig)")
    # no default here: a level asked for by name never falls back silently (main)
    group.add_argument("--level", choices=LEVELS, default=None,
                       help=f"chain homology kept apart: BGSU class / sequence identity (identity), Rfam family "
                            f"merged by clan (family), or none beyond the entry (entry); default: {SplitConfig.level}")
    add_config_arguments(p, HomologySources, names=HOMOLOGY_NAMES, helps=HOMOLOGY_HELPS,
                         title="the homology tables (HomologySources)")
    p.add_argument("--offline", action="store_true",
                   default=os.environ.get("RNAMOTIF_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"),
                   help="never download the homology tables (default: $RNAMOTIF_OFFLINE)")
    p.add_argument("--models", type=Path, help="folder of models (<pdb id>.cif/.pdb[.gz]): sequences of the "
                   "chains the BGSU table does not list")
    p.add_argument("--tiles", action="store_true", help="split the store's tiles (built with --tiles) by entry and chain "
                   "homology at --level into STORE/splits/tiles.parquet (rnamotif_data.split.tiles)")
    return p


def _split_tiles(args: argparse.Namespace, config: SplitConfig, tables: HomologyTables | None) -> int:
    """``--tiles``: write the store's tile split and log its folds."""
    if args.manifest is not None or args.folds or args.report or args.report_out:
        raise ConfigError("--tiles splits a STORE's tiles; --manifest, --folds and --report do not apply")
    store = open_store(args.store)
    check_split_target(tile_split_path(store.root))
    split = make_tile_split(store, config, tables)
    url = write_tile_split(store, split)
    t = split.table
    for k in range(1, config.k + 1):
        in_k = t["fold"].eq(k).fillna(False).to_numpy(dtype=bool)
        excluded = ((t["train_exclusion"].to_numpy() >> (k - 1)) & 1).astype(bool) & ~in_k
        log.info("fold %d: %d tiles of %d entries; %d tiles of other folds left out of its training (a chain of "
                 "the same %s class)", k, int(in_k.sum()), t.loc[in_k, "entry"].nunique(), int(excluded.sum()),
                 config.level)
    log.info("%s: %d tiles, level %s, fingerprint %s", url, len(t), config.level, split.fingerprint)
    return 0


def _configs(args: argparse.Namespace) -> tuple[SplitConfig, HomologyTables | None]:
    """The :class:`SplitConfig` of the flags, and the homology tables its level needs (None
    for level ``entry``, or when the default level's tables cannot be had: a warning)."""
    level = args.level or SplitConfig.level
    homology_dir = args.homology_dir or os.environ.get("RNAMOTIF_HOMOLOGY_DIR") or None
    sources = config_from_args(args, HomologySources, names=HOMOLOGY_NAMES,
                               directory=str(homology_dir) if homology_dir else None)
    config = config_from_args(args, SplitConfig, exclude=("level",), level=level, homology=sources)
    tables = None
    if level != "entry":
        try:
            tables = load_tables(sources, offline=args.offline)
        except SourceError as exc:
            if args.level is not None:  # asked for by name: no silent fallback
                raise
            how = ("chains are compared by their sequences alone (>= 95 % identity joins them)" if args.tiles else
                   "chains are compared within their entry only")
            log.warning("homology tables unavailable (%s): default level %s without them, so %s; give --homology-dir "
                        "DIR (or $RNAMOTIF_HOMOLOGY_DIR) or allow the download", exc, level, how)
    return config, tables


def _split_manifest(args, config: SplitConfig, upstream: tuple, homology_of):
    """Split the manifest ``--manifest`` into ``--out``; returns (split, relations, file, metadata)."""
    table, _ = read_manifest(args.manifest)
    meta = table.to_pandas()
    meta["sample_id"] = [f"row{i}:{s}" for i, s in enumerate(meta["source_id"].fillna(""))]
    meta["is_background"] = meta["motif_type"] == "unknown"
    split, relations = split_metadata(meta, config, upstream_folds=upstream[0], upstream_background=upstream[1],
                                      name=str(args.manifest), homology=homology_of(meta))
    t = split_table(split)
    t = t.append_column("manifest_row", pa.array(range(len(meta)), pa.int64()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, args.out)
    if "class_index" not in meta:
        meta["class_index"] = [class_index(t) for t in meta["motif_type"]]
    return split, relations, str(args.out), meta


def _log_split(url: str, config: SplitConfig, split, relations, meta, motif_folds) -> int:
    """Log what the split placed, pruned and could not compare; returns the count of motif
    samples without a sequence."""
    placed = int(split.table["fold"].notna().sum())
    pruned = int((split.table["train_exclusion"] != 0).sum())
    log.info("%s: scheme %s, %d of %d samples placed in %d folds, %d scored (%d removed from validation), %d left "
             "out of some fold's training (related to that fold); fingerprint %s", url, config.scheme, placed,
             len(split.table), config.k, split.n_scored, split.n_removed, pruned, split.fingerprint)
    if "related_level" in split.table:
        REPORT.info(level_summary(split))
    if not relations.has_contexts:
        log.info("no flanking contexts (metadata only): homology is judged on the motif strands alone")
    unsequenced = _without_sequence(meta)
    if unsequenced:
        log.warning("%d motif sample(s) have no sequence (no strand_sequences or sequence column value): the "
                    "canonical, near-identical and homolog relations cannot compare them; give the manifest its "
                    "sequences (or build the store: the build reads them off the model)", unsequenced)
    if config.scheme == "upstream":
        bg = meta["motif_type"].astype(str).eq("unknown").to_numpy()
        folds = split.table["fold"].notna().to_numpy()
        log.info("upstream folds: %d of %d motif samples and %d of %d background samples placed%s",
                 int((folds & ~bg).sum()), int((~bg).sum()), int((folds & bg).sum()), int(bg.sum()),
                 f" ({len(motif_folds)} upstream motif samples)" if motif_folds else "")
    return unsequenced


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 (1 with a one-line error for bad input)."""
    args = parser().parse_args(argv)
    if (args.store is None) == (args.manifest is None):
        raise ConfigError("give either a STORE or --manifest FILE (with --out)")
    if args.manifest is not None and args.out is None:
        raise ConfigError(f"--manifest {args.manifest}: give --out FILE.parquet for the split")
    _check_report_out(args.report_out)
    if args.manifest is not None:  # before any work: never over the manifest or a user's file
        check_split_target(args.out, source=args.manifest)
    config, tables = _configs(args)
    if args.tiles:
        return _split_tiles(args, config, tables)
    motif_folds, bg_folds = read_upstream_folds(args.folds) if args.folds else (None, None)

    def homology_of(meta):
        if tables is None:
            return None
        seqs = None
        if args.models is not None:
            chains = {c for cs in sample_chains(meta) for c in cs if c not in tables.identity}
            seqs = _models_sequences(args.models, chains)
        return sample_homology(meta, tables, seqs, config.homology.min_identity)

    if args.manifest is not None:
        split, relations, url, meta = _split_manifest(args, config, (motif_folds, bg_folds), homology_of)
        class_names, source = CLASS_NAMES, args.manifest
    else:
        store = open_store(args.store)
        check_split_target(split_path(store.root, config.scheme))
        relations = store_relations(store, config)
        split = make_split(store, config, upstream_folds=motif_folds, upstream_background=bg_folds,
                           relations=relations, homology=homology_of(store.metadata))
        url, meta, class_names, source = write_split(store, split), store.metadata, store.class_names, args.store
    unsequenced = _log_split(url, config, split, relations, meta, motif_folds)
    if args.report or args.report_out:
        report = leakage_report(meta, split, relations, class_names)
        text = (f"Leakage report: {source}, scheme {config.scheme}, fingerprint {split.fingerprint[:16]}, "
                f"{split.n_removed} removed" + (f", {unsequenced} motif samples without a sequence (compared by "
                                                f"entry and residues only)" if unsequenced else "")
                + "\n\n" + format_report(report, class_names))
        saved = str(args.report_out) if args.report_out else None if args.manifest else write_report(args.store, config.scheme, text)
        REPORT.info(f"{text.split(chr(10))[0]}\n\n{compact_report(report)}\nfull report (every relation and class): {saved}"
                    if saved else text)
        if args.report_out:
            args.report_out.write_text(REPORT_MARKER + "\n" + text + "\n")
    return 0
