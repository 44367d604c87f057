"""Metrics of a voxel segmentation of RNA elements, with counts, 95 % intervals and reference lines.

A segmentation network labels every voxel of a map with an element class
(:data:`rnamotif_data.rna.elements.ELEMENT_NAMES`: 0 none, 1 stem, 2 hairpin, 3 bulge,
4 internal, 5 junction, 6 single strand, 7 protein, 8 other); the label volumes of
:mod:`rnamotif_data.samples.volumes` give the truth. This module scores it the way the
field does, streaming over tiles or whole maps (:class:`SegmentationMetrics`), so no map
is held whole. It imports no torch: reports and evaluators can use it alone.

Metrics
-------
All arrays are z-y-x; voxels whose true label is ``ignore_index`` (255: outside the map)
are left out of every count.

* **Per-voxel precision, recall and F1 per class, exact**: the confusion counts of the
  voxels (rows true, columns predicted); precision = TP / predicted, recall = TP / true,
  F1 = 2 TP / (predicted + true) (0 when TP = 0; scikit-learn's ``zero_division=0``).
* **The same with a 3 Å tolerance**, after Emap2sec+ (Wang, Alnabati, Aderinwale,
  Maddhuri Venkata Subramaniya, Terashi & Kihara 2021, "Detecting protein and DNA/RNA
  structures in cryo-EM maps of intermediate resolution using deep learning", Nat.
  Commun. 12:2302, doi:10.1038/s41467-021-22577-3; its voxel level counts a voxel's
  assignment correct when the assigned structure is among those within 3 Å of the voxel
  centre): a voxel predicted as class c is correct when a voxel *truly* of class c lies
  within 3 Å of its centre (tolerance precision), and a voxel truly of class c is
  recovered when a voxel *predicted* as c lies within 3 Å (tolerance recall); F1 =
  2PR / (P + R). Emap2sec+ looks for *atoms* of the class within 3 Å; this module works
  on the label volume alone, whose voxels are labelled from atoms within 1.5 Å
  (:mod:`rnamotif_data.samples.volumes`), so it is looser by up to that radius.
  Distances are Euclidean between voxel centres in Å
  (``spacing``), from :func:`scipy.ndimage.distance_transform_edt` (exact Euclidean
  distance transform) of each class's mask, cropped to the mask's bounding box padded by
  the tolerance; "within" is ``<=``. Tiles are scored as they are: a true voxel just
  outside a tile is not seen from inside it (pass whole maps for exact figures at edges).
* **Macro F1** (exact and 3 Å): the mean F1 over the RNA element classes
  (:data:`RNA_CLASSES`: stem, hairpin, bulge, internal, junction, single strand) that
  occur in the truth or the prediction (scikit-learn's default label set, restricted to
  them); **loop macro F1** the same over :data:`LOOP_CLASSES` (hairpin, bulge, internal,
  junction).
* **Per-residue accuracy** (when a residue-id volume is given; Emap2sec+'s residue level
  votes over the voxels within 3 Å of the residue's heavy atoms, this one over the voxels
  the residue labels): each residue's predicted
  class is the majority vote of its voxels (ties to the lower class id), its true class
  the majority of its true voxel labels (all its voxels carry its element); accuracy over
  the nucleotides (true class in :data:`RNA_CLASSES`) and per true class. Votes are
  summed over every update of the same entry, so a residue cut by tile edges counts once.
* **Per-instance detection** (when an instance-id volume is given), for the loop classes:
  a true instance (a loop, :class:`rnamotif_data.rna.elements.LoopInstance`; its class the
  majority of its true voxel labels) is **found** when the prediction gives its class to at
  least half of its voxels (summed over the entry's updates; Emap2sec+'s segment level
  asks half of a segment's residues); recall = found / instances.
  A **predicted site** is a connected component (26-connectivity: faces, edges and
  corners) of the voxels predicted as a loop class c, within one update; it is a **true
  detection** when at least half of its voxels are truly of class c (on a true instance of
  that class); precision = true detections / predicted sites. A component cut by a tile
  edge counts once per tile: pass whole (stitched) maps for site counts.

Intervals
---------
Precision and recall (exact and 3 Å), residue accuracy and instance recall/precision
carry the **Wilson** score interval (95 %; :func:`rnamotif_data.learn.metrics.wilson_interval`)
of their counts. Voxels of one map are not independent (neighbours share density and
labels), so a voxel Wilson interval is far too narrow; the F1 and macro F1 figures, and
per-class F1, therefore carry a **percentile bootstrap interval over entries** (1000
resamples of the entries with replacement, seeded; Efron & Tibshirani 1993, ch. 13), the
independent unit -- or over updates (tiles) with ``unit="update"``. With fewer than two
units there is no bootstrap interval ("–").

Reference lines
---------------
Every score is reported beside those of three predictors on the **same voxels**
(``references=True``), from the training set's voxel counts per class (``train_counts``):

* ``prior_drawn``: each voxel's class drawn from the training frequencies (seeded: the
  same draws for the same updates);
* ``majority``: every voxel the training set's most frequent class (usually none);
* ``threshold``: voxels whose normalised density is at or above the map's contour level
  get the training set's most frequent RNA class (stem), the others none. The contour is
  given per entry (in normalised-density units: the recommended contour divided by the
  map's normalisation, :func:`rnamotif_data.samples.cubes.normalise_density`) or else
  :data:`DEFAULT_CONTOUR`.

A network is **at chance** when its macro F1 (exact or 3 Å) is not above the best
reference line's, or its bootstrap interval reaches the best reference's (the verdict's
words are in ``result()["chance"]``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from rnamotif_data.errors import InputError
from rnamotif_data.learn.metrics import RESOLUTION_BINS, format_metric, wilson_interval
from rnamotif_data.rna.elements import ELEMENT_NAMES

log = logging.getLogger(__name__)

__all__ = ["IGNORE_INDEX", "TOLERANCE", "RNA_CLASSES", "LOOP_CLASSES", "DEFAULT_CONTOUR", "PREDICTORS",
           "REFERENCES", "VoxelCounts", "within_tolerance", "voxel_counts", "f1_scores", "macro_f1",
           "prior_prediction", "threshold_prediction", "reference_predictions", "loop_sites",
           "SegmentationMetrics", "chance_verdict", "resolution_bin", "PREDICTOR_WORDS", "ci_text"]

#: true label of voxels outside the map: left out of every count
IGNORE_INDEX = 255
#: Å, Emap2sec+'s tolerance
TOLERANCE = 3.0
#: the RNA element classes macro F1 averages over (stem .. single strand)
RNA_CLASSES = (1, 2, 3, 4, 5, 6)
#: the loop classes (hairpin, bulge, internal, junction): instances and predicted sites
LOOP_CLASSES = (2, 3, 4, 5)
#: normalised density at or above which the threshold rule calls a voxel RNA, when the entry
#: has no contour level. Measured on maps simulated from 6V5B chain D (78 nt) and labelled by
#: :func:`~rnamotif_data.samples.volumes.label_volumes` (1.5 Å label radius): at 3 Å
#: resolution the voxels at or above 0.3 are 0.88 times the labelled volume and cover 82 %
#: of it (93 % of them labelled); at 4.5 Å, 1.3 times and 96 %. 0.3 is the level whose
#: volume is about the model's at the resolutions the store holds (3-4.5 Å), as an EMDB
#: recommended contour encloses about the model.
DEFAULT_CONTOUR = 0.3
#: the predictors scored: the network, then the reference lines
REFERENCES = ("prior_drawn", "majority", "threshold")
PREDICTORS = ("network", *REFERENCES)
#: each predictor's name in words (reports)
PREDICTOR_WORDS = {"network": "this network", "prior_drawn": "class prior, drawn",
                    "majority": "class prior, majority class", "threshold": "density threshold rule"}
_Z95 = 1.959963984540054


@dataclass(frozen=True, eq=False)
class VoxelCounts:
    """The counts of one prediction against the truth (:func:`voxel_counts`).

    Attributes
    ----------
    confusion:
        ``(C, C)`` int64 voxels, rows true class, columns predicted.
    tol_pred_hit:
        ``(C,)`` int64 voxels predicted as c with a true c within the tolerance.
    tol_true_hit:
        ``(C,)`` int64 voxels truly c with a predicted c within the tolerance.
    """

    confusion: np.ndarray
    tol_pred_hit: np.ndarray
    tol_true_hit: np.ndarray

    def vector(self) -> np.ndarray:
        """``(C*C + 2C,)`` int64: the three arrays flattened (the bootstrap's row)."""
        return np.concatenate([self.confusion.ravel(), self.tol_pred_hit, self.tol_true_hit])


def within_tolerance(target: np.ndarray, spacing=1.0, tolerance: float = TOLERANCE) -> np.ndarray:
    """``(D, H, W)`` bool: voxels whose centre lies within ``tolerance`` Å (``<=``) of a
    ``True`` voxel of ``target`` (``(D, H, W)`` bool, z-y-x; ``spacing`` Å per voxel, a
    number or z-y-x triple). Exact Euclidean distance transform
    (:func:`scipy.ndimage.distance_transform_edt`) over the target's bounding box padded
    by the tolerance: any voxel outside that box is farther than the tolerance."""
    target = np.asarray(target, dtype=bool)
    out = np.zeros(target.shape, dtype=bool)
    if not target.any():
        return out
    sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    pad = np.ceil(tolerance / sp).astype(int) + 1
    idx = np.nonzero(target)
    box = tuple(slice(max(int(i.min()) - p, 0), min(int(i.max()) + p + 1, n))
                for i, p, n in zip(idx, pad, target.shape))
    dist = ndimage.distance_transform_edt(~target[box], sampling=sp)
    out[box] = dist <= tolerance * (1 + 1e-12)
    return out


def _check_labels(pred: np.ndarray, true: np.ndarray, n_classes: int, ignore_index: int) -> np.ndarray:
    if pred.shape != true.shape or pred.ndim != 3:
        raise InputError(f"prediction {pred.shape} and truth {true.shape} must be the same (D, H, W) volume")
    valid = true != ignore_index
    for name, a in (("prediction", pred[valid]), ("truth", true[valid])):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise InputError(f"the {name} holds a class outside [0, {n_classes}) (ignore_index {ignore_index})")
    return valid


def voxel_counts(pred, true, *, n_classes: int = len(ELEMENT_NAMES), spacing=1.0, tolerance: float = TOLERANCE,
                 ignore_index: int = IGNORE_INDEX, count=None) -> VoxelCounts:
    """Exact and tolerance counts of a predicted label volume against the true one.

    Parameters
    ----------
    pred, true:
        ``(D, H, W)`` integer class ids, z-y-x; ``true == ignore_index`` marks voxels left
        out (outside the map), wherever ``pred`` says.
    n_classes:
        C, the classes (ids ``0 .. C-1``).
    spacing:
        Å per voxel (number or z-y-x triple): the tolerance is in Å.
    tolerance:
        Å (module docstring: Emap2sec+'s 3 Å).
    count:
        ``(D, H, W)`` bool, the voxels to count (default: all); the others are context for
        the tolerance only. A tile with a halo of at least the tolerance around its counted
        core gives exactly the whole map's counts for the core.

    Raises
    ------
    InputError
        Shapes differ or are not 3-D, or a valid voxel holds a class outside ``[0, C)``.
    """
    pred, true = np.asarray(pred), np.asarray(true)
    valid = _check_labels(pred, true, n_classes, ignore_index)
    counted = valid if count is None else valid & _mask(count, true.shape)
    t = true[counted].astype(np.int64)
    p = pred[counted].astype(np.int64)
    conf = np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    n_true, n_pred = conf.sum(axis=1), conf.sum(axis=0)
    hit_p, hit_t = np.zeros(n_classes, np.int64), np.zeros(n_classes, np.int64)
    for c in range(n_classes):
        if n_true[c] == 0 and n_pred[c] == 0:
            continue  # nothing of c counted: no hit either way
        is_t, is_p = valid & (true == c), valid & (pred == c)
        if n_pred[c] and is_t.any():
            hit_p[c] = int(np.count_nonzero(is_p & counted & within_tolerance(is_t, spacing, tolerance)))
        if n_true[c] and is_p.any():
            hit_t[c] = int(np.count_nonzero(is_t & counted & within_tolerance(is_p, spacing, tolerance)))
    return VoxelCounts(conf.astype(np.int64), hit_p, hit_t)


def _mask(count, shape) -> np.ndarray:
    m = np.asarray(count, dtype=bool)
    if m.shape != tuple(shape):
        raise InputError(f"the count mask {m.shape} must match the labels {tuple(shape)}")
    return m


def _ratio(num, den):
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def f1_scores(vec: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Per-class scores of count vectors (:meth:`VoxelCounts.vector`; ``(..., C*C + 2C)``,
    any leading axes, e.g. bootstrap resamples).

    Returns arrays ``(..., C)``: ``n_true``, ``n_pred``, ``tp``; ``precision``,
    ``recall``, ``f1`` (exact) and ``precision_tol``, ``recall_tol``, ``f1_tol``;
    precision/recall NaN where undefined (no voxel predicted / true), F1 NaN only when the
    class is neither true nor predicted (0 otherwise when nothing is right).
    """
    vec = np.asarray(vec, dtype=np.float64)
    C = n_classes
    conf = vec[..., :C * C].reshape(vec.shape[:-1] + (C, C))
    hit_p, hit_t = vec[..., C * C:C * C + C], vec[..., C * C + C:]
    n_true, n_pred = conf.sum(axis=-1), conf.sum(axis=-2)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    seen = (n_true + n_pred) > 0
    p_t, r_t = _ratio(hit_p, n_pred), _ratio(hit_t, n_true)
    p0, r0 = np.nan_to_num(p_t), np.nan_to_num(r_t)
    f1_tol = np.where(seen, _ratio(2 * p0 * r0, p0 + r0), np.nan)
    f1_tol = np.where(seen & np.isnan(f1_tol), 0.0, f1_tol)
    return {"n_true": n_true, "n_pred": n_pred, "tp": tp, "precision": _ratio(tp, n_pred),
            "recall": _ratio(tp, n_true), "f1": _ratio(2 * tp, n_true + n_pred),
            "precision_tol": p_t, "recall_tol": r_t, "f1_tol": f1_tol}


def macro_f1(f1: np.ndarray, classes=RNA_CLASSES) -> np.ndarray:
    """Mean F1 over ``classes`` where defined (NaN-skipping mean over the last axis of
    ``(..., C)``); NaN where none is defined."""
    sub = np.asarray(f1, dtype=np.float64)[..., list(classes)]
    n = np.sum(~np.isnan(sub), axis=-1)
    return np.where(n > 0, np.nansum(sub, axis=-1) / np.maximum(n, 1), np.nan)


def prior_prediction(shape, frequencies, rng: np.random.Generator) -> np.ndarray:
    """``shape`` uint8 classes drawn independently per voxel from ``frequencies`` (``(C,)``,
    normalised here)."""
    f = np.asarray(frequencies, dtype=np.float64)
    return rng.choice(len(f), size=shape, p=f / f.sum()).astype(np.uint8)


def threshold_prediction(density, contour: float, rna_class: int) -> np.ndarray:
    """``(D, H, W)`` uint8: ``rna_class`` where the normalised density is ``>= contour``,
    else 0 (none)."""
    return np.where(np.asarray(density) >= contour, rna_class, 0).astype(np.uint8)


def reference_predictions(true_shape, density, train_counts, *, contour: float | None,
                          rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The reference lines' label volumes (module docstring) for one volume of
    ``true_shape``: ``prior_drawn``, ``majority`` and ``threshold``. ``train_counts``
    ``(C,)`` voxels per class in the training set; ``density`` ``(D, H, W)`` normalised.

    Raises
    ------
    InputError
        ``density`` missing or of another shape, or ``train_counts`` all zero.
    """
    counts = np.asarray(train_counts, dtype=np.float64)
    if counts.sum() <= 0:
        raise InputError("the training set's voxel counts per class are all zero: no class prior")
    if density is None or np.shape(density) != tuple(true_shape):
        raise InputError(f"the density {None if density is None else np.shape(density)} must match the labels "
                         f"{tuple(true_shape)} for the threshold reference")
    rna = max(RNA_CLASSES, key=lambda c: (counts[c], -c))
    return {"prior_drawn": prior_prediction(true_shape, counts, rng),
            "majority": np.full(true_shape, int(np.argmax(counts)), np.uint8),
            "threshold": threshold_prediction(np.asarray(density), DEFAULT_CONTOUR if contour is None else contour,
                                              rna)}


def loop_sites(pred, true, valid, classes=LOOP_CLASSES) -> dict[int, tuple[int, int]]:
    """Per loop class c: ``(predicted sites, true detections)`` -- the 26-connected
    components of ``pred == c`` over ``valid`` voxels, and those with at least half of
    their voxels truly c (module docstring). Arrays ``(D, H, W)``."""
    out = {}
    structure = np.ones((3, 3, 3), dtype=bool)
    for c in classes:
        lab, n = ndimage.label((pred == c) & valid, structure=structure)
        if n == 0:
            out[c] = (0, 0)
            continue
        size = np.bincount(lab.ravel(), minlength=n + 1)[1:]
        on = np.bincount(lab[(true == c) & valid], minlength=n + 1)[1:]
        out[c] = (int(n), int(np.count_nonzero(2 * on >= size)))
    return out


def _votes(ids: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(max id + 1, C)`` int64 voxels per (id, class) of the voxels with ``ids >= 0``."""
    ok = ids >= 0
    i, c = ids[ok].astype(np.int64), labels[ok].astype(np.int64)
    n = int(i.max()) + 1 if i.size else 0
    return np.bincount(i * n_classes + c, minlength=n * n_classes).reshape(n, n_classes)


def _add_rows(a: np.ndarray | None, b: np.ndarray) -> np.ndarray:
    if a is None:
        return b.copy()
    n = max(len(a), len(b))
    out = np.zeros((n, a.shape[1]), np.int64)
    out[:len(a)] += a
    out[:len(b)] += b
    return out


def _same_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` (``(n, C)``) padded with zero rows to the same length."""
    n = max(len(a), len(b))
    out = []
    for x in (a, b):
        y = np.zeros((n, x.shape[1]), np.int64)
        y[:len(x)] = x
        out.append(y)
    return out[0], out[1]


def resolution_bin(resolution: float | None) -> str:
    """The label of :data:`rnamotif_data.learn.metrics.RESOLUTION_BINS` holding
    ``resolution`` (Å), ``"unknown"`` for None or NaN."""
    if resolution is None or not math.isfinite(float(resolution)):
        return "unknown"
    return next(label for label, lo, hi in RESOLUTION_BINS if lo < float(resolution) <= hi)


@dataclass
class _Entry:
    """What one entry has accumulated: its labels, and per predictor its count records,
    residue and instance votes and predicted sites."""

    resolution: str
    level: str
    records: dict[str, list[np.ndarray]] = field(default_factory=dict)
    residue_true: np.ndarray | None = None
    residue_pred: dict[str, np.ndarray] = field(default_factory=dict)
    instance_true: np.ndarray | None = None
    instance_pred: dict[str, np.ndarray] = field(default_factory=dict)
    sites: dict[str, np.ndarray] = field(default_factory=dict)


class SegmentationMetrics:
    """Streaming scores of a segmentation and of its reference lines (module docstring).

    Feed it volumes or tiles one at a time (:meth:`update`); it keeps only counts: per
    update a ``C*C + 2C`` count vector per predictor, and per entry the residue and
    instance votes. :meth:`result` gives every table of the report as a JSON-serialisable
    dict. Voxels are counted once per update: give non-overlapping tiles or stitched maps
    (or mark the overlap ``ignore_index`` in ``true``).

    Parameters
    ----------
    train_counts:
        ``(C,)`` voxels per class in the training set (the prior and the threshold rule's
        class); needed with ``references``.
    n_classes, class_names:
        The classes (default: the 9 of :data:`~rnamotif_data.rna.elements.ELEMENT_NAMES`).
    spacing:
        Å per voxel (number or z-y-x), for the tolerance.
    tolerance:
        Å (:data:`TOLERANCE`).
    references:
        Score the reference lines on every update (needs ``density``).
    unit:
        ``"entry"`` (default) or ``"update"``: what the bootstrap resamples.
    seed, n_boot:
        The prior's draws (per update, ``default_rng([seed, update number])``) and the bootstrap.
    ignore_index:
        True label of voxels left out.

    Raises
    ------
    InputError
        ``references`` without ``train_counts``, ``train_counts`` of another length, or an
        unknown ``unit``.
    """

    def __init__(self, train_counts=None, *, n_classes: int = len(ELEMENT_NAMES), class_names=ELEMENT_NAMES,
                 spacing=1.0, tolerance: float = TOLERANCE, references: bool = True, unit: str = "entry",
                 seed: int = 0, n_boot: int = 1000, ignore_index: int = IGNORE_INDEX) -> None:
        if unit not in ("entry", "update"):
            raise InputError(f"unit must be 'entry' or 'update', got {unit!r}")
        if references and train_counts is None:
            raise InputError("reference lines need the training set's voxel counts per class (train_counts)")
        if train_counts is not None and len(train_counts) != n_classes:
            raise InputError(f"train_counts has {len(train_counts)} classes, expected {n_classes}")
        self.train_counts = None if train_counts is None else np.asarray(train_counts, dtype=np.int64)
        self.n_classes, self.class_names = int(n_classes), tuple(class_names)
        self.spacing, self.tolerance, self.references = spacing, float(tolerance), bool(references)
        self.unit, self.seed, self.n_boot, self.ignore_index = unit, int(seed), int(n_boot), int(ignore_index)
        self.n_updates = 0
        self.entries: dict[str, _Entry] = {}

    def update(self, true, *, pred=None, density=None, entry: str | None = None, resolution: float | None = None,
               level: str | None = None, contour: float | None = None, residue=None, instance=None,
               count=None) -> None:
        """Score one volume or tile.

        Parameters
        ----------
        true:
            ``(D, H, W)`` true classes, z-y-x (``ignore_index`` outside the map).
        pred:
            ``(D, H, W)`` the network's classes (None: reference lines only).
        density:
            ``(D, H, W)`` normalised density (the threshold rule).
        entry:
            The entry (map) the volume belongs to; None: the update is its own entry.
        resolution, level:
            The entry's resolution (Å) and its similarity level to training (any label,
            e.g. the split's ``related_level``); the breakdowns' keys.
        contour:
            The entry's contour level in normalised density (:data:`DEFAULT_CONTOUR` if None).
        residue:
            ``(D, H, W)`` residue id of each voxel (``< 0``: none), unique within the entry.
        instance:
            ``(D, H, W)`` loop instance id (0: none), unique within the entry.
        count:
            ``(D, H, W)`` bool, the voxels to count (default all): the rest is context for
            the tolerance (:func:`voxel_counts`). Tiles with a halo of at least the
            tolerance around non-overlapping counted cores give the whole map's voxel
            counts exactly; residues, instances and sites are then those of the cores.

        Raises
        ------
        InputError
            Shapes differ, a class is out of range, nothing to score, or an entry seen
            before with another resolution bin or level.
        """
        true = np.asarray(true)
        preds = {} if pred is None else {"network": np.asarray(pred)}
        if self.references:
            rng = np.random.default_rng([self.seed, self.n_updates])
            preds.update(reference_predictions(true.shape, density, self.train_counts, contour=contour, rng=rng))
        if not preds:
            raise InputError("nothing to score: no prediction and no reference lines")
        e = self._entry(entry, resolution, level)
        valid = _check_labels(next(iter(preds.values())), true, self.n_classes, self.ignore_index)
        if count is not None:
            valid = valid & _mask(count, true.shape)
        for name, p in preds.items():
            vc = voxel_counts(p, true, n_classes=self.n_classes, spacing=self.spacing, tolerance=self.tolerance,
                              ignore_index=self.ignore_index, count=count)
            e.records.setdefault(name, []).append(vc.vector())
            sites = loop_sites(p, true, valid)
            e.sites[name] = e.sites.get(name, np.zeros((len(LOOP_CLASSES), 2), np.int64)) + np.array(
                [sites[c] for c in LOOP_CLASSES], dtype=np.int64)
        for ids, kind in ((residue, "residue"), (instance, "instance")):
            if ids is None:
                continue
            ids = np.asarray(ids, dtype=np.int64)
            if ids.shape != true.shape:
                raise InputError(f"the {kind} volume {ids.shape} must match the labels {true.shape}")
            ids = np.where(valid & ((ids >= 0) if kind == "residue" else (ids > 0)), ids, -1)
            setattr(e, f"{kind}_true", _add_rows(getattr(e, f"{kind}_true"), _votes(ids, true, self.n_classes)))
            votes = getattr(e, f"{kind}_pred")
            for name, p in preds.items():
                votes[name] = _add_rows(votes.get(name), _votes(ids, p, self.n_classes))
        self.n_updates += 1

    def _entry(self, entry: str | None, resolution, level) -> _Entry:
        key = f"update {self.n_updates}" if entry is None else str(entry)
        rbin, lv = resolution_bin(resolution), "unknown" if level is None else str(level)
        e = self.entries.setdefault(key, _Entry(rbin, lv))
        if (e.resolution, e.level) != (rbin, lv):
            raise InputError(f"entry {key}: resolution bin {rbin!r} and level {lv!r} differ from its earlier "
                             f"updates' ({e.resolution!r}, {e.level!r})")
        return e

    def include(self, other: SegmentationMetrics) -> None:
        """Take ``other``'s predictors that this one lacks, entry by entry (e.g. reference
        lines scored once on a validation set, beside each epoch's network)."""
        for key, oe in other.entries.items():
            e = self.entries.setdefault(key, _Entry(oe.resolution, oe.level))
            for name in oe.records:
                if name in e.records:
                    continue
                e.records[name] = list(oe.records[name])
                e.sites[name] = oe.sites[name].copy()
                for kind in ("residue", "instance"):
                    if name in getattr(oe, f"{kind}_pred"):
                        getattr(e, f"{kind}_pred")[name] = getattr(oe, f"{kind}_pred")[name].copy()
                        if getattr(e, f"{kind}_true") is None:
                            setattr(e, f"{kind}_true", getattr(oe, f"{kind}_true").copy())

    def merge(self, other: SegmentationMetrics) -> None:
        """Add ``other``'s entries (e.g. the held-out fold of another cross-validation run,
        scored with its own training prior) to this one's: a pooled score over folds, each
        test entry once, bootstrapped over all of them.

        Raises
        ------
        InputError
            An entry present in both, or other classes, spacing or tolerance.
        """
        if (other.class_names, other.tolerance) != (self.class_names, self.tolerance) or not np.allclose(
                np.broadcast_to(np.asarray(other.spacing, float), (3,)), np.broadcast_to(np.asarray(self.spacing, float), (3,))):
            raise InputError("metrics of other classes, spacing or tolerance cannot be pooled")
        both = sorted(set(self.entries) & set(other.entries))
        if both:
            raise InputError(f"entry {both[0]} is scored twice; pooled folds must hold disjoint entries")
        self.entries.update(other.entries)
        self.n_updates += other.n_updates

    def result(self) -> dict:
        """Every figure as a JSON-serialisable dict: ``classes``, ``tolerance`` (Å),
        ``unit``, ``n_entries``, ``n_updates``, ``groups`` -- ``all``, ``resolution``
        {bin: ...} and ``level`` {label: ...}, each ``{n_entries, n_voxels, predictors:
        {name: scores}}`` (:data:`PREDICTORS` present) -- and ``chance``
        (:func:`chance_verdict` on ``all``)."""
        keys = list(self.entries)
        groups: dict = {"all": self._group(keys), "resolution": {}, "level": {}}
        for label in [b[0] for b in RESOLUTION_BINS] + ["unknown"]:
            sel = [k for k in keys if self.entries[k].resolution == label]
            if sel:
                groups["resolution"][label] = self._group(sel)
        for label in sorted({self.entries[k].level for k in keys}):
            groups["level"][label] = self._group([k for k in keys if self.entries[k].level == label])
        return {"classes": list(self.class_names), "rna_classes": [self.class_names[c] for c in RNA_CLASSES],
                "loop_classes": [self.class_names[c] for c in LOOP_CLASSES], "tolerance": self.tolerance,
                "unit": self.unit, "n_entries": len(keys), "n_updates": self.n_updates, "groups": groups,
                "chance": chance_verdict(groups["all"])}

    def _group(self, keys: list[str]) -> dict:
        names = [n for n in PREDICTORS if any(n in self.entries[k].records for k in keys)]
        preds = {name: self._scores(name, [self.entries[k] for k in keys if name in self.entries[k].records])
                 for name in names}
        n_voxels = int(np.sum(preds[names[0]]["confusion"])) if names else 0
        return {"n_entries": len(keys), "predictors": preds, "n_voxels": n_voxels}

    def _scores(self, name: str, entries: list[_Entry]) -> dict:
        rows = [np.sum(e.records[name], axis=0) for e in entries] if self.unit == "entry" else \
            [r for e in entries for r in e.records[name]]
        M = np.asarray(rows, dtype=np.int64)
        s = f1_scores(M.sum(axis=0), self.n_classes)
        boot = self._bootstrap(M)
        out = {"n_units": len(M), "confusion": M.sum(axis=0)[:self.n_classes ** 2].reshape(
            self.n_classes, self.n_classes).tolist(), "per_class": {}}
        for c, cname in enumerate(self.class_names):
            out["per_class"][cname] = _class_entry(s, M.sum(axis=0), c, self.n_classes, boot)
        for key, values, classes in (("macro_f1", "f1", RNA_CLASSES), ("macro_f1_tol", "f1_tol", RNA_CLASSES),
                                     ("loop_macro_f1", "f1", LOOP_CLASSES), ("loop_macro_f1_tol", "f1_tol", LOOP_CLASSES)):
            out[key] = _num(macro_f1(s[values], classes))
            out[key + "_ci95"] = None if boot is None else _pct(macro_f1(boot[values], classes))
        out["residues"] = _residue_scores(entries, name, self.class_names)
        out["instances"] = _instance_scores(entries, name, self.class_names)
        return out

    def _bootstrap(self, M: np.ndarray) -> dict | None:
        if len(M) < 2 or self.n_boot < 1:
            return None
        rng = np.random.default_rng(self.seed)
        W = rng.multinomial(len(M), np.full(len(M), 1.0 / len(M)), size=self.n_boot)
        return f1_scores(W @ M, self.n_classes)


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _pct(values: np.ndarray) -> list[float] | None:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return None if v.size == 0 else [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]


def _class_entry(s: dict, total: np.ndarray, c: int, C: int, boot: dict | None) -> dict:
    """One class's figures (counts, exact and tolerance scores, Wilson and bootstrap intervals)."""
    n_true, n_pred, tp = int(s["n_true"][c]), int(s["n_pred"][c]), int(s["tp"][c])
    hit_p, hit_t = int(total[C * C + c]), int(total[C * C + C + c])
    return {"n_true": n_true, "n_pred": n_pred, "tp": tp, "tol_pred_hit": hit_p, "tol_true_hit": hit_t,
            "precision": _num(s["precision"][c]), "precision_wilson95": _wilson(tp, n_pred),
            "recall": _num(s["recall"][c]), "recall_wilson95": _wilson(tp, n_true),
            "f1": _num(s["f1"][c]), "f1_ci95": None if boot is None else _pct(boot["f1"][:, c]),
            "precision_tol": _num(s["precision_tol"][c]), "precision_tol_wilson95": _wilson(hit_p, n_pred),
            "recall_tol": _num(s["recall_tol"][c]), "recall_tol_wilson95": _wilson(hit_t, n_true),
            "f1_tol": _num(s["f1_tol"][c]), "f1_tol_ci95": None if boot is None else _pct(boot["f1_tol"][:, c])}


def _wilson(k: int, n: int) -> list[float] | None:
    ci = wilson_interval(k, n, _Z95)
    return None if ci is None else [ci[0], ci[1]]


def _residue_scores(entries: list[_Entry], name: str, class_names) -> dict | None:
    """Per-residue accuracy by majority vote (module docstring); None without residue ids."""
    true_cls, pred_cls = [], []
    for e in entries:
        if e.residue_true is None or name not in e.residue_pred:
            continue
        t, p = _same_rows(e.residue_true, e.residue_pred[name])
        seen = t.sum(axis=1) > 0
        true_cls.append(np.argmax(t[seen], axis=1))
        pred_cls.append(np.argmax(p[seen], axis=1))
    if not true_cls:
        return None
    t, p = np.concatenate(true_cls), np.concatenate(pred_cls)
    rna = np.isin(t, RNA_CLASSES)
    n, k = int(rna.sum()), int((t[rna] == p[rna]).sum())
    per = {class_names[c]: {"n": int((t == c).sum()), "correct": int(((t == c) & (p == c)).sum()),
                            "accuracy": _num(_ratio(((t == c) & (p == c)).sum(), (t == c).sum()))}
           for c in range(len(class_names)) if (t == c).any()}
    return {"n": n, "correct": k, "accuracy": _num(_ratio(k, n)), "accuracy_wilson95": _wilson(k, n), "per_class": per}


def _instance_scores(entries: list[_Entry], name: str, class_names) -> dict:
    """Instance recall (found / instances; None without instance ids) and site precision
    per loop class and over all loop classes (module docstring)."""
    found = np.zeros(len(LOOP_CLASSES), np.int64)
    total = np.zeros(len(LOOP_CLASSES), np.int64)
    have_instances = False
    for e in entries:
        if e.instance_true is None or name not in e.instance_pred:
            continue
        have_instances = True
        t, p = _same_rows(e.instance_true, e.instance_pred[name])
        size = t.sum(axis=1)
        cls = np.argmax(t, axis=1)
        hit = 2 * p[np.arange(len(t)), cls] >= size
        for j, c in enumerate(LOOP_CLASSES):
            m = (size > 0) & (cls == c)
            total[j] += int(m.sum())
            found[j] += int((m & hit).sum())
    sites = np.sum([e.sites[name] for e in entries], axis=0) if entries else np.zeros((len(LOOP_CLASSES), 2))
    out = {}
    for j, loop in enumerate((*LOOP_CLASSES, None)):
        sl: slice | int = slice(None) if loop is None else j
        f, n = int(np.sum(found[sl])), int(np.sum(total[sl]))
        ns, nd = int(np.sum(sites[sl, 0])), int(np.sum(sites[sl, 1]))
        out["all loops" if loop is None else class_names[loop]] = {
            "instances": n if have_instances else None, "found": f if have_instances else None,
            "recall": _num(_ratio(f, n)) if have_instances else None,
            "recall_wilson95": _wilson(f, n) if have_instances else None,
            "sites": ns, "true_sites": nd, "precision": _num(_ratio(nd, ns)), "precision_wilson95": _wilson(nd, ns)}
    return out


def ci_text(ci) -> str:
    """`` (low–high)`` of a 95 % interval, or ``""`` without one."""
    return f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else ""


def chance_verdict(group: dict) -> dict:
    """Whether the network's macro F1 (exact and 3 Å) is within the reference lines' band.

    The band reaches up to the best reference's macro F1 (its bootstrap interval's upper
    end when it has one); the network is at chance on a metric when its own figure (its
    interval's lower end when it has one) is not above that. Returns ``{"at_chance": bool
    or None (no network scored), "metrics": {metric: bool}, "text": words}``.
    """
    preds = group["predictors"]
    if "network" not in preds:
        return {"at_chance": None, "metrics": {}, "text": ""}
    net, words, flags = preds["network"], [], {}
    for key, label in (("macro_f1", "macro F1 (exact)"), ("macro_f1_tol", "macro F1 (3 Å)")):
        band = [(p[key + "_ci95"][1] if p.get(key + "_ci95") else p[key], n) for n, p in preds.items()
                if n != "network" and p[key] is not None]
        v, ci = net[key], net[key + "_ci95"]
        if v is None or not band:
            continue
        top, who = max(band)
        low = ci[0] if ci else v
        flags[key] = bool(low <= top)
        words.append(f"{label} {format_metric(v)}{ci_text(ci)} "
                     f"{'reaches' if flags[key] else 'is above'} the reference lines' band (up to "
                     f"{format_metric(top)}, {PREDICTOR_WORDS[who]})")
    if not flags:
        return {"at_chance": None, "metrics": {}, "text": ""}
    at = any(flags.values())
    return {"at_chance": at, "metrics": flags,
            "text": ("at chance: " if at else "above the reference lines: ") + "; ".join(words)}
