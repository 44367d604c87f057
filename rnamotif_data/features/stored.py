"""Sequence features stored with a store: ``STORE/features/<name>/``.

Written by ``rnamotif embed`` (:mod:`rnamotif_data.features.embed`), derived from the
store and its models after the build, so, like ``splits/``, not covered by the store's
``checksums.sha256``: the folder has its own. A store without features stays valid.

::

    features/<name>/attrs.json               model, version, checkpoint sha256, dim, windows,
                                             the store it belongs to (below)
    features/<name>/chain_embedding.npy      (T, E) float16: the features of every embedded
                                             chain, nucleotide by nucleotide; each distinct
                                             chain sequence once (one model in many maps, or
                                             copies of a chain, share their rows)
    features/<name>/residue_row.npy          (R,) int64: for every sample's residues in
                                             selection order (its ``residues``), samples in
                                             order, the row of its features; -1 where it has
                                             none (an amino acid, a model that could not be read)
    features/<name>/residue_offsets.npy      (N + 1,) int64: sample i is entries offsets[i]:offsets[i+1]
                                             (as many as its ``n_residues``)
    features/<name>/context_row.npy          (U,) int64: each strand with up to 8 nucleotides of
                                             its chain on both sides (the ``context_sequence``)
    features/<name>/context_offsets.npy      (N + 1,) int64
    features/<name>/context_in_sample.npy    (U,) bool: the position is one of the sample's residues
    features/<name>/voxel_slot.npy           (V,) uint8: for every voxel of every sample with
                                             ``labels > 0``, in C order (z-y-x), the 1-based position of
                                             its nearest atom's residue in the sample's residues
                                             (0: a labelled atom of another residue, ``label_scope="all"``)
    features/<name>/voxel_offsets.npy        (N + 1,) int64
    features/<name>/checksums.sha256         sha256 of every other file (sha256sum format)

The voxel slots paint per-residue features onto the cube (:func:`paint`): voxel ``v`` of
sample ``i`` takes the features of residue ``slot - 1`` of the sample; everything else is 0.
``attrs.json`` records ``store_config_hash`` and ``store_metadata_sha256`` (the store's
``metadata.parquet`` line of ``checksums.sha256``): features made for another build of the
store are refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnamotif_data.errors import ConfigError, StoreError
from rnamotif_data.storage.checksums import read_checksums, sha256_file
from rnamotif_data.storage.layout import FEATURE_ARRAYS, url_to_fs
from rnamotif_data.storage.store import RNAMotifStore
from rnamotif_data.storage.writer import StoreUpdate

__all__ = ["FEATURE_FORMAT", "FEATURE_FILES", "features_dir", "store_identity", "write_features",
           "StoredFeatures", "open_features", "verify_features", "list_features", "paint"]

FEATURE_FORMAT = 1
#: file -> (dtype, number of dimensions)
FEATURE_FILES = FEATURE_ARRAYS
_CHECKSUMS = "checksums.sha256"


#: a feature set's name: one plain folder name (never a path out of ``features/``)
_NAME = re.compile(r"^[\w-][\w.-]{0,99}$", re.ASCII)


def features_dir(root: str, name: str) -> Path:
    """``STORE/features/<name>`` (a local store; sequence features are written locally).

    Raises
    ------
    rnamotif_data.errors.ConfigError
        If ``name`` is not a plain folder name (letters, digits, ``_``, ``-``, ``.``; not
        starting with ``.``): ``../../x`` would leave the store.
    StoreError
        For a store that is not on a local disk.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"--name {name!r}: a feature name is a plain folder name (letters, digits, _ - .), e.g. "
                          "structrfm-random")
    fs, path = url_to_fs(str(root))
    if "file" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        raise StoreError(f"{root}: sequence features are stored with local stores only; copy the store to a disk first")
    return Path(path) / "features" / name


def store_identity(store: RNAMotifStore) -> dict:
    """What ties features to one build of a store: its config hash and its metadata's sha256."""
    sums = read_checksums(store.root)
    return {"store_config_hash": store.attrs.get("config_hash"), "store_metadata_sha256": sums.get("metadata.parquet"),
            "n_samples": len(store)}


def write_features(store: RNAMotifStore, name: str, arrays: dict[str, np.ndarray], attrs: dict,
                   *, overwrite: bool = False) -> Path:
    """Write ``features/<name>/`` atomically: into a temporary sibling folder, checksums
    last, then renamed into place. An existing folder is replaced only with ``overwrite``
    (and only if it holds this package's feature files).

    Raises
    ------
    rnamotif_data.errors.StoreError
        If the folder exists (without ``overwrite``), or an array is missing or of the wrong dtype.
    """
    dest = features_dir(store.root, name)
    if dest.exists():
        if not overwrite:
            raise StoreError(f"{dest}: sequence features {name!r} exist already; pass --overwrite to replace them")
        if not (dest / "attrs.json").exists():
            raise StoreError(f"{dest}: not a folder this package wrote (no attrs.json); move it away first")
        own = {"attrs.json", _CHECKSUMS, *(f"{key}.npy" for key in FEATURE_FILES)}
        foreign = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")
                         if p.relative_to(dest).as_posix() not in own)
        if foreign:  # --overwrite replaces the feature set, never a user's file beside it
            raise StoreError(f"{dest}: holds {foreign[0]}{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}, "
                             "which rnamotif embed did not write; move it before --overwrite; nothing was changed")
    with StoreUpdate(store.root) as update:  # no build, recode or other embed writes the store meanwhile
        return _write_locked(update, store, dest, name, arrays, attrs)


def _write_locked(update: StoreUpdate, store: RNAMotifStore, dest: Path, name: str, arrays: dict[str, np.ndarray],
                  attrs: dict) -> Path:
    for key, (dtype, ndim) in FEATURE_FILES.items():
        a = arrays.get(key)
        if a is None or a.dtype != np.dtype(dtype) or a.ndim != ndim:
            raise StoreError(f"{dest}: array {key} missing or not {dtype} with {ndim} dimension(s)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's folder is private; the store's folders are not
    try:
        for key in FEATURE_FILES:
            np.save(tmp / f"{key}.npy", np.ascontiguousarray(arrays[key]), allow_pickle=False)
        full = {"feature_format": FEATURE_FORMAT, "name": name, **attrs, **store_identity(store)}
        (tmp / "attrs.json").write_text(json.dumps(full, indent=1, sort_keys=True))
        sums = update.seal_folder(tmp)
        if dest.exists():
            old = dest.with_name(f".{name}.old-{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    listed = dict(update.attrs().get("sequence_features") or {})
    listed[name] = _listing(full, sums)
    update.update_attrs({"sequence_features": listed})
    return dest


def _rerun(store: RNAMotifStore, name: str, attrs: dict) -> str:
    """The command that remakes feature set ``name`` (for messages)."""
    random = str(attrs.get("checkpoint_sha256") or "").startswith("random:")
    extra = " --random-weights" if random else (" --checkpoint DIR" if attrs.get("model") == "structrfm" else "")
    return f"'rnamotif embed {store.root} --embedder {attrs.get('model', '?')}{extra} --name {name} --overwrite'"


def _listing(attrs: dict, sums: dict) -> dict:
    """What the store's attributes say of one feature set (``sequence_features``)."""
    return {"model": attrs.get("model"), "model_version": attrs.get("model_version"),
            "checkpoint_sha256": attrs.get("checkpoint_sha256"), "dim": attrs.get("dim"),
            "attrs_sha256": sums.get("attrs.json")}


def list_features(store: RNAMotifStore) -> list[str]:
    """Names of the sequence features stored with ``store``: folders with an ``attrs.json``,
    and the names its attributes list (``sequence_features``), so a listed set whose folder
    is gone is still checked."""
    try:
        base = features_dir(store.root, "x").parent
    except StoreError:
        return []
    names = set((store.attrs.get("sequence_features") or {}))
    if base.is_dir():
        names |= {p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "attrs.json").exists()}
    return sorted(names)


@dataclass(frozen=True, eq=False)
class StoredFeatures:
    """The arrays of ``features/<name>`` (memory-mapped, read-only) and their ``attrs``."""

    path: Path
    attrs: dict
    arrays: dict

    @property
    def dim(self) -> int:
        """E, features per residue."""
        return int(self.arrays["chain_embedding"].shape[1])

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        out = np.zeros((len(rows), self.dim), dtype=np.float16)
        have = rows >= 0
        out[have] = self.arrays["chain_embedding"][rows[have]]
        return out

    def residues(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index``'s residue features ``(R, E)`` float16 (0 where it has none) and
        mask ``(R,)`` bool."""
        o = self.arrays["residue_offsets"]
        rows = np.asarray(self.arrays["residue_row"][int(o[index]):int(o[index + 1])])
        return self._gather(rows), rows >= 0

    def context(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index``'s context features ``(C, E)`` float16 and which are its own residues ``(C,)``."""
        o = self.arrays["context_offsets"]
        a, b = int(o[index]), int(o[index + 1])
        return self._gather(self.arrays["context_row"][a:b]), np.asarray(self.arrays["context_in_sample"][a:b])

    def residue_rows(self, indices) -> np.ndarray:
        """Rows of ``chain_embedding`` of the residues of samples ``indices`` that have features."""
        o = self.arrays["residue_offsets"]
        rows = [np.asarray(self.arrays["residue_row"][int(o[i]):int(o[i + 1])]) for i in indices]
        flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        return flat[flat >= 0]

    def slots(self, index: int) -> np.ndarray:
        """Sample ``index``'s voxel slots ``(V_i,)`` uint8, one per voxel with ``labels > 0`` (C order)."""
        o = self.arrays["voxel_offsets"]
        return self.arrays["voxel_slot"][int(o[index]):int(o[index + 1])]


def _problems(path: Path, store: RNAMotifStore | None, *, full: bool) -> tuple[list[str], dict, dict]:
    problems: list[str] = []
    if not (path / "attrs.json").exists():
        return [f"{path}: no attrs.json"], {}, {}
    try:
        attrs = json.loads((path / "attrs.json").read_text())
    except ValueError as exc:
        return [f"{path}/attrs.json: not JSON ({exc})"], {}, {}
    listed = {}
    if (path / _CHECKSUMS).exists():
        for line in (path / _CHECKSUMS).read_text().splitlines():
            h, _, n = line.partition("  ")
            listed[n] = h
    else:
        problems.append(f"{path}: no {_CHECKSUMS}")
    for f in sorted(path.iterdir()):
        if f.name == _CHECKSUMS:
            continue
        if f.name not in listed:
            problems.append(f"{path}/{f.name}: not listed in {_CHECKSUMS}")
        elif full and sha256_file(f) != listed[f.name]:
            problems.append(f"{path}/{f.name}: sha256 differs from {_CHECKSUMS}")
    problems += [f"{path}/{n}: missing" for n in listed if not (path / n).exists()]
    if attrs.get("feature_format", 0) > FEATURE_FORMAT:
        problems.append(f"{path}: feature format {attrs.get('feature_format')} is newer than this package's; upgrade")
    if store is not None:
        want = store_identity(store)
        diff = [k for k, v in want.items() if attrs.get(k) != v]
        if diff:
            problems.append(f"{path}: made for another build of the store ({', '.join(diff)} differ); run "
                            f"{_rerun(store, path.name, attrs)}")
    arrays = {}
    for key, (dtype, ndim) in FEATURE_FILES.items():
        f = path / f"{key}.npy"
        if not f.exists():
            problems.append(f"{f}: missing")
            continue
        try:
            a = np.load(f, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            problems.append(f"{f}: unreadable ({exc})")
            continue
        if a.dtype != np.dtype(dtype) or a.ndim != ndim:
            problems.append(f"{f}: {a.dtype} with {a.ndim} dimension(s), expected {dtype} with {ndim}")
        arrays[key] = a
    if problems:
        return problems, attrs, arrays
    n_samples = int(attrs.get("n_samples", -1))
    for kind, data in (("residue", "residue_row"), ("context", "context_row"), ("voxel", "voxel_slot")):
        o = arrays[f"{kind}_offsets"]
        if len(o) != n_samples + 1 or o[0] != 0 or np.any(np.diff(o) < 0) or o[-1] != len(arrays[data]):
            problems.append(f"{path}: {kind}_offsets do not partition {data} into {n_samples} samples")
    if len(arrays["context_row"]) != len(arrays["context_in_sample"]):
        problems.append(f"{path}: context_row and context_in_sample differ in length")
    t = len(arrays["chain_embedding"])
    for key in ("residue_row", "context_row"):
        r = np.asarray(arrays[key])
        if r.size and (r.min() < -1 or r.max() >= t):
            problems.append(f"{path}: {key} points outside chain_embedding's {t} rows")
    if arrays["chain_embedding"].shape[1] != int(attrs.get("dim", -1)):
        problems.append(f"{path}: feature dimension differs from attrs.json's dim {attrs.get('dim')}")
    return problems, attrs, arrays


def open_features(store: RNAMotifStore, name: str) -> StoredFeatures:
    """The sequence features ``name`` of ``store``, checked (files listed, store identity,
    shapes; each file's sha256 is checked by :func:`verify_features`, not on every open).

    Raises
    ------
    rnamotif_data.errors.StoreError
        If the store has none by that name (the message gives the command that makes them),
        or they are damaged or were made for another build of the store.
    """
    path = features_dir(store.root, name)
    if not path.is_dir():
        have = list_features(store)
        raise StoreError(f"{store.root}: no sequence features {name!r}"
                         + (f" (stored: {', '.join(have)})" if have else "")
                         + "; make them with 'rnamotif embed " + str(store.root)
                         + (f" --embedder {name}'" if name in ("onehot", "structrfm") else f" --embedder onehot|structrfm --name {name}'"))
    problems, attrs, arrays = _problems(path, store, full=False)
    if problems:
        raise StoreError(f"{problems[0]}" + (f" (and {len(problems) - 1} more problem(s): rnamotif verify)"
                                             if len(problems) > 1 else ""))
    return StoredFeatures(path, attrs, arrays)


def verify_features(store: RNAMotifStore, name: str, labels_count: np.ndarray | None = None) -> list[str]:
    """Every problem of ``features/<name>``: checksums, the store's identity, offsets,
    residue counts against ``n_residues``, slots past a sample's residues, and, given
    ``labels_count`` ``(N,)`` (voxels with ``labels > 0`` per sample), the voxel counts."""
    path = features_dir(store.root, name)
    problems, attrs, arrays = _problems(path, store, full=True)
    listed = (store.attrs.get("sequence_features") or {}).get(name)
    if listed is None:
        problems.append(f"{path}: not listed in the store's attributes (sequence_features); rerun "
                        f"{_rerun(store, name, attrs)}")
    elif (path / "attrs.json").exists() and listed.get("attrs_sha256") != sha256_file(path / "attrs.json"):
        problems.append(f"{path}: the store's attributes (sequence_features) describe other features than attrs.json")
    if problems:
        return problems
    meta = store.metadata
    n_res = meta["n_residues"].fillna(0).to_numpy(dtype=np.int64)
    got = np.diff(arrays["residue_offsets"])  # one entry (a row or -1) per residue
    bad = np.flatnonzero(got != n_res)
    if bad.size:
        i = int(bad[0])
        problems.append(f"{path}: {bad.size} sample(s) do not have one feature row per residue (first: "
                        f"{meta['sample_id'].iloc[i]}, {got[i]} rows for {n_res[i]} residues)")
    vo = arrays["voxel_offsets"]
    slot = np.asarray(arrays["voxel_slot"])
    if slot.size:
        sample_of = np.repeat(np.arange(len(vo) - 1), np.diff(vo))
        over = np.flatnonzero(slot.astype(np.int64) > n_res[sample_of])
        if over.size:
            i = int(sample_of[over[0]])
            problems.append(f"{path}: voxel slots past the sample's residues (first: {meta['sample_id'].iloc[i]})")
    if labels_count is not None:
        counts = np.asarray(labels_count)
        bad = np.flatnonzero((np.diff(vo) != counts) & (counts >= 0))  # -1: a sample whose labels were not read
        if bad.size:
            i = int(bad[0])
            problems.append(f"{path}: {bad.size} sample(s) have voxel slots for other voxels than their labels "
                            f"(first: {meta['sample_id'].iloc[i]})")
    return problems


def paint(shape: tuple[int, int, int], labels: np.ndarray, slots: np.ndarray, residue_features: np.ndarray) -> np.ndarray:
    """Per-residue features painted onto a cube: ``(K, D, H, W)`` float32, z-y-x.

    ``labels`` ``(D, H, W)``: the sample's label cube (its voxels with ``labels > 0`` are the
    slots' voxels, in C order); ``slots`` ``(V,)`` uint8; ``residue_features`` ``(R, K)``.
    Voxels without a slot (0) are 0.

    Raises
    ------
    StoreError
        If the slots do not match the labelled voxels or name a residue past ``R``.
    """
    flat = np.flatnonzero(np.asarray(labels).reshape(-1) > 0)
    if len(flat) != len(slots):
        raise StoreError(f"{len(slots)} voxel slots for {len(flat)} labelled voxels")
    k = residue_features.shape[1]
    if slots.size and int(slots.max()) > len(residue_features):
        raise StoreError(f"voxel slot {int(slots.max())} past the sample's {len(residue_features)} residues")
    table = np.concatenate([np.zeros((1, k), np.float32), np.asarray(residue_features, np.float32)])
    out = np.zeros((int(np.prod(shape)), k), dtype=np.float32)
    out[flat] = table[slots.astype(np.int64)]
    return np.ascontiguousarray(out.T).reshape(k, *shape)
