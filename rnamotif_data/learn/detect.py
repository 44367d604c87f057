"""Find the motifs in a map: a segmentation network over the whole map, its result on the map's own grid.

What :func:`detect` does (``rnamotif detect``)
----------------------------------------------
1. **Read** the map (:func:`~rnamotif_data.em.maps.read_map`: any map the build reads) and
   **resample and normalise** it exactly as the label volumes are made
   (:mod:`rnamotif_data.samples.volumes`): the grid of :func:`~rnamotif_data.samples.volumes.volume_grid`
   at the checkpoint's voxel size (1 Å by default) from the map's origin, trilinear
   :meth:`~rnamotif_data.em.maps.DensityMap.sample_box` one z-slab at a time, divided by the
   map's percentile (the checkpoint's ``normalise_percentile``) and clipped to [0, 1]
   (:func:`density_volume`).
2. **Predict** every voxel's class probabilities with the network, tile by tile, each voxel
   from a tile's centre (:func:`rnamotif_data.learn.stitch.predict_volume`: zero padding,
   stride ``tile - 2 margin``, only the central crops kept), under ``torch.no_grad``, on the
   GPU when there is one (bfloat16 autocast on CUDA only). The label is the most probable
   class (ties: the lower class id).
3. **Resample back** to the input map's grid (:func:`to_map_grid`): input voxel ``(k, j, i)``
   lies at 1 Å-grid index ``(k, j, i) × map_voxel / voxel_size`` (both grids start at the map's
   origin); labels take the **nearest** 1 Å voxel (``floor(t + 0.5)``), probabilities are
   **trilinear**; indices are clamped to the grid (its last plane may lie up to one voxel
   before the map's).
4. **Write** into the output folder (claimed with :mod:`rnamotif_data.storage.outputs`, so a
   user's file is never replaced): ``labels.mrc`` (int8, MRC mode 0: the class id per voxel)
   and ``prob_<class>.mrc`` (float32, mode 2) for each class, with the input's header
   geometry (shape, voxel size, ORIGIN, NSTART and MAPC/MAPR/MAPS, :func:`write_like`) so that
   ChimeraX overlays them on the map; ``sites.parquet`` and ``sites.csv`` (:func:`predicted_sites`);
   with a model, ``residues.parquet``/``.csv`` (:func:`residue_predictions`) and
   ``instances.parquet``/``.csv`` (:func:`instance_scores`); ``detect.json`` (inputs, settings,
   timings).

Sites are the connected components (26-connectivity: voxels that share a face, an edge or
a corner) of each loop class (hairpin, bulge, internal, junction) on the 1 Å grid.

Memory: the 1 Å density (4 B per voxel) and the probabilities (4 C B per voxel: 36 B
with the 9 element classes, 2.5 GB for the 413³ grid of a 64³ map at 6.55 Å) are held
whole; labels (1 B), the sites' connected components (4 B, their statistics read a slab at
a time) and the resampling back (one class at a time) add a few bytes per voxel, and the
network's forward pass ~0.7 GB for a 136³ tile. Measured: 3.8 GB peak resident for the whole
50S volume (413³ grid) with a random 8-16-32 network that calls every voxel one loop class.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd

from rnamotif_data.em.maps import DensityMap, MapStatistics, read_map
from rnamotif_data.errors import ConfigError, DiskFullError, InputError, MissingFileError, is_environment_failure, one_line
from rnamotif_data.learn.checkpoints import choose_device
from rnamotif_data.learn.segnet import SegmentationCheckpoint, load_segmentation_checkpoint
from rnamotif_data.learn.stitch import predict_volume, tile_grid, torch_predict_fn
from rnamotif_data.rna.elements import ELEMENT_NAMES, ElementAssignment, assign_elements
from rnamotif_data.rna.structure import Model, read_model
from rnamotif_data.samples.cubes import normalise_density
from rnamotif_data.samples.volumes import VolumeConfig, VolumeGrid, iter_label_slabs, label_atoms, volume_grid
from rnamotif_data.storage.outputs import claimed_output

log = logging.getLogger(__name__)

__all__ = ["DetectConfig", "DetectResult", "LOOP_CLASSES", "DETECT_FILES", "MAX_TILE", "density_volume", "to_map_grid",
           "write_like", "most_probable", "predicted_sites", "residue_predictions", "instance_scores", "detect_volume", "detect", "inference_tile"]

_VOLUME_DEFAULT = VolumeConfig()
#: voxels, the largest tile :func:`detect_volume` chooses by itself (the 8-16-32 U-Net's
#: forward pass on one 136³ tile peaks ~0.7 GB above the process; a 160³ one ~1.1 GB)
MAX_TILE = 160

#: the classes whose connected components are reported as sites
LOOP_CLASSES = ("hairpin", "bulge", "internal", "junction")
#: the files ``rnamotif detect`` writes (its output folder's marker)
DETECT_FILES = ("labels.mrc", "prob_*.mrc", "sites.parquet", "sites.csv", "residues.parquet", "residues.csv",
                "instances.parquet", "instances.csv", "detect.json")


@dataclasses.dataclass(frozen=True)
class DetectConfig:
    """How a map goes through the network.

    Attributes
    ----------
    tile:
        Voxels, the edge of the tiles the network sees; any multiple of the network's
        (it is fully convolutional, so not only its training tile). None: the tile up to
        :data:`MAX_TILE` that makes the fewest tile voxels for the map (bigger tiles also
        run faster per voxel on CPU).
    margin:
        Voxels dropped on each face of a tile (:mod:`~rnamotif_data.learn.stitch`).
    batch_size:
        Tiles per forward pass.
    progress:
        Show a progress bar over the tiles.
    """

    tile: int | None = None
    margin: int = 16
    batch_size: int = 1
    progress: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class DetectResult:
    """What :func:`detect_volume` found, on the 1 Å grid.

    Attributes
    ----------
    grid:
        The resampled grid.
    probabilities:
        ``(C, D, H, W)`` float32 class probabilities, z-y-x.
    labels:
        ``(D, H, W)`` uint8, the most probable class.
    sites:
        :func:`predicted_sites`.
    timings:
        Seconds per stage: ``read``, ``resample`` (to 1 Å and normalise), ``network``
        (the forward passes), ``stitch`` (cutting and placing tiles), ``labels``,
        ``back`` (to the map's grid), ``sites``, ``write``, ``model``.
    """

    grid: VolumeGrid
    probabilities: np.ndarray
    labels: np.ndarray
    sites: pd.DataFrame
    timings: dict


def density_volume(density_map: DensityMap, config: VolumeConfig = _VOLUME_DEFAULT, *,
                   stats: MapStatistics | None = None) -> tuple[VolumeGrid, np.ndarray]:
    """The map resampled and normalised as :func:`~rnamotif_data.samples.volumes.label_volumes`
    makes its ``density`` (the same values, bit for bit): ``(grid, (D, H, W) float32)``,
    made ``config.slab`` z planes at a time."""
    if stats is None:
        stats = density_map.statistics(config.normalise_percentile)
    grid = volume_grid(density_map, config.voxel_size)
    D, H, W = grid.shape
    out = np.empty(grid.shape, np.float32)
    for z0 in range(0, D, int(config.slab)):
        d = min(int(config.slab), D - z0)
        raw, _ = density_map.sample_box(grid.point((z0, 0, 0)), (d, H, W), grid.voxel_size)
        out[z0:z0 + d] = normalise_density(raw, stats)
    return grid, out


def _axis_index(n_out: int, map_voxel: float, grid_voxel: float, n_grid: int) -> np.ndarray:
    """Fractional grid index of each of ``n_out`` map voxels along one axis, clamped."""
    return np.clip(np.arange(n_out, dtype=np.float64) * (map_voxel / grid_voxel), 0.0, n_grid - 1.0)


def to_map_grid(volume: np.ndarray, grid: VolumeGrid, density_map: DensityMap, order: int) -> np.ndarray:
    """A volume on the 1 Å grid, resampled onto the map's own grid (step 3 of the module docstring).

    Parameters
    ----------
    volume:
        ``(..., D, H, W)`` on ``grid`` (leading axes, e.g. classes, are kept).
    grid:
        Its grid (:func:`~rnamotif_data.samples.volumes.volume_grid` of ``density_map``).
    density_map:
        The map whose grid ``(nz, ny, nx)`` is wanted.
    order:
        0 nearest (labels; the dtype is kept), 1 trilinear (float32).

    Returns
    -------
    ``(..., nz, ny, nx)``, z-y-x.
    """
    if order not in (0, 1):
        raise ConfigError(f"order must be 0 (nearest) or 1 (trilinear), got {order!r}")
    out = volume
    lead = volume.ndim - 3
    for a, (n_out, n_grid) in enumerate(zip(density_map.shape, grid.shape)):
        t = _axis_index(n_out, float(density_map.voxel_size[2 - a]), grid.voxel_size, n_grid)
        axis = lead + a
        if n_out == n_grid and np.array_equal(t, np.arange(n_grid)):
            continue  # the map's own grid along this axis (a 1 Å map): nothing to resample
        if order == 0:
            out = np.take(out, np.floor(t + 0.5).astype(np.int64), axis=axis)
            continue
        i0 = np.minimum(np.floor(t).astype(np.int64), max(n_grid - 2, 0))
        w = (t - i0).astype(np.float32)
        shape = [1] * out.ndim
        shape[axis] = -1
        a0 = np.take(out, i0, axis=axis)
        a1 = np.take(out, np.minimum(i0 + 1, n_grid - 1), axis=axis)
        out = a0 + (a1 - a0) * w.reshape(shape)
    if out is volume:
        return volume.copy() if order == 0 else volume.astype(np.float32)
    return np.ascontiguousarray(out if order == 0 else out.astype(np.float32, copy=False))


def _file_order(data_zyx: np.ndarray, axis_order: tuple[int, int, int]) -> np.ndarray:
    """The inverse of :func:`~rnamotif_data.em.maps.axis_order_to_zyx`: z-y-x to the
    file's (sections, rows, columns) for MAPC/MAPR/MAPS ``axis_order``."""
    mapc, mapr, maps = axis_order
    labels = (maps, mapr, mapc)
    perm = [labels.index(a) for a in (3, 2, 1)]
    return np.ascontiguousarray(data_zyx.transpose(np.argsort(perm)))


def write_like(path: str | os.PathLike, data_zyx: np.ndarray, density_map: DensityMap) -> Path:
    """Write ``data_zyx`` (the map's shape ``(nz, ny, nx)``; uint8/int8 as MRC mode 0,
    float32 as mode 2) as an MRC file with the header geometry of the file ``density_map``
    was read from: MAPC/MAPR/MAPS (the data stored in the same file order), cell and
    sampling (so the same voxel size), ORIGIN and NSTART; the file passes ``mrcfile.validate``.
    Written beside ``path`` and renamed.

    Raises
    ------
    InputError
        If the shape is not the map's, or the map was not read from a file.
    DiskFullError
        If the machine ran out of room (the partial file is removed).
    """
    data = np.asarray(data_zyx)
    if data.shape != density_map.shape:
        raise InputError(f"{path}: data of shape {data.shape} is not on the map's grid {density_map.shape}")
    if data.dtype == np.uint8:
        if data.size and int(data.max()) > 127:
            raise InputError(f"{path}: label values above 127 do not fit MRC mode 0 (int8)")
        data = data.astype(np.int8)
    elif data.dtype != np.int8:
        data = data.astype(np.float32)
    src = Path(density_map.path)
    if not src.is_file():
        raise InputError(f"{density_map.path}: not a map file to copy a header from")
    with warnings.catch_warnings():  # the header's anomalies were reported when the map was read
        warnings.simplefilter("ignore")
        with mrcfile.open(src, mode="r", permissive=True, header_only=True) as mrc:
            old = mrc.header.copy()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(_file_order(data, density_map.axis_order))
            h = mrc.header
            for name in ("mapc", "mapr", "maps", "nxstart", "nystart", "nzstart", "mx", "my", "mz"):
                setattr(h, name, getattr(old, name))
            h.cella = old.cella
            h.origin = old.origin
            mrc.update_header_stats()
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_environment_failure(exc):
            raise DiskFullError(f"{path}: could not be written (disk full?): {one_line(exc)}") from exc
        raise
    return path


def _component_stats(comp: np.ndarray, n: int, prob: np.ndarray, chunk: int = 1 << 22):
    """Per component ``1..n`` of ``comp`` ``(D, H, W)``: voxel count, centroid ``(n, 3)``
    (fractional z-y-x index), mean and max of ``prob``; read ``chunk`` voxels' worth of z
    planes at a time, so the temporaries are bounded whatever the components cover."""
    sums = np.zeros((5, n), np.float64)  # count, z, y, x, probability
    peak = np.full(n, -np.inf)
    step = max(1, chunk // max(1, comp.shape[1] * comp.shape[2]))
    for z0 in range(0, comp.shape[0], step):
        part = comp[z0:z0 + step]
        flat = np.flatnonzero(part)
        if not len(flat):
            continue
        which = part.reshape(-1)[flat].astype(np.int64) - 1
        k, j, i = np.unravel_index(flat, part.shape)
        p = prob[z0:z0 + step].reshape(-1)[flat].astype(np.float64)
        for row, w in enumerate((None, k + z0, j, i, p)):
            sums[row] += np.bincount(which, weights=w, minlength=n)
        np.maximum.at(peak, which, p)
    counts = sums[0].astype(np.int64)
    return counts, (sums[1:4] / sums[0]).T, sums[4] / sums[0], peak


def predicted_sites(labels: np.ndarray, probabilities: np.ndarray, grid: VolumeGrid, class_names,
                    classes=LOOP_CLASSES) -> pd.DataFrame:
    """The connected components (26-connectivity) of each class in ``classes`` on the 1 Å grid.

    Parameters
    ----------
    labels:
        ``(D, H, W)`` class ids on ``grid``.
    probabilities:
        ``(C, D, H, W)`` class probabilities.
    class_names:
        Name of each class id; classes of ``classes`` it does not name are skipped.

    Returns
    -------
    One row per site, largest first within a class: ``site`` (1-based), ``element``,
    ``x``, ``y``, ``z`` (Å, the centroid of its voxel centres, in the map's frame),
    ``n_voxels``, ``volume_A3`` (Å³), ``mean_probability`` (of its class over its voxels),
    ``max_probability``.
    """
    from scipy import ndimage

    names = list(class_names)
    rows: list[dict] = []
    structure = np.ones((3, 3, 3), dtype=bool)
    for name in classes:
        if name not in names:
            continue
        c = names.index(name)
        comp, n = ndimage.label(labels == c, structure=structure)
        if n == 0:
            continue
        counts, centres, mean, peak = _component_stats(comp, n, probabilities[c])
        del comp
        xyz = grid.point(centres)
        for k in np.argsort(-counts, kind="stable"):
            rows.append({"element": name, "x": xyz[k, 0], "y": xyz[k, 1], "z": xyz[k, 2], "n_voxels": int(counts[k]),
                         "volume_A3": float(counts[k]) * grid.voxel_size ** 3, "mean_probability": float(mean[k]),
                         "max_probability": float(peak[k])})
    table = pd.DataFrame(rows, columns=["element", "x", "y", "z", "n_voxels", "volume_A3", "mean_probability",
                                        "max_probability"])
    table.insert(0, "site", np.arange(1, len(table) + 1, dtype=np.int64))
    return table


def _atom_voxels(xyz: np.ndarray, grid: VolumeGrid, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """``(atom, flat voxel index)`` pairs: every voxel of ``grid`` whose centre is within
    ``radius`` Å of atom ``xyz[atom]`` (``(N, 3)`` Å, x-y-z)."""
    f = (np.asarray(xyz, np.float64) - np.asarray(grid.origin)) / grid.voxel_size  # x-y-z fractional
    base = np.floor(f).astype(np.int64)
    r = int(np.ceil(radius / grid.voxel_size))
    n_xyz = np.asarray(grid.shape[::-1])
    atoms, flats = [], []
    for o in np.stack(np.meshgrid(*[np.arange(-r, r + 2)] * 3, indexing="ij"), -1).reshape(-1, 3):
        cand = base + o
        ok = (np.linalg.norm((cand - f) * grid.voxel_size, axis=1) <= radius) & np.all((cand >= 0) & (cand < n_xyz), axis=1)
        hit = np.flatnonzero(ok)
        atoms.append(hit)
        flats.append(np.ravel_multi_index((cand[hit, 2], cand[hit, 1], cand[hit, 0]), grid.shape))
    return np.concatenate(atoms), np.concatenate(flats)


def residue_predictions(model: Model, elements: ElementAssignment, labels: np.ndarray, grid: VolumeGrid,
                        class_names, radius: float = 1.5) -> pd.DataFrame:
    """Per residue of ``model`` (water excluded): the predicted element by majority vote of
    its voxels -- the voxels of ``grid`` within ``radius`` Å of any of its heavy atoms, each
    counted once per residue; ties to the lower class id -- and its true element
    (:func:`~rnamotif_data.rna.elements.assign_elements`).

    Returns
    -------
    One row per residue, in model order: ``chain``, ``residue_number``, ``insertion_code``,
    ``residue_name``, ``true_element``, ``predicted_element`` (None without voxels, e.g.
    outside the map), ``n_voxels``, ``predicted_share`` (votes of the predicted class /
    ``n_voxels``), ``true_share`` (votes of the true class), ``instance`` (loop id, 0 none).
    """
    names = list(class_names)
    la = label_atoms(model, elements)
    residue = np.asarray(model.atoms.residue_index, np.int64)[la.rows]
    atom, flat = _atom_voxels(la.xyz, grid, radius)
    n_vox = int(np.prod(grid.shape))
    keys = np.unique(residue[atom] * n_vox + flat)
    res, vox = keys // n_vox, keys % n_vox
    n_res = len(model.atoms.residues)
    votes = np.zeros((n_res, len(names)), np.int64)
    np.add.at(votes, (res, labels.reshape(-1)[vox].astype(np.int64)), 1)
    total = votes.sum(1)
    pred = votes.argmax(1)
    true_names = [_element_name(e) for e in elements.element]
    true_idx = np.array([names.index(t) if t in names else -1 for t in true_names])
    true_votes = np.where(true_idx >= 0, votes[np.arange(n_res), np.maximum(true_idx, 0)], 0)
    rid = model.atoms.residues
    keep = np.zeros(n_res, bool)
    keep[residue] = True
    rows = [{"chain": rid[r].chain, "residue_number": int(rid[r].seq_num), "insertion_code": rid[r].icode,
             "residue_name": model.atoms.residue_names[r], "true_element": true_names[r],
             "predicted_element": names[pred[r]] if total[r] else None, "n_voxels": int(total[r]),
             "predicted_share": float(votes[r, pred[r]] / total[r]) if total[r] else float("nan"),
             "true_share": float(true_votes[r] / total[r]) if total[r] else float("nan"),
             "instance": int(elements.instance[r])} for r in np.flatnonzero(keep)]
    return pd.DataFrame(rows, columns=["chain", "residue_number", "insertion_code", "residue_name", "true_element",
                                       "predicted_element", "n_voxels", "predicted_share", "true_share", "instance"])


def _element_name(e: int) -> str:
    return ELEMENT_NAMES[int(e)]


def instance_scores(density_map: DensityMap, model: Model, elements: ElementAssignment, labels: np.ndarray,
                    class_names, config: VolumeConfig = _VOLUME_DEFAULT) -> pd.DataFrame:
    """Per loop instance of ``elements``: the share of its voxels predicted as its class.

    An instance's voxels are those the label volumes give it
    (:func:`~rnamotif_data.samples.volumes.iter_label_slabs`: nearest heavy atom within
    ``config.label_radius``, so the convention of the stored labels); it is **found** when
    the predicted class covers at least half of them (``predicted_share >= 0.5``).

    Returns
    -------
    One row per instance: ``instance``, ``kind``, ``element`` (its true class),
    ``motif_type`` (fine type or None), ``selection``, ``n_residues`` (unpaired),
    ``n_voxels``, ``predicted_share``, ``majority`` (the most predicted class of its voxels,
    None without voxels), ``found``.

    Raises
    ------
    NoRNAError, ModelOutsideMapError
        As :func:`~rnamotif_data.samples.volumes.iter_label_slabs`.
    """
    names = list(class_names)
    n_inst = len(elements.instances)
    counts = np.zeros((n_inst + 1, len(names)), np.int64)
    for slab in iter_label_slabs(density_map, model, elements, config):
        inst = slab.instance.reshape(-1).astype(np.int64)
        hit = np.flatnonzero(inst)
        pred = labels[slab.z0:slab.z0 + len(slab.instance)].reshape(-1)[hit].astype(np.int64)
        np.add.at(counts, (inst[hit], pred), 1)
    rows = []
    for loop in elements.instances:
        n = int(counts[loop.id].sum())
        name = _element_name(loop.element)
        share = float(counts[loop.id, names.index(name)] / n) if n and name in names else float("nan")
        rows.append({"instance": loop.id, "kind": loop.kind, "element": name, "motif_type": loop.fine_type,
                     "selection": loop.selection, "n_residues": len(loop.residues), "n_voxels": n,
                     "predicted_share": share, "majority": names[int(counts[loop.id].argmax())] if n else None,
                     "found": bool(n and share >= 0.5)})
    return pd.DataFrame(rows, columns=["instance", "kind", "element", "motif_type", "selection", "n_residues",
                                       "n_voxels", "predicted_share", "majority", "found"])


def most_probable(probabilities: np.ndarray) -> np.ndarray:
    """``(D, H, W)`` uint8: the most probable class of ``(C, D, H, W)`` probabilities, ties to
    the lower class id (as ``argmax(0)``), made class by class: 6 B per voxel beside the
    input, where ``argmax(0)`` would copy the whole ``(C, D, H, W)`` array."""
    if len(probabilities) > 255:
        raise ConfigError(f"{len(probabilities)} classes do not fit uint8 labels")
    best = probabilities[0].copy()
    labels = np.zeros(best.shape, np.uint8)
    for c in range(1, len(probabilities)):
        higher = probabilities[c] > best
        np.copyto(best, probabilities[c], where=higher)
        labels[higher] = c
    return labels


def inference_tile(ckpt: SegmentationCheckpoint, shape, config: DetectConfig) -> tuple[int, int]:
    """``(tile, margin)`` for a volume of ``shape`` (:class:`DetectConfig`). The default
    tile is the one, up to :data:`MAX_TILE` and a multiple of the network's, that makes the
    fewest tile voxels in all (the larger on a tie)."""
    model = ckpt.model
    multiple = int(getattr(model, "multiple", 1))
    margin = int(config.margin)
    if margin < 0 or (2 * margin) % multiple:
        raise ConfigError(f"--margin {config.margin}: must be >= 0 with 2 × margin a multiple of {multiple} "
                          f"({ckpt.network} of depth {getattr(model, 'depth', '?')}: tiles on its pooling grid)")
    if config.tile is None:  # the least tile voxels in all, the larger tile on a tie (faster per voxel)
        lo = -(-(2 * margin + multiple) // multiple) * multiple
        cost = {t: int(np.prod([-(-int(n) // (t - 2 * margin)) for n in shape])) * t ** 3
                for t in range(lo, max(lo, MAX_TILE) + 1, multiple)}
        tile = min(cost, key=lambda t: (cost[t], -t))
    else:
        tile = int(config.tile)
    if tile % multiple or tile - 2 * margin < multiple:
        raise ConfigError(f"--tile {tile}: {ckpt.network} of depth {getattr(model, 'depth', '?')} needs a multiple of "
                          f"{multiple} voxels larger than 2 × margin ({2 * margin}) + {multiple - 1}")
    return tile, margin


def detect_volume(density_map: DensityMap, ckpt: SegmentationCheckpoint, device="cpu",
                  config: DetectConfig = DetectConfig()) -> DetectResult:
    """Steps 1-2 of the module docstring and the sites: ``density_map`` resampled and
    normalised on the checkpoint's grid, every voxel's class probabilities, its label and
    the predicted sites, all on the 1 Å grid (:class:`DetectResult`).

    Raises
    ------
    ConfigError
        For a tile or margin the network cannot take (:func:`_inference_tile`).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    grid, density = density_volume(density_map, ckpt.volume_config)
    timings["resample"] = time.perf_counter() - t0
    tile, margin = inference_tile(ckpt, grid.shape, config)
    net = torch_predict_fn(ckpt.model, device)
    spent = [0.0]

    def timed(x: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        y = net(x)
        spent[0] += time.perf_counter() - t
        return y

    stride, n_tiles = tile_grid(grid.shape, tile, margin)
    log.info("%s: %s grid at %g Å, %d tiles of %d³ (margin %d)", density_map.path, "x".join(map(str, grid.shape)),
             grid.voxel_size, int(np.prod(n_tiles)), tile, margin)
    t0 = time.perf_counter()
    probs = predict_volume(density, timed, tile, margin, config.batch_size, progress=config.progress)
    timings["network"] = spent[0]
    timings["stitch"] = time.perf_counter() - t0 - spent[0]
    t0 = time.perf_counter()
    labels = most_probable(probs)
    timings["labels"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sites = predicted_sites(labels, probs, grid, ckpt.class_names)
    timings["sites"] = time.perf_counter() - t0
    return DetectResult(grid=grid, probabilities=probs, labels=labels, sites=sites,
                        timings={**timings, "tile": tile, "margin": margin, "n_tiles": int(np.prod(n_tiles))})


def _write_tables(folder: Path, name: str, table: pd.DataFrame) -> None:
    table.to_parquet(folder / f"{name}.parquet", index=False)
    table.to_csv(folder / f"{name}.csv", index=False)


def _write_volumes(folder: Path, result: DetectResult, density_map: DensityMap, class_names) -> tuple[float, float]:
    """``labels.mrc`` and ``prob_<class>.mrc`` on the map's grid, one class at a time (the
    resampling's temporaries are one class's); returns the seconds resampling and writing."""
    back = write = 0.0
    for name, volume, order in [("labels", result.labels, 0),
                                *((f"prob_{n}", result.probabilities[c], 1) for c, n in enumerate(class_names))]:
        t0 = time.perf_counter()
        on_map = to_map_grid(volume, result.grid, density_map, order)
        t1 = time.perf_counter()
        write_like(folder / f"{name}.mrc", on_map, density_map)
        back, write = back + t1 - t0, write + time.perf_counter() - t1
    return back, write


def _read_model(model_path, density_map: DensityMap, config: VolumeConfig, pairs: str):
    """The model and its elements, checked against the map before any work (one line:
    missing, unreadable, no RNA in the map, outside it)."""
    if not Path(model_path).is_file():
        raise MissingFileError(f"{model_path}: no such model file")
    model = read_model(model_path)
    elements = assign_elements(model, pairs)
    iter_label_slabs(density_map, model, elements, config)  # its checks run now; nothing is computed
    return model, elements


def _write_model_tables(folder: Path, model_path, model: Model, elements: ElementAssignment, density_map: DensityMap,
                        result: DetectResult, ckpt: SegmentationCheckpoint, pairs: str) -> dict:
    names = ckpt.class_names
    residues = residue_predictions(model, elements, result.labels, result.grid, names, ckpt.volume_config.label_radius)
    instances = instance_scores(density_map, model, elements, result.labels, names, ckpt.volume_config)
    _write_tables(folder, "residues", residues)
    _write_tables(folder, "instances", instances)
    agree = residues["predicted_element"] == residues["true_element"]
    return {"model": str(model_path), "pairs": pairs, "n_residues": len(residues),
            "residue_accuracy": float(agree[residues["n_voxels"] > 0].mean()) if len(residues) else None,
            "n_instances": len(instances), "n_found": int(instances["found"].sum())}


def detect(map_path: str | os.PathLike, checkpoint: str | os.PathLike, out: str | os.PathLike, *,
           model_path: str | os.PathLike | None = None, device: str = "auto", config: DetectConfig = DetectConfig(),
           pairs: str = "geometric", mode: str = "new") -> dict:
    """``rnamotif detect``: every step of the module docstring, its files written into ``out``.

    Parameters
    ----------
    map_path:
        The map (MRC/CCP4, optionally gzipped).
    checkpoint:
        A segmentation checkpoint (:func:`~rnamotif_data.learn.segnet.save_segmentation_checkpoint`).
    out:
        The output folder: new, empty, or one ``rnamotif detect`` wrote
        (:func:`~rnamotif_data.storage.outputs.claim_output` with ``mode``).
    model_path:
        The map's fitted model, for the per-residue and per-instance tables.
    device:
        ``auto`` (CUDA when there is one), ``cpu``, ``cuda``, ``cuda:N``.
    pairs:
        The base-pair reader of :func:`~rnamotif_data.rna.elements.assign_elements` (true elements).

    Returns
    -------
    The summary written to ``detect.json`` (inputs, settings, counts, timings in seconds).

    Raises
    ------
    StoreError
        ``out`` holds a user's file or another command's output (nothing is changed).
    MissingFileError, MapFormatError
        The map is missing or not a readable map.
    CheckpointMismatchError, InputError
        Not a segmentation checkpoint (e.g. a cube classifier), or unreadable.
    ConfigError
        A tile or margin the network cannot take, an unknown device.
    NoRNAError, ModelOutsideMapError, StructureError, MissingFileError
        With a model: as :func:`instance_scores` and :func:`~rnamotif_data.rna.structure.read_model`;
        checked before the network runs, so nothing is written then.
    """
    folder = Path(out)
    with claimed_output(folder, "detect", DETECT_FILES, mode=mode):
        dev = choose_device(device)
        t0 = time.perf_counter()
        density_map = read_map(map_path)
        ckpt = load_segmentation_checkpoint(checkpoint, dev)
        if model_path is not None:
            model, elements = _read_model(model_path, density_map, ckpt.volume_config, pairs)
        read_s = time.perf_counter() - t0
        result = detect_volume(density_map, ckpt, dev, config)
        timings = {"read": read_s, **result.timings}
        timings["back"], timings["write"] = _write_volumes(folder, result, density_map, ckpt.class_names)
        _write_tables(folder, "sites", result.sites)
        summary: dict = {"map": str(map_path), "checkpoint": str(checkpoint), "network": ckpt.network,
                         "class_names": list(ckpt.class_names), "volume_config": dataclasses.asdict(ckpt.volume_config),
                         "device": str(dev), "grid_shape": list(result.grid.shape), "map_shape": list(density_map.shape),
                         "n_sites": len(result.sites), "timings": timings}
        if model_path is not None:
            t0 = time.perf_counter()
            summary["model"] = _write_model_tables(folder, model_path, model, elements, density_map, result, ckpt, pairs)
            timings["model"] = time.perf_counter() - t0
        (folder / "detect.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return summary
