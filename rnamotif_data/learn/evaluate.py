"""Evaluate a trained checkpoint: ``rnamotif evaluate``.

``rnamotif evaluate --checkpoint CKPT --root STORE --split fold1
[--subset val] [--out DIR] [--allow-mismatch]`` evaluates a store split;
``rnamotif evaluate --checkpoint CKPT --mrc-folder DIR`` evaluates a
folder laid out as the upstream ``validate_folder.py`` expects (one subfolder per class:
``symmetricloop``/``symmetric_loop``, ``bulge``, ``hairpin``, ``asymmetricloop``, ``unknown``;
``.mrc`` files named ``<emdb>_<pdb>_<type>_<n>.mrc``). Each MRC is resampled to the
model's cube (40³ at 1 Å, centred on the box, trilinear); ``--mrc-normalisation stored``
(default, for cubes exported by ``rnamotif_data.release.export``) uses the values as stored, so the
predictions equal the store's; ``percentile`` divides raw upstream crops by the 95th
percentile of their own positive voxels (an approximation of the store's per-map
normalisation). Files not named as above (label maps) are skipped and counted.

Outputs in DIR (default: beside the checkpoint, ``eval-<split>-<subset>``):
``metrics.json`` (confusion matrix rows true / columns predicted in the order sym, bul,
hp, asymm, unk; per-class and macro sensitivity/specificity; accuracy; the same by
resolution bin and fine motif type), ``report.md`` (upstream README layout) and
``confusion.png``. The confusion matrix and macro figures are also logged.

A checkpoint whose split fingerprint or class names differ from the store's is refused
(``--allow-mismatch`` overrides, and the outputs say so).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.em.maps import read_map
from rnamotif_data.errors import CheckpointMismatchError, ConfigError, InputError
from rnamotif_data.learn.backend import torch
from rnamotif_data.learn.checkpoints import choose_device, load_checkpoint, projection_from_state
from rnamotif_data.learn.dataset import RNAMotifDataset
from rnamotif_data.learn.metrics import (
    breakdown,
    class_metrics,
    confusion_matrix,
    format_metric,
    markdown_report,
    plot_confusion,
)
from rnamotif_data.learn.networks import build_network
from rnamotif_data.learn.references import chance_verdict, constant_predictor, motif_vs_unknown, references
from rnamotif_data.rna.motifs import CLASS_NAMES, FINE_TYPES, class_index
from rnamotif_data.storage.outputs import MRC_MARKER, read_marker

log = logging.getLogger("rnamotif_data.learn.evaluate")

__all__ = ["Evaluator", "check_export_complete"]

_FOLDER_CLASS = {"symmetricloop": 0, "bulge": 1, "hairpin": 2, "asymmetricloop": 3, "unknown": 4}
_UPSTREAM_NAME = re.compile(r"^(EMD-\d+)_([0-9A-Za-z]{4})_([0-9A-Za-z]+)_(.+)$")



def _mrc_cubes(folder: Path) -> tuple[list[Path], list[int], list[str], int]:
    """The ``.mrc`` cubes of ``folder`` in either layout ``rnamotif export`` writes (class
    subfolders, else one folder per sample): ``(files, class indices, motif types,
    files skipped)``. Raises :class:`RNAMotifError` when neither layout has a cube."""
    files, labels, types, skipped = [], [], [], 0
    for sub in sorted(folder.iterdir()):
        key = sub.name.replace("_", "").lower()
        if not sub.is_dir() or key not in _FOLDER_CLASS:
            continue
        for f in sorted(sub.glob("*.mrc")):
            m = _UPSTREAM_NAME.match(f.stem)
            if not m and not f.stem.startswith("cube_"):
                skipped += 1
                continue
            files.append(f)
            labels.append(_FOLDER_CLASS[key])
            types.append(m.group(3) if m else "unknown")
    if not files:  # the default export: one folder per sample, NAME/NAME.mrc
        for sub in sorted(folder.iterdir()):
            f = sub / f"{sub.name}.mrc"
            if not (sub.is_dir() and f.is_file()):
                continue
            m = _UPSTREAM_NAME.match(sub.name)
            if sub.name.startswith("cube_"):
                mtype = "unknown"
            elif m and m.group(3) in FINE_TYPES:
                mtype = m.group(3)
            else:
                skipped += 1
                continue
            files.append(f)
            labels.append(class_index(mtype))
            types.append(mtype)
    if not files:
        raise InputError(
            f"{folder}: no .mrc cubes in either layout of rnamotif export: class folders "
            f"({', '.join(CLASS_NAMES)}; export --by-class) or sample folders NAME/NAME.mrc (the default export)")
    return files, labels, types, skipped


def _centre_box(path: Path, cube: int, voxel_size: float, normalisation: str) -> np.ndarray:
    """``(cube, cube, cube)`` float32 z-y-x: the map ``path`` sampled around its centre at
    ``voxel_size`` Å; with ``normalisation="percentile"`` divided by the 95th percentile
    of its positive voxels and clipped to [0, 1]."""
    dm = read_map(path)
    centre = dm.index_to_world((np.asarray(dm.shape, dtype=float) - 1) / 2.0)
    origin = centre - (cube - 1) / 2.0 * voxel_size
    box, _ = dm.sample_box(origin, (cube, cube, cube), voxel_size)
    if normalisation == "percentile":
        pos = box[box > 0]
        scale = float(np.percentile(pos, 95)) if pos.size else 1.0
        box = np.clip(box / scale, 0, 1)
    return box.astype(np.float32)


def check_export_complete(folder: str | Path) -> None:
    """Refuse an MRC folder that ``rnamotif export --format mrc`` began and did not finish
    (its marker says ``complete: false``): its counts would be short without a word. A
    folder without the marker (upstream crops) passes; a marker of an export before 0.9,
    which did not record completion, passes with a warning.

    Raises
    ------
    InputError
        Naming the folder, the samples written of how many, and the fix.
    """
    record = read_marker(folder, MRC_MARKER)
    if record is None:
        return
    if "complete" not in record:
        log.warning("%s: an MRC export of an earlier version, which did not mark whether it finished; if it was "
                    "interrupted the counts are short (export again to be sure)", folder)
        return
    if record["complete"] is not True:
        raise InputError(f"{folder}: an interrupted `rnamotif export --format mrc` (it did not finish; "
                            f"{record.get('samples', '?')} samples expected); run the export again with --overwrite")


class Evaluator:
    """A trained model plus the checks that keep its numbers honest.

    Parameters
    ----------
    model:
        The network, ``(B, C, D, H, W)`` -> ``(B, classes)``.
    checkpoint:
        The checkpoint dict it came from (config, class names, split fingerprint).
    device:
        Where to run.
    path:
        The checkpoint file, named in messages.
    """

    def __init__(self, model: torch.nn.Module, checkpoint: dict, device: torch.device, path: str = "<in memory>"):
        self.model, self.checkpoint, self.device = model.eval(), checkpoint, device
        self.path = path  # the checkpoint file, for messages

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> "Evaluator":
        """Load a checkpoint written by :mod:`rnamotif_data.learn.train`.

        Raises
        ------
        MissingFileError
            If the file is missing.
        InputError
            If it is not a training checkpoint.
        CheckpointMismatchError
            If it records no cube size, or its weights do not fit the network, input
            channels, classes and cube size it records.
        """
        dev = choose_device(device)
        ck = load_checkpoint(path, dev)
        if not isinstance(ck, dict) or not {"model", "config", "class_names", "split_fingerprint"} <= set(ck):
            raise InputError(f"{path}: not an rnamotif_data.learn.train checkpoint")
        cfg = ck["config"]
        if "cube" not in ck:
            raise CheckpointMismatchError(f"{path}: the checkpoint does not record its cube size; retrain it with "
                                          "rnamotif-data >= 0.7")
        network = cfg.get("network", cfg.get("model"))  # 0.7 checkpoints name it "model"
        recorded = (f"network {network!r}, {ck['in_channels']} input channel(s), {len(ck['class_names'])} classes, "
                    f"cube {ck['cube']}")
        try:
            model = build_network(network, ck["in_channels"], len(ck["class_names"]), cube=int(ck["cube"]),
                                  seq_dim=ck.get("seq_dim")).to(dev)
            model.load_state_dict(ck["model"])
        except (RuntimeError, ValueError, TypeError, KeyError) as exc:  # torch's size-mismatch report is pages long
            raise CheckpointMismatchError(f"{path}: its weights do not fit the network it records ({recorded}): "
                                          f"{str(exc).strip().splitlines()[0][:200]}; the file was edited or "
                                          "mixed from two runs") from None
        return cls(model, ck, dev, path=str(path))

    def check(self, dataset: RNAMotifDataset, allow_mismatch: bool = False) -> list[str]:
        """Problems between the checkpoint and ``dataset`` (raises unless ``allow_mismatch``).

        Raises
        ------
        CheckpointMismatchError
            If class names, split fingerprint (not compared for ``split="all"``: every
            sample, no split), channels or masking differ; and, ``allow_mismatch`` or
            not, if the store's cube size is not the checkpoint's.
        """
        ck, cfg = self.checkpoint, self.checkpoint["config"]
        cube = ck.get("cube")
        if cube is not None and tuple(dataset.cube_shape) != (int(cube),) * 3:  # never allowed: not a split mismatch
            raise CheckpointMismatchError(
                f"{getattr(self, 'path', 'checkpoint')}: trained on {cube}³ cubes, the store's are "
                f"{'x'.join(str(n) for n in dataset.cube_shape)}; a model is evaluated on cubes of its own size only "
                "(--allow-mismatch does not cover the cube size)")
        problems = []
        if list(dataset.classes) != list(ck["class_names"]):
            problems.append(f"class names {list(dataset.classes)} != checkpoint's {ck['class_names']}")
        if dataset.split != "all" and dataset.split_fingerprint != ck["split_fingerprint"]:
            # (split "all" evaluates every sample of a store: no split to compare)
            problems.append(f"split fingerprint {dataset.split_fingerprint[:12]}… != checkpoint's "
                            f"{ck['split_fingerprint'][:12]}… (another store, scheme or split)")
        if list(dataset.channels) != list(cfg["channels"]) or dataset.masked != cfg["masked"]:
            problems.append(f"channels {dataset.channels} masked={dataset.masked} != checkpoint's "
                            f"{cfg['channels']} masked={cfg['masked']}")
        if (dataset.sequence or None) != cfg.get("sequence"):
            problems.append(f"sequence features {dataset.sequence!r} != checkpoint's {cfg.get('sequence')!r}")
        if problems and not allow_mismatch:
            raise CheckpointMismatchError(f"{getattr(self, 'path', 'checkpoint')}: " + "; ".join(problems)
                                          + " (--allow-mismatch to evaluate anyway)")
        return problems

    def predict_proba(self, x, batch_size: int = 64) -> np.ndarray:
        """Class probabilities ``(B, n_classes)`` float64 (softmax of the logits) for inputs
        ``(B, C, D, H, W)`` (or ``(cubes, residue features (B, R, E), mask (B, R))`` for a
        sequence network)."""
        xs = tuple(x) if isinstance(x, (list, tuple)) else (x,)
        if not getattr(self.model, "takes_sequence", False):
            xs = xs[:1]
        out = []
        with torch.no_grad():
            for i in range(0, len(xs[0]), batch_size):
                part = [t[i:i + batch_size].to(self.device) for t in xs]
                out.append(torch.softmax(self.model(*part).float(), 1).cpu().numpy().astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0, len(self.checkpoint["class_names"])))

    def predict(self, x, batch_size: int = 64) -> np.ndarray:
        """Class predictions ``(B,)`` for inputs ``(B, C, D, H, W)`` (or ``(cubes, residue
        features (B, R, E), mask (B, R))`` for a sequence network)."""
        return self.predict_proba(x, batch_size).argmax(1).astype(np.int64)

    def use_training_basis(self, dataset: RNAMotifDataset) -> None:
        """Paint ``seq_proj`` with the basis the checkpoint was trained with (saved in it
        since 0.9), replacing the one ``dataset`` read from the store for its subset: a model
        scored on ``val`` or another store otherwise sees another basis. Checkpoints without
        one (no ``seq_proj``, or older) leave the dataset as it is."""
        proj = projection_from_state(self.checkpoint.get("projection"))
        if proj is not None and getattr(dataset, "projection", None) is not None:
            dataset.projection = proj

    def evaluate_dataset(self, dataset: RNAMotifDataset, allow_mismatch: bool = False,
                         train_dataset: RNAMotifDataset | None = None) -> dict:
        """Metrics of the model on a dataset (dict as :func:`class_metrics` plus
        ``breakdown``, ``chance`` (:func:`~rnamotif_data.learn.references.chance_verdict`),
        ``motif_vs_unknown`` (:func:`~rnamotif_data.learn.references.motif_vs_unknown`),
        ``constant_predictor`` and, with ``train_dataset`` (the subset the model trained
        on: its metadata and targets only are read), ``references``
        (:func:`~rnamotif_data.learn.references.references`)). ``seq_proj`` is painted with
        the checkpoint's basis (:meth:`use_training_basis`)."""
        problems = self.check(dataset, allow_mismatch)
        self.use_training_basis(dataset)
        loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=False)
        probs = [self.predict_proba(x) for x, _ in loader]
        prob = np.concatenate(probs) if probs else np.zeros((0, len(dataset.classes)))
        pred = prob.argmax(1).astype(np.int64)
        true = dataset.targets
        res = class_metrics(confusion_matrix(true, pred, len(dataset.classes)), dataset.classes)
        meta = dataset.metadata.reset_index(drop=True)
        cols = dataset.split_columns
        if cols is not None and "max_identity_to_train" in cols:
            meta = meta.assign(max_identity_to_train=cols["max_identity_to_train"].to_numpy(dtype=float))
        if cols is not None and "related_level" in cols:
            meta = meta.assign(related_level=cols["related_level"].to_numpy(dtype=object))
        res["breakdown"] = breakdown(meta, true, pred, dataset.classes)
        classes = list(dataset.classes)
        if train_dataset is not None:
            res["references"] = references(train_dataset.metadata, train_dataset.targets, meta, true, classes)
        res["chance"] = chance_verdict(true, pred, len(classes), (res.get("references") or {}).get("prior"))
        res["constant_predictor"] = constant_predictor(pred)
        p_motif = 1.0 - prob[:, classes.index("unknown")] if "unknown" in classes else None
        res["motif_vs_unknown"] = motif_vs_unknown(meta, true, pred, classes, p_motif)
        res["mismatches_allowed"] = problems
        res["predictions"] = pd.DataFrame({"sample_id": dataset.metadata["sample_id"], "true": true,
                                           "pred": pred}).to_dict(orient="records")
        return res

    def subset_label(self, split: str, subset: str) -> str:
        """What scoring ``split``/``subset`` with this checkpoint is: a test result or not.

        Raises
        ------
        ConfigError
            If ``subset`` is ``test`` but the checkpoint's protocol watched that fold (the
            upstream protocol trains next to fold K and reports it): calling it "test"
            would be wrong.
        """
        protocol = self.checkpoint["config"].get("protocol", "upstream")
        if subset == "test":
            if protocol != "nested":
                raise ConfigError(f"{self.path}: trained with the {protocol} protocol, which watched {split} "
                                  f"during training; its scores there are not test results (use --subset val, "
                                  "reported as the upstream protocol)")
            return f"{split} test: never used for training or model selection (nested protocol)"
        if subset == "val" and protocol == "upstream":
            return f"{split} val -- UPSTREAM PROTOCOL: the fold the run watched; not a test result"
        if subset in ("val", "inner_val"):
            return f"{split} {subset}: used for model selection; not a test result"
        return f"{split} {subset}: training data; not a test result"

    def evaluate_store(self, root: str, split: str, subset: str = "test", allow_mismatch: bool = False) -> dict:
        """:meth:`evaluate_dataset` on ``root``'s ``split``/``subset`` with the checkpoint's
        channels; the result names the subset and says whether it is a test result
        (``subset``, ``label``; :meth:`subset_label`, which raises for a mislabelled test)."""
        label = self.subset_label(split, subset)
        cfg = self.checkpoint["config"]
        ds = RNAMotifDataset(root, split=split, subset=subset, scheme=cfg["scheme"],
                             channels=tuple(cfg["channels"]), masked=cfg["masked"], sequence=cfg.get("sequence"),
                             projection_dim=cfg.get("projection_dim", 8))
        train_subset = "train" if cfg.get("protocol", "upstream") == "upstream" else "inner_train"
        train_ds = RNAMotifDataset(root, split=split, subset=train_subset, scheme=cfg["scheme"])  # metadata only
        res = self.evaluate_dataset(ds, allow_mismatch, train_dataset=train_ds)
        res.update(subset=subset, protocol=cfg.get("protocol", "upstream"), label=label)
        return res

    def evaluate_mrc_folder(self, folder: str | Path, cube: int | None = None, voxel_size: float = 1.0,
                            normalisation: str = "stored") -> dict:
        """Metrics on a folder of ``.mrc`` cubes in either layout ``rnamotif export`` writes:
        class subfolders (``symmetric_loop/NAME.mrc`` ..., ``--by-class``, the upstream
        benchmark's layout) or one folder per sample (``NAME/NAME.mrc``, the default export),
        the class then read off the motif type in ``NAME`` (``cube_*`` is unknown).

        ``normalisation``: ``stored`` (default) for cubes this package exported
        (``rnamotif_data.release.export --format mrc``): their values are the store's, already divided
        by the whole map's 95th percentile, and are used as they are, so predictions equal
        the store's. ``percentile`` for raw upstream crops: each crop is divided by the 95th
        percentile of its own positive voxels and clipped to [0, 1] -- an approximation of
        the store's per-map normalisation (a crop holds only part of its map).

        Files whose names do not follow ``<emdb>_<pdb>_<type>_<n>.mrc`` (or ``cube_*`` in
        ``unknown``) -- e.g. upstream ``*_label_*.mrc`` maps -- are skipped and counted
        (``skipped_files`` in the result).

        Raises
        ------
        CheckpointMismatchError, ConfigError, InputError
            If the model does not take one density channel, ``normalisation`` is unknown,
            the folder has no class subfolder with usable ``.mrc`` files, or it is an
            export that did not finish (:func:`check_export_complete`).
        """
        if normalisation not in ("stored", "percentile"):
            raise ConfigError(f"normalisation must be 'stored' or 'percentile', got {normalisation!r}")
        check_export_complete(folder)
        cube = int(cube or self.checkpoint["cube"])

        if self.checkpoint["in_channels"] != 1 or self.checkpoint.get("seq_dim"):
            raise CheckpointMismatchError("MRC-folder evaluation needs a model trained on one density channel (no sequence features)")
        files, labels, types, skipped = _mrc_cubes(Path(folder))
        x = torch.from_numpy(np.stack([_centre_box(f, cube, voxel_size, normalisation) for f in files]))[:, None]
        pred = self.predict(x)
        true = np.asarray(labels)
        names = self.checkpoint["class_names"]
        res = class_metrics(confusion_matrix(true, pred, len(names)), names)
        res["breakdown"] = breakdown(pd.DataFrame({"resolution": np.nan, "motif_type": types}), true, pred, names)
        res["chance"] = chance_verdict(true, pred, len(names))
        res["constant_predictor"] = constant_predictor(pred)
        res["predictions"] = [{"file": str(f), "true": int(t), "pred": int(p)} for f, t, p in zip(files, true, pred)]
        res["skipped_files"] = skipped
        if skipped:
            log.warning("%s: %d files skipped (names not <emdb>_<pdb>_<type>_<n>.mrc, e.g. label maps)", folder, skipped)
        return res


def write_outputs(res: dict, out: Path, class_names, title: str) -> None:
    """metrics.json, report.md and confusion.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(res, indent=2, default=float))
    md = markdown_report(res, class_names, title)
    if res.get("mismatches_allowed"):
        md += "\n**Evaluated despite mismatches:** " + "; ".join(res["mismatches_allowed"]) + "\n"
    by_res = res.get("breakdown", {}).get("resolution", {})
    if by_res:
        md += "\n| resolution | n | accuracy | macro sensitivity | macro specificity |\n|---|---:|---:|---:|---:|\n"
        for label, r in by_res.items():
            md += (f"| {label} | {r['n']} | {format_metric(r['accuracy'])} | {format_metric(r['macro_sensitivity'])} | "
                   f"{format_metric(r['macro_specificity'])} |\n")
    (out / "report.md").write_text(md)
    plot_confusion(res["confusion_matrix"], out / "confusion.png", class_names, title)
