"""`rnamotif segment` (rnamotif_data.samples.extract): the acceptance command and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np

from rnamotif_data.em.maps import read_map

from ..conftest import REPO, shared


def _run(*args: str | Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "rnamotif_data", "segment", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def test_acceptance_command(seed_map_path, seed_model_path, tmp_path):
    out = tmp_path / "hp"
    r = _run("--map", seed_map_path, "--model", seed_model_path, "J:85-91",
             "--motif-type", "hairpin3", "--out", out, "--masked-mrc")
    assert r.returncode == 0, r.stderr
    devnull = open(os.devnull, "w")
    for name in ("density", "zone", "labels", "nucleotide", "masked"):
        assert mrcfile.validate(str(out / f"{name}.mrc"), print_file=devnull), name
    record = json.loads((out / "motif.json").read_text())
    assert record["fit_z"] >= 2.5
    assert record["sequence"] == "GGUCUCC"
    assert [r["seq_num"] for r in record["residues"]] == list(range(85, 92))
    assert record["motif_class"] == "hairpin" and record["class_index"] == 2
    # the four cubes share one grid placed at the cube origin
    grids = [read_map(out / f"{n}.mrc") for n in ("density", "zone", "labels", "nucleotide")]
    for g in grids:
        assert g.shape == (40, 40, 40)
        np.testing.assert_allclose(g.origin, record["cube_origin_xyz"], atol=1e-3)
        np.testing.assert_allclose(g.voxel_size, 1.0)
    assert set(np.unique(grids[2].data)) <= {0, 1, 2, 3}
    assert int(grids[1].data.sum()) == record["zone_voxels"]
    masked = read_map(out / "masked.mrc")
    np.testing.assert_allclose(masked.voxel_size, 0.822, rtol=1e-6)


def test_demo_command(tmp_path):
    """The README's quick-start demo: a 2x2 internal loop of 6V5B on the simulated map."""
    r = _run("--map", REPO / "demo" / "mirror" / "emdb" / "emd_21051.map.gz", "--model",
             REPO / "demo" / "mirror" / "pdb" / "6v5b.pdb", "D:19-22,82-85", "--motif-type", "2x2",
             "--out", tmp_path / "demo")
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "demo" / "motif.json").read_text())
    assert record["sequence"] == "UCUAUUUA" and record["fit_z"] > 5


def _assert_one_line_error(r: subprocess.CompletedProcess, *fragments: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_bad_inputs_exit_with_one_line(seed_map_path, seed_model_path, tmp_path):
    common = ["--motif-type", "hairpin3", "--out", tmp_path / "o"]
    truncated = tmp_path / "cut.mrc"
    truncated.write_bytes(seed_map_path.read_bytes()[:3000])
    cases = [
        (["--map", truncated, "--model", seed_model_path, "J:85-91"], ["cut.mrc", "truncated"]),
        (["--map", shared("mrc-format", "EMD-3001.map"), "--model", seed_model_path, "J:85-91"],
         ["EMD-3001.map", "not orthogonal"]),
        (["--map", seed_map_path, "--model", seed_model_path, "J85-91"], ["J85-91", "CHAIN:RESIDUES"]),
        (["--map", seed_map_path, "--model", seed_model_path, "X:85-91"], ["no chain X", "X:85-91"]),
        (["--map", seed_map_path, "--model", seed_model_path, "J:85-92"],
         ["chain J has no residue 92", "J:85-92"]),
        (["--map", seed_map_path, "--model", REPO / "demo" / "mirror" / "pdb" / "6v5b.pdb", "D:3-9"],
         ["EMD-20353", "outside the map", "D:3-9"]),
        (["--map", tmp_path / "none.map", "--model", seed_model_path, "J:85-91"], ["none.map"]),
    ]
    for args, fragments in cases:
        _assert_one_line_error(_run(*args, *common), *fragments)


def test_unknown_motif_type_is_a_usage_error(seed_map_path, seed_model_path, tmp_path):
    r = _run("--map", seed_map_path, "--model", seed_model_path, "J:85-91",
             "--motif-type", "hairpin9", "--out", tmp_path)
    assert r.returncode == 2 and "hairpin9" in r.stderr and "Traceback" not in r.stderr


def test_config_flags_map_onto_config(seed_map_path, seed_model_path, tmp_path):
    r = _run("--map", seed_map_path, "--model", seed_model_path, "J:85-91", "--motif-type",
             "hairpin3", "--out", tmp_path, "--cube-size", "24", "--voxel-size", "0.8",
             "--no-modified-as-parent")
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "motif.json").read_text())
    assert rec["config"]["cube_size"] == 24 and rec["config"]["voxel_size"] == 0.8
    assert rec["config"]["modified_as_parent"] is False
    assert read_map(tmp_path / "density.mrc").shape == (24, 24, 24)
