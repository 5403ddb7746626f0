"""The `graphflow` console script, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graphflow.cli", *args], capture_output=True, text=True, timeout=60
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
