"""Q-score + CC_mask speed per motif.

A map is simulated (gemmi, 3 Å, 1 Å voxels, Gaussian noise 0.2 sd) from the real 6V5B
chain D model shipped with the demo. 100 motifs of 10 nucleotides (two 5-nt strands at
random positions, about 210 heavy atoms each) are scored with
:func:`rnamotif_data.em.quality.motif_quality` (Q-score of every motif atom against the
whole model, CC_mask, fit_z, fraction above 1 sd), then Q-score and CC_mask alone.

Printed figures (single-threaded: BLAS/OpenMP pinned to one thread): ms per motif for
Q-score, CC_mask, all metrics together, and ms per atom for Q-score.
Goal (issue 5): Q-score + CC_mask <= 30 ms per motif on one core (ChimeraX quotes about
1 ms per atom, i.e. ~200 ms for such a motif).

Usage: python benchmarks/bench_quality.py [--motifs 100] [--repeat 3] [--max-tries 24]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from rnamotif_data.em.correlation import cc_local, cc_mask  # noqa: E402
from rnamotif_data.em.quality import QualityConfig, motif_quality, q_reference, q_scores  # noqa: E402
from rnamotif_data.em.simulate import simulate_map  # noqa: E402
from rnamotif_data.rna.structure import read_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--motifs", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3, help="timing repeats (best is reported)")
    p.add_argument("--max-tries", type=int, default=QualityConfig.q_max_tries,
                   help="Q-score spiral tries per shell (MapQ: 96)")
    args = p.parse_args(argv)

    model = read_model(REPO / "demo" / "mirror" / "pdb" / "6v5b.pdb")
    atoms = model.atoms
    dmap = simulate_map(atoms, 3.0, 1.0, padding=8.0, noise_sd=0.2, seed=1)
    stats = dmap.statistics()
    ref = q_reference(stats)
    tree = cKDTree(atoms.xyz)
    n_res = len(atoms.residues)
    rng = np.random.default_rng(0)
    motifs = []
    for _ in range(args.motifs):
        i, j = sorted(rng.choice(n_res - 5, size=2, replace=False))
        res = np.r_[np.arange(i, i + 5), np.arange(j, j + 5)]
        res = np.unique(res)
        rows = atoms.residue_rows(res)
        motifs.append((rows, atoms.take(rows)))
    n_atoms = np.mean([len(r) for r, _ in motifs])
    cfg = QualityConfig(q_max_tries=args.max_tries)

    def best(fn) -> float:
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times) / len(motifs) * 1e3

    t_q = best(lambda: [q_scores(dmap, m.xyz, tree, ref, cfg, atom_rows=r) for r, m in motifs])
    t_cc = best(lambda: [cc_mask(dmap, m, 3.0) for _, m in motifs])
    t_local = best(lambda: [cc_local(dmap, m, 3.0) for _, m in motifs])
    t_all = best(lambda: [motif_quality(dmap, m, tree, stats, 3.0, cfg, ref, atom_rows=r) for r, m in motifs])
    q = np.array([np.nanmean(q_scores(dmap, m.xyz, tree, ref, cfg, atom_rows=r)) for r, m in motifs])
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores; "
          f"python {platform.python_version()}; numpy {np.__version__}")
    print(f"map {dmap.shape} voxels at 1 Å; {len(motifs)} motifs, mean {n_atoms:.0f} heavy atoms "
          f"(Q-score against all {len(atoms)} model atoms); {cfg.q_max_tries} tries; motif Q mean {q.mean():.4f}")
    print(f"Q-score:            {t_q:7.2f} ms/motif  ({t_q / n_atoms * 1e3:.0f} µs/atom)")
    print(f"CC_mask (Phenix):   {t_cc:7.2f} ms/motif")
    print(f"CC_local:           {t_local:7.2f} ms/motif")
    print(f"Q-score + CC_mask:  {t_q + t_cc:7.2f} ms/motif  goal <= 30: {'PASS' if t_q + t_cc <= 30 else 'FAIL'}")
    print(f"motif_quality (all metrics incl. fit_z, fraction above 1 sd): {t_all:7.2f} ms/motif")
    print(f"ratio to ChimeraX's quoted ~1 ms/atom: {n_atoms / (t_q):.0f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
