"""Fixtures for the TUI tests: a real parsed runbook, a real session and engine in a
temporary session directory, a fixed clock, and (for snapshots) fixed ids and
journal timestamps so the screen is the same on every run."""

from __future__ import annotations

import asyncio
import difflib
import html
import io
import itertools
import pickle
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO, PROD

HERE = Path(__file__).resolve().parent
MINI = HERE / "mini.md"
FIXED_NOW = datetime(2026, 11, 27, 2, 30, 0, tzinfo=UTC)

__all__ = ["DEMO", "FIXED_NOW", "MINI", "PROD", "screen_text", "wait_for"]


def fixed_clock() -> datetime:
    return FIXED_NOW


@pytest.fixture(autouse=True)
def operator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator is ``alice`` (not whoever runs the tests)."""
    monkeypatch.setenv("USER", "alice")
    monkeypatch.delenv("SUDO_USER", raising=False)
    for var in ("SSH_CLIENT", "SSH_CONNECTION", "RUNBOOK_INVENTORY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic session id, run ids and journal timestamps (one second apart)."""
    ticks = itertools.count()
    runs = itertools.count(1)

    def utc_now() -> str:
        t = FIXED_NOW - timedelta(minutes=20) + timedelta(seconds=next(ticks))
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    monkeypatch.setattr("sessions.journal.journal.utc_now", utc_now)
    monkeypatch.setattr("sessions.engine.session.new_session_id", lambda now=None: "20261127T020000Z-7e57")
    monkeypatch.setattr("sessions.engine.step_runner.new_run_id", lambda: f"021000-run{next(runs):04d}")
    monkeypatch.setattr("socket.gethostname", lambda: "jump-1")


@pytest.fixture
def session_root(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Local steps run in a scratch directory (the mini runbook touches ./mini-*)."""
    d = tmp_path / "work"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


@pytest.fixture
def make_app(session_root: Path, workdir: Path) -> Any:
    """``make_app(path=MINI, **launch)`` -> a RunbookApp on a new session; closed afterwards."""
    from runbook.parse.parser import parse_file
    from tui.app import RunbookApp
    from tui.launch import Launch

    apps: list[Any] = []

    def make(path: Path = MINI, *, clock: Callable[[], datetime] = fixed_clock, mode: str = "new", **kw: Any) -> Any:
        launch = Launch(runbook=parse_file(str(path)), root=session_root, mode=mode, clock=clock, **kw)
        app = RunbookApp(launch)
        # No animations: a tab underline or a scroll caught half-way would make the
        # screen depend on timing.  (The tmux end-to-end test runs them for real.)
        app.animation_level = "none"
        apps.append(app)
        return app

    yield make
    for app in apps:
        if app.session is not None and not app.session.closed:
            app.session.close("test over")


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Pause the pilot until ``predicate()`` is truthy (fails the test after ``timeout`` s)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.02)


def screen_text(app: Any) -> str:
    """The screen as plain text (what the operator reads)."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


_SVG_TEXT = re.compile(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>')


def svg_screen_text(svg: str) -> list[str]:
    """The characters of a Textual SVG screenshot, one string per terminal row (a text
    run's column is its x over the 12.2-pixel cell width Textual's SVGs use)."""
    rows: dict[float, dict[int, str]] = {}
    for m in _SVG_TEXT.finditer(svg):
        cells = rows.setdefault(float(m.group(2)), {})
        column = round(float(m.group(1)) / 12.2)
        for i, ch in enumerate(html.unescape(m.group(3)).replace("\xa0", " ")):
            cells[column + i] = ch
    return ["".join(cells.get(c, " ") for c in range(max(cells) + 1)).rstrip()
            for _, cells in sorted(rows.items()) if cells]


@pytest.fixture
def snap_compare(snap_compare: Callable[..., bool], request: pytest.FixtureRequest) -> Callable[..., bool]:
    """pytest-textual-snapshot's ``snap_compare``, but a mismatch fails with the text
    difference in the test output (CI keeps no HTML report); colour-only differences
    say so."""
    from pytest_textual_snapshot import node_to_report_path

    def compare(*args: Any, **kw: Any) -> bool:
        if snap_compare(*args, **kw):
            return True
        data = pickle.loads(node_to_report_path(request.node).read_bytes())
        expected, actual = svg_screen_text(str(data[1])), svg_screen_text(str(data[2]))
        diff = "\n".join(difflib.unified_diff(expected, actual, "snapshot", "this run", lineterm=""))
        pytest.fail(f"the screen differs from the snapshot:\n{diff or '(same text: colours or styles differ)'}")

    return compare
