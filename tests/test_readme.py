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

from rnamotif_data.split.command import main as split_main
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
    assert len(BLOCKS) == 4
    assert "RNAMotifDataset(version=" in BLOCKS[2]


@pytest.mark.parametrize("k", [0, 1, 3])
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
