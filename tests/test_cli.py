"""The ``rnamotif`` command: one entry point, every sub-command, one runner."""

from __future__ import annotations

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
    for name, (_, _, text, _) in COMMANDS.items():
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
    module, prefix, _, _ = COMMANDS[name]
    # an alias (rnamotif search = rnamotif manifest search) shows the command it runs
    expected = f"usage: rnamotif {'manifest ' + ' '.join(prefix) if prefix else name}"
    assert out.startswith(expected), out[:200]


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


