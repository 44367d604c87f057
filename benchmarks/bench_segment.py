"""Segmentation speed against map reading: is build cost dominated by the map?

A map of 400³ voxels at 0.83 Å is simulated from the real 6V5B chain D model (gemmi,
3 Å), repeated to fill the box, plus independent Gaussian noise (0.2 sd) everywhere.
The 100 motifs are the five internal loops and bulges of 6V5B in 20 of the repeated
copies. The map is written twice, as EMDB distributes maps (``.map.gz``, gzip level 6)
and uncompressed (``.map``).

Printed figures (all single-threaded: BLAS/OpenMP pinned to one thread):
  * read + statistics time of the map (both forms);
  * time per motif for the cube + zone + labels (``cut_motif``), and for fit_z;
  * ratio of 100 motifs to read + statistics.
Goals (issue 2): <= 20 ms per motif; 100 motifs <= 50 % of read + statistics.

Usage: python benchmarks/bench_segment.py [--size 400] [--motifs 100] [--keep DIR]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from rnamotif_data.em.maps import read_map, write_map  # noqa: E402
from rnamotif_data.em.quality import fit_z  # noqa: E402
from rnamotif_data.em.simulate import simulate_map  # noqa: E402
from rnamotif_data.rna.structure import read_model  # noqa: E402
from rnamotif_data.samples.cubes import SegmentConfig, cut_motif  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SELECTIONS = ["D:14-16,88-90", "D:19-22,82-85", "D:30-31,72-74", "D:31-33,71-72", "D:3-9,95-100"]
VOXEL = 0.83


def build_inputs(size: int, n_motifs: int):
    model = read_model(REPO / "demo" / "mirror" / "pdb" / "6v5b.pdb")
    tile = simulate_map(model.atoms, 3.0, VOXEL, padding=4.0)
    reps = [int(np.ceil(size / n)) for n in tile.shape]
    data = np.tile(tile.data, reps)[:size, :size, :size]
    # independent noise over the whole box (noise repeated with the tiles would let gzip
    # compress the map far better than real EMDB maps compress)
    noise = np.random.default_rng(1).standard_normal(data.shape, dtype=np.float32)
    data += noise * np.float32(0.2 * float(tile.data.std()))
    del noise
    period_xyz = np.array(tile.shape[::-1], dtype=float) * VOXEL
    motifs = []
    copies = [(iz, iy, ix) for iz in range(reps[0]) for iy in range(reps[1]) for ix in range(reps[2])]
    rng = np.random.default_rng(0)
    rng.shuffle(copies)
    box_hi = tile.origin + (size - 1) * VOXEL
    for iz, iy, ix in copies:
        shift = np.array([ix, iy, iz]) * period_xyz
        for sel in SELECTIONS:
            m = model.select(sel)
            moved = replace(m, xyz=m.xyz + shift)
            if np.all(moved.xyz >= tile.origin) and np.all(moved.xyz <= box_hi):
                motifs.append((sel, moved))
        if len(motifs) >= n_motifs:
            break
    return data, tile.origin, motifs[:n_motifs]


def timed(fn, repeat=1):
    best = np.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=400)
    ap.add_argument("--motifs", type=int, default=100)
    ap.add_argument("--keep", type=Path, help="write the maps here instead of a temp dir")
    args = ap.parse_args()

    data, origin, motifs = build_inputs(args.size, args.motifs)
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench_segment_"))
    tmp.mkdir(parents=True, exist_ok=True)
    plain = write_map(tmp / "bench.map", data, VOXEL, origin, placement="nstart")
    gz = tmp / "bench.map.gz"
    with open(plain, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 24)
    del data

    def read_and_stats(path):
        m = read_map(path)
        m.statistics()
        return m

    t_plain, _ = timed(lambda: read_and_stats(plain), repeat=2)
    t_gz, m = timed(lambda: read_and_stats(gz), repeat=2)
    t_read_only, _ = timed(lambda: read_map(gz))
    stats = m.statistics()
    cfg = SegmentConfig()
    for _, motif in motifs[:3]:  # warm-up
        cut_motif(m, motif, cfg, stats=stats)

    def all_motifs():
        return [cut_motif(m, motif, cfg, stats=stats) for _, motif in motifs]

    t_seg, cubes = timed(all_motifs, repeat=3)
    t_fit, _ = timed(lambda: [fit_z(m, mo.xyz, stats) for _, mo in motifs], repeat=3)
    n = len(motifs)
    per = t_seg / n
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}, single thread")
    print(f"map: {m.shape} voxels (z-y-x) at {VOXEL} Å = {m.data.nbytes / 2**20:.0f} MiB float32; "
          f".map.gz {gz.stat().st_size / 2**20:.0f} MiB")
    print(f"motifs: {n} ({len(SELECTIONS)} 6V5B motifs x {n // len(SELECTIONS)} copies), "
          f"{np.mean([c.n_atoms for c in cubes]):.0f} heavy atoms on average, cube {cfg.shape}")
    print(f"read .map.gz + statistics : {t_gz:8.3f} s   (read alone {t_read_only:.3f} s)")
    print(f"read .map    + statistics : {t_plain:8.3f} s")
    print(f"per motif (cube+zone+labels): {per * 1e3:6.2f} ms   goal <= 20 ms   "
          f"{'PASS' if per <= 0.020 else 'FAIL'}")
    print(f"per motif fit_z           : {t_fit / n * 1e3:6.2f} ms")
    for label, t in ((".map.gz", t_gz), (".map", t_plain)):
        ratio = t_seg / t
        print(f"{n} motifs / read+stats ({label:7s}): {ratio:6.1%}   goal <= 50%   "
              f"{'PASS' if ratio <= 0.5 else 'FAIL'}")
    if not args.keep:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
