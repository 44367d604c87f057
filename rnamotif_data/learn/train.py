"""Train Motif3DCNN on a store: ``rnamotif train``.

``rnamotif train --root STORE --split fold1 --out runs/fold1 [--scheme similarity]
[--network motif3dcnn] [--epochs 30] [--batch-size 32] [--lr 1e-3] [--channels density]
[--masked/--no-masked] [--class-weights] [--seed 0] [--device auto] [--amp] [--workers 2]
[--resume]`` and ``--all-folds`` (fold1-fold5 into ``OUT/foldK``, then the mean ± sd
table of macro sensitivity/specificity in ``OUT/cv_summary.{md,json}``).

Cross-entropy and Adam (the upstream defaults: lr 1e-3, 30 epochs, batch 32); optional
inverse-frequency class weights. CUDA when available (``--device auto``) with pinned
memory, non-blocking copies and, with ``--amp``, bfloat16 autocast. Each epoch writes
``last.pt`` and, when validation macro sensitivity improves, ``best.pt``; both hold the
model and optimizer state, epoch, config, class names, split fingerprint and the RNG
states, so ``--resume`` continues exactly (bit-identical on CPU). Per-epoch metrics go to
``metrics.csv`` and ``metrics.json``; the config to ``config.json``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from tqdm import tqdm

from rnamotif_data.errors import ConfigError
from rnamotif_data.learn.backend import torch
from rnamotif_data.learn.checkpoints import (  # noqa: F401 (load_checkpoint re-exported)
    choose_device,
    load_checkpoint,
    projection_state,
    save_checkpoint,
)
from rnamotif_data.learn.dataset import CHANNELS, RNAMotifDataset
from rnamotif_data.learn.evaluate import Evaluator
from rnamotif_data.learn.metrics import class_metrics, confusion_matrix, format_metric
from rnamotif_data.learn.networks import NETWORKS, SEQUENCE_NETWORKS, build_network
from rnamotif_data.learn.references import references

log = logging.getLogger("rnamotif_data.learn.train")

__all__ = ["TrainConfig", "train", "train_all_folds", "predict", "reference_summary", "cv_markdown", "run_seeds", "seed_all",
           "rng_state", "set_rng_state", "write_metrics", "resume_differences", "TrainFraction", "optimizer_step"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (recorded in checkpoints)."""

    root: str
    out: str
    split: str = "fold1"
    scheme: str = "similarity"
    network: str = "motif3dcnn"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    channels: tuple[str, ...] = ("density",)
    masked: bool = True
    class_weights: bool = False
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    workers: int = 0
    protocol: str = "nested"
    #: stored sequence features (``rnamotif embed``) for ``motif3dcnn_seq`` or the ``seq_proj`` channel
    sequence: str | None = None
    projection_dim: int = 8
    #: :func:`train_all_folds` trains each fold with seeds ``seed, seed + 1, ..., seed + seeds - 1``
    #: (a loop setting: each run's own ``seed`` is what its checkpoint records)
    seeds: int = 1
    #: the share of the training subset trained on, for a learning curve: a class-stratified
    #: draw seeded by ``seed`` (:class:`TrainFraction`); 1.0 trains on all of it
    train_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.network not in NETWORKS:
            raise ConfigError(f"unknown network {self.network!r}; choose one of {', '.join(NETWORKS)}")
        if any(c not in CHANNELS for c in self.channels):
            raise ConfigError(f"unknown channel in {self.channels}; choose from {', '.join(CHANNELS)}")
        if self.network in SEQUENCE_NETWORKS and not self.sequence:
            raise ConfigError(f"network {self.network} needs sequence features: --sequence NAME (made by "
                              "'rnamotif embed STORE --embedder NAME')")
        if self.sequence and self.network not in SEQUENCE_NETWORKS and "seq_proj" not in self.channels:
            raise ConfigError(f"--sequence {self.sequence}: network {self.network} reads cubes only; use --network "
                              f"{SEQUENCE_NETWORKS[0]} or --channels ... seq_proj")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {self.seeds}")
        if not 0 < self.train_fraction <= 1:
            raise ConfigError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("epochs and batch_size must be >= 1 and lr > 0")


#: Evaluation protocols. ``nested``: for split foldK, train on ``inner_train`` (K-2 folds),
#: select the epoch on ``inner_val`` (fold K+1), report on ``test`` (fold K) once, after
#: training. ``upstream``: train on the other four folds, watch and report fold K with the
#: final epoch, as the upstream benchmark did -- its figures are not test results.
PROTOCOLS = ("nested", "upstream")
_SUBSETS = {"nested": ("inner_train", "inner_val"), "upstream": ("train", "val")}


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """RNG states as plain types and tensors (loadable with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"python": [version, list(internal), gauss],
            "numpy": [name, torch.from_numpy(np.asarray(keys).astype(np.int64)), int(pos), int(has_gauss), float(cached)],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(s: dict) -> None:
    """Restore the generators from :func:`rng_state`'s dict (a checkpoint's ``rng``)."""
    version, internal, gauss = s["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = s["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(s["torch"])
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def inputs_to(x, device: torch.device, model: torch.nn.Module) -> tuple:
    """A batch's inputs on ``device``, as the positional arguments of ``model``: ``(x,)``
    for cubes, ``(x, s, m)`` for cubes with sequence features when the network takes them
    (``takes_sequence``; a cube network trained on ``seq_proj`` gets the cubes only)."""
    xs = tuple(x) if isinstance(x, (list, tuple)) else (x,)
    if not getattr(model, "takes_sequence", False):
        xs = xs[:1]
    return tuple(t.to(device, non_blocking=True) for t in xs)


def predict(model: torch.nn.Module, loader, device: torch.device, amp: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Predicted and true classes over a loader, plus the mean cross-entropy."""
    model.eval()
    preds, trues, loss_sum, n = [], [], 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            xs, y = inputs_to(x, device, model), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(*xs)
            loss_sum += float(torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
            n += len(y)
            preds.append(logits.argmax(1).cpu().numpy())
            trues.append(y.cpu().numpy())
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), float("nan")
    return np.concatenate(preds), np.concatenate(trues), loss_sum / n


class TrainFraction(torch.utils.data.Subset):
    """A seeded, class-stratified share of a training dataset (``TrainConfig.train_fraction``).

    Keeps ``ceil(fraction × n_c)`` of the ``n_c`` samples of each class c, drawn without
    replacement by ``numpy.random.default_rng(seed)``, in the dataset's order; the same
    ``(dataset, fraction, seed)`` always gives the same samples. ``targets`` and ``metadata``
    are those of the kept samples; every other attribute (``classes``, ``cube_shape``,
    ``split_fingerprint``, ...) is the dataset's.
    """

    def __init__(self, dataset: RNAMotifDataset, fraction: float, seed: int):
        rng = np.random.default_rng(seed)
        t = dataset.targets
        keep = [rng.choice(np.flatnonzero(t == c), math.ceil(fraction * int((t == c).sum())), replace=False)
                for c in np.unique(t)]
        super().__init__(dataset, np.sort(np.concatenate(keep or [np.zeros(0, np.int64)])).tolist())

    @property
    def targets(self) -> np.ndarray:
        """``(len,)`` class index of every kept item."""
        return cast(RNAMotifDataset, self.dataset).targets[self.indices]

    @property
    def metadata(self):
        """The kept samples' metadata rows (a DataFrame, index 0..len-1)."""
        return cast(RNAMotifDataset, self.dataset).metadata.iloc[list(self.indices)].reset_index(drop=True)

    def __getattr__(self, name: str):
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _loaders(cfg: TrainConfig, device: torch.device):
    common: dict[str, Any] = dict(root=cfg.root, split=cfg.split, scheme=cfg.scheme, channels=cfg.channels, masked=cfg.masked,
                  sequence=cfg.sequence, projection_dim=cfg.projection_dim)
    train_subset, val_subset = _SUBSETS[cfg.protocol]
    full = RNAMotifDataset(subset=train_subset, **common)
    train_ds = TrainFraction(full, cfg.train_fraction, cfg.seed) if cfg.train_fraction < 1 else full
    val_ds = RNAMotifDataset(subset=val_subset, **common)
    kw = dict(batch_size=cfg.batch_size, num_workers=cfg.workers, pin_memory=device.type == "cuda",
              persistent_workers=cfg.workers > 0)
    return train_ds, val_ds, kw


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True, stop_after: int | None = None) -> dict:
    """Train one split; returns the final epoch's metrics dict.

    ``stop_after`` (tests) ends the run after that many epochs of this call, as an
    interruption would.

    Raises
    ------
    ConfigError
        On ``resume`` with a checkpoint made for another config or split.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = choose_device(cfg.device)
    train_ds, val_ds, kw = _loaders(cfg, device)
    if len(train_ds) == 0:
        raise ConfigError(f"{cfg.root}: {cfg.split}/train has no samples")
    seed_all(cfg.seed)
    cube = int(train_ds.cube_shape[0])  # the store's cube size, recorded in the checkpoint
    seq_dim = train_ds.sequence_dim if cfg.network in SEQUENCE_NETWORKS else None
    model = build_network(cfg.network, train_ds.n_channels, len(train_ds.classes), cube=cube, seq_dim=seq_dim).to(device)
    if len(val_ds) == 0:
        log.warning("%s: %s/val has no samples: model selection falls back to the training loss "
                    "(best.pt is the epoch with the lowest training loss)", cfg.root, cfg.split)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    weight = _class_weight(train_ds, device) if cfg.class_weights else None
    start, best, history = 0, float("-inf"), []
    last = out / "last.pt"
    if resume and last.exists():
        ck = load_checkpoint(last, device)
        diff = resume_differences(ck["config"], _ckpt_config(cfg))
        if diff or ck["split_fingerprint"] != train_ds.split_fingerprint:
            what = "; ".join(diff) or "the split's fingerprint differs"
            raise ConfigError(f"{last}: made with other settings ({what}); use another --out or drop --resume")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, best, history = ck["epoch"] + 1, ck["best_macro_sensitivity"], ck["history"]
        set_rng_state(ck["rng"])
        log.info("resuming %s at epoch %d", out, start + 1)
    (out / "config.json").write_text(json.dumps(_ckpt_config(cfg), indent=2))
    ref_text = _val_references(cfg, train_ds, val_ds, out)
    val_loader = torch.utils.data.DataLoader(val_ds, shuffle=False, **kw)
    done = 0
    for epoch in range(start, cfg.epochs):
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)  # order independent of resume
        loader = torch.utils.data.DataLoader(train_ds, shuffle=True, generator=gen, **kw)
        t0 = time.perf_counter()
        bar = tqdm(loader, desc=f"{cfg.split} epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        loss_sum, n, wait = _fit_epoch(model, opt, bar, device, weight, cfg.amp)
        pred, true, val_loss = predict(model, val_loader, device, cfg.amp)
        m = class_metrics(confusion_matrix(true, pred, len(train_ds.classes)), train_ds.classes)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / n, "val_loss": val_loss,
               "val_accuracy": m["accuracy"], "val_macro_sensitivity": m["macro_sensitivity"],
               "val_macro_specificity": m["macro_specificity"], "seconds": time.perf_counter() - t0,
               "loader_wait_fraction": wait / max(time.perf_counter() - t0, 1e-9)}
        history.append(row)
        # best by validation macro sensitivity; without labelled val samples, by the lowest loss
        if m["macro_sensitivity"] is not None:
            score = m["macro_sensitivity"]
        else:
            score = -(row["val_loss"] if np.isfinite(row["val_loss"]) else row["train_loss"])
        new_best = score > best
        ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
              "config": _ckpt_config(cfg), "class_names": list(train_ds.classes),
              "split_fingerprint": train_ds.split_fingerprint, "in_channels": train_ds.n_channels, "seq_dim": seq_dim,
              "cube": cube, "projection": projection_state(train_ds.projection), "history": history, "best_macro_sensitivity": max(best, score), "rng": rng_state()}
        if new_best:  # best.pt first: last.pt never names a best that is not on disk
            best = score
            save_checkpoint(ck, out / "best.pt")
        save_checkpoint(ck, last)
        write_metrics(out, history)
        log.info("%s epoch %d: train loss %.4f, val loss %.4f, val macro sensitivity %s (references: %s)",
                 cfg.split, epoch + 1, row["train_loss"], val_loss, format_metric(m["macro_sensitivity"]), ref_text)
        done += 1
        if stop_after is not None and done >= stop_after:
            break
    return history[-1]


def _val_references(cfg: TrainConfig, train_ds, val_ds, out: Path) -> str:
    """The reference lines on the validation subset (fitted on the training subset), written
    to ``OUT/references.json`` and logged; returns their one-line summary for the epoch log."""
    refs = references(train_ds.metadata, train_ds.targets, val_ds.metadata, val_ds.targets, train_ds.classes)
    (out / "references.json").write_text(json.dumps(refs, indent=2))
    text = reference_summary(refs)
    log.info("%s: references on %s/%s (%d samples): %s", cfg.split, cfg.split, _SUBSETS[cfg.protocol][1],
             len(val_ds), text)
    return text


def _class_weight(train_ds, device) -> torch.Tensor:
    """Cross-entropy class weights ``(C,)``: total / (count × C) per class, 0 for a class
    without training samples."""
    counts = np.bincount(train_ds.targets, minlength=len(train_ds.classes)).astype(np.float64)
    return torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(counts), 0.0),
                        dtype=torch.float32, device=device)


def _fit_epoch(model, opt, bar, device, weight, amp: bool) -> tuple[float, int, float]:
    """One pass over the training batches of ``bar`` (a tqdm over the loader):
    ``(summed loss, samples, seconds waited for the loader)``."""
    wait, loss_sum, n = 0.0, 0.0, 0
    t_fetch = time.perf_counter()
    for x, y in bar:
        wait += time.perf_counter() - t_fetch
        xs, y = inputs_to(x, device, model), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(*xs)
        loss = torch.nn.functional.cross_entropy(logits.float(), y, weight=weight)
        loss_sum += optimizer_step(opt, loss) * len(y)
        n += len(y)
        bar.set_postfix(loss=f"{loss_sum / n:.4f}")
        t_fetch = time.perf_counter()
    return loss_sum, n, wait


def optimizer_step(opt, loss) -> float:
    """One step of ``opt`` on ``loss`` (gradients cleared, back-propagated, applied);
    returns the loss as a float. The cube and the segmentation trainers share it."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


#: settings a resumed run may change: more epochs extend it; workers and device are how, not what
_RESUMABLE = ("epochs", "workers", "device")


def resume_differences(old: dict, new: dict) -> list[str]:
    """``"key: old -> new"`` for each setting of two checkpoint configs that differs, except
    those a resumed run may change (``epochs``, ``workers``, ``device``)."""
    return [f"{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new))
            if k not in _RESUMABLE and old.get(k) != new.get(k)]


def _ckpt_config(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d["channels"] = list(d["channels"])
    d.pop("out")
    d.pop("seeds")  # how many runs train_all_folds makes, not what one run is
    if cfg.train_fraction == 1:  # configs of runs on the whole training subset read as before
        d.pop("train_fraction")
    if not cfg.sequence:  # configs without sequence features read as before 0.9
        d.pop("sequence")
        d.pop("projection_dim")
    return d


def write_metrics(out: Path, history: list[dict]) -> None:
    """Write the per-epoch rows ``history`` to ``OUT/metrics.csv`` and ``OUT/metrics.json``."""
    with open(out / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    (out / "metrics.json").write_text(json.dumps(history, indent=2))


def bootstrap_ci(true: np.ndarray, pred: np.ndarray, n_classes: int, *, n_boot: int = 1000,
                 seed: int = 0) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of macro sensitivity over samples (Efron &
    Tibshirani 1993, ch. 13); None for fewer than 2 samples."""
    if len(true) < 2:
        return None
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        k = rng.integers(0, len(true), len(true))
        m = class_metrics(confusion_matrix(true[k], pred[k], n_classes), [str(c) for c in range(n_classes)])
        if m["macro_sensitivity"] is not None:
            vals.append(m["macro_sensitivity"])
    return (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))) if vals else None


def run_seeds(cfg: TrainConfig) -> tuple[int, ...]:
    """The seeds :func:`train_all_folds` trains each fold with: ``seed .. seed + seeds - 1``."""
    return tuple(range(cfg.seed, cfg.seed + cfg.seeds))


def reference_summary(refs: dict) -> str:
    """One line of the reference macro sensitivities in ``refs``
    (:func:`rnamotif_data.learn.references.references`), for logs."""
    rc = refs["residue_count"]
    return (f"prior drawn {format_metric(refs['prior']['sampling']['macro_sensitivity'])}, majority class "
            f"{format_metric(refs['prior']['majority']['macro_sensitivity'])}, layout rule "
            f"{format_metric(refs['layout_rule']['macro_sensitivity'])}, residue count "
            + ("not computed (scikit-learn missing)" if "note" in rc else format_metric(rc["macro_sensitivity"])))


def _run_dir(cfg: TrainConfig, k: int, seed: int) -> Path:
    """``OUT/foldK`` for one seed (as before 0.9), ``OUT/seedS/foldK`` for several."""
    return Path(cfg.out) / f"fold{k}" if cfg.seeds == 1 else Path(cfg.out) / f"seed{seed}" / f"fold{k}"


def _run_row(cfg: TrainConfig, k: int, seed: int, progress: bool, resume: bool) -> dict:
    """Train fold ``k`` with ``seed`` and score it once (:func:`train_all_folds`)."""
    fold_cfg = replace(cfg, split=f"fold{k}", seed=seed, seeds=1, out=str(_run_dir(cfg, k, seed)))
    train(fold_cfg, resume=resume, progress=progress)
    ckpt = "best.pt" if cfg.protocol == "nested" else "last.pt"
    subset = "test" if cfg.protocol == "nested" else "val"
    ev = Evaluator.from_checkpoint(Path(fold_cfg.out) / ckpt)
    res = ev.evaluate_store(cfg.root, f"fold{k}", subset)
    true = np.asarray([r["true"] for r in res["predictions"]], dtype=np.int64)
    pred = np.asarray([r["pred"] for r in res["predictions"]], dtype=np.int64)
    ci = bootstrap_ci(true, pred, len(ev.checkpoint["class_names"]), seed=seed)
    mvu = res.get("motif_vs_unknown", {}).get("all", {})
    return {"fold": f"fold{k}", "seed": seed, "subset": subset, "checkpoint": ckpt, "out": fold_cfg.out,
            "macro_sensitivity": res["macro_sensitivity"], "macro_sensitivity_ci95": ci,
            "macro_specificity": res["macro_specificity"], "accuracy": res["accuracy"], "n": res["n"],
            "constant_predictor": res["constant_predictor"], "at_chance": res["chance"]["at_chance"],
            "chance": res["chance"]["text"], "references": res.get("references"),
            "motif_vs_unknown_auc": mvu.get("roc_auc"), "motif_vs_unknown_auc_ci95": mvu.get("roc_auc_ci95"),
            "motif_vs_unknown_balanced_accuracy": mvu.get("balanced_accuracy")}


def train_all_folds(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Train fold1-fold5 with each seed of :func:`run_seeds` (``OUT/foldK``, or
    ``OUT/seedS/foldK`` for several seeds) and report each run once; writes
    ``cv_summary.{md,json}`` (:func:`cv_markdown`).

    ``nested`` (default): fold K's figures are test results -- ``best.pt`` (selected on
    fold K+1) scored on fold K, never seen during training or selection -- with a 95 %
    bootstrap interval per run and mean ± sd over folds × seeds. ``upstream``: ``last.pt``
    scored on fold K, the fold the run watched; labelled as such everywhere.

    Each run's record (``runs``; also ``folds``, its 0.8 name) holds ``fold``, ``seed``,
    the scores, ``constant_predictor`` (one class for the whole fold), ``at_chance`` and
    its words, the reference lines on the same samples and the motif-versus-unknown AUC
    and balanced accuracy: what :func:`rnamotif_data.learn.references.compare_runs` pairs.
    """
    rows = [_run_row(cfg, k, seed, progress, resume) for seed in run_seeds(cfg) for k in range(1, 6)]
    label = ("nested: test fold K, model selected on fold K+1" if cfg.protocol == "nested" else
             "UPSTREAM PROTOCOL: final epoch scored on the fold the run watched -- not a test result")
    summary: dict = {"protocol": cfg.protocol, "label": label, "seeds": list(run_seeds(cfg)), "runs": rows,
                     "folds": rows, "train_fraction": cfg.train_fraction}

    def stat(values) -> dict:
        v = [x for x in values if x is not None]
        return {"mean": float(np.mean(v)) if v else None, "sd": float(np.std(v, ddof=1)) if len(v) > 1 else None}

    for key in ("macro_sensitivity", "macro_specificity", "accuracy", "motif_vs_unknown_auc",
                "motif_vs_unknown_balanced_accuracy"):
        summary[key] = stat(r[key] for r in rows)
    refs = [r["references"] for r in rows if r["references"]]
    summary["references"] = {
        "prior_drawn": stat(x["prior"]["sampling"]["macro_sensitivity"] for x in refs),
        "prior_majority": stat(x["prior"]["majority"]["macro_sensitivity"] for x in refs),
        "layout_rule": stat(x["layout_rule"]["macro_sensitivity"] for x in refs),
        "residue_count": stat(x["residue_count"].get("macro_sensitivity") for x in refs)}
    summary["n_at_chance"] = sum(bool(r["at_chance"]) for r in rows)
    summary["n_constant_predictors"] = sum(bool(r["constant_predictor"]) for r in rows)
    md = cv_markdown(summary)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    Path(cfg.out, "cv_summary.md").write_text(md)
    Path(cfg.out, "cv_summary.json").write_text(json.dumps(summary, indent=2))
    log.info("cross-validation summary (%s):\n%s", Path(cfg.out, "cv_summary.md"), md)
    return summary


def cv_markdown(summary: dict) -> str:
    """:func:`train_all_folds`'s summary as Markdown: one row per (fold, seed) with its
    interval, chance flag and reference lines; mean ± sd over runs; the references' means
    beside the model's; constant predictors and runs at chance counted in words."""
    rows = summary["runs"]
    lines = [f"Protocol: {summary['label']}.", "",
             "| fold | seed | n | macro sensitivity | 95 % CI | macro specificity | accuracy | motif vs unknown AUC | "
             "prior (majority) | layout rule | residue count | note |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ci = r["macro_sensitivity_ci95"]
        ref = r.get("references") or {}
        rc = ref.get("residue_count", {})
        note = "constant predictor" if r["constant_predictor"] else "at chance" if r["at_chance"] else ""
        lines.append(
            f"| {r['fold']} ({r['subset']}) | {r['seed']} | {r['n']} | {format_metric(r['macro_sensitivity'])} | "
            f"{'–' if ci is None else f'{ci[0]:.3f}–{ci[1]:.3f}'} | {format_metric(r['macro_specificity'])} | "
            f"{format_metric(r['accuracy'])} | {format_metric(r['motif_vs_unknown_auc'])} | "
            f"{format_metric(ref.get('prior', {}).get('majority', {}).get('macro_sensitivity'))} | "
            f"{format_metric(ref.get('layout_rule', {}).get('macro_sensitivity'))} | "
            f"{format_metric(rc.get('macro_sensitivity'))} | {note} |")
    refs = summary["references"]
    lines.append(f"| mean ± sd | | | {_pm(summary['macro_sensitivity'])} | | {_pm(summary['macro_specificity'])} | "
                 f"{_pm(summary['accuracy'])} | {_pm(summary['motif_vs_unknown_auc'])} | "
                 f"{_pm(refs['prior_majority'])} | {_pm(refs['layout_rule'])} | {_pm(refs['residue_count'])} | |")
    n = len(rows)
    lines += ["", f"{n} runs ({len(summary['seeds'])} seed(s) × 5 folds). Reference lines on each run's test "
              f"samples: drawing from the training prior expects macro sensitivity {_pm(refs['prior_drawn'])}; the "
              f"layout rule (strands only, no density) {_pm(refs['layout_rule'])}; a residue-count-only model "
              f"{_pm(refs['residue_count'])}."]
    if summary["n_at_chance"]:
        lines.append(f"At chance: {summary['n_at_chance']} of {n} runs score inside their permutation band "
                     "(permutation p >= 0.05).")
    if summary["n_constant_predictors"]:
        lines.append(f"Constant predictors: {summary['n_constant_predictors']} of {n} runs predict one class for "
                     "their whole fold.")
    return "\n".join(lines) + "\n"


def _pm(d: dict) -> str:
    return "–" if d["mean"] is None else f"{d['mean']:.3f} ± {d['sd']:.3f}" if d["sd"] is not None else f"{d['mean']:.3f}"
