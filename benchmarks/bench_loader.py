"""Loader throughput: RNAMotifDataset through a DataLoader vs a raw memmap and the upstream path.

A store of N samples (default 2,000; 40³ cubes) is made with
``builders.synthetic_store`` from the demo store's real cubes (built first if missing).
Measured, in cubes per second through ``DataLoader(batch_size=32)`` for one epoch in
random order, with ``num_workers`` 0 and 2:

* ours: ``RNAMotifDataset(split="all", channels=("density",), masked=True)`` (random
  order: one chunk decode per sample) and the same with ``ShardBatchSampler``;
* memmap: the same masked density cubes from a raw float16 ``.npy`` memmap (the
  physical limit here: no decompression);
* upstream: the upstream per-item path reimplemented from its description -- read the
  sample's MRC (float32, one file per sample), resample to 0.5 Å by trilinear
  interpolation (``scipy.ndimage.zoom``, order 1), z-score, centre-crop 64³ -- on a
  subset of ``--upstream-n`` files (it is slow).

Goals (issue 6): ours >= 0.5x memmap and >= 100x upstream at num_workers=2.

Usage: python benchmarks/bench_loader.py [--n 2000] [--keep DIR] [--upstream-n 256]
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
from scipy.ndimage import zoom  # noqa: E402

from builders.synthetic_store import demo_synthetic_store  # noqa: E402
from rnamotif_data.dataset import RNAMotifDataset, ShardBatchSampler  # noqa: E402
from rnamotif_data.store import open_store  # noqa: E402

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
        return torch.from_numpy(self._mm[i].astype(np.float32))[None], int(self.targets[i])

    def __getstate__(self):
        return {**self.__dict__, "_mm": None}


class UpstreamMRC(torch.utils.data.Dataset):
    """The upstream per-item path: MRC read, 0.5 Å trilinear resample, z-score, crop 64³."""

    def __init__(self, files: list[str], targets: np.ndarray):
        self.files, self.targets = files, targets

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with mrcfile.open(self.files[i], permissive=True) as m:
            v = np.asarray(m.data, dtype=np.float32)
            vs = float(m.voxel_size.x)
        v = zoom(v, vs / 0.5, order=1)
        v = (v - v.mean()) / (v.std() + 1e-6)
        c = [(s - 64) // 2 for s in v.shape]
        v = v[c[0]:c[0] + 64, c[1]:c[1] + 64, c[2]:c[2] + 64]
        return torch.from_numpy(np.ascontiguousarray(v))[None], int(self.targets[i])


def rate(dataset, workers: int, batch_sampler=None, epochs: int = 1) -> float:
    """Cubes per second through a DataLoader(batch_size=32), random order, one epoch."""
    kw = dict(num_workers=workers, persistent_workers=False)
    if workers:
        kw["multiprocessing_context"] = "fork"
    if batch_sampler is not None:
        dl = torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, **kw)
    else:
        g = torch.Generator().manual_seed(0)
        dl = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, generator=g, **kw)
    n = 0
    t = time.perf_counter()
    for _ in range(epochs):
        for x, _y in dl:
            n += x.shape[0]
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--upstream-n", type=int, default=256)
    p.add_argument("--keep", type=Path, help="work folder to keep (reused if present)")
    args = p.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_loader_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        root = demo_synthetic_store(work, args.n)
        store = open_store(root)
        ds = RNAMotifDataset(root, split="all", subset="train", channels=("density",), masked=True)
        targets = ds.targets
        npy = work / "density.npy"
        mrc_dir = work / "mrc"
        if not npy.exists():
            dens = np.empty((len(store), *store.cube_shape), dtype=np.float16)
            mrc_dir.mkdir(exist_ok=True)
            for a, b in store.shard_ranges():
                blk = store.read_batch(slice(a, b), arrays=("density", "zone"))
                dens[a:b] = blk["density"] * blk["zone"]
            np.save(npy, dens)
            for i in range(min(args.upstream_n, len(store))):
                with mrcfile.new(mrc_dir / f"sample_{i:05d}.mrc", overwrite=True) as m:
                    m.set_data(dens[i].astype(np.float32))
                    m.voxel_size = store.voxel_size
        mm = MemmapCubes(str(npy), targets)
        up_files = sorted(str(f) for f in mrc_dir.glob("*.mrc"))
        up = UpstreamMRC(up_files, targets[:len(up_files)])
        x_ours, _ = ds[0]
        x_mm, _ = mm[0]
        assert torch.equal(x_ours, x_mm), "memmap baseline must hold the same cubes"

        print(f"machine: {platform.machine()} {os.cpu_count()} cores; python {platform.python_version()}; "
              f"torch {torch.__version__}")
        print(f"store: {len(store)} samples {store.cube_shape}, shard {store.shard_size}; "
              f"{sum(f.stat().st_size for f in Path(root).rglob('*') if f.is_file()) / 2**20:.0f} MiB")
        results = {}
        for w in (0, 2):
            rate(ds, w)  # warm the page cache and imports
            results[("ours", w)] = rate(ds, w)
            results[("ours-shard", w)] = rate(ds, w, ShardBatchSampler(ds, 32, seed=0))
            results[("memmap", w)] = rate(mm, w)
            results[("upstream", w)] = rate(up, w)
            print(f"num_workers={w}: ours {results[('ours', w)]:8.0f} cubes/s | ours+ShardBatchSampler "
                  f"{results[('ours-shard', w)]:8.0f} | memmap {results[('memmap', w)]:8.0f} | upstream "
                  f"{results[('upstream', w)]:6.1f}")
        o, o2, m, u = (results[("ours", 2)], results[("ours-shard", 2)], results[("memmap", 2)],
                       results[("upstream", 2)])
        print(f"num_workers=2: ours/memmap {o / m:.2f} (ShardBatchSampler {o2 / m:.2f})   goal >= 0.5: "
              f"{'PASS' if max(o, o2) / m >= 0.5 else 'FAIL'}")
        print(f"num_workers=2: ours/upstream {o / u:.0f}x (ShardBatchSampler {o2 / u:.0f}x)   goal >= 100x: "
              f"{'PASS' if max(o, o2) / u >= 100 else 'FAIL'}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
