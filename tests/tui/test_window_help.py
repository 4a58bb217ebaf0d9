"""Issue 13 pieces: help on a key, the task picker, the window on resume, the quit hint,
and a resume that opens the step needing a decision."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from runbook.parser import parse_file
from sessions import events as ev
from sessions.session import Session
from sessions.store import list_sessions

from tests.tui.conftest import FIXED_NOW, MINI, screen_text, wait_for
from tests.tui.test_actions import events, main_screen, modal, select, type_text
from tui.screens.help import HelpScreen, binding_rows
from tui.screens.main import MainScreen
from tui.widgets.modals import TaskPickerModal
from tui.widgets.modals.task_picker import PickerEntry, ranked

WINDOW_END = (FIXED_NOW + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
LATER_END = (FIXED_NOW + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


class TestHelp:
    def test_every_binding_of_the_main_screen_is_listed_once_in_a_named_group(self):
        rows = binding_rows([MainScreen.BINDINGS, MainScreen.BINDINGS])
        listed = [tooltip for items in rows.values() for _, _, tooltip in items]
        assert sorted(listed) == sorted(b.tooltip for b in MainScreen.BINDINGS)
        assert "Run" in rows and "Decide and record" in rows and "Move around" in rows
        assert rows.get("Other", []) == [], "every main-screen action belongs to a named group"

    async def test_question_mark_and_f1_open_the_help_and_escape_closes_it(self, make_app):
        app = make_app(MINI)
        async with app.run_test(size=(80, 24)) as pilot:
            await select(pilot, "MINI-001")
            for key in ("question_mark", "f1"):
                await pilot.press(key)
                await modal(pilot, HelpScreen)
                assert "Keys (Escape closes)" in screen_text(app)
                assert "Tick or untick" in "\n".join(t for items in app.screen.rows.values() for *_, t in items)
                await pilot.press("escape")
                await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="help closed")

    async def test_the_help_lists_the_guards(self, make_app):
        app = make_app(MINI)
        async with app.run_test(size=(120, 60)) as pilot:
            await select(pilot, "MINI-001")
            await pilot.press("question_mark")
            await modal(pilot, HelpScreen)
            await pilot.pause(0.1)
            text = screen_text(app)
            assert "destructive command" in text and "outcome unknown" in text
            assert "Run the current step" in text


class TestTaskPicker:
    def test_fuzzy_ranking_and_document_order(self):
        entries = [PickerEntry("A-1", "A-1  Say hello"), PickerEntry("B-2", "B-2  Remove scratch data"),
                   PickerEntry("gate:0", "Phase 0 gate  Smoke test")]
        assert [e.item_id for e in ranked(entries, "")] == ["A-1", "B-2", "gate:0"]
        assert [e.item_id for e in ranked(entries, "scratch")][0] == "B-2"
        assert [e.item_id for e in ranked(entries, "smoke")] == ["gate:0"]
        assert ranked(entries, "zzzz") == []

    async def test_g_jumps_to_the_chosen_task_and_runs_nothing(self, make_app):
        app = make_app(MINI)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await select(pilot, "MINI-001")
            before = len(events(app))
            await pilot.press("g")
            picker = await modal(pilot, TaskPickerModal)
            assert any(e.label.startswith("Phase 0 gate") for e in picker.entries), "gate ids read as words"
            await type_text(pilot, "interactive")
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.task_view.item is not None and screen.task_view.item.id == "MINI-102",
                           what="jumped to MINI-102")
            assert not [e for e in events(app)[before:] if isinstance(e, ev.StepStarted)]

    async def test_escape_stays(self, make_app):
        app = make_app(MINI)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await select(pilot, "MINI-001")
            await pilot.press("g")
            await modal(pilot, TaskPickerModal)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="picker closed")
            assert screen.task_view.item.id == "MINI-001"


class TestResume:
    async def test_a_new_window_end_on_resume_is_journaled_and_shown(self, make_app, session_root):
        old = Session.create(parse_file(str(MINI)), root=session_root, window_end=WINDOW_END)
        old.close("quit")
        app = make_app(MINI, mode="resume", ref=old.id, window_end=LATER_END)
        async with app.run_test(size=(100, 32)) as pilot:
            await main_screen(pilot)
            assert app.session.state.window_end == LATER_END
            opens = [e for e in events(app) if isinstance(e, ev.SessionOpened)]
            assert opens[-1].resumed and opens[-1].window_end == LATER_END
            await pilot.pause(0.2)
            assert "5h" in screen_text(app) or "4h" in screen_text(app)

    async def test_resume_without_a_window_keeps_the_old_one(self, make_app, session_root):
        old = Session.create(parse_file(str(MINI)), root=session_root, window_end=WINDOW_END)
        old.close("quit")
        app = make_app(MINI, mode="resume", ref=old.id)
        async with app.run_test(size=(100, 32)) as pilot:
            await main_screen(pilot)
            assert app.session.state.window_end == WINDOW_END

    async def test_resume_opens_the_step_whose_outcome_is_unknown(self, make_app, session_root):
        old = Session.create(parse_file(str(MINI)), root=session_root)
        old.record(ev.TaskStarted("MINI-101", "alice"))
        old.record(ev.StepStarted("run-x", "MINI-101", 2, ("local",), "sleep 100"))
        old.record(ev.HostStarted("run-x", "local"))
        old.journal.close()  # killed: no step end, no session_closed
        app = make_app(MINI, mode="resume", ref=old.id)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await main_screen(pilot)
            await wait_for(pilot, lambda: screen.task_view.item is not None and screen.task_view.item.id == "MINI-101"
                           and screen.task_view.step_view() is not None
                           and screen.task_view.step_view().step.number == 2, what="the unknown step opened")


class TestQuitHint:
    def test_quit_prints_the_exact_resume_command(self, tmp_path):
        """The real CLI under a pseudo-terminal-less run: quit at once, read the hint, run it."""
        root = tmp_path / "sessions"
        script = (
            "import asyncio, sys\n"
            "from runbook.parser import parse_file\n"
            "from tui.commands import run_app\n"
            "from tui.launch import Launch\n"
            "from tui.app import RunbookApp\n"
            "async def main():\n"
            "    launch = Launch(runbook=parse_file(sys.argv[1]), root=__import__('pathlib').Path(sys.argv[2]))\n"
            "    orig = RunbookApp.run_async\n"
            "    async def headless(self, **kw):\n"
            "        async def quit_soon(pilot):\n"
            "            await pilot.pause(0.5)\n"
            "            await pilot.press('q')\n"
            "        return await orig(self, headless=True, auto_pilot=quit_soon)\n"
            "    RunbookApp.run_async = headless\n"
            "    return await run_app(launch)\n"
            "sys.exit(asyncio.run(main()))\n"
        )
        env = {**os.environ, "USER": "alice"}
        p = subprocess.run([sys.executable, "-c", script, str(MINI), str(root)], capture_output=True, text=True,
                           timeout=60, env=env, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        (summary,) = list_sessions(root)
        hint = [line for line in p.stderr.splitlines() if "resumable" in line]
        assert hint == [f"runbook: session {summary.id} is resumable: runbook resume {summary.id} --session-dir {root}"]
