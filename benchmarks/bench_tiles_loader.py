"""Tile loader throughput: RNAMotifTiles (tiles read out of the stored blocks) vs a raw memmap
of the same volumes (issue 36's goal: >= 0.5x the memmap with 0 workers).

A tiled store is built (``rnamotif build --tiles``; the shipped training demo by default, or
``--manifest``/``--mirror`` for another, e.g. the four real cryoDRGN 50S volumes) or taken
from ``--store``. Every entry's density (float16) and element (uint8) volumes are decoded
once and written as raw ``.npy`` files; ``MemmapTiles`` reads each tile's box out of those
memmaps with exactly the item work of ``RNAMotifTiles`` (the same outside values, the same
float32 / int64 tensors). Both go through ``DataLoader(batch_size=4)`` in random order; one
warm-up epoch, then the best of three. ``--workers`` 0 and 2.

Also printed: the size of the tile part of the store (``volumes/`` and the three tables)
against the entries' 1 Å map and label volumes compressed as one blob each (zstd level 3 of
numcodecs; the goal: <= 1.5x), and against materialising every tile (tiles overlap).

Usage: python benchmarks/bench_tiles_loader.py [--store STORE | --manifest M --mirror DIR] [--keep DIR]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rnamotif_data.learn.tiles import RNAMotifTiles  # noqa: E402
from rnamotif_data.samples.tiles import OUTSIDE  # noqa: E402
from rnamotif_data.storage.volumes import VOLUME_ARRAYS  # noqa: E402

torch.set_num_threads(1)


class MemmapTiles(torch.utils.data.Dataset):
    """The tiles of ``ds`` read from raw ``.npy`` memmaps of each entry's whole volumes."""

    def __init__(self, ds: RNAMotifTiles, folder: Path):
        self.folder = folder
        self.entry, self.origin, self.size = ds._entry, ds._origin, ds._size
        self.grid = {e: tuple(int(v) for v in ds.entries.loc[e, "grid_shape"]) for e in set(ds._entry)}
        self._maps: dict = {}

    def __len__(self):
        return len(self.entry)

    def _map(self, e: str, name: str):
        key = (e, name)
        if key not in self._maps:
            self._maps[key] = np.load(self.folder / f"{e}.{name}.npy", mmap_mode="r")
        return self._maps[key]

    def __getitem__(self, i):
        e, o, s = str(self.entry[i]), self.origin[i], int(self.size[i])
        out = {}
        for name, fill in (("density", 0), ("element", OUTSIDE)):
            src = self._map(e, name)
            box = np.full((s, s, s), fill, dtype=src.dtype)
            z, y, x = (min(s, n - int(v)) for n, v in zip(src.shape, o))
            box[:z, :y, :x] = src[o[0]:o[0] + z, o[1]:o[1] + y, o[2]:o[2] + x]
            out[name] = box
        return {"density": torch.from_numpy(out["density"]).float().unsqueeze(0),
                "element": torch.from_numpy(out["element"].astype(np.int64)), "tile_index": int(i)}

    def __getstate__(self):
        return {**self.__dict__, "_maps": {}}


def rate(dataset, workers: int, epochs: int = 3) -> float:
    """Tiles per second, best of ``epochs`` after one warm-up epoch."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))
    best = 0.0
    for epoch in range(epochs + 1):
        t = time.perf_counter()
        n = sum(len(b["density"]) for b in loader)
        if epoch:
            best = max(best, n / (time.perf_counter() - t))
    return best


def sizes(store: Path, ds: RNAMotifTiles, folder: Path) -> tuple[int, int, int]:
    """(tile part of the store, the five volumes of each entry compressed as blobs, tiles
    materialised compressed) in bytes."""
    import numcodecs

    part = sum(f.stat().st_size for f in (store / "volumes").rglob("*") if f.is_file())
    part += sum((store / n).stat().st_size for n in ("volumes.parquet", "tiles.parquet", "instances.parquet"))
    zstd = numcodecs.Zstd(level=3)
    blobs = 0
    for e, row in ds.entries[ds.entries["error"].isna()].iterrows():  # all five volumes of each entry
        vol = ds._reader(str(e)).read_box((0, 0, 0), [int(v) for v in row["grid_shape"]], VOLUME_ARRAYS)
        blobs += sum(len(zstd.encode(np.ascontiguousarray(a))) for a in vol.values())
    per_tile = 0
    for i in range(min(len(ds), 64)):  # a sample of tiles, scaled
        row = ds.tiles.iloc[i]
        a = ds._reader(str(row["entry"])).read_box(row["origin_voxel"], int(row["size"]), VOLUME_ARRAYS)
        per_tile += sum(len(zstd.encode(v)) for v in a.values())
    return part, blobs, int(per_tile / max(min(len(ds), 64), 1) * len(ds))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, help="a store built with --tiles (else one is built)")
    p.add_argument("--manifest", type=Path)
    p.add_argument("--mirror", type=Path)
    p.add_argument("--keep", type=Path, help="work folder to keep (reused)")
    args = p.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    work.mkdir(parents=True, exist_ok=True)
    store = args.store or work / "tiles.zarr"
    if not (store / "tiles.parquet").exists():
        cmd = [sys.executable, "-m", "rnamotif_data", "build", "--tiles", "--no-progress", "--out", str(store)]
        if args.manifest:
            cmd += ["--manifest", str(args.manifest), "--mirror", str(args.mirror)]
        subprocess.run(cmd, check=True)
    ds = RNAMotifTiles(store, "all", volumes=("density", "element"))
    folder = work / "memmap"
    folder.mkdir(exist_ok=True)
    for e, row in ds.entries[ds.entries["error"].isna()].iterrows():
        if not (folder / f"{e}.element.npy").exists():
            vol = ds._reader(str(e)).read_box((0, 0, 0), [int(v) for v in row["grid_shape"]], ("density", "element"))
            for name, a in vol.items():
                np.save(folder / f"{e}.{name}.npy", a)
    mm = MemmapTiles(ds, folder)
    print(f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}; {len(ds)} tiles of {ds.tile_size}³ from {store}")
    for workers in (0, 2):
        ours, raw = rate(ds, workers), rate(mm, workers)
        print(f"workers {workers}: RNAMotifTiles {ours:7.1f} tiles/s, memmap {raw:7.1f} tiles/s, ratio "
              f"{ours / raw:.2f} (goal >= 0.5)")
    part, blobs, materialised = sizes(Path(store), ds, folder)
    print(f"size: tile part {part / 1e6:.1f} MB, volumes as zstd blobs {blobs / 1e6:.1f} MB, ratio "
          f"{part / blobs:.2f} (goal <= 1.5); every tile materialised (zstd) ~{materialised / 1e6:.1f} MB "
          f"({materialised / part:.1f}x the stored blocks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
