"""Public API documentation and the README's promises."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from .conftest import REPO

MODULES = ["rnamotif_data.maps", "rnamotif_data.structure", "rnamotif_data.labels",
           "rnamotif_data.segment", "rnamotif_data.quality", "rnamotif_data.simulate",
           "rnamotif_data.motifs", "rnamotif_data.errors", "rnamotif_data.background",
           "rnamotif_data.store", "rnamotif_data.registry", "rnamotif_data.download", "builders.build",
           "builders.verify", "builders.export", "builders.zenodo", "builders.release", "builders.card",
           "builders.publish", "rnamotif_data.correlation", "rnamotif_data.modified", "rnamotif_data.annotate",
           "rnamotif_data.checksums", "rnamotif_data.mapcheck", "rnamotif_data.mapwrite", "builders.schema",
           "builders.entry", "builders.staging", "builders.runner", "builders.commit", "builders.outdir",
           "builders.lock", "builders.build_config", "builders.annotate", "builders.search", "builders.audit"]


@pytest.mark.parametrize("name", MODULES)
def test_public_api_has_docstrings(name):
    mod = importlib.import_module(name)
    assert mod.__doc__ and len(mod.__doc__) > 40
    for attr in getattr(mod, "__all__", [n for n in dir(mod) if not n.startswith("_")]):
        obj = getattr(mod, attr)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if obj.__module__ != name:
                continue
            assert obj.__doc__, f"{name}.{attr} has no docstring"
            if inspect.isclass(obj):
                for meth, fn in vars(obj).items():
                    if inspect.isfunction(fn) and not meth.startswith("_"):
                        assert fn.__doc__, f"{name}.{attr}.{meth} has no docstring"


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_command():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start.*?```(?:bash|sh)?\n(.*?)```", readme, re.S)
    assert block, "README has no quick-start code block"
    commands = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(commands) == 2, commands
    assert commands[0].rstrip().endswith("python -m builders.build"), commands[0]
    assert commands[1].strip() in (REPO / ".ci" / "run").read_text()
    for path in re.findall(r"`(demo/[\w./\-]+)`", readme):
        if not path.startswith("demo-out"):
            assert (REPO / path).exists(), path


def test_store_column_dictionary_matches_the_schema():
    from rnamotif_data.store import FAILURES_COLUMNS, METADATA_COLUMNS

    doc = (REPO / "docs" / "store.md").read_text()
    for title, columns in (("metadata.parquet", METADATA_COLUMNS), ("failures.parquet", FAILURES_COLUMNS)):
        section = doc.split(f"## {title}")[1].split("\n## ")[0]
        documented = re.findall(r"^\| `(\w+)` \|", section, re.M)
        assert documented == list(columns), (title, documented)


def test_library_does_not_print_or_import_heavy_frameworks():
    # the library's CLI runner prints one-line errors to stderr, from run() only
    cli = {"_cli.py": "def run("}
    for path in (REPO / "rnamotif_data").glob("*.py"):
        text = path.read_text()
        if path.name in cli:
            text = text.split(cli[path.name])[0]
        assert not re.search(r"^\s*print\(", text, re.M), f"print() in {path.name} outside its CLI main"
    core = ["maps", "structure", "labels", "segment", "quality", "simulate"]
    for name in core:
        text = (REPO / "rnamotif_data" / f"{name}.py").read_text()
        assert not re.search(r"^\s*(import|from)\s+(torch|dask)", text, re.M), name
