"""Loader throughput: RNAMotifDataset through a DataLoader vs a raw memmap and the upstream path.

Stores of N samples (default 2,000; 40³ cubes) are made with
``rnamotif_data.testing.synthetic_store`` from the demo store's real cubes (built first if missing),
one per chunk codec (``lz4``, the default; ``zstd``; ``none``). Measured, in cubes per
second through ``DataLoader(batch_size=32)`` in random order with ``num_workers`` 0 and 2,
as the trainer runs it (persistent workers): one warm-up epoch for every loader (worker
start, page cache), then the best of three timed epochs (the upstream path too, on
``--upstream-n`` files):

* ours: ``RNAMotifDataset(split="all", channels=("density",), masked=True)`` on each
  store (random order: one chunk decode per sample), and the default store with
  ``ShardBatchSampler``;
* memmap: the same masked density cubes from a raw float16 ``.npy`` memmap (the
  physical limit here: no decompression);
* upstream: the upstream training loader's per-item work (:func:`upstream_item`): read the
  sample's MRC (float32, one file per sample), bounding box of voxels > 0 plus 5 Å,
  trilinear resampling to 0.5 Å, the resampled map written to ``norm/``, z-score, 64 zeros
  of padding and a centre crop of 64³ -- on ``--upstream-n`` files (it is slow). Measured
  with the real upstream code on 40³ cubes: 58-123 ms per item (issue 17).

Goals (issues 6, 17): ours >= 0.5x memmap and >= 100x upstream, with 0 and with 2 workers;
printed for each codec.

``--source STORE`` takes the cubes from another built store instead of the demo (e.g. a
build of the real cryoDRGN 50S volumes, whose density compresses 3-5x where the demo's
simulated map compresses 1.2-1.7x).

Usage: python benchmarks/bench_loader.py [--n 2000] [--keep DIR] [--upstream-n 96] [--source STORE]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import mrcfile  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.ndimage import map_coordinates  # noqa: E402

from rnamotif_data.learn.dataset import RNAMotifDataset, ShardBatchSampler  # noqa: E402
from rnamotif_data.storage.shards import CODECS, DEFAULT_CODEC  # noqa: E402
from rnamotif_data.storage.store import open_store  # noqa: E402
from rnamotif_data.testing.synthetic_store import demo_synthetic_store  # noqa: E402

torch.set_num_threads(1)


class MemmapCubes(torch.utils.data.Dataset):
    """Masked density cubes from a raw float16 ``(N, D, H, W)`` .npy memmap."""

    def __init__(self, path: str, targets: np.ndarray):
        self.path, self.targets, self._mm = path, targets, None

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        if self._mm is None:
            self._mm = np.load(self.path, mmap_mode="r")
        # the cast in torch, as the dataset does (numpy's float16 cast is ~6x slower): the
        # baseline is the raw read, not a slow conversion
        return torch.from_numpy(np.ascontiguousarray(self._mm[i])).float()[None], int(self.targets[i])

    def __getstate__(self):
        return {**self.__dict__, "_mm": None}


def upstream_item(path: str, norm_dir: Path) -> np.ndarray:
    """The upstream training loader's work for one item (our code, the same operations on
    the same sizes): read the MRC; take the bounding box of voxels > 0 plus a 5 Å margin,
    clamped to the map; resample it trilinearly to 0.5 Å voxels; write the resampled map
    to ``norm/`` (as the upstream does before reading it back); z-score over the resampled
    box; pad 64 zeros on every side and crop 64³ at the centre. Returns ``(64, 64, 64)``
    float32 (density only: the upstream reads no label channel)."""
    with mrcfile.open(path, permissive=True) as m:
        v = np.asarray(m.data, dtype=np.float32)
        vs = float(m.voxel_size.x)
    nz = np.argwhere(v > 0)
    margin = int(np.ceil(5.0 / vs))
    if nz.size:
        lo = np.maximum(nz.min(axis=0) - margin, 0)
        hi = np.minimum(nz.max(axis=0) + margin + 1, v.shape)
        v = v[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    # trilinear resampling to 0.5 Å over the box (grid points at 0.5 Å steps of the box)
    new = [max(1, int(round((n - 1) * vs / 0.5)) + 1) for n in v.shape]
    coords = np.meshgrid(*[np.linspace(0, n - 1, m) for n, m in zip(v.shape, new)], indexing="ij")
    r = map_coordinates(v, coords, order=1, mode="nearest").astype(np.float32)
    out = norm_dir / Path(path).name
    with mrcfile.new(out, overwrite=True) as m:
        m.set_data(r)
        m.voxel_size = 0.5
    r = (r - r.mean()) / (r.std() + 1e-6)
    r = np.pad(r, 64)
    c = [(n - 64) // 2 for n in r.shape]
    return np.ascontiguousarray(r[c[0]:c[0] + 64, c[1]:c[1] + 64, c[2]:c[2] + 64])


class UpstreamMRC(torch.utils.data.Dataset):
    """The upstream per-item path (:func:`upstream_item`)."""

    def __init__(self, files: list[str], targets: np.ndarray, norm_dir: Path):
        self.files, self.targets, self.norm_dir = files, targets, norm_dir

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return torch.from_numpy(upstream_item(self.files[i], self.norm_dir))[None], int(self.targets[i])


def rate(dataset, workers: int, batch_sampler=None, epochs: int = 3, warm: bool = True) -> float:
    """Cubes per second through a DataLoader(batch_size=32) in random order, as the trainer
    runs it (persistent workers): one warm-up epoch (worker start, imports, page cache --
    the same for every loader), then the best of ``epochs`` timed epochs (the VM's other
    tenants make single epochs vary by up to 2x; the best is the loader's own speed)."""
    kw = dict(num_workers=workers, persistent_workers=workers > 0)
    if workers:
        kw["multiprocessing_context"] = "fork"
    if batch_sampler is not None:
        dl = torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, **kw)
    else:
        g = torch.Generator().manual_seed(0)
        dl = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, generator=g, **kw)
    if warm:
        for _ in dl:
            pass
    best = 0.0
    for _ in range(epochs):
        n = 0
        t = time.perf_counter()
        for x, _y in dl:
            n += x.shape[0]
        best = max(best, n / (time.perf_counter() - t))
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--upstream-n", type=int, default=96)
    p.add_argument("--keep", type=Path, help="work folder to keep (reused if present)")
    p.add_argument("--source", type=Path, help="built store whose cubes are used (default: the demo)")
    args = p.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_loader_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        roots = {c: demo_synthetic_store(work, args.n, codec=c, source=args.source) for c in CODECS}
        store = open_store(roots[DEFAULT_CODEC])
        datasets = {c: RNAMotifDataset(r, split="all", subset="train", channels=("density",), masked=True)
                    for c, r in roots.items()}
        ds = datasets[DEFAULT_CODEC]
        targets = ds.targets
        npy = work / "density.npy"
        mrc_dir = work / "mrc"
        if not npy.exists():
            dens = np.empty((len(store), *store.cube_shape), dtype=np.float16)
            for a, b in store.shard_ranges():
                blk = store.read_batch(slice(a, b), arrays=("density", "zone"))
                dens[a:b] = blk["density"] * blk["zone"]
            np.save(npy, dens)
        if not mrc_dir.is_dir() or not any(mrc_dir.glob("*.mrc")):
            dens = np.load(npy, mmap_mode="r")
            mrc_dir.mkdir(exist_ok=True)
            for i in range(min(args.upstream_n, len(store))):
                with mrcfile.new(mrc_dir / f"sample_{i:05d}.mrc", overwrite=True) as m:
                    m.set_data(np.asarray(dens[i], dtype=np.float32))
                    m.voxel_size = store.voxel_size
        mm = MemmapCubes(str(npy), targets)
        up_files = sorted(str(f) for f in mrc_dir.glob("*.mrc"))[:args.upstream_n]
        (work / "norm").mkdir(exist_ok=True)
        up = UpstreamMRC(up_files, targets[:len(up_files)], work / "norm")
        t0 = time.perf_counter()
        for f in up_files[:32]:
            assert upstream_item(f, work / "norm").shape == (64, 64, 64)
        per_item_ms = (time.perf_counter() - t0) / 32 * 1e3
        x_mm, _ = mm[0]
        for c, d in datasets.items():
            assert torch.equal(d[0][0], x_mm), f"memmap baseline must hold the same cubes ({c})"

        print(f"machine: {platform.machine()} {os.cpu_count()} cores; python {platform.python_version()}; "
              f"torch {torch.__version__}; {time.strftime('%Y-%m-%d')}")
        print(f"cubes from: {args.source or 'the demo store'}")
        print(f"upstream path: {per_item_ms:.1f} ms per item in one process (the real upstream code: 58-123 ms)")
        for c, r in roots.items():
            size = sum(f.stat().st_size for f in Path(r).rglob("*") if f.is_file()) / 2**20
            print(f"store [{c}{' (default)' if c == DEFAULT_CODEC else ''}]: {len(store)} samples "
                  f"{store.cube_shape}, shard {store.shard_size}; {size:.0f} MiB")
        results = {}
        for w in (0, 2):
            for c, d in datasets.items():
                results[(c, w)] = rate(d, w)
            results[("shard", w)] = rate(ds, w, ShardBatchSampler(ds, 32, seed=0))
            results[("memmap", w)] = rate(mm, w)
            results[("upstream", w)] = rate(up, w, warm=False)  # best of 3 epochs of --upstream-n files
            print(f"num_workers={w}: " + " | ".join(f"ours[{c}] {results[(c, w)]:6.0f}" for c in datasets)
                  + f" | ours[{DEFAULT_CODEC}]+ShardBatchSampler {results[('shard', w)]:6.0f} | memmap "
                  f"{results[('memmap', w)]:6.0f} | upstream {results[('upstream', w)]:5.1f} cubes/s")
        for c in datasets:
            for w in (0, 2):
                o, m, u = results[(c, w)], results[("memmap", w)], results[("upstream", w)]
                note = ""
                if c == DEFAULT_CODEC:  # ShardBatchSampler is part of the loader's API
                    o2 = results[("shard", w)]
                    note = f" [random order {o / m:.2f} / {o / u:.0f}x, ShardBatchSampler {o2 / m:.2f} / {o2 / u:.0f}x]"
                    o = max(o, o2)
                print(f"ours[{c}] num_workers={w}: ours/memmap {o / m:.2f} (goal >= 0.5: "
                      f"{'PASS' if o / m >= 0.5 else 'FAIL'}); ours/upstream {o / u:.0f}x (goal >= 100x: "
                      f"{'PASS' if o / u >= 100 else 'FAIL'}){note}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
