"""Public API documentation and the README's promises."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

from .conftest import REPO

#: every module of the package (docstrings are checked on each)
MODULES = sorted(
    m.name for m in pkgutil.walk_packages([str(REPO / "rnamotif_data")], "rnamotif_data.")
    if m.name != "rnamotif_data.__main__"
)


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
    assert commands[0].rstrip().endswith("rnamotif build"), commands[0]
    assert commands[1].strip() in (REPO / ".ci" / "run").read_text()
    for path in re.findall(r"`(demo/[\w./\-]+)`", readme):
        if not path.startswith("demo-out"):
            assert (REPO / path).exists(), path


def test_store_column_dictionary_matches_the_schema():
    from rnamotif_data.storage.layout import FAILURES_COLUMNS, METADATA_COLUMNS

    doc = (REPO / "docs" / "store.md").read_text()
    for title, columns in (("metadata.parquet", METADATA_COLUMNS), ("failures.parquet", FAILURES_COLUMNS)):
        section = doc.split(f"## {title}")[1].split("\n## ")[0]
        documented = re.findall(r"^\| `(\w+)` \|", section, re.M)
        assert documented == list(columns), (title, documented)


def test_volume_column_dictionaries_match_the_store_page():
    from rnamotif_data.storage.volumes import INSTANCE_COLUMNS, TILE_COLUMNS, VOLUME_COLUMNS

    doc = (REPO / "docs" / "store.md").read_text()
    section = doc.split("## Volumes and tiles")[1].split("\n## ")[0]
    for title, columns in (("volumes.parquet", VOLUME_COLUMNS), ("tiles.parquet", TILE_COLUMNS),
                           ("instances.parquet", INSTANCE_COLUMNS)):
        table = section.split(f"### {title}")[1].split("\n#")[0]
        documented = re.findall(r"^\| `(\w+)` \|", table, re.M)
        assert documented == list(columns), (title, documented)


def test_library_does_not_print_or_import_heavy_frameworks():
    # only the rnamotif command prints (its usage and one-line errors); programs write their
    # output through rnamotif_data.common.output.REPORT
    for path in (REPO / "rnamotif_data").rglob("*.py"):
        if path.parent.name == "cli" or path.name == "__main__.py":
            continue
        for line in path.read_text().splitlines():
            assert not re.match(r"^\s*print\(", line), f"print() in {path.relative_to(REPO)}: {line.strip()}"
    for package in ("em", "rna", "samples", "storage"):
        for path in (REPO / "rnamotif_data" / package).glob("*.py"):
            text = path.read_text()
            assert not re.search(r"^\s*(import|from)\s+(torch|dask|distributed)\b", text, re.M), path


def test_nothing_cites_a_file_outside_the_project_and_design_sections_exist():
    design = (REPO / "docs" / "design.md").read_text()
    sections = set(re.findall(r"^## §(\d+) ", design, re.M))
    assert sections == {str(i) for i in range(1, 12)}
    files = [*(REPO / "rnamotif_data").rglob("*.py"), *(REPO / "docs").rglob("*.md"), REPO / "README.md",
             REPO / "manifests" / "README.md"]
    for path in files:
        text = path.read_text()
        assert "DESIGN.md" not in text and "../shared/docs" not in text, path
        for cited in re.findall(r"design §(\d+)", text):
            assert cited in sections, f"{path.relative_to(REPO)} cites design §{cited}"
        for cited in re.findall(r"§(\d+) and §(\d+)", text):
            assert set(cited) <= sections, path


def test_docs_cover_every_command_and_every_module():
    from rnamotif_data.cli import COMMANDS

    cli = (REPO / "docs" / "cli.md").read_text()
    for name, (_, text, _) in COMMANDS.items():
        assert f"| `rnamotif {name}` | {text} | `rnamotif_data.cli.{name.replace('-', '_')}` |" in cli, name
    api = "\n".join(p.read_text() for p in (REPO / "docs" / "api").glob("*.md"))
    for name in MODULES:
        if name.count(".") == 2:  # rnamotif_data.<package>.<module>
            assert f"::: {name}\n" in api, f"{name} is missing from the API reference: python docs/gen_api_pages.py"
    mkdocs = (REPO / "mkdocs.yml").read_text()
    for page in (REPO / "docs").rglob("*.md"):
        assert str(page.relative_to(REPO / "docs")) in mkdocs, f"{page} is not in mkdocs.yml's nav"


def test_every_tutorial_says_what_it_needs():
    for page in sorted((REPO / "docs" / "tutorials").glob("*.md")):
        lines = page.read_text().splitlines()
        assert lines[0].startswith("# ") and lines[2].startswith("Needs: "), page.name
