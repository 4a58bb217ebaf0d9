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
from tui.screens.help import HelpScreen
from tui.widgets.modals import ConfirmModal, TaskPickerModal
from tui.widgets.output import HostLog

SIZES = [pytest.param((100, 32), id="100x32"), pytest.param((80, 24), id="80x24")]
WINDOW_END = (FIXED_NOW + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def settle(pilot) -> None:
    """Let the flush timers draw the last state (toasts such as the window alert cleared:
    they time out, and the screen under them is what is compared)."""
    await pilot.pause(0.3)
    pilot.app.clear_notifications()
    await wait_for(pilot, lambda: all(log.settled for log in pilot.app.screen.query(HostLog)), what="output wrapped")
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
        from runbook.parse.parser import parse_file
        from sessions.engine.session import Session
        from sessions.journal import events as ev
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


WIDE = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def record_failed_fleet_run(session) -> None:
    """A three-host serial run recorded as the engine would (fixed durations): web-1
    succeeded, web-2 failed at line 2, web-3 never reached."""
    from sessions.journal import events as ev

    session.record(ev.TaskStarted("MINI-101", "alice"))
    session.record(ev.StepStarted("021000-fleet", "MINI-101", 1, ("web-1", "web-2", "web-3"),
                                  "echo taking the lock\nmkdir lockdir", mode="serial"))
    session.record(ev.HostStarted("021000-fleet", "web-1"))
    session.record_output(ev.OutputChunk("021000-fleet", "web-1", "stdout", "taking the lock\n"))
    session.record(ev.HostFinished("021000-fleet", "web-1", "succeeded", 0, None, 0.4))
    session.record(ev.HostStarted("021000-fleet", "web-2"))
    session.record_output(ev.OutputChunk("021000-fleet", "web-2", "stdout", "taking the lock\n"))
    session.record_output(ev.OutputChunk("021000-fleet", "web-2", "stderr",
                                         "mkdir: cannot create directory 'lockdir': File exists\n"))
    session.record(ev.HostFinished("021000-fleet", "web-2", "failed", 1, None, 0.3,
                                   error="failed at line 2 of the block (mini.md:140): `mkdir lockdir`, exit 1",
                                   failed_line=140, failed_block_line=2, failed_command="mkdir lockdir"))
    session.record(ev.HostFinished("021000-fleet", "web-3", "skipped"))
    session.record(ev.StepFinished("021000-fleet", "failed", 0.7))


@pytest.mark.usefixtures("frozen")
class TestWindowSnapshots:
    """Issue 13's screens at 80x24 and 120x40."""

    @pytest.mark.parametrize("size", WIDE)
    def test_the_prod_checklist(self, snap_compare, make_app, size):
        app = make_app(PROD, window_end=WINDOW_END)

        async def run_before(pilot) -> None:
            await select(pilot, "PROD-K8S-001")
            await settle(pilot)

        assert snap_compare(app, terminal_size=size, run_before=run_before)

    @pytest.mark.parametrize("size", WIDE)
    def test_a_failed_multi_host_step_with_its_recap(self, snap_compare, make_app, size):
        app = make_app(MINI, window_end=WINDOW_END)

        async def run_before(pilot) -> None:
            screen = await select(pilot, "MINI-101")
            record_failed_fleet_run(app.session)
            await wait_for(pilot, lambda: (log := screen.output.log_for("*all*")) is not None
                           and any("RECAP" in line for line in log.source), what="the recap")
            await settle(pilot)

        assert snap_compare(app, terminal_size=size, run_before=run_before)

    @pytest.mark.parametrize("size", WIDE)
    def test_the_help_screen(self, snap_compare, make_app, size):
        app = make_app(MINI, window_end=WINDOW_END)

        async def run_before(pilot) -> None:
            await select(pilot, "MINI-001")
            pilot.app.clear_notifications()
            await pilot.press("question_mark")
            await modal(pilot, HelpScreen)
            await settle(pilot)

        assert snap_compare(app, terminal_size=size, run_before=run_before)

    @pytest.mark.parametrize("size", WIDE)
    def test_the_output_search(self, snap_compare, make_app, size):
        app = make_app(MINI, window_end=WINDOW_END)

        async def run_before(pilot) -> None:
            screen = await select(pilot, "MINI-101")
            record_failed_fleet_run(app.session)
            await wait_for(pilot, lambda: screen.output.log_for("*all*") is not None
                           and any("RECAP" in line for line in screen.output.log_for("*all*").source), what="recap")
            await settle(pilot)  # the rows are wrapped to the pane before they are searched
            screen.output.search("lockdir")
            await settle(pilot)

        assert snap_compare(app, terminal_size=size, run_before=run_before)

    @pytest.mark.parametrize("size", WIDE)
    def test_the_task_picker(self, snap_compare, make_app, size):
        app = make_app(PROD, window_end=WINDOW_END)

        async def run_before(pilot) -> None:
            await select(pilot, "PROD-PRE-001")
            pilot.app.clear_notifications()
            await pilot.press("g")
            picker = await modal(pilot, TaskPickerModal)
            from textual.widgets import Input

            picker.query_one(Input).cursor_blink = False  # a blinking cursor is caught on or off
            await pilot.press(*"k8s")
            await settle(pilot)

        assert snap_compare(app, terminal_size=size, run_before=run_before)
