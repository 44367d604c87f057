"""Segmentation runs on a tiled store: ``rnamotif train --network unet3d`` and ``rnamotif
evaluate`` of its checkpoints (issue 37).

Training (:func:`train_tiles`) follows the cube network's nested protocol: for split
``foldK`` the network trains on the tiles of ``inner_train`` (three folds, with
``TileRotation24`` augmentation), ``best.pt`` is chosen on ``inner_val`` (fold K+1) by
validation macro F1, and fold K is touched only by :func:`evaluate_tiles`, once, after
training (``protocol="upstream"``: train on four folds, choose on fold K -- not a test
result). Folds come from the store's tile split (:mod:`rnamotif_data.split.tiles`).
Training and validation tiles overlap inside an entry (64³ every 32), so the validation
figures count a voxel once per tile holding it: they choose the epoch, they are not the
result.

Evaluation (:func:`evaluate_tiles`) is the result: every entry of the test fold is
predicted **whole**, stitched as ``rnamotif detect`` stitches a new map
(:func:`~rnamotif_data.learn.stitch.predict_volume`: each voxel from a tile's centre, the
tile chosen as :func:`~rnamotif_data.learn.detect.inference_tile` chooses it), and
scored voxel by voxel against the entry's stored element volume, each voxel once, with
the reference lines scored on the same voxels (:mod:`rnamotif_data.learn.segmetrics`:
class prior, majority class, density threshold; the training voxel counts come from the
checkpoint) and the loop instances of the stored instance volume. Outputs:
``metrics.json``, ``report.md`` and ``slice.png`` (density, true and predicted labels of
the test entry's plane with the most loop voxels). Each entry is filed under its
similarity level to the checkpoint's training set
(:func:`~rnamotif_data.split.tiles.related_levels`: identity, family or none).

A cross-validation run (:func:`evaluate_tiles_cv`, ``rnamotif evaluate --cv RUN``) scores
each fold's ``best.pt`` on its own held-out fold, with its own training prior, and pools
the five folds: every entry of the store once, intervals by bootstrap over all of them;
seeds give the pooled figures' mean ± sd.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.errors import ConfigError
from rnamotif_data.learn.checkpoints import choose_device
from rnamotif_data.learn.detect import DetectConfig, inference_tile
from rnamotif_data.learn.segmetrics import PREDICTOR_WORDS, PREDICTORS, SegmentationMetrics
from rnamotif_data.learn.segnet import SEGMENTATION_KIND, build_segmentation_network, load_segmentation_checkpoint
from rnamotif_data.learn.segreport import plot_tile_slice, segmentation_markdown
from rnamotif_data.learn.segtrain import SegTrainConfig, train_segmentation
from rnamotif_data.learn.stitch import predict_volume, torch_predict_fn
from rnamotif_data.learn.tiles import RNAMotifTiles
from rnamotif_data.learn.transforms import TileRotation24
from rnamotif_data.rna.elements import ELEMENT_NAMES
from rnamotif_data.samples.volumes import VolumeConfig
from rnamotif_data.split.tiles import related_levels
from rnamotif_data.storage.layout import get_attrs
from rnamotif_data.storage.outputs import claimed_output

log = logging.getLogger(__name__)

__all__ = ["TILE_PROTOCOLS", "EVAL_FILES", "train_tiles", "evaluate_tiles", "train_tiles_all_folds", "cv_runs",
           "evaluate_tiles_cv"]

#: nested: train inner_train, choose on inner_val, test fold K once; upstream: train, choose on val
TILE_PROTOCOLS = {"nested": ("inner_train", "inner_val"), "upstream": ("train", "val")}
#: the files :func:`evaluate_tiles` writes
EVAL_FILES = ("metrics.json", "report.md", "slice.png")
_LOOPS = (2, 3, 4, 5)


def _volume_config(root: str) -> VolumeConfig:
    """The store's volume grid and labels (its build config's ``tile`` and ``segment``)."""
    attrs = get_attrs(root) or {}
    cfg = attrs.get("build_config", {})
    tile, seg = cfg.get("tile") or {}, cfg.get("segment") or {}
    return VolumeConfig(voxel_size=float(tile.get("voxel_size", 1.0)), label_radius=float(tile.get("label_radius", 1.5)),
                        normalise_percentile=float(seg.get("normalise_percentile", 95.0)),
                        slab=int(tile.get("slab", 16)), max_fraction_outside=float(tile.get("max_fraction_outside", 0.5)))


def train_tiles(root: str, out: str | Path, cfg: SegTrainConfig, *, split: str = "fold1", protocol: str = "nested",
                width: int = 8, depth: int = 3, rotate: bool = True, resume: bool = False,
                progress: bool = True) -> dict:
    """Train a segmentation network on the tiles of ``split`` (module docstring); returns
    :func:`~rnamotif_data.learn.segtrain.train_segmentation`'s selection dict. The
    checkpoints are segmentation checkpoints (``rnamotif detect`` and ``rnamotif evaluate``
    read them).

    Raises
    ------
    ConfigError
        An unknown protocol, a store without tiles or a tile split, tiles whose size is not
        the store's, or what :func:`~rnamotif_data.learn.segtrain.train_segmentation` raises.
    """
    if protocol not in TILE_PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(TILE_PROTOCOLS)}")
    sub_train, sub_val = TILE_PROTOCOLS[protocol]
    train_ds = RNAMotifTiles(root, split, sub_train, volumes=("density", "element"),
                             transform=TileRotation24(seed=cfg.seed) if rotate else None)
    val_ds = RNAMotifTiles(root, split, sub_val, volumes=("density", "element"))
    if len(train_ds) == 0:
        raise ConfigError(f"{root}: {split}/{sub_train} has no tiles")
    cfg = replace(cfg, tile=train_ds.tile_size)
    args = {"in_channels": 1, "n_classes": cfg.n_classes, "width": int(width), "depth": int(depth)}
    record = {"kind": SEGMENTATION_KIND, "root": str(root), "split": split, "protocol": protocol, "rotate": rotate,
              "network_args": args, "volume_config": asdict(_volume_config(root))}
    log.info("%s: training %s on %d tiles of %s/%s, choosing on %d tiles of %s", root, cfg.network, len(train_ds),
             split, sub_train, len(val_ds), sub_val)
    return train_segmentation(cfg, train_ds, val_ds, out, resume=resume, progress=progress, record=record,
                              network_factory=lambda: build_segmentation_network(cfg.network, **args))


def _checked(checkpoint, root: str, split: str, subset: str, device):
    """The checkpoint, its dataset on ``split``/``subset`` and its device, refused in one
    line when the store is on another grid or the subset is empty."""
    dev = choose_device(device)
    ck = load_segmentation_checkpoint(checkpoint, dev)
    ds = RNAMotifTiles(root, split, subset)
    if not np.isclose(ds.voxel_size, ck.volume_config.voxel_size):
        raise ConfigError(f"{checkpoint}: trained on a {ck.volume_config.voxel_size:g} Å grid, but the volumes of "
                          f"{root} are on a {ds.voxel_size:g} Å grid; evaluate it on a store built with "
                          f"--tile-voxel-size {ck.volume_config.voxel_size:g}")
    if ds.tiles.empty:
        raise ConfigError(f"{root}: {split}/{subset} has no tiles to evaluate")
    return ck, ds, dev


def _levels(ck, ds: RNAMotifTiles, split: str, subset: str) -> dict[str, str]:
    """Each entry's similarity level to the checkpoint's training set (its protocol's
    training subset of the same split; :func:`~rnamotif_data.split.tiles.related_levels`)."""
    protocol = (ck.extra.get("config") or {}).get("protocol", "nested")
    if ds.tile_split is None or protocol not in TILE_PROTOCOLS:
        return {}
    return related_levels(ds.tile_split, split, subset, TILE_PROTOCOLS[protocol][0])


def _score(checkpoint, root: str, split: str, subset: str, *, device, margin: int, batch_size: int,
           progress: bool) -> tuple[SegmentationMetrics, tuple | None]:
    """Every entry of ``split``/``subset`` predicted whole and scored (module docstring):
    the metrics (with the checkpoint's training prior) and the plane with the most loop
    voxels ``(n, entry, z, density, true, pred)``."""
    ck, ds, dev = _checked(checkpoint, root, split, subset, device)
    counts = ck.extra.get("train_counts")
    metrics = SegmentationMetrics(np.asarray(counts) if counts is not None else None, n_classes=len(ck.class_names),
                                  seed=0, spacing=ds.voxel_size)
    levels = _levels(ck, ds, split, subset)
    predict = torch_predict_fn(ck.model, dev)
    best = None
    for entry in sorted(set(ds.tiles["entry"])):
        vol = ds.read_entry(entry, ("density", "element", "instance"))
        density = vol["density"].astype(np.float32)
        tile, margin_ = inference_tile(ck, density.shape, DetectConfig(margin=margin))  # as rnamotif detect
        probs = predict_volume(density, predict, tile=tile, margin=margin_, batch_size=batch_size,
                               progress=progress)
        pred = probs.argmax(axis=0).astype(np.uint8)
        del probs
        res = ds.entries.loc[entry, "resolution"]
        metrics.update(vol["element"].astype(np.int64), pred=pred, density=density, entry=entry,
                       resolution=None if pd.isna(res) else float(res), level=levels.get(entry),
                       instance=vol["instance"].astype(np.int64))
        loops = np.isin(vol["element"], _LOOPS).sum(axis=(1, 2))
        if best is None or loops.max() > best[0]:
            z = int(loops.argmax())
            best = (int(loops.max()), entry, z, density[z], vol["element"][z], pred[z])
        log.info("%s: %s scored (%d voxels)", checkpoint, entry, vol["element"].size)
    return metrics, best


def _write_eval(out: Path, report: str, best, doc: dict) -> None:
    """:data:`EVAL_FILES`: ``report`` as report.md, ``doc`` as metrics.json, ``best`` as slice.png."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report + "\n")
    (out / "metrics.json").write_text(json.dumps(doc, indent=1, default=_plain))
    if best is not None:
        _, entry, z, d, t, p = best
        plot_tile_slice(d[None], t[None], p[None], out / "slice.png", axis=0, index=0, class_names=ELEMENT_NAMES,
                        title=f"{entry}, plane z = {z}")


def evaluate_tiles(checkpoint: str | Path, root: str, out: str | Path, *, split: str = "fold1", subset: str = "test",
                   device: str = "auto", margin: int = 16, batch_size: int = 2, progress: bool = True) -> dict:
    """Score a segmentation checkpoint on the whole entries of ``split``/``subset``
    (module docstring); writes :data:`EVAL_FILES` into ``out`` and returns the metrics.
    Each entry is filed under its similarity level to the checkpoint's training set
    (:func:`~rnamotif_data.split.tiles.related_levels`).

    Raises
    ------
    CheckpointMismatchError
        A checkpoint that is not a segmentation one (one line, naming it).
    ConfigError
        A store without tiles or a tile split, a store on another grid than the
        checkpoint's, or an empty subset.
    """
    metrics, best = _score(checkpoint, root, split, subset, device=device, margin=margin, batch_size=batch_size,
                           progress=progress)
    result = metrics.result()
    title = f"Segmentation: {Path(str(checkpoint)).name} on {split}/{subset} of {root} ({result['n_entries']} entries, whole maps)"
    _write_eval(Path(out), segmentation_markdown(result, title), best,
                {"checkpoint": str(checkpoint), "root": str(root), "split": split, "subset": subset,
                 "entries": sorted(metrics.entries), "result": result})
    return result


def cv_runs(run: str | Path) -> dict[int | None, dict[int, Path]]:
    """The checkpoints of a cross-validation run folder (``rnamotif train --all-folds``):
    ``{seed: {k: RUN/seedS/foldK/best.pt}}``, or ``{None: {k: RUN/foldK/best.pt}}`` for one
    seed.

    Raises
    ------
    ConfigError
        A folder with neither layout, or a seed without all five folds' ``best.pt``.
    """
    run = Path(run)
    seeds = sorted(int(p.name[4:]) for p in run.glob("seed*") if p.is_dir() and p.name[4:].isdigit())
    layout = {s: run / f"seed{s}" for s in seeds} if seeds else {None: run}
    out: dict[int | None, dict[int, Path]] = {}
    for s, folder in layout.items():
        found = {k: folder / f"fold{k}" / "best.pt" for k in range(1, 6)}
        missing = [str(p) for p in found.values() if not p.is_file()]
        if missing:
            raise ConfigError(f"{run}: not a finished cross-validation run of rnamotif train --all-folds "
                              f"(no {missing[0]})")
        out[s] = found
    return out


def evaluate_tiles_cv(run: str | Path, root: str, out: str | Path, *, device: str = "auto", margin: int = 16,
                      batch_size: int = 2, progress: bool = True) -> dict:
    """Score a cross-validation run: each fold's ``best.pt`` on its own test fold (whole
    maps, its own training prior), pooled over the five held-out folds per seed (every
    test entry once; intervals by bootstrap over all of them;
    :meth:`SegmentationMetrics.merge`). Writes into ``out``: ``report.md`` (per seed and
    fold the headline figures beside the reference lines, their mean ± sd over seeds,
    then the full tables of the first seed pooled), ``metrics.json`` (every result),
    ``slice.png`` (the plane with the most loop voxels of the first seed). Returns the
    ``metrics.json`` dict.

    Raises
    ------
    ConfigError
        As :func:`cv_runs` and :func:`evaluate_tiles`.
    """
    runs = cv_runs(run)
    rows: list[dict] = []
    pooled: dict[int | None, dict] = {}
    first_best = None
    for seed, folds in runs.items():
        merged: SegmentationMetrics | None = None
        for k, ckpt in folds.items():
            m, best = _score(ckpt, root, f"fold{k}", "test", device=device, margin=margin, batch_size=batch_size,
                             progress=progress)
            rows.append({"seed": seed, "fold": k, "entries": len(m.entries), **_headline(m.result())})
            if merged is None:
                merged = m
            else:
                merged.merge(m)
            if seed == next(iter(runs)) and best is not None and (first_best is None or best[0] > first_best[0]):
                first_best = best
        assert merged is not None  # cv_runs gives five folds per seed
        pooled[seed] = merged.result()
        rows.append({"seed": seed, "fold": "pooled", "entries": pooled[seed]["n_entries"],
                     **_headline(pooled[seed])})
    mean = _mean_sd([r for r in rows if r["fold"] == "pooled"])
    summary = {"run": str(run), "root": str(root), "runs": rows, "mean_over_seeds": mean,
               "pooled": {str(s): r for s, r in pooled.items()}}
    first = next(iter(pooled))
    title = (f"Pooled over the five held-out folds{'' if first is None else f' (seed {first})'}: "
             f"{pooled[first]['n_entries']} entries, whole maps")
    _write_eval(Path(out), _cv_markdown(rows, mean, root) + "\n" + segmentation_markdown(pooled[first], title),
                first_best, summary)
    return summary


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def train_tiles_all_folds(root: str, out: str | Path, cfg: SegTrainConfig, *, seeds: int = 1, protocol: str = "nested",
                          width: int = 8, depth: int = 3, rotate: bool = True, resume: bool = False,
                          progress: bool = True) -> dict:
    """Train fold1-fold5 (``seeds`` seeds each: ``OUT/seedS/foldK``, or ``OUT/foldK`` for
    one seed), then score them with :func:`evaluate_tiles_cv` into ``OUT/eval-cv`` (each
    fold on its held-out test fold, pooled, beside the reference lines, mean ± sd over
    seeds); returns its summary.
    """
    out = Path(out)
    for s in range(cfg.seed, cfg.seed + int(seeds)):
        for k in range(1, 6):
            run = out / (f"seed{s}/fold{k}" if seeds > 1 else f"fold{k}")
            train_tiles(root, run, replace(cfg, seed=s), split=f"fold{k}", protocol=protocol, width=width, depth=depth,
                        rotate=rotate, resume=resume, progress=progress)
    with claimed_output(out / "eval-cv", "evaluate", EVAL_FILES):  # as `rnamotif evaluate --cv` writes it
        return evaluate_tiles_cv(out, root, out / "eval-cv", device=cfg.device, progress=progress)


def _headline(result: dict) -> dict:
    """Macro F1 over the RNA classes and over the loop classes (exact, 3 Å) and the loop
    instances found (``found/instances``) of the network and of each reference line, from
    a :meth:`SegmentationMetrics.result`."""
    out = {}
    for name, p in result["groups"]["all"]["predictors"].items():
        for key in ("macro_f1", "macro_f1_tol", "loop_macro_f1", "loop_macro_f1_tol"):
            out[f"{name}_{key}"] = p.get(key)
        loops = (p.get("instances") or {}).get("all loops") or {}
        if loops.get("instances") is not None:
            out[f"{name}_loops_found"] = f"{loops['found']}/{loops['instances']}"
    return out


def _mean_sd(rows: list[dict]) -> dict:
    keys = sorted({k for r in rows for k in r if k not in ("seed", "fold", "entries") and not k.endswith("_found")})
    out = {}
    for k in keys:
        v = np.array([r[k] for r in rows if r.get(k) is not None], dtype=float)
        out[k] = {"mean": float(v.mean()) if len(v) else None, "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
                  "n": int(len(v))}
    return out


_HEAD = (("macro_f1", "macro F1"), ("macro_f1_tol", "macro F1, 3 Å"), ("loop_macro_f1", "loop macro F1"),
         ("loop_macro_f1_tol", "loop macro F1, 3 Å"), ("loops_found", "loops found"))


def _cv_markdown(rows: list[dict], mean: dict, root: str) -> str:
    """Per seed and fold (and pooled), the network's headline figures beside the reference
    lines', then the pooled figures' mean ± sd over seeds."""
    names = [n for n in PREDICTORS if any(f"{n}_macro_f1" in r for r in rows)]
    lines = [f"# Segmentation: cross-validation on {root} (each fold's best.pt on its held-out test fold, whole maps)",
             "", "Each cell: " + " / ".join(label for _, label in _HEAD) + ".", "",
             "| seed | fold | entries | " + " | ".join(PREDICTOR_WORDS.get(n, n) for n in names) + " |",
             "| --- | --- | ---: | " + " | ".join("---" for _ in names) + " |"]
    for r in rows:
        cells = [" / ".join(_fmt(r.get(f"{n}_{key}")) if key != "loops_found" else str(r.get(f"{n}_{key}", "n/a"))
                            for key, _ in _HEAD) for n in names]
        lines.append(f"| {'-' if r['seed'] is None else r['seed']} | {r['fold']} | {r['entries']} | "
                     + " | ".join(cells) + " |")
    n = max((v["n"] for v in mean.values()), default=0)
    lines += ["", f"Pooled over the held-out folds, mean ± sd over {n} seed{'s' if n != 1 else ''} "
              "(sd: n/a with one seed):", "",
              "| predictor | " + " | ".join(label for key, label in _HEAD if key != "loops_found") + " |",
              "| --- | " + " | ".join("---:" for key, _ in _HEAD if key != "loops_found") + " |"]
    for name in names:
        cells = []
        for key, _ in _HEAD:
            v = mean.get(f"{name}_{key}")
            if key != "loops_found":
                cells.append("n/a" if v is None else f"{_fmt(v['mean'])} ± {_fmt(v['sd'])}")
        lines.append(f"| {PREDICTOR_WORDS.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"
