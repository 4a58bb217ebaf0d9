"""The core never imports the UI: tui -> sessions -> runbook, never back."""

import json
import subprocess
import sys

import pytest

CORE_MODULES = [
    "runbook.cli",
    "runbook.model",
    "runbook.parser",
    "runbook.lint",
    "runbook.inventory",
    "runbook.executor",
    "runbook.local_executor",
    "runbook.ssh_executor",
    "runbook.probes.k8s",
    "sessions.journal",
    "sessions.state",
    "sessions.session",
    "sessions.engine",
    "sessions.export",
    "sessions.signing",
]


def _loaded_after_import(module: str) -> set[str]:
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_never_imports_textual_or_tui(module):
    loaded = _loaded_after_import(module)
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded), module
    assert not any(m == "tui" or m.startswith("tui.") for m in loaded), module


@pytest.mark.parametrize("module", [m for m in CORE_MODULES if m.startswith("runbook.") and m != "runbook.cli"])
def test_domain_never_imports_sessions(module):
    loaded = _loaded_after_import(module)
    assert not any(m == "sessions" or m.startswith("sessions.") for m in loaded), module


def test_cli_imports_nothing_heavy_at_start():
    loaded = _loaded_after_import("runbook.cli")
    assert not any(m.startswith(("sessions", "tui", "textual", "asyncssh", "kubernetes")) for m in loaded)


def test_the_check_can_fail():
    """Guard against a vacuous test: importing the TUI does load textual."""
    assert "textual" in _loaded_after_import("textual.app")
