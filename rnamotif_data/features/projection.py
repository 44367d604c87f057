"""A fixed k-dimensional projection of sequence features, fitted on a split's training subset.

The ``seq_proj`` channel of :class:`rnamotif_data.learn.dataset.RNAMotifDataset` paints
each voxel with k numbers per residue instead of E (768 for structRFM): the features'
first k principal components (Pearson 1901; computed by SVD of the centred features,
Halko et al. 2011 give the method's background), fitted on the residues of the training
subset only -- ``train`` for the ``train``/``val`` pair, ``inner_train`` for the nested
protocol's ``inner_train``/``inner_val``/``test`` -- so no validation or test residue
shapes the projection. It is stored next to the split as
``STORE/splits/<scheme>-<split>-<training subset>-<features>-pca<k>.npz`` with the split's
fingerprint and the features' checksum, and refitted when either changes.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnamotif_data.errors import InputError
from rnamotif_data.features.stored import StoredFeatures
from rnamotif_data.storage.layout import url_to_fs
from rnamotif_data.storage.store import RNAMotifStore

log = logging.getLogger(__name__)

__all__ = ["Projection", "fit_projection", "fitted_projection", "TRAINING_SUBSET"]

#: the subset whose residues fit the projection used by each subset
TRAINING_SUBSET = {"train": "train", "val": "train", "inner_train": "inner_train", "inner_val": "inner_train",
                   "test": "inner_train"}


@dataclass(frozen=True, eq=False)
class Projection:
    """``mean`` ``(E,)`` and ``components`` ``(k, E)`` (rows orthonormal), float32."""

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    def apply(self, features: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """``(R, E)`` -> ``(R, k)`` float32; rows where ``mask`` is false are 0."""
        out = (np.asarray(features, np.float32) - self.mean) @ self.components.T
        if mask is not None:
            out[~np.asarray(mask, bool)] = 0.0
        return out.astype(np.float32)


def fit_projection(features: np.ndarray, k: int) -> Projection:
    """First ``k`` principal components of ``features`` ``(T, E)``; fewer rows or
    dimensions than ``k`` leave the missing components zero.

    Raises
    ------
    InputError
        If there are no rows.
    """
    x = np.asarray(features, np.float64)
    if len(x) == 0:
        raise InputError("no residue features to fit a projection on")
    mean = x.mean(axis=0)
    _, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = np.zeros((k, x.shape[1]))
    m = min(k, len(vt))
    comps[:m] = vt[:m]
    # a deterministic sign: each component's largest-magnitude entry positive
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    comps *= np.where(signs == 0, 1.0, signs)[:, None]
    var = sv ** 2
    ratio = np.zeros(k)
    ratio[:m] = var[:m] / var.sum() if var.sum() > 0 else 0.0
    return Projection(mean.astype(np.float32), comps.astype(np.float32), ratio.astype(np.float32))


def _training_indices(store: RNAMotifStore, split_obj, split: str, subset: str) -> tuple[np.ndarray, str, str]:
    if split_obj is None or split == "all":
        return np.arange(len(store)), "all", f"all:{len(store)}"
    train = TRAINING_SUBSET[subset]
    return np.sort(split_obj.indices(split, train)), train, split_obj.fingerprint


def fitted_projection(store: RNAMotifStore, feats: StoredFeatures, split_obj, split: str, subset: str, scheme: str,
                      k: int) -> Projection:
    """The projection of ``feats`` for ``split``/``subset`` (module docstring): read from
    ``STORE/splits/`` when it matches the split and the features, else fitted on the
    training subset's residues and written there (atomically; a read-only store keeps it
    in memory)."""
    idx, train, fingerprint = _training_indices(store, split_obj, split, subset)
    checksum = (feats.path / "checksums.sha256").read_text() if (feats.path / "checksums.sha256").exists() else ""
    name = str(feats.attrs.get("name", feats.path.name))
    fs, base = url_to_fs(store.root)
    path = Path(base) / "splits" / f"{scheme}-{split}-{train}-{name}-pca{k}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["fingerprint"]) == fingerprint and str(z["features_checksums"]) == checksum:
                    return Projection(z["mean"], z["components"], z["explained_variance_ratio"])
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: unreadable, refitted (%s)", path, exc)
    # every training residue counts once per sample that holds it, as the cubes show it
    rows = feats.residue_rows(idx)
    proj = fit_projection(np.asarray(feats.arrays["chain_embedding"][rows], np.float32), k)
    buf = io.BytesIO()
    np.savez(buf, mean=proj.mean, components=proj.components, explained_variance_ratio=proj.explained_variance_ratio,
             fingerprint=np.array(fingerprint), features_checksums=np.array(checksum), n_residues=np.array(len(rows)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
    except OSError as exc:
        log.info("%s: projection kept in memory (%s)", path, exc)
    log.info("seq_proj: %d-component projection of %s fitted on %d residues of %s/%s (%.0f %% of the variance)",
             k, name, len(rows), split, train, 100 * float(proj.explained_variance_ratio.sum()))
    return proj
