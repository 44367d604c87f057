"""Dependencies by need: the core install reads stores; every extra that is missing is named
in a one-line error. Each case runs in a fresh interpreter whose import system refuses the
optional packages, as a core-only install would (``.ci/run`` also checks a real core-only
virtual environment)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from rnamotif_data.common.extras import EXTRAS, require
from rnamotif_data.errors import MissingDependencyError

from .conftest import DEMO, REPO

BLOCK = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = set({blocked!r})
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None
    sys.meta_path.insert(0, Block())
""")
OPTIONAL = sorted(EXTRAS)


def _run(code: str, blocked=OPTIONAL, args=()) -> subprocess.CompletedProcess:
    script = BLOCK.format(blocked=list(blocked)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_require_names_the_extra_and_does_not_mask_inner_errors(tmp_path, monkeypatch):
    with pytest.raises(MissingDependencyError, match=r"the thing needs no_such_pkg_x.*rnamotif-data\[all\]"):
        require("no_such_pkg_x", "the thing")
    # an installed module whose own import fails is not reported as missing
    (tmp_path / "brokenmod_x.py").write_text("import no_such_inner_dependency_y\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_inner_dependency_y"):
        require("brokenmod_x", "the thing")


def test_core_install_reads_a_store_without_any_extra(demo_store):
    r = _run("""
        import sys
        from rnamotif_data import open_store, read_split, read_map, read_model
        store = open_store(sys.argv[1])
        cube = store.read(0)
        assert cube["density"].shape == tuple(store.cube_shape), cube["density"].shape
        assert read_split(store, "similarity") is None
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "dask", "distributed", "sklearn", "matplotlib"))
        assert not heavy, heavy
        print(len(store))
    """, args=[demo_store])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "7"


#: feature -> (code that needs it, the extra the message must name)
CASES = {
    "torch": ("from rnamotif_data import RNAMotifDataset", "learn"),
    "dask": ("from rnamotif_data.pipeline.runner import Runner; Runner(None, 1, 1, 'auto')", "build"),
    "parasail": ("from rnamotif_data.split.similarity import context_identity; context_identity('ACGU', 'ACGU')", "split"),
    "sklearn": ("from rnamotif_data.release.audit import audit_store; from rnamotif_data import open_store; "
                "audit_store(open_store(sys.argv[3]))", "audit"),
    "matplotlib": ("from rnamotif_data.release.report import plot_qc; plot_qc(None, None, '')", "report"),
    "h5py": ("from rnamotif_data.release.export import export_hdf5; export_hdf5(sys.argv[1], 'x.h5')", "hdf5"),
    "rnapolis": ("from rnamotif_data.rna.annotate import annotate_model; annotate_model(sys.argv[2])", "annotate"),
}


#: what a missing package takes with it (distributed cannot be installed without dask)
ALSO_MISSING = {"dask": ["distributed"]}


@pytest.fixture(scope="module")
def small_store(demo_store, tmp_path_factory):
    """60 samples with enough 'unknown' ones for the audit's cross-validation."""
    from rnamotif_data.testing.synthetic_store import make_synthetic_store

    return make_synthetic_store(str(demo_store), str(tmp_path_factory.mktemp("x") / "s.zarr"), 60, seed=1,
                                shard_size=32)


@pytest.mark.parametrize("module", sorted(CASES))
def test_each_missing_extra_is_named_in_one_line(module, demo_store, small_store):
    code, extra = CASES[module]
    r = _run(f"""
        import sys
        from rnamotif_data.errors import MissingDependencyError
        try:
            {code}
        except MissingDependencyError as exc:
            print(exc)
        else:
            print("no error")
    """, blocked=[module, *ALSO_MISSING.get(module, [])],
        args=[demo_store, DEMO / "mirror" / "pdb" / "6v5b.pdb", small_store])
    assert r.returncode == 0, r.stderr[-2000:]
    line = r.stdout.strip()
    assert f"pip install 'rnamotif-data[{extra}]'" in line and "\n" not in line, line


def test_the_command_reports_a_missing_extra_in_one_line():
    r = _run("""
        import sys
        from rnamotif_data.cli import main
        sys.exit(main(["train", "--help"]))
    """)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "needs torch" in lines[0], r.stderr
    assert lines[0].endswith("pip install 'rnamotif-data[learn]'"), lines


def test_build_help_loads_no_heavy_module():
    """Issue 24: `rnamotif build --help` imports no scipy (nor torch, dask,
    sklearn, matplotlib): scipy is imported where a KD-tree, an interpolation or an FFT
    is used."""
    code = ("import sys\nfrom rnamotif_data.cli import main\ntry:\n    main(['build', '--help'])\nexcept SystemExit:\n    pass\nprint(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'scipy', 'torch', 'dask', 'distributed', 'sklearn', 'matplotlib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
