"""The static checks (ruff, mypy) run with the test suite, configured in pyproject.toml.

Both tools come with the ``test`` extra.  Missing tools skip on a developer's machine but fail
under CI (``CI=true``): a check that did not run must not pass there.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINTED = ["runbook", "sessions", "tui", "tests", "bench"]
TYPED = ["runbook", "sessions", "tui"]


def _tool(module: str) -> None:
    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} is not installed (pip install -e '.[test]')"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


def test_ruff_is_clean() -> None:
    _tool("ruff")
    done = _run("ruff", "check", "--no-cache", "--output-format", "concise", *LINTED)
    assert done.returncode == 0, f"ruff check found problems:\n{done.stdout}{done.stderr}"


def test_mypy_is_clean() -> None:
    _tool("mypy")
    done = _run("mypy", *TYPED)
    assert done.returncode == 0, f"mypy found problems:\n{done.stdout}{done.stderr}"
