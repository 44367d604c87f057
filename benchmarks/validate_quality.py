"""CC_mask and Q-score against cctbx (Phenix's engine), motif by motif.

Cases (real models; the maps are real where we have them):

* the upstream seed box of EMD-20353 around 6PJ6 J:85-91 (real density, 2.2 Å), whose
  published reference values are in ``../shared/data/README.md``;
* the five demo motifs of 6V5B chain D in the shipped demo map (simulated, 3 Å);
* motifs of the real cryoDRGN 50S volume 383 (6.55 Å voxels, 13.1 Å).

For each motif the motif's atoms are written to a PDB file (heavy atoms, B-factors of the
model) and ``benchmarks/cctbx_reference.py`` is run on it and the map with the cctbx
interpreter (``--cctbx-python``, default ``$CCTBX_PYTHON`` or ``/tmp/cctbx/bin/python``;
``python -m venv /tmp/cctbx && /tmp/cctbx/bin/pip install cctbx-base==2025.11 pandas
scipy``). cctbx is a reference here, never a dependency of the package.

Printed: a Markdown table (ours vs cctbx CC_mask, ours vs cctbx Q-score) and the
largest differences. Usage::

    python benchmarks/validate_quality.py [--cctbx-python PATH] [--50s-motifs 6]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rnamotif_data.em.maps import read_map  # noqa: E402
from rnamotif_data.em.quality import QualityConfig, motif_quality, q_reference  # noqa: E402
from rnamotif_data.rna.structure import read_model  # noqa: E402

SHARED = Path(os.environ.get("RNAMOTIF_SHARED_DATA", REPO.parent / "shared" / "data"))


def write_pdb(atoms, path: Path) -> None:
    """Heavy atoms of an AtomTable as PDB ATOM records (names, residues, B-factors)."""
    lines = []
    for k in range(len(atoms)):
        rid = atoms.residues[atoms.residue_index[k]]
        name = atoms.atom_name[k]
        name = f" {name:<3s}" if len(name) < 4 else name
        x, y, z = atoms.xyz[k]
        b = float(atoms.b_iso[k]) if atoms.b_iso is not None else 0.0
        lines.append(f"ATOM  {k + 1:5d} {name} {atoms.residue_names[atoms.residue_index[k]]:>3s} {rid.chain[:1]}"
                     f"{rid.seq_num:4d}{rid.icode or ' ':1s}   {x:8.3f}{y:8.3f}{z:8.3f}  1.00{b:6.2f}"
                     f"          {atoms.element[k]:>2s}")
    path.write_text("\n".join(lines) + "\nEND\n")


def cctbx(python: str, map_path: Path, pdb: Path, resolution: float) -> dict:
    out = subprocess.run([python, str(REPO / "benchmarks" / "cctbx_reference.py"), str(map_path), str(pdb),
                          str(resolution), "--qscore"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cases(n50s: int, tmp: Path):
    seed = SHARED / "seed-sample" / "EMD-20353_6PJ6_hairpin3_2606"
    yield ("seed EMD-20353 (real)", seed / "EMD-20353_6PJ6_hairpin3_2606.mrc",
           seed / "6PJ6_hairpin3_2606.pdb", ["J:85-91"], 2.2)
    demo_map = tmp / "emd_21051.mrc"
    demo_map.write_bytes(gzip.decompress((REPO / "demo" / "mirror" / "emdb" / "emd_21051.map.gz").read_bytes()))
    demo = pd.read_parquet(REPO / "demo" / "manifest.parquet")
    yield ("demo 6V5B (simulated 3 Å)", demo_map, REPO / "demo" / "mirror" / "pdb" / "6v5b.pdb",
           demo["selection"].tolist(), 3.0)
    vol = SHARED / "cryodrgn-50s"
    m = pd.read_parquet(vol / "manifest.parquet")
    m = m[m["emdb_id"] == "EMD-90000383"].iloc[:: max(1, 154 // max(n50s, 1))].head(n50s)
    model = tmp / "50s.pdb"
    model.write_bytes(gzip.decompress((vol / "pdb" / "pdb_0000v383.pdb.gz").read_bytes()))
    yield ("cryoDRGN 50S vol 383 (real, 13.1 Å)", vol / "emdb" / "emd_90000383.mrc", model,
           m["selection"].tolist(), 13.1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cctbx-python", default=os.environ.get("CCTBX_PYTHON", "/tmp/cctbx/bin/python"))
    p.add_argument("--50s-motifs", dest="n50s", type=int, default=6)
    args = p.parse_args(argv)
    if not shutil.which(args.cctbx_python) and not Path(args.cctbx_python).exists():
        p.error(f"--cctbx-python {args.cctbx_python}: not found; see this script's docstring")
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for label, map_path, model_path, selections, res in cases(args.n50s, tmp):
            dmap, model = read_map(map_path), read_model(model_path)
            stats, tree = dmap.statistics(), cKDTree(model.atoms.xyz)
            for sel in selections:
                motif = model.select(sel)
                rows_ = model.atoms.residue_rows(model.resolve(sel))
                ours = motif_quality(dmap, motif, tree, stats, res, QualityConfig(), q_reference(stats),
                                     atom_rows=rows_)
                pdb = tmp / "motif.pdb"
                write_pdb(motif, pdb)
                ref = cctbx(args.cctbx_python, map_path, pdb, res)
                rows.append({"case": label, "motif": sel, "atoms": len(motif), "cc_mask": ours.cc_mask,
                             "cctbx_cc_mask": ref["cc_mask"], "cc_local": ours.cc_local, "q_score": ours.q_score,
                             "cctbx_q_score": ref["q_score"]})
    df = pd.DataFrame(rows)
    df["d_cc"] = df["cc_mask"] - df["cctbx_cc_mask"]
    df["d_q"] = df["q_score"] - df["cctbx_q_score"]
    print(f"CC_mask and Q-score vs cctbx 2025.11 ({date.today()}, {platform.machine()}, "
          f"python {platform.python_version()})\n")
    print("| case | motif | atoms | CC_mask ours | CC_mask cctbx | Δ | cc_local | Q ours | Q cctbx | Δ |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in df.itertuples():
        print(f"| {r.case} | {r.motif} | {r.atoms} | {r.cc_mask:.3f} | {r.cctbx_cc_mask:.3f} | {r.d_cc:+.3f} | "
              f"{r.cc_local:.3f} | {r.q_score:.3f} | {r.cctbx_q_score:.3f} | {r.d_q:+.3f} |")
    print(f"\nCC_mask: max |Δ| {df['d_cc'].abs().max():.3f}, mean Δ {df['d_cc'].mean():+.3f}, "
          f"r = {np.corrcoef(df['cc_mask'], df['cctbx_cc_mask'])[0, 1]:.4f} over {len(df)} motifs")
    print(f"Q-score: mean Δ {df['d_q'].mean():+.3f} (ours uses the paper's exclusion rule, cctbx MapQ's "
          f"0.9 R: expected +0.02), r = {np.corrcoef(df['q_score'], df['cctbx_q_score'])[0, 1]:.4f}")
    print(f"cc_local (the pre-0.5 'cc_mask'): max |cc_local - cctbx CC_mask| "
          f"{(df['cc_local'] - df['cctbx_cc_mask']).abs().max():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
