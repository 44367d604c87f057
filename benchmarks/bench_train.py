"""Training and evaluation throughput of Motif3DCNN, loader wait separated from compute.

A store of N samples (default 1,024; 40³) is made from the demo's real cubes
(``rnamotif_data.testing.synthetic_store``). One epoch of training (Adam, batch 32, masked density)
and one pass of evaluation are timed on the device present (``--device auto``: CUDA if
available), with ``--workers`` DataLoader workers. Reported: samples/s for training and
evaluation, the fraction of wall time the loop waited for the loader, and on CUDA the
GPU utilisation sampled by ``torch.cuda.utilization()`` where NVML is available.

Goal (issue 7, on an H100): >= 2,000 training samples/s for Motif3DCNN on 40³ cubes with
the loader waiting < 10% of the time.

Usage: python benchmarks/bench_train.py [--n 1024] [--workers 2] [--device auto] [--amp] [--keep DIR]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from rnamotif_data.learn.dataset import RNAMotifDataset
from rnamotif_data.learn.networks import build_network
from rnamotif_data.testing.synthetic_store import demo_synthetic_store


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--network", "--model", dest="network", default="motif3dcnn")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--keep", type=Path)
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_train_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        root = demo_synthetic_store(work, args.n)
        ds = RNAMotifDataset(root, split="all")
        kw = dict(batch_size=args.batch_size, num_workers=args.workers, pin_memory=device.type == "cuda",
                  persistent_workers=args.workers > 0)
        model = build_network(args.network, 1, cube=ds.cube_shape[0]).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = torch.utils.data.DataLoader(ds, shuffle=True, generator=torch.Generator().manual_seed(0), **kw)
        util = []
        for phase in ("warm-up", "train"):
            model.train()
            n, wait = 0, 0.0
            _sync(device)
            t0 = t_fetch = time.perf_counter()
            for x, y in loader:
                wait += time.perf_counter() - t_fetch
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp and device.type == "cuda"):
                    loss = torch.nn.functional.cross_entropy(model(x).float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if device.type == "cuda" and phase == "train":
                    try:
                        util.append(torch.cuda.utilization())
                    except Exception:  # noqa: BLE001 - NVML missing
                        pass
                n += len(y)
                _sync(device)
                t_fetch = time.perf_counter()
            total = time.perf_counter() - t0
        train_rate, train_wait = n / total, wait / total
        model.eval()
        n, wait = 0, 0.0
        t0 = t_fetch = time.perf_counter()
        with torch.no_grad():
            for x, _ in torch.utils.data.DataLoader(ds, shuffle=False, **kw):
                wait += time.perf_counter() - t_fetch
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp and device.type == "cuda"):
                    model(x.to(device, non_blocking=True)).argmax(1).cpu()
                n += len(x)
                t_fetch = time.perf_counter()
        total = time.perf_counter() - t0
        name = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or platform.machine()
        print(f"device: {device} ({name}); torch {torch.__version__}; {args.network}; batch {args.batch_size}; "
              f"workers {args.workers}; amp {args.amp}; {len(ds)} samples {'x'.join(map(str, ds.cube_shape))}")
        print(f"training:   {train_rate:8.0f} samples/s, loader wait {100 * train_wait:5.1f}% of wall time"
              + (f", GPU utilisation {sum(util) / len(util):.0f}%" if util else ""))
        print(f"evaluation: {n / total:8.0f} samples/s, loader wait {100 * wait / total:5.1f}% of wall time")
        if device.type == "cuda":
            ok = train_rate >= 2000 and train_wait < 0.10
            print(f"goal (H100): >= 2000 samples/s with loader wait < 10%: {'PASS' if ok else 'FAIL'}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
