"""The `graphflow` console script, run as a user runs it."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile

# The console script that `pip install` put beside this Python, run from a
# folder other than the repository, as a user runs it.
SCRIPT = pathlib.Path(sys.executable).with_name("graphflow")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as folder:
        return subprocess.run(
            [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=folder
        )


def test_version() -> None:
    result = _run("version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("graphflow 0.1.0")
    assert "llvmlite" in result.stdout


def test_no_command_prints_help_and_fails() -> None:
    result = _run()
    assert result.returncode == 2
    assert "usage: graphflow" in result.stdout


def test_unknown_command_is_an_error() -> None:
    result = _run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
