"""Snapshot tests (pytest-textual-snapshot) at 100x32 and 80x24.

Deterministic: fixed clock, session id, run ids, operator, host name and journal
timestamps (the ``frozen`` fixture).  Regenerate with ``--snapshot-update`` after a
deliberate change, and look at the SVGs in ``__snapshots__/``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.tui.conftest import FIXED_NOW, MINI, PROD, wait_for
from tests.tui.test_actions import gate_waived, modal, select
from tui.widgets.modals import ConfirmModal

SIZES = [pytest.param((100, 32), id="100x32"), pytest.param((80, 24), id="80x24")]
WINDOW_END = (FIXED_NOW + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def settle(pilot) -> None:
    """Let the flush timers draw the last state (toasts such as the window alert cleared:
    they time out, and the screen under them is what is compared)."""
    await pilot.pause(0.3)
    pilot.app.clear_notifications()
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()


@pytest.mark.usefixtures("frozen")
class TestSnapshots:
    @pytest.mark.parametrize("size", SIZES)
    def test_main_screen_on_the_prod_checklist(self, snap_compare, make_app, size):
        app = make_app(PROD, window_end=WINDOW_END)

        async def run_before(pilot) -> None:
            await select(pilot, "PROD-PRE-001")
            await settle(pilot)

        assert snap_compare(app, terminal_size=size, run_before=run_before)

    @pytest.mark.parametrize("size", SIZES)
    def test_a_running_step(self, snap_compare, make_app, size):
        app = make_app(MINI, window_end=WINDOW_END)

        async def run_before(pilot) -> None:
            gate_waived(app, "MINI-101")
            screen = await select(pilot, "MINI-101")
            screen.task_view.pin_step(2)
            await pilot.press("r")
            await wait_for(pilot, lambda: "sleeping" in "\n".join(
                getattr(screen.output.log_for("local"), "lines", [])), what="output")
            await wait_for(pilot, lambda: screen.task_view.step_view(2).status == "running", what="running")
            await settle(pilot)

        assert snap_compare(app, terminal_size=size, run_before=run_before)

    @pytest.mark.parametrize("size", SIZES)
    def test_a_guard_dialog(self, snap_compare, make_app, size):
        app = make_app(MINI, window_end=WINDOW_END)

        async def run_before(pilot) -> None:
            await select(pilot, "MINI-002")
            pilot.app.clear_notifications()  # the window alert, before the dialog covers its screen
            await pilot.pause(0.1)
            await pilot.press("r")
            await modal(pilot, ConfirmModal)
            await settle(pilot)

        assert snap_compare(app, terminal_size=size, run_before=run_before)

    @pytest.mark.parametrize("size", SIZES)
    def test_the_resume_prompt(self, snap_compare, make_app, session_root, size):
        from runbook.parser import parse_file
        from sessions import events as ev
        from sessions.session import Session
        from sessions.store import list_sessions

        old = Session.create(parse_file(str(MINI)), root=session_root, window_end=WINDOW_END)
        old.record(ev.TaskStarted("MINI-001", "alice"))
        old.close("quit")
        (summary,) = list_sessions(session_root)
        app = make_app(MINI, mode="offer", offer_summary=summary)

        async def run_before(pilot) -> None:
            await wait_for(pilot, lambda: pilot.app.screen.id == "resume", what="the resume prompt")
            await settle(pilot)

        assert snap_compare(app, terminal_size=size, run_before=run_before)
