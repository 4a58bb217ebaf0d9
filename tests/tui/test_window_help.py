"""Issue 13 pieces: help on a key, the task picker, the window on resume, the quit hint,
and a resume that opens the step needing a decision."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from runbook.parse.parser import parse_file
from sessions.engine.session import Session
from sessions.journal import events as ev
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
        assert sorted(listed) == sorted(b.tooltip for b in MainScreen.BINDINGS if b.description)
        assert "Run" in rows and "Decide and record" in rows and "Output" in rows and "Move around and layout" in rows
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
            assert "Run the current step" in screen_text(app)
            await pilot.press("end")  # the help scrolls with the keyboard: the guards come last
            await pilot.pause(0.1)
            text = screen_text(app)
            assert "destructive command" in text and "outcome unknown" in text


class TestTaskPicker:
    def test_fuzzy_ranking_and_document_order(self):
        entries = [PickerEntry("A-1", "A-1  Say hello"), PickerEntry("B-2", "B-2  Remove scratch data"),
                   PickerEntry("gate:0", "Phase 0 gate  Smoke test")]
        assert [e.item_id for e in ranked(entries, "")] == ["A-1", "B-2", "gate:0"]
        assert next(e.item_id for e in ranked(entries, "scratch")) == "B-2"
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

    async def test_j_after_a_jump_moves_into_the_steps(self, make_app):
        """Whatever has focus after the picker (the tree, or the task pane itself), j and k
        reach the steps and checkboxes; they never only scroll."""
        from tui.widgets.checklist import CheckItem
        from tui.widgets.step_view import StepView

        app = make_app(MINI)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await select(pilot, "MINI-001")
            await pilot.press("g")
            await modal(pilot, TaskPickerModal)
            await type_text(pilot, "interactive")
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.task_view.item is not None and screen.task_view.item.id == "MINI-102",
                           what="jumped to MINI-102")
            screen.task_view.focus()  # the pane itself, as after a click on its prose
            await pilot.pause(0.1)
            await pilot.press("j")
            await pilot.pause(0.1)
            assert isinstance(app.focused, (StepView, CheckItem)), app.focused
            screen.task_view.focus()
            await pilot.pause(0.1)
            await pilot.press("k")
            await pilot.pause(0.1)
            assert app.focused is list(screen.task_view.query("StepView, CheckItem"))[-1]

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

    async def test_a_decided_host_keeps_its_decision_on_its_tab_after_reopening(self, make_app, session_root):
        """Killed mid-step, decided failed, quit, reopened: the host tab says failed (✘), as the
        tree does, not outcome unknown (?)."""
        old = Session.create(parse_file(str(MINI)), root=session_root)
        old.record(ev.TaskStarted("MINI-101", "alice"))
        old.record(ev.StepStarted("run-x", "MINI-101", 2, ("local",), "sleep 100"))
        old.record(ev.HostStarted("run-x", "local"))
        old.record_output(ev.OutputChunk("run-x", "local", "stdout", "sleeping\n"))
        old.record(ev.StepOutcomeUnknown("run-x", "the runbook process ended before the step did"))
        old.record(ev.OutcomeDecided("run-x", "failed", "checked by hand: it never finished", who="alice"))
        old.close("quit")
        assert old.state.step_run("MINI-101", 2).hosts["local"].effective == "failed"
        app = make_app(MINI, mode="resume", ref=old.id)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await main_screen(pilot)
            await wait_for(pilot, lambda: screen.output.log_for("local") is not None, what="the host tab")
            await pilot.pause(0.3)
            text = screen_text(app)
            assert "✘ local" in text and "? local" not in text, text


class TestQuitHint:
    def test_quit_prints_the_exact_resume_command(self, tmp_path):
        """The real CLI under a pseudo-terminal-less run: quit at once, read the hint, run it."""
        root = tmp_path / "sessions"
        script = (
            "import asyncio, sys\n"
            "from runbook.parse.parser import parse_file\n"
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


async def fed(pilot, screen, host: str, text: str) -> None:
    screen.output.feed(host, text)
    await wait_for(pilot, lambda: screen.output.log_for(host) is not None and screen.output.log_for(host).is_mounted
                   and screen.output.log_for(host).source, what=f"{host} output drawn")
    await pilot.pause(0.2)


class TestOutput:
    async def test_long_lines_wrap_with_a_continuation_mark_and_w_toggles(self, make_app):
        app = make_app(MINI)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await select(pilot, "MINI-001")
            reason = "error: " + "connection refused by prod-k8s-master-04 " * 6 + "END"
            await fed(pilot, screen, "local", reason + "\nshort\n")
            log = screen.output.log_for("local")
            assert len(log.lines) > 3 and log.lines[1].startswith("↪ ")
            assert "".join(r.removeprefix("↪ ") for r in log.lines[:-1]) == reason, "nothing lost in the wrap"
            assert all(len(r) < 80 for r in log.lines)
            await pilot.press("w")
            await wait_for(pilot, lambda: list(log.lines) == [reason, "short"], what="unwrapped")
            await pilot.press("w")
            await wait_for(pilot, lambda: len(log.lines) > 3, what="wrapped again")

    async def test_search_finds_highlights_and_moves_between_matches(self, make_app):
        app = make_app(MINI)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            await fed(pilot, screen, "local", "".join(f"line {i}{' ERROR here' if i % 100 == 7 else ''}\n"
                                                      for i in range(1000)))
            await pilot.press("slash")
            await type_text(pilot, "error")
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.output.query_text == "error", what="searched")
            assert screen.output.border_subtitle.endswith("/error: 10 of 10")  # the newest match first
            log = screen.output.log_for("local")
            assert log.highlight and "ERROR" in log.lines[907]
            assert screen.output.next_match(1) == 7 and screen.output.border_subtitle.endswith("1 of 10")
            await pilot.press("left_square_bracket")
            assert screen.output.border_subtitle.endswith("10 of 10")
            assert log.scroll_y > 800
            await pilot.press("slash")
            await modal(pilot, __import__("tui.widgets.modals", fromlist=["SearchModal"]).SearchModal)
            await pilot.press("ctrl+u", "enter")  # empty: clears
            await wait_for(pilot, lambda: screen.output.query_text == "", what="cleared")
            assert not log.highlight

    async def test_number_keys_and_the_all_hosts_view(self, make_app):
        app = make_app(MINI)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            await fed(pilot, screen, "web-1", "from one\n")
            await fed(pilot, screen, "web-2", "from two\n")
            await wait_for(pilot, lambda: screen.output.log_for("*all*") is not None
                           and len(screen.output.log_for("*all*").source) == 2, what="all-hosts view")
            await fed(pilot, screen, "web-1", "later one\n")
            combined = screen.output.log_for("*all*")
            assert list(combined.source) == ["web-1 │ from one", "web-2 │ from two", "web-1 │ later one"]
            await pilot.press("2")
            assert screen.output.active_host == "web-2"
            await pilot.press("0")
            await pilot.pause(0.1)
            assert screen.output.active_host is None and screen.output.shown_log is combined
            await pilot.press("1")
            assert screen.output.active_host == "web-1"
            assert "2:web-2" in screen_text(app).replace(" ", "") or "2:" in screen_text(app)

    async def test_y_writes_the_host_output_into_the_session_directory(self, make_app):
        app = make_app(MINI)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            await pilot.press("r")
            await wait_for(pilot, lambda: (r := app.session.state.step_run("MINI-001", 1)) is not None and r.finished,
                           what="step ran")
            await wait_for(pilot, lambda: screen.output.active_host == "local", what="local tab")
            await pilot.press("y")
            written = await wait_for(pilot, lambda: list(app.session.dir.glob("output-local-*.txt")), what="file")
            text = written[0].read_text()
            assert "hello from mini" in text and "MINI-001 step 1" in text
            assert written[0].stat().st_mode & 0o077 == 0

    async def test_zoom_and_tree_layout_keys(self, make_app):
        app = make_app(MINI)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await select(pilot, "MINI-001")
            await pilot.press("z")
            await wait_for(pilot, lambda: screen.maximized is screen.output, what="output maximised")
            await pilot.press("z")
            await wait_for(pilot, lambda: screen.maximized is None, what="restored")
            before = screen.task_tree.outer_size.width
            await pilot.press("greater_than_sign")
            await wait_for(pilot, lambda: screen.task_tree.outer_size.width == before + 4, what="wider")
            await pilot.press("less_than_sign", "less_than_sign")
            await wait_for(pilot, lambda: screen.task_tree.outer_size.width == before - 4, what="narrower")
            await pilot.press("t")
            await wait_for(pilot, lambda: not screen.task_tree.display, what="tree hidden")
            await pilot.press("t")
            await wait_for(pilot, lambda: screen.task_tree.display, what="tree shown")


class TestWindowAlerts:
    async def test_one_alert_when_the_path_stops_fitting_and_one_when_the_window_ends(self, make_app):
        clock = {"now": FIXED_NOW}
        end = (FIXED_NOW + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
        app = make_app(MINI, window_end=end, clock=lambda: clock["now"])
        async with app.run_test(size=(100, 32)) as pilot:
            await main_screen(pilot)

            def titles() -> list[str]:
                return [n.title for n in app._notifications]

            clock["now"] = FIXED_NOW + timedelta(hours=2)  # 2h left, 2h30 critical path
            await wait_for(pilot, lambda: "window" in titles(), what="the critical path alert")
            await pilot.pause(1.2)
            assert titles().count("window") == 1, "said once, not every second"
            clock["now"] = FIXED_NOW + timedelta(hours=4, minutes=1)
            await wait_for(pilot, lambda: "window closed" in titles(), what="the window-closed alert")


class TestNavigation:
    async def test_j_and_k_move_through_steps_and_checkboxes_with_a_visible_mark(self, make_app):
        from tui.widgets.checklist import CheckItem
        from tui.widgets.step_view import StepView

        app = make_app(MINI)
        async with app.run_test(size=(100, 40)) as pilot:
            screen = await select(pilot, "MINI-001")
            first = screen.query(CheckItem).first()
            first.focus()
            await pilot.pause(0.1)
            assert str(first.render()).startswith("▶ "), "the focused checkbox carries a mark"
            await pilot.press("j")
            await pilot.pause(0.1)
            assert app.focused is not first and not str(first.render()).startswith("▶ ")
            assert isinstance(app.focused, (CheckItem, StepView))
            await pilot.press("k")
            await pilot.pause(0.1)
            assert app.focused is first
            await pilot.press("x")  # ticks the focused box, not a neighbour
            await wait_for(pilot, lambda: app.session.state.checkboxes.get(first.box.key) is not None
                           and app.session.state.checkboxes[first.box.key].checked, what="ticked")

    async def test_notes_and_rollback_prose_are_rendered_markdown(self, make_app, tmp_path):
        book = tmp_path / "md.md"
        book.write_text(
            "# MD\n\n## Phase 1: P (1 hour)\n\n### Task MD-001: Prose\n\n- **Duration**: 5 minutes\n\n"
            "#### Steps\n\n1. **Echo**\n\n```bash\necho hi\n```\n\n"
            "#### Rollback Procedure\n\n**Safe**: nothing to undo, `really`.\n\n"
            "#### Notes\n\n- **Careful**: read [the docs](https://example.invalid) first\n"
        )
        app = make_app(book)
        async with app.run_test(size=(100, 40)) as pilot:
            await select(pilot, "MD-001")
            await pilot.pause(0.2)
            text = screen_text(app)
            assert "**" not in text, "no raw Markdown on screen"
            assert "Safe: nothing to undo" in text and "Careful: read the docs first" in text


class TestToasts:
    async def test_a_toast_never_covers_the_last_output_lines(self, make_app):
        from textual.widgets._toast import Toast

        app = make_app(MINI)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            screen = await select(pilot, "MINI-001")
            await fed(pilot, screen, "local", "".join(f"line {i}\n" for i in range(50)))
            app.notify("a long message\nover three\nlines", title="t", timeout=30)
            toast = await wait_for(pilot, lambda: next(iter(app.screen.query(Toast)), None), what="toast")
            await pilot.pause(0.2)
            log = screen.output.log_for("local").region
            bottom = log.y + log.height - 3  # the last three output rows
            assert toast.region.y + toast.region.height <= bottom or toast.region.y >= log.y + log.height


RECAP_BOOK = """# Recap

## Phase 1: Work (1 hour)

### Task REC-001: Take the lock on every web host

- **Duration**: 5 minutes

#### Steps

1. **Take the lock**

<!-- runbook: target=web serial -->
```bash
echo "taking the lock"
mkdir lockdir
```
"""

RECAP_INVENTORY = """all:
  children:
    web:
      hosts:
        web-1: {ansible_connection: local}
        web-2: {ansible_connection: local}
        web-3: {ansible_connection: local}
"""


class TestRecap:
    async def test_a_failed_multi_host_step_shows_a_recap_per_host(self, make_app, tmp_path):
        from sessions.state.recap import recap_rows

        book = tmp_path / "recap.md"
        book.write_text(RECAP_BOOK)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(RECAP_INVENTORY)
        app = make_app(book, inventory_path=str(inventory))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await select(pilot, "REC-001")
            await pilot.press("r")
            run = await wait_for(pilot, lambda: (r := app.session.state.step_run("REC-001", 1)) is not None
                                 and r.finished and r, what="the step finished")
            rows = recap_rows(run)
            assert [(r.host, r.outcome, r.exit) for r in rows] == [
                ("web-1", "succeeded", "0"), ("web-2", "failed", "1"), ("web-3", "not run", "")]
            assert "failed at line 2 of the block" in rows[1].detail and "mkdir lockdir" in rows[1].detail
            combined = await wait_for(pilot, lambda: (log := screen.output.log_for("*all*")) is not None
                                      and any("RECAP" in line for line in log.source) and log, what="recap shown")
            text = "\n".join(combined.source)
            assert "RECAP REC-001 step 1 · 3 hosts: 1 succeeded, 1 failed, 1 not run" in text
            recap = text[text.index("── RECAP"):].splitlines()
            assert recap[1].split()[:4] == ["web-1", "succeeded", "exit", "0"]
            assert recap[2].split()[:4] == ["web-2", "failed", "exit", "1"] and "mkdir lockdir" in recap[2]
            assert recap[3].split()[:3] == ["web-3", "not", "run"]
            assert screen.output.shown_log is combined, "the recap is shown"
            await pilot.pause(0.2)
            from textual.widgets import ContentSwitcher
            shown = screen.output.query_one(ContentSwitcher)
            assert shown.current == "all-hosts" and screen.output.shown_log is combined, \
                "the first tab's own (late) activation does not switch away from the recap"
            assert "⤼ web-3" in screen_text(app) or "⤼web-3" in screen_text(app).replace(" ", ""), \
                "a host a serial run never reached is not shown as running"

    async def test_a_recap_recorded_at_once_stays_shown(self, make_app, frozen):
        """A whole fleet run arriving in one go (a resume, a fast step): the first host's tab
        activates itself a moment after it mounts; the recap must stay the shown tab."""
        from textual.widgets import ContentSwitcher

        from tests.tui.test_snapshots import record_failed_fleet_run

        app = make_app(MINI)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await select(pilot, "MINI-101")
            record_failed_fleet_run(app.session)
            combined = await wait_for(pilot, lambda: (log := screen.output.log_for("*all*")) is not None
                                      and any("RECAP" in line for line in log.source) and log, what="recap")
            await pilot.pause(0.3)
            assert screen.output.query_one(ContentSwitcher).current == "all-hosts"
            assert screen.output.shown_log is combined


class TestStatusAgreement:
    async def test_the_tree_and_the_report_agree_on_every_status(self, make_app, session_root):
        """Issue 13: a gate that passed, a task done, one skipped, one in progress with a failed
        step, one with an undecided unknown outcome: the tree's icon for each is the report's."""
        from sessions.report.build import build_report
        from tui import format as fmt

        old = Session.create(parse_file(str(MINI)), root=session_root)
        rec = old.record
        rec(ev.TaskStarted("MINI-001", "alice"))
        for n in (1, 2, 3):
            rec(ev.StepStarted(f"r1{n}", "MINI-001", n, ("local",), "echo"))
            rec(ev.HostStarted(f"r1{n}", "local"))
            rec(ev.HostFinished(f"r1{n}", "local", "succeeded", 0, None, 0.1))
            rec(ev.StepFinished(f"r1{n}", "succeeded", 0.1))
        rec(ev.TaskCompleted("MINI-001", "alice"))
        rec(ev.TaskSkipped("MINI-002", "not needed tonight", "alice"))
        rec(ev.StepStarted("rg", "gate:0", 1, ("local",), "echo smoke"))
        rec(ev.HostStarted("rg", "local"))
        rec(ev.HostFinished("rg", "local", "succeeded", 0, None, 0.1))
        rec(ev.StepFinished("rg", "succeeded", 0.1))
        rec(ev.TaskStarted("MINI-101", "alice"))
        rec(ev.StepStarted("r21", "MINI-101", 1, ("local",), "false"))
        rec(ev.HostStarted("r21", "local"))
        rec(ev.HostFinished("r21", "local", "failed", 1, None, 0.1))
        rec(ev.StepFinished("r21", "failed", 0.1))
        rec(ev.TaskStarted("MINI-102", "alice"))
        rec(ev.StepStarted("r31", "MINI-102", 1, ("local",), "sleep 100"))
        rec(ev.HostStarted("r31", "local"))
        rec(ev.StepOutcomeUnknown("r31", "the runbook process ended before the step did"))
        old.close("quit")

        report = build_report(old.journal.path)
        reported = {t.id: t.status for ph in report.phases for t in ph.tasks}
        assert reported["gate:0"] == "succeeded" and reported["MINI-101"] == "failed"
        assert reported["MINI-102"] == "unknown" and reported["MINI-001"] == "done"

        app = make_app(MINI, mode="resume", ref=old.id)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await main_screen(pilot)
            await pilot.pause(0.3)
            tree = screen.task_tree
            for item_id, node in tree._item_nodes.items():
                if item_id not in reported:
                    continue
                shown = str(node.label).split(" ", 1)[0]
                assert shown == fmt.icon(reported[item_id]), (item_id, str(node.label), reported[item_id])
