"""Sequence features: embedding cost, store size, and the three-way comparison.

1. **Cost.** structRFM base (768 × 12 layers × 12 heads; random weights: the cost does not
   depend on the weights) embeds random chains of 512 and 2,900 nt on this machine's CPU;
   reported as seconds per 1,000 nt.
2. **Store.** ``rnamotif embed`` on a store (``--store``, e.g. the real 50S build): wall
   time and the size of ``features/<name>`` against the store's own size.
3. **Three-way comparison** on the multi-entry fixture (``--fixture DIR``: made with
   ``rnamotif multi-entry --out DIR --build``), nested protocol, five folds, same seed:
   density only (``motif3dcnn``), density + one-hot sequence (``motif3dcnn_seq``,
   ``--sequence onehot``), density + structRFM with **random** weights
   (``motif3dcnn_seq``, ``--sequence structrfm-random``): a control that must not beat
   one-hot by more than noise. Prints per-fold macro sensitivity with 95 % bootstrap
   intervals and mean ± sd.

Usage: python benchmarks/bench_sequence.py [--store 50S.zarr] [--fixture DIR] [--epochs 8] [--skip-cost]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from rnamotif_data.cli.embed import main as embed_main
from rnamotif_data.features.embedders import make_embedder


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def cost() -> None:
    e = make_embedder("structrfm", random_weights=True, device="cpu", batch_size=8)
    rng = np.random.default_rng(0)
    for n, reps in ((512, 3), (2900, 1)):
        seq = "".join(rng.choice(list("ACGU"), n))
        e.embed(seq[:64])  # warm-up
        t = time.perf_counter()
        for _ in range(reps):
            e.embed(seq)
        s = (time.perf_counter() - t) / reps
        print(f"structRFM base, CPU, {n} nt: {s:.2f} s ({1000 * s / n:.2f} s per 1,000 nt)")


def store(root: Path, cache: Path, mirror: Path | None = None) -> None:
    for args in (["--embedder", "onehot"], ["--embedder", "structrfm", "--random-weights"]):
        t = time.perf_counter()
        where = ["--mirror", str(mirror)] if mirror else []
        embed_main([str(root), *args, *where, "--no-progress", "--overwrite", "--cache-dir", str(cache), "--device", "cpu"])
        name = args[1] + ("-random" if "--random-weights" in args else "")
        feat = root / "features" / name
        total = _size(root) - _size(root / "features") - _size(root / "splits")
        print(f"{root.name} features/{name}: {time.perf_counter() - t:.1f} s wall, {_size(feat) / 2**20:.1f} MiB "
              f"(+{100 * _size(feat) / total:.1f} % of the store's {total / 2**20:.1f} MiB)")


def comparison(fixture: Path, epochs: int, out: Path) -> None:
    from rnamotif_data.cli.split import main as split_main
    from rnamotif_data.learn.train import TrainConfig, train_all_folds

    root = fixture / "store.zarr"
    if not (root / "splits" / "similarity.parquet").exists():
        split_main([str(root)])
    store(root, out / "cache", fixture / "mirror")
    arms = {"density only (motif3dcnn)": dict(network="motif3dcnn"),
            "density + one-hot sequence (motif3dcnn_seq)": dict(network="motif3dcnn_seq", sequence="onehot"),
            "density + structRFM, random weights (motif3dcnn_seq)": dict(network="motif3dcnn_seq",
                                                                         sequence="structrfm-random")}
    results = {}
    for label, kw in arms.items():
        t = time.perf_counter()
        cfg = TrainConfig(root=str(root), out=str(out / label.split(" (")[0].replace(" ", "_").replace(",", "")),
                          epochs=epochs, batch_size=32, seed=0, device="cpu", **kw)
        results[label] = train_all_folds(cfg, progress=False)
        results[label]["seconds"] = time.perf_counter() - t
    print(f"\nthree-way comparison, {root}, nested protocol, {epochs} epochs, seed 0")
    print("| arm | " + " | ".join(f"fold{k}" for k in range(1, 6)) + " | mean ± sd |")
    print("|---|" + "---|" * 6)
    for label, r in results.items():
        cells = []
        for f in r["folds"]:
            ci = f["macro_sensitivity_ci95"]
            ms = f["macro_sensitivity"]
            cells.append("–" if ms is None else f"{ms:.3f} ({ci[0]:.2f}–{ci[1]:.2f})" if ci else f"{ms:.3f}")
        m = r["macro_sensitivity"]
        print(f"| {label} | " + " | ".join(cells) + f" | {m['mean']:.3f} ± {m['sd']:.3f} |")
    (out / "comparison.json").write_text(json.dumps(results, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, help="a built store to embed (cost and size)")
    p.add_argument("--mirror", type=Path, help="the store's model files (its build's --mirror)")
    p.add_argument("--fixture", type=Path, help="multi-entry fixture folder (with store.zarr) for the comparison")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("/tmp/bench-sequence"))
    p.add_argument("--skip-cost", action="store_true")
    a = p.parse_args(argv)
    print(f"machine: {platform.node()} {platform.machine()}, {platform.processor() or '?'}; {time.strftime('%Y-%m-%d')}")
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.skip_cost:
        cost()
    if a.store:
        copy = a.out / a.store.name
        if not copy.exists():
            shutil.copytree(a.store, copy)
        store(copy, a.out / "cache", a.mirror)
    if a.fixture:
        comparison(a.fixture, a.epochs, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
