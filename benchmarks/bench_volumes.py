"""Label volumes (issue 36): what do whole 1 Å maps with every voxel labelled cost?

For each map, in one process and in the same run:

* **baseline**: reading the map and its statistics (``read_map(path).statistics()``), the
  work every build does for a map;
* **elements**: reading the model and :func:`rnamotif_data.rna.elements.assign_elements`
  (geometric pairs, the build's default);
* **volumes**: :func:`rnamotif_data.samples.volumes.iter_label_slabs` consumed slab by slab
  (density at 1 Å + element, part, nucleotide and instance volumes; nothing is written),
  with the map's statistics already computed (as a build has them);

printed as seconds and as ratios to the baseline (the issue's goal for tiles and label
volumes together: <= 2x the parallel map read + statistics), and the peak resident memory
while the volumes are made (the kernel's high-water mark, reset after the map and the
model are read) against the input map's float32 size (goal: peak <= 3x) and against one
float32 volume of the 1 Å grid.

Sources (``--source``):

* ``cryodrgn-50s``: the four real cryoDRGN 50S volumes of ``../shared/data/cryodrgn-50s``
  (64³ maps at 6.55 Å -- a 413³ grid at 1 Å -- and the 90,240-atom 50S model);
* ``ribosome``: one ribosome-size entry of ``bench_build.py --source ribosome``: the 50S
  model next to the real 30S 4LFB (142,286 heavy atoms), a ``--size``³ map (default 400)
  simulated at 4 Å with noise (made once; ``--keep DIR`` reuses it);
* ``all`` (default): both.

Usage: python benchmarks/bench_volumes.py [--source all|cryodrgn-50s|ribosome] [--size 400]
       [--slab 16] [--keep DIR]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import CRYODRGN, _peak_rss, _reset_peak_rss, make_ribosome_entry  # noqa: E402

from rnamotif_data.em.maps import read_map  # noqa: E402
from rnamotif_data.rna.elements import assign_elements  # noqa: E402
from rnamotif_data.rna.structure import read_model  # noqa: E402
from rnamotif_data.samples.volumes import VolumeConfig, iter_label_slabs, volume_grid  # noqa: E402

MIB = 1 << 20


def measure(map_path: Path, model_path: Path, config: VolumeConfig) -> dict:
    """Seconds and bytes of one map's baseline, elements and volumes (module docstring)."""
    t0 = time.perf_counter()
    dmap = read_map(map_path)
    stats = dmap.statistics(config.normalise_percentile)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = read_model(model_path)
    elements = assign_elements(model)
    t_elements = time.perf_counter() - t0
    before = _reset_peak_rss()
    t0 = time.perf_counter()
    labelled = 0
    for slab in iter_label_slabs(dmap, model, elements, config, stats=stats):
        labelled += int(np.count_nonzero(slab.element))
    t_volumes = time.perf_counter() - t0
    peak = _peak_rss()
    grid = volume_grid(dmap, config.voxel_size)
    return dict(name=Path(map_path).name, shape=dmap.shape, voxel=float(dmap.voxel_size[0]), grid=grid.shape,
                atoms=len(model.atoms), loops=len(elements.instances), labelled=labelled, t_read=t_read,
                t_elements=t_elements, t_volumes=t_volumes, rss_before=before, rss_peak=peak,
                input_bytes=dmap.data.nbytes, grid_bytes=4 * int(np.prod(grid.shape)))


def report(r: dict) -> None:
    """Print one map's figures."""
    base = r["t_read"]
    print(f"{r['name']}: map {r['shape']} at {r['voxel']:.3g} Å ({r['input_bytes'] / MIB:.1f} MiB float32) -> "
          f"grid {r['grid']} at 1 Å ({r['grid_bytes'] / MIB:.0f} MiB per float32 volume); "
          f"{r['atoms']} atoms, {r['loops']} loops, {r['labelled']} labelled voxels")
    print(f"  read + statistics (baseline): {base:7.2f} s")
    print(f"  model + elements            : {r['t_elements']:7.2f} s = {r['t_elements'] / base:6.2f}x baseline")
    print(f"  label volumes (all slabs)   : {r['t_volumes']:7.2f} s = {r['t_volumes'] / base:6.2f}x baseline")
    total = r["t_elements"] + r["t_volumes"]
    print(f"  elements + volumes          : {total:7.2f} s = {total / base:6.2f}x baseline   goal <= 2x "
          f"(with tiles)   {'PASS' if total <= 2 * base else 'FAIL'}")
    grow = r["rss_peak"] - r["rss_before"]
    print(f"  peak RSS {r['rss_peak'] / MIB:.0f} MiB (map and model read: {r['rss_before'] / MIB:.0f} MiB); "
          f"peak / input map {r['rss_peak'] / r['input_bytes']:.2f}x   goal <= 3x   "
          f"{'PASS' if r['rss_peak'] <= 3 * r['input_bytes'] else 'FAIL'}")
    print(f"  RSS growth while labelling  : {grow / MIB:.0f} MiB = {grow / r['input_bytes']:.2f}x input map = "
          f"{grow / r['grid_bytes']:.3f}x one 1 Å float32 volume")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", choices=("all", "cryodrgn-50s", "ribosome"), default="all")
    p.add_argument("--size", type=int, default=400, help="ribosome: map edge in voxels (default 400)")
    p.add_argument("--slab", type=int, default=VolumeConfig().slab, help="z planes per slab")
    p.add_argument("--keep", type=Path, help="ribosome: keep (and reuse) the simulated entry here")
    args = p.parse_args()
    config = VolumeConfig(slab=args.slab)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"slab {config.slab} planes, label radius {config.label_radius} Å")
    if args.source in ("all", "cryodrgn-50s"):
        for map_path in sorted((CRYODRGN / "emdb").glob("*.mrc")):
            model = CRYODRGN / "pdb" / f"pdb_0000v{map_path.stem[-3:]}.pdb.gz"
            report(measure(map_path, model, config))
    if args.source in ("all", "ribosome"):
        mirror = args.keep or Path(tempfile.mkdtemp(prefix="bench_volumes_"))
        t0 = time.perf_counter()
        pdb_id, emdb_id = make_ribosome_entry(mirror, 0, args.size)
        print(f"ribosome entry {pdb_id} / {emdb_id} ready in {time.perf_counter() - t0:.0f} s: {mirror}")
        report(measure(mirror / "emdb" / f"emd_{emdb_id.split('-')[1]}.map.gz",
                       mirror / "pdb" / f"{pdb_id.lower()}.cif", config))


if __name__ == "__main__":
    main()
