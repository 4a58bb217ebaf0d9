"""Opening the TUI: window end parsing, the resume prompt, the header clock, progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runbook.errors import UserError
from sessions.journal import events as ev
from sessions.state.state import UNKNOWN
from tests.tui.conftest import FIXED_NOW, MINI, wait_for
from tests.tui.test_actions import main_screen
from tui.commands import parse_window_end, resumable_session
from tui.widgets.header import window_level


class TestWindow:
    def test_hh_mm_is_the_nearest_such_time(self):
        now = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
        assert parse_window_end("04:00", now) == "2026-11-27T04:00:00Z"
        assert parse_window_end("02:10", now) == "2026-11-27T02:10:00Z"  # ended 20 minutes ago
        late = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
        assert parse_window_end("01:00", late) == "2026-11-28T01:00:00Z"

    def test_rfc3339_and_errors(self):
        assert parse_window_end("2026-11-27T04:00:00+01:00") == "2026-11-27T03:00:00Z"
        assert parse_window_end(None) is None
        with pytest.raises(UserError, match="--window-end"):
            parse_window_end("tomorrow")

    def test_levels(self):
        hour = 3600
        assert window_level(3 * hour, 1 * hour) == "ok"
        assert window_level(1 * hour + 600, 1 * hour) == "amber"
        assert window_level(1800, 1 * hour) == "red"
        assert window_level(-60, 0) == "red"

    async def test_clock_turns_amber_then_red(self, make_app):
        clock = {"now": FIXED_NOW}
        end = (FIXED_NOW + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
        app = make_app(MINI, window_end=end, clock=lambda: clock["now"])
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await main_screen(pilot)
            widget = screen.query_one("#header-clock")
            assert widget.has_class("-ok") and "on time" in str(widget.render())
            clock["now"] = FIXED_NOW + timedelta(hours=1)  # 3h left, 2h30 critical path (phase 1 waits)
            await wait_for(pilot, lambda: widget.has_class("-amber"), what="amber")
            assert "tight" in str(widget.render())
            clock["now"] = FIXED_NOW + timedelta(hours=2)
            await wait_for(pilot, lambda: widget.has_class("-red"), what="red")
            assert "over" in str(widget.render())


class TestResumePrompt:
    def _paused(self, session_root):
        from runbook.parse.parser import parse_file
        from sessions.engine.session import Session

        old = Session.create(parse_file(str(MINI)), root=session_root)
        old.record(ev.Note("before the break", "MINI-001", "alice"))
        old.close("quit")
        summary = resumable_session(session_root, str(MINI))
        assert summary is not None and summary.id == old.id
        return summary

    async def test_resume_reopens_the_same_session(self, make_app, session_root):
        summary = self._paused(session_root)
        app = make_app(MINI, mode="offer", offer_summary=summary)
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for(pilot, lambda: app.screen.id == "resume", what="prompt")
            await pilot.press("r")
            await main_screen(pilot)
            assert app.session.id == summary.id
            assert [n.text for n in app.session.state.notes] == ["before the break"]

    async def test_new_starts_another_session(self, make_app, session_root):
        summary = self._paused(session_root)
        app = make_app(MINI, mode="offer", offer_summary=summary)
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for(pilot, lambda: app.screen.id == "resume", what="prompt")
            await pilot.press("n")
            await main_screen(pilot)
            assert app.session.id != summary.id and not app.session.state.notes

    async def test_a_resumed_session_reattaches_its_detached_runs(self, make_app, session_root):
        """On resume the app runs the engine's recovery: a detached run whose end was not seen and
        that cannot be re-attached (no spool id journaled) ends outcome unknown, in the journal."""
        from runbook.parse.parser import parse_file
        from sessions.engine.session import Session

        old = Session.create(parse_file(str(MINI)), root=session_root)
        old.record(ev.StepStarted("r-det", "MINI-001", 1, ("local",), "sleep 600", detached=True))
        old.close("quit")
        app = make_app(MINI, mode="offer", offer_summary=resumable_session(session_root, str(MINI)))
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for(pilot, lambda: app.screen.id == "resume", what="prompt")
            await pilot.press("r")
            await main_screen(pilot)
            assert app.session.resumed
            await wait_for(pilot, lambda: app.session.state.runs["r-det"].hosts["local"].status == UNKNOWN,
                           what="the detached run recovered")

    async def test_a_new_session_is_not_resumed(self, make_app, session_root):
        summary = self._paused(session_root)
        app = make_app(MINI, mode="offer", offer_summary=summary)
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for(pilot, lambda: app.screen.id == "resume", what="prompt")
            await pilot.press("n")
            await main_screen(pilot)
            assert not app.session.resumed

    async def test_quit_opens_nothing(self, make_app, session_root):
        summary = self._paused(session_root)
        app = make_app(MINI, mode="offer", offer_summary=summary)
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for(pilot, lambda: app.screen.id == "resume", what="prompt")
            await pilot.press("q")
        assert app.session is None and app.return_code == 0


class TestProgress:
    def test_critical_path_and_blocked_tasks(self):
        from runbook.parse.parser import parse_file
        from sessions.state.state import replay
        from sessions.state.window import remaining_critical_path
        from tui.progress import progress, unfinished_dependencies

        rb = parse_file(str(MINI))
        state = replay([])
        # MINI-001 (30) then MINI-002 (60), then phase 1, which waits for phase 0: MINI-101 (60)
        assert remaining_critical_path(rb, state, FIXED_NOW) == 150
        assert unfinished_dependencies(rb, state, "MINI-002") == ["MINI-001"]
        state = replay([ev.TaskCompleted("MINI-001")])
        assert remaining_critical_path(rb, state, FIXED_NOW) == 120
        assert unfinished_dependencies(rb, state, "MINI-002") == []
        assert progress(rb, state) == (1, 4)


class TestErrors:
    def test_resume_without_the_runbook_file_is_a_clear_error(self, session_root, tmp_path):
        import shutil

        from runbook.parse.parser import parse_file
        from sessions.engine.session import Session
        from tui.launch import Launch

        copy = tmp_path / "gone.md"
        shutil.copy(MINI, copy)
        old = Session.create(parse_file(str(copy)), root=session_root)
        old.close("quit")
        copy.unlink()
        with pytest.raises(UserError, match="is gone"):
            Launch(root=session_root, mode="resume", ref=old.id).open_session("resume")

    async def test_an_unexpected_failure_is_shown_and_the_session_goes_on(self, make_app):
        from tests.tui.test_actions import select

        app = make_app(MINI)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")

            async def broken(*args, **kwargs):
                raise RuntimeError("executor exploded")

            app.engine.run_step_summary = broken
            await pilot.press("r")
            await wait_for(pilot, lambda: any("executor exploded" in str(n.message) for n in app._notifications),
                           what="the error shown")
            await pilot.press("n")  # still usable
            await wait_for(pilot, lambda: app.screen is not screen, what="the note dialog")
