"""Detection speed (issue 37): map voxels per second of ``rnamotif detect`` and the share
of its time outside the network.

The map: a ``--size``³ box at 1 Å (default 200) resampled from a real cryoDRGN 50S volume
(``../shared/data/cryodrgn-50s/emdb/emd_90000018.mrc``, 6.55 Å voxels) around its centre
and written as MRC, so the 1 Å grid is the map's own (nothing to resample but the
normalisation). The network: the baseline ``unet3d`` 8-16-32 (``width 8, depth 3``) with
random weights (speed does not depend on them), its checkpoint saved and loaded as
``rnamotif detect`` does. The run: :func:`rnamotif_data.learn.detect.detect` (read,
resample and normalise, tiles through the network, labels, sites, back to the map's grid,
MRC and tables written), timed by its own stages (``detect.json``).

Reported: the machine's load average before and after (this machine's two cores are
shared: a run beside other work is slower than the cores allow; ``cpu_s`` is the process's
CPU time), map voxels per second over the whole run (goal >= 2 × 10⁵ on the 2-core CPU,
>= 10⁷ on a GPU), and the share of the time in stitching (cutting and placing tiles) and
resampling (to 1 Å and back to the map's grid) (goal <= 10 %). With ``--margins``, how
much the stitched probabilities differ from those of a margin that covers the network's
receptive field (half-width 22 voxels: margin 24), for smaller margins, on a 96³ crop of
that map in 64³ tiles (many tile faces; random weights, so a bound on nothing but the seams).

With ``--map PATH`` the run is on that map as it is (e.g. the whole 50S volume: a 413³ grid
at 1 Å).

Usage: python benchmarks/bench_detect.py [--size 200 | --map PATH] [--device auto] [--tile N] [--margin 16]
       [--batch-size 1] [--width 8] [--depth 3] [--margins 0,8,16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnamotif_data.em.maps import read_map, write_map
from rnamotif_data.learn.detect import DetectConfig, density_volume, detect
from rnamotif_data.learn.segnet import UNet3D, save_segmentation_checkpoint
from rnamotif_data.learn.stitch import predict_volume, torch_predict_fn
from rnamotif_data.rna.elements import ELEMENT_NAMES

REPO = Path(__file__).resolve().parents[1]
MAP = REPO.parent / "shared" / "data" / "cryodrgn-50s" / "emdb" / "emd_90000018.mrc"


def make_map(folder: Path, size: int) -> Path:
    """A ``size``³ box at 1 Å around the 50S volume's centre, written as MRC."""
    src = read_map(MAP)
    centre = src.origin + (np.asarray(src.shape[::-1]) - 1) * src.voxel_size / 2
    origin = centre - (size - 1) / 2
    data, _ = src.sample_box(origin, (size, size, size), 1.0)
    return write_map(folder / f"box{size}.mrc", data, 1.0, origin)


def run_detect(map_path: Path, ckpt: Path, out: Path, device: str, config: DetectConfig) -> dict:
    t0, c0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    summary = detect(map_path, ckpt, out, device=device, config=config)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    t = summary["timings"]
    n = int(np.prod(summary["grid_shape"]))  # voxels of the 1 Å grid (the map's own for a 1 Å map)
    outside = t["stitch"] + t["resample"] + t["back"]
    return {"load_average_before": load0, "load_average_after": os.getloadavg()[0], "cpu_s": cpu,
            "voxels": n, "total_s": total, "voxels_per_s": n / total, "network_s": t["network"],
            "stitch_s": t["stitch"], "resample_s": t["resample"], "back_s": t["back"], "other_s": total - t["network"] - outside,
            "stitch_resample_share": outside / total, "stages_s": {k: v for k, v in t.items() if isinstance(v, float)}, "tile": t["tile"], "margin": t["margin"], "n_tiles": t["n_tiles"],
            "device": summary["device"]}


def margin_effect(map_path: Path, net: torch.nn.Module, margins: list[int], tile: int) -> list[dict]:
    """Max |Δp| and the share of changed labels against a margin of 24 (>= the half-width 22)."""
    dmap = read_map(map_path)
    _, density = density_volume(dmap)
    crop = density[:96, :96, :96]
    fn = torch_predict_fn(net, "cpu")
    ref = predict_volume(crop, fn, tile=tile, margin=24)
    rows = []
    for m in margins:
        p = predict_volume(crop, fn, tile=tile, margin=m)
        rows.append({"margin": m, "max_abs_dp": float(np.abs(p - ref).max()),
                     "labels_changed": float((p.argmax(0) != ref.argmax(0)).mean())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--map", type=Path, help="run on this map instead of the --size³ box (e.g. the 50S volume itself)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tile", type=int)
    ap.add_argument("--margin", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--width", type=int, default=8, help="unet3d width (the baseline: 8)")
    ap.add_argument("--depth", type=int, default=3, help="unet3d depth (the baseline: 3)")
    ap.add_argument("--margins", default="", help="comma-separated margins for the margin-effect table")
    args = ap.parse_args()
    torch.manual_seed(0)
    net = UNet3D(width=args.width, depth=args.depth).eval()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ckpt = save_segmentation_checkpoint(net, folder / "seg.pt", network="unet3d", tile=64, class_names=ELEMENT_NAMES)
        map_path = args.map or make_map(folder, args.size)
        config = DetectConfig(tile=args.tile, margin=args.margin, batch_size=args.batch_size)
        result = run_detect(map_path, ckpt, folder / "out", args.device, config)
        gpu = torch.cuda.get_device_name(0) if result["device"].startswith("cuda") else None
        print(json.dumps({"machine": platform.node(), "cpu_threads": torch.get_num_threads(), "gpu": gpu,
                          "torch": torch.__version__, "map": str(args.map or f"{args.size}³ box"), "width": args.width,
                          "depth": args.depth, **result}, indent=1))
        if args.margins:
            for row in margin_effect(map_path, net, [int(m) for m in args.margins.split(",")], 64):
                print(json.dumps(row))


if __name__ == "__main__":
    main()
