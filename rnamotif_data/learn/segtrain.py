"""Train a voxel segmentation network on labelled tiles (issue 37).

:func:`train_segmentation` trains any network mapping a density tile ``(B, 1, T, T, T)``
to class logits ``(B, C, T, T, T)`` (``network_factory``; the 3D U-Net of
:mod:`rnamotif_data.learn.segnet` when it is registered in :data:`SEG_NETWORKS`) on any
torch ``Dataset`` whose items are dicts:

==============  ==========================  =============================================
key             value                       meaning
==============  ==========================  =============================================
``density``     float32 ``(1, T, T, T)``    normalised density, z-y-x
``element``     int64 ``(T, T, T)``         element class, 255 outside the map (ignored)
``tile_index``  int                         the tile's row in its table
``entry``       str, optional               the entry (map): metrics group its tiles
``resolution``  float, optional             Å: the resolution-bin breakdown
``level``       str, optional               similarity to training: that breakdown
``contour``     float, optional             contour level in normalised density
``residue``     int64 ``(T, T, T)``, opt.   residue id per voxel (< 0 none)
``instance``    int64 ``(T, T, T)``, opt.   loop instance id per voxel (0 none)
==============  ==========================  =============================================

Validation tiles without ``entry`` are each their own entry for the metrics (the
bootstrap resamples tiles, and a residue or loop cut by a tile edge counts once per tile).

Training follows the cube network's rules (:mod:`rnamotif_data.learn.train`): the same
seeding (:func:`~rnamotif_data.learn.train.seed_all`; the shuffle of epoch e drawn from
``seed * 100003 + e``, independent of a resume), Adam, cross-entropy -- here with
``ignore_index=255`` and, with ``class_weights``, inverse-frequency class weights from the
training tiles' voxel counts (:func:`class_weights`, capped at ``weight_cap``) for the rare
loop classes -- and bfloat16 autocast with ``amp`` on CUDA only. Each epoch writes
``last.pt`` and, when the validation **macro F1 (exact, per voxel)** improves, ``best.pt``
(the exact figure, not the 3 Å one, because a tolerance rewards scattered guesses near the
truth; both are logged), as data-only checkpoints
(:func:`~rnamotif_data.learn.checkpoints.save_checkpoint`) holding the model and optimizer
state, epoch, config, the training voxel counts and the RNG states, so ``resume``
continues bit-identically on CPU. Per-epoch rows go to ``metrics.csv`` and
``metrics.json`` (:func:`~rnamotif_data.learn.train.write_metrics`), each with the
validation figures beside the reference lines of :mod:`rnamotif_data.learn.segmetrics`
(scored once on the validation tiles: class prior drawn, majority class, density
threshold) and the chance flag; ``references.json`` holds the reference lines,
``val_report.md`` and ``val_result.json`` the best epoch's full report, and
``selection.json`` the chosen epoch and whether it is the last one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rnamotif_data.errors import ConfigError, InputError
from rnamotif_data.learn.backend import nn, torch
from rnamotif_data.learn.checkpoints import choose_device, load_checkpoint, save_checkpoint
from rnamotif_data.learn.segmetrics import (
    IGNORE_INDEX,
    REFERENCES,
    TOLERANCE,
    SegmentationMetrics,
)
from rnamotif_data.learn.segreport import segmentation_markdown
from rnamotif_data.learn.train import optimizer_step, resume_differences, rng_state, seed_all, set_rng_state, write_metrics
from rnamotif_data.rna.elements import ELEMENT_NAMES

log = logging.getLogger(__name__)

__all__ = ["SegTrainConfig", "SEG_NETWORKS", "SEG_TRAIN_FILES", "SELECTION_METRIC", "tile_class_counts",
           "class_weights", "evaluate_segmentation", "reference_metrics", "train_segmentation"]

#: network name -> factory ``(cfg) -> nn.Module`` (``(B, 1, T, T, T)`` -> ``(B, C, T, T, T)``);
#: the segmentation networks register here (``SEG_NETWORKS["unet3d"] = lambda cfg: UNet3D(...)``)
SEG_NETWORKS: dict[str, Callable[[SegTrainConfig], nn.Module]] = {}
#: the files :func:`train_segmentation` writes in its output folder (for ``claim_output``)
SEG_TRAIN_FILES = ("best.pt", "last.pt", "metrics.csv", "metrics.json", "config.json", "references.json",
                   "selection.json", "val_report.md", "val_result.json")
#: the validation figure that chooses ``best.pt``
SELECTION_METRIC = "val_macro_f1"
_META = ("entry", "resolution", "level", "contour")


@dataclass(frozen=True)
class SegTrainConfig:
    """Everything that determines a segmentation training run (recorded in checkpoints).

    Attributes
    ----------
    network:
        Name of the network (``unet3d``), recorded; the module comes from the factory.
    epochs, batch_size, lr, seed:
        As the cube network's (Adam learning rate).
    device:
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (:func:`~rnamotif_data.learn.checkpoints.choose_device`).
    amp:
        bfloat16 autocast on CUDA (ignored on CPU).
    class_weights, weight_cap:
        Inverse-frequency class weights (:func:`class_weights`), capped at ``weight_cap``.
    workers:
        DataLoader worker processes.
    tile:
        Voxels per tile edge; a dataset of other tiles is refused.
    tolerance:
        Å, the metrics' tolerance (Emap2sec+'s 3 Å).
    n_classes:
        Classes of the element volume (9, :data:`~rnamotif_data.rna.elements.ELEMENT_NAMES`).
    """

    network: str = "unet3d"
    epochs: int = 30
    batch_size: int = 4
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    class_weights: bool = True
    weight_cap: float = 10.0
    workers: int = 0
    tile: int = 64
    tolerance: float = TOLERANCE
    n_classes: int = len(ELEMENT_NAMES)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ConfigError(f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1 and lr "
                              f"({self.lr}) > 0")
        if self.tile < 1 or self.workers < 0 or not self.weight_cap >= 1 or not self.tolerance >= 0:
            raise ConfigError(f"tile ({self.tile}) must be >= 1, workers ({self.workers}) >= 0, weight_cap "
                              f"({self.weight_cap}) >= 1 and tolerance ({self.tolerance}) >= 0")
        if not 2 <= self.n_classes < IGNORE_INDEX:
            raise ConfigError(f"n_classes must be 2-{IGNORE_INDEX - 1}, got {self.n_classes}")


def tile_class_counts(dataset, n_classes: int = len(ELEMENT_NAMES)) -> np.ndarray:
    """``(C,)`` int64 voxels per class over a tile dataset's ``element`` volumes (255 left out).

    A dataset with a ``class_counts`` attribute (an array, or a method taking no
    argument, e.g. summed from its tile table) is asked; otherwise every item is read once.

    Raises
    ------
    InputError
        A tile holding a class outside ``[0, C)``, or counts of another length.
    """
    given = getattr(dataset, "class_counts", None)
    if given is not None:
        counts = np.asarray(given() if callable(given) else given, dtype=np.int64)
        if counts.shape != (n_classes,):
            raise InputError(f"the dataset's class_counts has shape {counts.shape}, expected ({n_classes},)")
        return counts
    counts = np.zeros(n_classes, np.int64)
    for i in range(len(dataset)):
        y = np.asarray(dataset[i]["element"]).ravel()
        y = y[y != IGNORE_INDEX]
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise InputError(f"tile {i} holds an element class outside [0, {n_classes})")
        counts += np.bincount(y, minlength=n_classes)
    return counts


def class_weights(counts, cap: float = 10.0) -> np.ndarray:
    """``(C,)`` float32 cross-entropy weights: ``total / (K * count_c)`` for the K classes
    with training voxels (1 for a class at the balanced share 1/K), at most ``cap``; 0 for
    a class without training voxels."""
    n = np.asarray(counts, dtype=np.float64)
    present = n > 0
    if not present.any():
        raise InputError("no labelled training voxels: class weights are undefined")
    w = np.where(present, n.sum() / (present.sum() * np.maximum(n, 1)), 0.0)
    return np.minimum(w, cap).astype(np.float32)


def _meta(batch: dict, i: int) -> dict:
    """The update keywords of item ``i`` of a collated batch (:data:`_META`, ``residue``, ``instance``)."""
    out = {}
    for key in _META:
        if key in batch:
            v = batch[key][i]
            v = v.item() if hasattr(v, "item") else v
            out[key] = None if isinstance(v, float) and v != v else v
    for key in ("residue", "instance"):
        if key in batch:
            out[key] = np.asarray(batch[key][i])
    if "entry" not in out and "tile_index" in batch:
        out["entry"] = f"tile {int(batch['tile_index'][i])}"
    return out


def reference_metrics(dataset, train_counts, cfg: SegTrainConfig, *, batch_size: int | None = None) -> SegmentationMetrics:
    """The reference lines (:data:`~rnamotif_data.learn.segmetrics.REFERENCES`) scored on
    every tile of ``dataset`` (no network), with the training voxel counts ``(C,)``."""
    metrics = SegmentationMetrics(train_counts, n_classes=cfg.n_classes, tolerance=cfg.tolerance, seed=cfg.seed,
                                  spacing=getattr(dataset, "voxel_size", 1.0))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size or cfg.batch_size, shuffle=False,
                                         num_workers=cfg.workers)
    for batch in loader:
        for i in range(len(batch["element"])):
            metrics.update(batch["element"][i].numpy(), density=batch["density"][i, 0].numpy(), **_meta(batch, i))
    return metrics


def evaluate_segmentation(model: nn.Module, dataset, cfg: SegTrainConfig, device, *,
                          references: SegmentationMetrics | None = None) -> tuple[SegmentationMetrics, float]:
    """Score ``model`` on every tile of ``dataset``: ``(metrics, mean cross-entropy per
    labelled voxel)``; the metrics hold the network (argmax of its logits) and, when
    given, ``references``' reference lines (:meth:`SegmentationMetrics.include`).

    Raises ConfigError when the network's output is not ``(B, C, T, T, T)``.
    """
    metrics = SegmentationMetrics(n_classes=cfg.n_classes, tolerance=cfg.tolerance, references=False, seed=cfg.seed,
                                  spacing=getattr(dataset, "voxel_size", 1.0))
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers,
                                         pin_memory=device.type == "cuda")
    amp = cfg.amp and device.type == "cuda"
    model.eval()
    loss_sum, n = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            x = batch["density"].to(device, non_blocking=True)
            y = batch["element"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
            _check_logits(logits, y, cfg)
            loss_sum += float(nn.functional.cross_entropy(logits.float(), y, ignore_index=IGNORE_INDEX,
                                                          reduction="sum"))
            n += int((y != IGNORE_INDEX).sum())
            pred = logits.argmax(1).cpu().numpy()
            for i in range(len(pred)):
                metrics.update(batch["element"][i].numpy(), pred=pred[i], **_meta(batch, i))
    if references is not None:
        metrics.include(references)
    return metrics, (loss_sum / n if n else float("nan"))


def _check_logits(logits, y, cfg: SegTrainConfig) -> None:
    want = (y.shape[0], cfg.n_classes, *y.shape[1:])
    if tuple(logits.shape) != want:
        raise ConfigError(f"network {cfg.network}: output {tuple(logits.shape)}, expected (B, C, T, T, T) = {want}")


def _check_tiles(dataset, cfg: SegTrainConfig, what: str) -> None:
    """One-line ConfigError when ``dataset``'s first tile is not ``(1, T, T, T)`` / ``(T, T, T)``."""
    if len(dataset) == 0:
        return
    item = dataset[0]
    t = cfg.tile
    d, e = tuple(item["density"].shape), tuple(item["element"].shape)
    if d != (1, t, t, t) or e != (t, t, t):
        raise ConfigError(f"{what} tiles are density {d} and element {e}; the run expects tile {t}: (1, {t}, {t}, {t}) "
                          f"and ({t}, {t}, {t}) (set tile= to the store's tile size)")


def _build_network(cfg: SegTrainConfig, network_factory: Callable[[], nn.Module] | None) -> nn.Module:
    if network_factory is not None:
        return network_factory()
    if cfg.network not in SEG_NETWORKS:
        raise ConfigError(f"network {cfg.network!r}: no factory given and none registered "
                          f"(registered: {', '.join(SEG_NETWORKS) or 'none'})")
    return SEG_NETWORKS[cfg.network](cfg)


def _fit_tiles(model, opt, bar, device, weight, amp: bool, cfg: SegTrainConfig) -> tuple[float, int, float]:
    """One pass over the training batches of ``bar``: ``(summed loss over tiles, tiles,
    seconds waited for the loader)``; a batch without a labelled voxel is skipped."""
    wait, loss_sum, n = 0.0, 0.0, 0
    t_fetch = time.perf_counter()
    for batch in bar:
        wait += time.perf_counter() - t_fetch
        x = batch["density"].to(device, non_blocking=True)
        y = batch["element"].to(device, non_blocking=True)
        if not bool((y != IGNORE_INDEX).any()):
            t_fetch = time.perf_counter()
            continue
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        _check_logits(logits, y, cfg)
        loss = nn.functional.cross_entropy(logits.float(), y, weight=weight, ignore_index=IGNORE_INDEX)
        loss_sum += optimizer_step(opt, loss) * len(y)
        n += len(y)
        bar.set_postfix(loss=f"{loss_sum / n:.4f}")
        t_fetch = time.perf_counter()
    return loss_sum, n, wait


def _epoch_row(epoch: int, train_loss: float, val: dict | None, val_loss: float) -> dict:
    """One ``metrics.csv`` row: the network's validation figures beside the reference lines'."""
    row: dict = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss}
    preds = val["groups"]["all"]["predictors"] if val else {}
    net = preds.get("network", {})
    for key in ("macro_f1", "macro_f1_tol", "loop_macro_f1", "loop_macro_f1_tol"):
        row[f"val_{key}"] = net.get(key)
    for name in REFERENCES:
        for key in ("macro_f1", "macro_f1_tol"):
            row[f"{name}_{key}"] = preds.get(name, {}).get(key)
    row["at_chance"] = (val or {}).get("chance", {}).get("at_chance")
    return row


def _resume(out: Path, cfg_dict: dict, fingerprint, model, opt, device) -> tuple[int, float, list, int | None]:
    """Load ``OUT/last.pt`` into ``model`` and ``opt``, restore the RNG states: ``(next
    epoch, best score, history, best epoch)``. ConfigError for another config or split."""
    last = out / "last.pt"
    ck = load_checkpoint(last, device)
    diff = resume_differences(ck["config"], cfg_dict)
    if diff or ck.get("split_fingerprint") != fingerprint:
        what = "; ".join(diff) or "the training data's fingerprint differs"
        raise ConfigError(f"{last}: made with other settings ({what}); use another output folder or drop resume")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    set_rng_state(ck["rng"])
    log.info("resuming %s at epoch %d", out, ck["epoch"] + 2)
    return ck["epoch"] + 1, ck["best_score"], ck["history"], ck["best_epoch"]


def _selection(out: Path, history: list[dict], best_epoch: int | None, has_val: bool) -> dict:
    """Write and return ``selection.json``: the chosen epoch, the last one, whether they are
    the same (then more epochs may help), and the criterion."""
    last = history[-1]["epoch"]
    sel = {"criterion": ("validation macro F1, exact per voxel, over the RNA classes" if has_val else
                         "lowest training loss (no validation tiles)"),
           "best_epoch": best_epoch, "last_epoch": last, "best_is_last": best_epoch == last,
           "best": next((r for r in history if r["epoch"] == best_epoch), None)}
    (out / "selection.json").write_text(json.dumps(sel, indent=2))
    return sel


def _write_references(val_dataset, counts: np.ndarray, cfg: SegTrainConfig, out: Path) -> SegmentationMetrics | None:
    """Score the reference lines once on the validation tiles; write ``references.json``."""
    if len(val_dataset) == 0:
        log.warning("no validation tiles: best.pt is the epoch with the lowest training loss")
        return None
    refs = reference_metrics(val_dataset, counts, cfg)
    res = refs.result()
    (out / "references.json").write_text(json.dumps(res, indent=2))
    p = res["groups"]["all"]["predictors"]
    log.info("reference lines on %d validation tiles (macro F1 exact / 3 Å): %s", len(val_dataset),
             ", ".join(f"{n} {_fmt(p[n]['macro_f1'])} / {_fmt(p[n]['macro_f1_tol'])}" for n in p))
    return refs


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _setup(cfg: SegTrainConfig, train_dataset, val_dataset, network_factory) -> tuple:
    """Checks, then ``(device, amp on, training voxel counts, seeded model on the device,
    Adam, class weights or None)``."""
    device = choose_device(cfg.device)
    if len(train_dataset) == 0:
        raise ConfigError("no training tiles")
    _check_tiles(train_dataset, cfg, "training")
    _check_tiles(val_dataset, cfg, "validation")
    if cfg.amp and device.type != "cuda":
        log.warning("amp: bfloat16 autocast is used on CUDA only; training in float32 on %s", device)
    counts = tile_class_counts(train_dataset, cfg.n_classes)
    seed_all(cfg.seed)
    model = _build_network(cfg, network_factory).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    weight = torch.tensor(class_weights(counts, cfg.weight_cap), device=device) if cfg.class_weights else None
    return device, cfg.amp and device.type == "cuda", counts, model, opt, weight


def _save_epoch(out: Path, ck: dict, res: dict | None, new_best: bool) -> None:
    """Write the epoch's checkpoints (``best.pt`` first, so ``last.pt`` never names a best
    that is not on disk), the best epoch's report and the metrics files."""
    if new_best:
        save_checkpoint(ck, out / "best.pt")
        if res is not None:
            (out / "val_result.json").write_text(json.dumps(res, indent=2))
            (out / "val_report.md").write_text(segmentation_markdown(res, f"Validation, epoch {ck['epoch'] + 1}"))
    save_checkpoint(ck, out / "last.pt")
    write_metrics(out, ck["history"])


def _log_epoch(row: dict) -> None:
    log.info("epoch %d: train loss %.4f, val loss %.4f, val macro F1 exact %s / 3 Å %s (references: %s)%s",
             row["epoch"], row["train_loss"], row["val_loss"], _fmt(row["val_macro_f1"]), _fmt(row["val_macro_f1_tol"]),
             ", ".join(f"{r} {_fmt(row[r + '_macro_f1'])} / {_fmt(row[r + '_macro_f1_tol'])}" for r in REFERENCES),
             "; AT CHANCE" if row["at_chance"] else "")


def train_segmentation(cfg: SegTrainConfig, train_dataset, val_dataset, out, *,
                       network_factory: Callable[[], nn.Module] | None = None, resume: bool = False,
                       progress: bool = True, stop_after: int | None = None, record: dict | None = None) -> dict:
    """Train a segmentation network on tiles (module docstring); returns ``{"history": rows,
    "best_epoch", "last_epoch", "best_is_last", "criterion", "best"}`` (also ``selection.json``).

    Parameters
    ----------
    cfg:
        The run's settings.
    train_dataset, val_dataset:
        torch Datasets of tile dicts (module docstring); the validation tiles choose
        ``best.pt`` and should not overlap (each voxel is counted once per tile).
    out:
        Output folder (created; the files of :data:`SEG_TRAIN_FILES` are replaced).
    network_factory:
        ``() -> nn.Module``; default :data:`SEG_NETWORKS` ``[cfg.network]``.
    resume:
        Continue from ``OUT/last.pt`` when it exists (bit-identical on CPU).
    stop_after:
        End after this many epochs of this call, as an interruption would (tests).
    record:
        Further settings (plain data: e.g. ``root``, ``split``, ``protocol``, the network's
        arguments) recorded beside ``cfg`` in ``config.json`` and the checkpoints, and
        compared on ``resume``.

    Raises
    ------
    ConfigError
        No training tiles, tiles of another size, no network, a network whose output is not
        ``(B, C, T, T, T)``, or ``resume`` with a checkpoint of other settings.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device, amp, counts, model, opt, weight = _setup(cfg, train_dataset, val_dataset, network_factory)
    cfg_dict, fingerprint = {**asdict(cfg), **(record or {})}, getattr(train_dataset, "split_fingerprint", None)
    history: list[dict] = []
    start, best, best_epoch = 0, float("-inf"), None
    if resume and (out / "last.pt").exists():
        start, best, history, best_epoch = _resume(out, cfg_dict, fingerprint, model, opt, device)
    (out / "config.json").write_text(json.dumps(cfg_dict, indent=2))
    refs = _write_references(val_dataset, counts, cfg, out)
    kw = dict(batch_size=cfg.batch_size, num_workers=cfg.workers, pin_memory=device.type == "cuda")
    for done, epoch in enumerate(range(start, cfg.epochs), start=1):
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)  # order independent of resume
        loader = torch.utils.data.DataLoader(train_dataset, shuffle=True, generator=gen, **kw)
        t0 = time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        loss_sum, n, wait = _fit_tiles(model, opt, bar, device, weight, amp, cfg)
        res, val_loss = None, float("nan")
        if refs is not None:
            metrics, val_loss = evaluate_segmentation(model, val_dataset, cfg, device, references=refs)
            res = metrics.result()
        row = _epoch_row(epoch, loss_sum / n if n else float("nan"), res, val_loss)
        row["seconds"] = time.perf_counter() - t0
        row["loader_wait_fraction"] = wait / max(row["seconds"], 1e-9)
        history.append(row)
        score = row["val_macro_f1"] if row["val_macro_f1"] is not None else \
            -(val_loss if np.isfinite(val_loss) else row["train_loss"])
        new_best = bool(score > best)
        if new_best:
            best, best_epoch = score, epoch + 1
        ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch, "config": cfg_dict,
              "network": cfg.network, "class_names": list(ELEMENT_NAMES[:cfg.n_classes]), "tile": cfg.tile,
              "in_channels": 1, "n_classes": cfg.n_classes, "train_counts": [int(c) for c in counts],
              "split_fingerprint": fingerprint, "history": history, "best_score": best, "best_epoch": best_epoch,
              "selection_metric": SELECTION_METRIC, "rng": rng_state()}
        _save_epoch(out, ck, res if new_best else None, new_best)
        _log_epoch(row)
        if stop_after is not None and done >= stop_after:
            break
    sel = _selection(out, history, best_epoch, refs is not None)
    log.info("chosen epoch %s of %s%s", sel["best_epoch"], sel["last_epoch"],
             " -- the last one: more epochs may help" if sel["best_is_last"] else "")
    return {"history": history, **sel}
