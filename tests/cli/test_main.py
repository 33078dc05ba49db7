"""`main(argv) -> int`: the version, help, and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

import handrail
from handrail.cli.main import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"handrail {handrail.__version__}\n"
    assert handrail.__version__ == "0.1.0"


def test_no_command_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([])
    out, err = capsys.readouterr()
    assert code in (0, 2)  # click versions differ on the code for no_args_is_help
    assert "run" in out + err and "graph" in out + err


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["launch"]) == 2
    assert "No such command 'launch'" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "handrail.cli", "--version"], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, f"handrail {handrail.__version__}\n")
