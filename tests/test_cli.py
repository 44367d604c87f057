"""The ``rnamotif`` command: one entry point, every sub-command, one runner."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnamotif_data.cli import COMMANDS, main, run
from rnamotif_data.errors import StoreError

from .conftest import REPO

#: the sub-commands the issue tracker promised (issue 23)
PROMISED = ["build", "verify", "report", "audit", "split", "export", "recode", "publish", "download", "train",
            "evaluate", "segment", "annotate", "search", "fetch", "manifest"]


def _py(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def test_help_lists_every_sub_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert set(PROMISED) <= set(COMMANDS)
    for name, (_, text, _) in COMMANDS.items():
        assert f"  {name} " in out and text in out, name
    assert main([]) == 2  # no command is a usage error, after the same help


def test_unknown_command_is_a_usage_error_with_a_hint(capsys):
    assert main(["buidl"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: rnamotif has no command 'buidl' (did you mean build?); 'rnamotif --help' lists them"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_sub_command_has_its_own_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: rnamotif {name}"), out[:200]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_program_is_its_own_module_in_cli(name):
    """``rnamotif make-demo`` is ``rnamotif_data.cli.make_demo.main``, reached by a plain import."""
    module = importlib.import_module(f"rnamotif_data.cli.{name.replace('-', '_')}")
    assert COMMANDS[name][0]() is module.main
    assert module.__doc__ and module.main.__doc__, name


def test_no_library_module_holds_a_program():
    """argparse and ``main(argv)`` live in rnamotif_data/cli only (common/cliargs makes flags from configs)."""
    package = REPO / "rnamotif_data"
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("cli/") or rel in ("common/cliargs.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names):
                found.append(f"{rel}: imports argparse")
            if isinstance(node, ast.FunctionDef) and node.name == "main" and node in tree.body:
                found.append(f"{rel}: defines main()")
    assert found == []


def test_the_front_door_imports_no_program():
    """``rnamotif --help`` imports none of the programs (they load their libraries)."""
    code = ("import sys\nfrom rnamotif_data.cli import main\nmain(['--help'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('rnamotif_data.')))")
    r = _py("-c", code)
    assert r.returncode == 0, r.stderr
    loaded = r.stdout.strip().splitlines()[-1]
    assert "rnamotif_data.cli." not in loaded and "pipeline" not in loaded and "zarr" not in loaded, loaded


def test_the_old_spellings_of_annotate_and_search_still_run_with_a_note(capsys, caplog):
    with caplog.at_level("WARNING", logger="rnamotif_data.cli"), pytest.raises(SystemExit) as exc:
        main(["manifest", "search", "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: rnamotif search")
    assert "'rnamotif manifest search' is now 'rnamotif search'" in caplog.text
    with pytest.raises(SystemExit):
        main(["manifest", "--help"])
    listed = capsys.readouterr().out
    assert "import" in listed and "validate" in listed and "annotate" not in listed and "search" not in listed


def test_embed_model_is_a_deprecated_alias_of_embedder(tmp_path, caplog):
    from rnamotif_data.cli import embed

    assert embed.parser().parse_args(["s", "--embedder", "onehot"]).embedder == "onehot"
    with caplog.at_level("WARNING", logger="rnamotif_data.cli"):
        assert main(["embed", str(tmp_path / "none.zarr"), "--model", "onehot"]) == 1  # no store there
    assert "embed --model onehot: the flag is now --embedder onehot" in caplog.text
    with pytest.raises(SystemExit):  # one or the other
        embed.parser().parse_args(["s", "--embedder", "onehot", "--model", "onehot"])


def test_one_runner_turns_errors_into_one_line(capsys, monkeypatch):
    def fails(argv):
        raise StoreError("/data/x.zarr: build_state is 'building' (an interrupted build)")

    assert run(fails, []) == 1
    assert capsys.readouterr().err == "error: /data/x.zarr: build_state is 'building' (an interrupted build)\n"
    monkeypatch.setenv("RNAMOTIF_DEBUG", "1")
    with pytest.raises(StoreError):
        run(fails, [])


def test_the_console_script_is_installed():
    """The ``rnamotif`` script beside this interpreter (not whichever is first on PATH, which
    may be another Python's); it must be there under CI."""
    exe = Path(sys.executable).parent / "rnamotif"
    if not exe.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{exe}: the console script is not installed beside the interpreter (pip install -e .)")
        pytest.skip(f"the package is not installed (pip install -e .): no {exe}")
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("rnamotif-data ")


def test_python_dash_m_rnamotif_data_is_the_command():
    r = _py("-m", "rnamotif_data", "verify", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: rnamotif verify")




#: config fields a program computes from other flags (rnamotif publish: --out, --zenodo-config, --sandbox/--api-url,
#: --registry), so they have no flag of their own
COMPUTED_BY_PROGRAM = ("out", "config", "api_url", "registry", "verify_found", "offline")


def _configs():
    """(command, parser, config class, required arguments, how the program builds the config from args)."""
    from rnamotif_data.cli import build, multi_entry, publish, search, segment, split, train
    from rnamotif_data.cli._options import SOURCE_NAMES
    from rnamotif_data.common.cliargs import config_from_args
    from rnamotif_data.em.quality import QualityConfig
    from rnamotif_data.inputs.search import SearchQuery
    from rnamotif_data.inputs.sources import SourceConfig
    from rnamotif_data.learn.train import TrainConfig
    from rnamotif_data.pipeline.config import BuildConfig
    from rnamotif_data.release.publish import PublishOptions
    from rnamotif_data.samples.background import BackgroundConfig
    from rnamotif_data.samples.cubes import SegmentConfig
    from rnamotif_data.split.homology import HomologySources
    from rnamotif_data.split.splits import SplitConfig
    from rnamotif_data.testing.multi_entry import FixtureConfig

    build_args = ["--manifest", "m.parquet", "--out", "o.zarr"]
    return [
        ("build", build.parser, BuildConfig, build_args, build.build_config, {}),
        ("build", build.parser, SegmentConfig, build_args, lambda a: config_from_args(a, SegmentConfig), {}),
        ("build", build.parser, BackgroundConfig, build_args,
         lambda a: config_from_args(a, BackgroundConfig, prefix="background_"), {"prefix": "background_"}),
        ("build", build.parser, QualityConfig, build_args, lambda a: config_from_args(a, QualityConfig), {}),
        ("build", build.parser, SourceConfig, build_args,
         lambda a: config_from_args(a, SourceConfig, exclude=("verify_found",), names=SOURCE_NAMES),
         {"exclude": ("verify_found",), "names": SOURCE_NAMES}),
        ("segment", segment.parser, SegmentConfig, ["--map", "m", "--model", "x", "A:1", "--motif-type", "hairpin4",
                                                     "--out", "o"], lambda a: config_from_args(a, SegmentConfig), {}),
        ("train", train.parser, TrainConfig, ["--root", "r", "--out", "o"], lambda a: config_from_args(a, TrainConfig),
         {}),
        ("search", search.parser, SearchQuery, ["--out", "ids.parquet"], lambda a: config_from_args(a, SearchQuery), {}),
        ("publish", publish.parser, PublishOptions, ["--store", "s", "--version", "1.0.0"],
         lambda a: {k: getattr(a, k) for k in ("notes", "parent", "new_concept", "verify_values")},
         {"exclude": publish.COMPUTED}),
        ("multi-entry", multi_entry.parser, FixtureConfig, ["--out", "o"],
         lambda a: config_from_args(a, FixtureConfig), {}),
        ("split", split.parser, SplitConfig, ["store.zarr"],
         lambda a: config_from_args(a, SplitConfig, exclude=("level",)), {"exclude": ("level",)}),
        ("split", split.parser, HomologySources, ["store.zarr"],
         lambda a: config_from_args(a, HomologySources, names=split.HOMOLOGY_NAMES), {"names": split.HOMOLOGY_NAMES}),
    ]


@pytest.mark.parametrize("case", range(12))
def test_every_config_field_has_a_flag_whose_default_is_the_librarys(case):
    import dataclasses

    from rnamotif_data.common.cliargs import config_flags

    command, parser, config_cls, required, make, flag_options = _configs()[case]
    p = parser()
    options = {s for a in p._actions for s in a.option_strings}
    flags = config_flags(config_cls, **flag_options)
    nested = {f.name for f in dataclasses.fields(config_cls)
              if dataclasses.is_dataclass(f.default) or dataclasses.is_dataclass(f.default_factory)}
    excluded = set(flag_options.get("exclude", ()))
    public = {f.name for f in dataclasses.fields(config_cls) if not f.name.startswith("_")}
    assert set(flags) == public - nested - excluded, command
    missing = [flag for flag in flags.values() if flag not in options]
    assert missing == [], f"rnamotif {command}: no flag for {config_cls.__name__} fields {missing}"
    assert all(f"--{name.replace('_', '-')}" in options for name in excluded - set(COMPUTED_BY_PROGRAM)), command
    built = make(p.parse_args(required))
    if config_cls.__name__ == "TrainConfig":
        assert built == config_cls(root="r", out="o")
    elif config_cls.__name__ == "PublishOptions":
        assert built == {f.name: f.default for f in dataclasses.fields(config_cls) if f.name in built}
    else:
        assert built == config_cls(), f"rnamotif {command}: {config_cls.__name__} defaults differ from the library's"


def test_a_config_flag_reaches_the_config():
    from rnamotif_data.cli import build, train

    a = build.parser().parse_args(["--manifest", "m", "--out", "o", "--cube-size", "32", "--background-per-entry", "auto",
                                   "--min-motif-fit-z", "none", "--codec", "zstd", "--compression-level", "7"])
    config = build.build_config(a)
    assert (config.segment.cube_size, config.background.per_entry, config.min_motif_fit_z, config.codec,
            config.compression_level) == (32, None, None, "zstd", 7)
    t = train.parser().parse_args(["--root", "r", "--out", "o", "--channels", "density", "zone", "--no-masked",
                                   "--class-weights"])
    from rnamotif_data.common.cliargs import config_from_args
    from rnamotif_data.learn.train import TrainConfig

    cfg = config_from_args(t, TrainConfig)
    assert (cfg.channels, cfg.masked, cfg.class_weights) == (("density", "zone"), False, True)
