"""The README's Python snippets, executed as written.

They run in a folder laid out as the README assumes: ``data/rnamotif.zarr`` (a
128-sample store made from the demo's real cubes, split by the default scheme), and the real
EMD-20353 seed box and 6PJ6 hairpin saved as ``emd_20353.map.gz`` and ``6pj6.cif``. The
download snippet needs a published version (none is registered yet); it is run against
the local Zenodo test server in tests/test_publish.py and checked here to be the call
that test makes."""

from __future__ import annotations

import gzip
import re

import gemmi
import pytest

from rnamotif_data.cli.split import main as split_main
from rnamotif_data.testing.synthetic_store import make_synthetic_store

from .conftest import REPO, SEED_HAIRPIN, shared

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory, demo_store):
    folder = tmp_path_factory.mktemp("readme")
    store = folder / "data" / "rnamotif.zarr"
    store.parent.mkdir()
    make_synthetic_store(demo_store, str(store), 128, seed=0)
    assert split_main([str(store)]) == 0
    box = shared("seed-sample", SEED_HAIRPIN.name)
    (folder / "emd_20353.map.gz").write_bytes(gzip.compress((box / "EMD-20353_6PJ6_hairpin3_2606.mrc").read_bytes()))
    st = gemmi.read_structure(str(box / "6PJ6_hairpin3_2606.pdb"))
    st.setup_entities()
    st.make_mmcif_document().write_file(str(folder / "6pj6.cif"))
    return folder


def test_the_readme_has_the_snippets_this_test_knows():
    assert len(BLOCKS) == 5
    assert "RNAMotifDataset(version=" in BLOCKS[2]
    assert 'sequence="onehot"' in BLOCKS[3]  # run at the end of the README walk, on the demo it builds


@pytest.mark.parametrize("k", [0, 1, 4])
def test_readme_snippet_runs_as_written(k, readme_folder, monkeypatch):
    monkeypatch.chdir(readme_folder)
    namespace: dict = {}
    exec(compile(BLOCKS[k], f"README.md python block {k + 1}", "exec"), namespace)
    if k == 0:
        assert namespace["batch"]["density"].shape == (64, 40, 40, 40)
        assert set(namespace["sample"]) == {"density", "zone", "labels", "nucleotide"}
    elif k == 1:
        assert namespace["x"].shape == (1, 40, 40, 40) and isinstance(namespace["y"], int)
    else:
        assert namespace["cube"].density.shape == (40, 40, 40) and namespace["motif"].sequence() == "GGUCUCC"


def test_readme_download_snippet_is_the_tested_call():
    text = (REPO / "tests" / "release" / "test_publish.py").read_text()
    assert 'RNAMotifDataset(root=cache, version="1.0.0", download=True, split="fold1")' in text


def _walk_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## From the demo to an evaluated model", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_walk_runs_as_written_from_the_demo_to_an_evaluated_model(tmp_path, monkeypatch):
    """Issue 27: a newcomer trains on what the README builds. Every command of the README's
    walk runs as written, in an empty folder, without the network or ../shared, and ends
    with an evaluated model."""
    import os
    import subprocess
    import sys

    import pandas as pd

    commands = _walk_commands()
    assert [c.split()[1] for c in commands] == ["build", "verify", "report", "audit", "split", "train", "evaluate",
                                               "export"]
    env = dict(os.environ, PYTHONPATH=str(REPO), RNAMOTIF_CACHE=str(tmp_path / "cache"), RNAMOTIF_OFFLINE="1")
    for command in commands:
        argv = [sys.executable, "-m", "rnamotif_data", *command.split()[1:]]
        r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{command}: {r.stderr[-3000:]}"
    meta = pd.read_parquet(tmp_path / "demo-out" / "rnamotif-demo.zarr" / "metadata.parquet")
    assert meta["emdb_id"].nunique() >= 10 and set(meta["motif_class"]) == {
        "symmetric_loop", "bulge", "hairpin", "asymmetric_loop", "unknown"}
    split = pd.read_parquet(tmp_path / "demo-out" / "rnamotif-demo.zarr" / "splits" / "similarity.parquet")
    assert sorted(split["fold"].unique()) == [1, 2, 3, 4, 5]
    assert (tmp_path / "runs" / "fold1" / "best.pt").exists()
    assert (tmp_path / "runs" / "fold1" / "eval-fold1-test" / "metrics.json").exists()
    assert (tmp_path / "demo-out" / "rnamotif-demo-report" / "qc.png").exists()
    assert len(list((tmp_path / "demo-out" / "mrc").glob("*/*_context.mrc"))) == len(meta)
    # then the "Sequence features" section on the same demo: its one-hot command and its snippet
    section = (REPO / "README.md").read_text().split("## Sequence features", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    (onehot,) = [line.split("  #")[0].strip() for line in block.splitlines() if "--embedder onehot" in line]
    r = subprocess.run([sys.executable, "-m", "rnamotif_data", *onehot.split()[1:]], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{onehot}: {r.stderr[-3000:]}"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(BLOCKS[3], "README.md python block 4", "exec"), namespace)
    assert namespace["x"].shape == (5, 40, 40, 40) and namespace["s"].shape[1] == 5
    assert int(namespace["m"].sum()) == int(namespace["ds"].metadata["n_residues"].iloc[0] or 0)


def test_the_readme_tiles_walk_runs_as_written(tmp_path):
    """Issues 36 and 37: the README's "Whole maps" walk runs as written, in an empty folder,
    without the network or ../shared: tiles, their folds, a segmentation network trained,
    evaluated on whole test maps, and `rnamotif detect` on a held-out map whose output sits
    on the map's own grid."""
    import os
    import subprocess
    import sys

    import mrcfile

    text = (REPO / "README.md").read_text()
    section = text.split("## Whole maps: tiles and detection", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    commands = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    assert [c.split()[1] for c in commands] == ["build", "split", "train", "evaluate", "detect"]
    env = dict(os.environ, PYTHONPATH=str(REPO), RNAMOTIF_CACHE=str(tmp_path / "cache"), RNAMOTIF_OFFLINE="1")
    for command in commands:
        argv = [sys.executable, "-m", "rnamotif_data", *command.split()[1:]]
        r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{command}: {r.stderr[-3000:]}"
    store = tmp_path / "demo-out" / "rnamotif-tiles.zarr"
    import json

    import pandas as pd

    evaluated = json.loads((tmp_path / "runs" / "unet-fold1" / "eval-fold1-test" / "metrics.json").read_text())
    assert "2R8S_EMD-95004" in evaluated["entries"]  # the README's held-out map is one of fold 1's test maps
    split = pd.read_parquet(store / "splits" / "tiles.parquet")
    assert set(split.loc[split["entry"] == "2R8S_EMD-95004", "fold"]) == {1}
    out = tmp_path / "demo-out" / "detect-95004"
    source = tmp_path / "cache" / "demo-training" / "emdb" / "emd_95004.map.gz"
    assert mrcfile.validate(str(out / "labels.mrc"))
    with mrcfile.open(out / "labels.mrc", permissive=True) as a, mrcfile.open(source, permissive=True) as b:
        assert a.data.shape == b.data.shape
        assert a.voxel_size.tolist() == b.voxel_size.tolist()
        assert [int(a.header[f"n{k}start"]) for k in "xyz"] == [int(b.header[f"n{k}start"]) for k in "xyz"]
    assert (out / "sites.parquet").exists() and (out / "residues.parquet").exists()
