"""Pilot tests: every operator action of the main screen, against a real session and engine.

Steps run for real on the local machine (in a scratch directory); each test checks
what the journal holds afterwards, not only what the screen shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sessions.journal import events as ev
from sessions.journal.journal import read_records
from tests.tui.conftest import wait_for
from tui.screens.main import MainScreen
from tui.widgets.checklist import CheckItem
from tui.widgets.modals import (
    ConfirmModal,
    DecideOutcomeModal,
    NoteModal,
    PlaceholderModal,
    ReasonModal,
    SendInputModal,
)


def gate_waived(app: Any, *tasks: str) -> None:
    """Phase 1 tasks wait for the phase 0 gate to pass; a test not about that overrides it (journaled)."""
    for task in tasks:
        app.session.override_guard("gate", task, "test: the phase 0 gate is not under test")


def events(app: Any, kind: type | None = None) -> list[Any]:
    """Events journaled so far (read back from the file: what is durable)."""
    app.session.sync()
    found = [r.event for r in read_records(app.session.journal.path)]
    return [e for e in found if kind is None or isinstance(e, kind)]


async def main_screen(pilot: Any) -> MainScreen:
    return await wait_for(pilot, lambda: pilot.app.screen if isinstance(pilot.app.screen, MainScreen) else None,
                          what="the main screen")


async def select(pilot: Any, item_id: str) -> MainScreen:
    screen = await main_screen(pilot)
    screen.jump_to(item_id)
    await wait_for(pilot, lambda: (screen.task_view.item is not None and screen.task_view.item.id == item_id
                   and screen.task_view.step_view() is not None) or item_id.startswith("section:"),
                   what=f"{item_id} shown")
    await pilot.pause()
    return screen


async def modal(pilot: Any, kind: type) -> Any:
    return await wait_for(pilot, lambda: pilot.app.screen if isinstance(pilot.app.screen, kind) else None,
                          what=kind.__name__)


async def type_text(pilot: Any, text: str) -> None:
    await pilot.press(*list(text))


def log_text(screen: MainScreen, host: str = "local") -> str:
    log = screen.output.log_for(host)
    return "\n".join(log.source) if log is not None else ""  # the lines as they came (not wrapped)


async def run_finished(pilot: Any, app: Any, task: str, step: int, rollback: bool = False) -> Any:
    def done() -> Any:
        run = app.session.state.step_run(task, step, rollback)
        return run if run is not None and run.finished else None

    return await wait_for(pilot, done, what=f"{task} step {step} finished")


class TestRunning:
    async def test_run_step_runs_on_local_and_streams_output(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            await pilot.press("r")
            run = await run_finished(pilot, app, "MINI-001", 1)
            assert run.outcome == "succeeded"
            await wait_for(pilot, lambda: "hello from mini" in log_text(screen), what="output shown")
            assert run.expectations[("local", 0)][0] is True
            started = events(app, ev.StepStarted)
            assert [(e.task, e.step, e.targets) for e in started] == [("MINI-001", 1, ("local",))]

    async def test_the_output_says_whose_it_is_after_another_task_is_selected(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            assert not screen.output.border_title
            await pilot.press("r")
            await run_finished(pilot, app, "MINI-001", 1)
            await select(pilot, "MINI-101")
            assert "hello from mini" in log_text(screen)  # kept: the operator may still need it
            assert screen.output.border_title == "output of MINI-001 step 1"

    async def test_run_all_asks_placeholders_and_runs_every_step(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-001")
            await pilot.press("a")
            value = await modal(pilot, PlaceholderModal)
            assert value.placeholder_name == "RELEASE" and not value.secret
            await type_text(pilot, "v1.2")
            await pilot.press("enter")
            secret = await modal(pilot, PlaceholderModal)
            assert secret.placeholder_name == "DB_PASSWORD" and secret.secret
            assert secret.query_one("Input").password is True
            await type_text(pilot, "hunter2")
            await pilot.press("enter")
            await run_finished(pilot, app, "MINI-001", 3)
            state = app.session.state
            assert [state.step_status("MINI-001", n) for n in (1, 2, 3)] == ["succeeded"] * 3
            supplied = {e.name: e for e in events(app, ev.PlaceholderSupplied)}
            assert supplied["RELEASE"].value == "v1.2"
            assert supplied["DB_PASSWORD"].value is None
            assert app.session.values["DB_PASSWORD"] == "hunter2"
            assert b"hunter2" not in Path(app.session.journal.path).read_bytes()

    async def test_rerun_makes_a_new_run(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-001")
            await pilot.press("r")
            first = await run_finished(pilot, app, "MINI-001", 1)
            screen = app.screen
            screen.task_view.pin_step(1)
            await pilot.press("R")
            again = await modal(pilot, ConfirmModal)  # it succeeded: asked first
            assert "already succeeded on local" in again.message
            await pilot.press("y")
            await wait_for(pilot, lambda: (r := app.session.state.step_run("MINI-001", 1)) is not None
                           and r.run_id != first.run_id and r.finished, what="second run")
            assert len([e for e in events(app, ev.StepStarted) if (e.task, e.step) == ("MINI-001", 1)]) == 2

    async def test_cancel_sends_ctrl_c_to_the_running_step(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            gate_waived(app, "MINI-101")
            screen = await select(pilot, "MINI-101")
            screen.task_view.pin_step(2)
            await pilot.press("r")
            await wait_for(pilot, lambda: "sleeping" in log_text(screen), what="the step started")
            await pilot.press("ctrl+c")
            run = await run_finished(pilot, app, "MINI-101", 2)
            assert run.outcome in ("cancelled", "failed")
            assert run.hosts["local"].exit_signal == "INT" or run.hosts["local"].status == "cancelled"
            assert "woke up" not in log_text(screen)

    async def test_type_into_a_pty_step(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            gate_waived(app, "MINI-102")
            screen = await select(pilot, "MINI-102")
            await pilot.press("r")
            await wait_for(pilot, lambda: "Name?" in log_text(screen), what="the prompt")
            await pilot.press("i")
            await modal(pilot, SendInputModal)
            await type_text(pilot, "bob")
            await pilot.press("enter")
            run = await run_finished(pilot, app, "MINI-102", 1)
            assert run.outcome == "succeeded"
            await wait_for(pilot, lambda: "hello bob" in log_text(screen), what="the answer echoed")


class TestDecisions:
    async def test_tick_and_untick_a_checkbox(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            box = screen.task_view.query(CheckItem).first()
            box.focus()
            await pilot.press("space")
            key = box.box.key
            await wait_for(pilot, lambda: key in app.session.state.checkboxes, what="ticked")
            assert app.session.state.checkboxes[key].checked
            await wait_for(pilot, lambda: box.checked, what="shown ticked")
            await pilot.press("space")
            await modal(pilot, ReasonModal)
            await type_text(pilot, "ticked by mistake")
            await pilot.press("enter")
            await wait_for(pilot, lambda: not app.session.state.checkboxes[key].checked, what="unticked")
            cleared = events(app, ev.CheckboxCleared)
            assert cleared[-1].key == key and cleared[-1].reason == "ticked by mistake"

    async def test_add_a_note(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-001")
            await pilot.press("n")
            await modal(pilot, NoteModal)
            await type_text(pilot, "called the DBA")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.session.state.notes, what="note")
            note = events(app, ev.Note)[-1]
            assert (note.text, note.task, note.who) == ("called the DBA", "MINI-001", "alice")

    async def test_skip_step_needs_a_reason(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-001")
            await pilot.press("s")
            reason = await modal(pilot, ReasonModal)
            await pilot.press("enter")  # empty: refused, the dialog stays
            await pilot.pause()
            assert app.screen is reason and "required" in str(reason.query_one("#error").render())
            await type_text(pilot, "done by hand")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.session.state.step_status("MINI-001", 1) == "skipped", what="skipped")
            assert events(app, ev.StepSkipped)[-1].reason == "done by hand"

    async def test_skip_task_needs_a_reason(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-002")
            await pilot.press("S")
            await modal(pilot, ReasonModal)
            await type_text(pilot, "not needed tonight")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.session.state.task_status("MINI-002") == "skipped", what="skipped")
            assert events(app, ev.TaskSkipped)[-1].reason == "not needed tonight"

    async def test_cancelling_a_reason_records_nothing(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-002")
            before = len(events(app))
            await pilot.press("S")
            await modal(pilot, ReasonModal)
            await pilot.press("escape")
            await main_screen(pilot)
            await pilot.pause(0.1)
            assert len(events(app)) == before

    async def test_mark_task_done_with_open_work_needs_a_reason(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-001")
            await pilot.press("d")
            reason = await modal(pilot, ReasonModal)  # tests/tui/test_order.py covers the details
            assert "not succeeded" in reason.message
            await type_text(pilot, "done by hand")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.session.state.task_status("MINI-001") == "done", what="done")
            assert events(app, ev.TaskCompleted)[-1].task == "MINI-001"

    async def test_decide_an_outcome_unknown_step(self, make_app, session_root):
        from runbook.parse.parser import parse_file
        from sessions.engine.session import Session
        from tests.tui.conftest import MINI

        crashed = Session.create(parse_file(str(MINI)), root=session_root)
        crashed.record(ev.StepStarted("run-lost", "MINI-101", 2, ("local",), "sleep 30"))
        crashed.record_output(ev.OutputChunk("run-lost", "local", "stdout", "sleeping\n"))
        crashed.close("test: the process died")
        app = make_app(mode="resume", ref=crashed.id)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await main_screen(pilot)
            assert app.session.state.runs["run-lost"].hosts["local"].status == "unknown"
            await wait_for(pilot, lambda: "sleeping" in log_text(screen), what="history from the journal")
            await pilot.press("o")
            decide = await modal(pilot, DecideOutcomeModal)
            assert "MINI-101" in decide.what
            await type_text(pilot, "checked the logs: it finished")
            await pilot.click("#succeeded")
            await wait_for(pilot, lambda: app.session.state.runs["run-lost"].hosts["local"].decided, what="decided")
            decided = events(app, ev.OutcomeDecided)[-1]
            assert (decided.run_id, decided.decision, decided.reason) == (
                "run-lost", "succeeded", "checked the logs: it finished")
            assert app.session.state.step_status("MINI-101", 2) == "succeeded"

    async def test_rollback_runs_its_blocks_as_rollback_steps(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            await pilot.press("b")
            await modal(pilot, ReasonModal)
            await type_text(pilot, "greeting was wrong")
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.task_view.rollback_mode and screen.task_view.step_view() is not None
                           and screen.task_view.step_view().rollback, what="rollback mode")
            assert events(app, ev.RollbackStarted)[-1].reason == "greeting was wrong"
            await pilot.press("r")
            run = await run_finished(pilot, app, "MINI-001", 1, rollback=True)
            assert run.rollback and run.outcome == "succeeded"
            await wait_for(pilot, lambda: "rolled back" in log_text(screen), what="rollback output")
            assert [e.rollback for e in events(app, ev.StepStarted)] == [True]


class TestNavigation:
    async def test_jump_to_a_task_from_the_command_palette(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            await pilot.press("ctrl+p")  # (g is the task picker: tests/tui/test_window_help.py)
            await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette", what="palette")
            await type_text(pilot, "jump to mini-102")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.task_view.item is not None and screen.task_view.item.id == "MINI-102",
                           what="MINI-102 shown")
            assert screen.task_tree.current_item == "MINI-102"

    async def test_every_binding_has_an_id_and_a_tooltip(self, make_app):
        from tui.app import RunbookApp
        from tui.screens.help import HelpScreen
        from tui.screens.resume import ResumeScreen
        from tui.widgets import modals
        from tui.widgets.checklist import CheckItem as Item

        owners = [MainScreen, ResumeScreen, RunbookApp, Item, HelpScreen] + [getattr(modals, n) for n in modals.__all__
                                                                          if isinstance(getattr(modals, n), type) and hasattr(getattr(modals, n), 'BINDINGS')]
        for owner in owners:
            for binding in owner.BINDINGS:
                assert binding.id and binding.tooltip, (owner.__name__, binding.key)

    async def test_export_writes_the_report(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-001")
            await pilot.press("r")
            await run_finished(pilot, app, "MINI-001", 1)
            await pilot.press("e")
            out = Path(app.session.dir) / f"{app.session.id}.md"
            await wait_for(pilot, out.exists, what="the report")
            assert "MINI-001" in out.read_text()

    async def test_export_is_signed_with_the_session_key(self, make_app, tmp_path, monkeypatch):
        """With $RUNBOOK_SIGNING_KEY the TUI's report gets a .sig that stock ssh-keygen accepts."""
        import subprocess

        from tests.tools import require

        keygen = require("ssh-keygen")
        key = tmp_path / "id_ed25519"
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "op@example", "-f", str(key)], check=True)
        monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(key))
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-001")
            await pilot.press("e")
            out = Path(app.session.dir) / f"{app.session.id}.md"
            sig = Path(f"{out}.sig")
            await wait_for(pilot, sig.exists, what="the signature")
        allowed = tmp_path / "allowed_signers"
        allowed.write_text(f"op@example {(tmp_path / 'id_ed25519.pub').read_text().split(' op@')[0]}\n")
        verify = [keygen, "-Y", "verify", "-f", str(allowed), "-I", "op@example", "-n", "runbook-report", "-s", str(sig)]
        assert subprocess.run(verify, input=out.read_bytes(), capture_output=True).returncode == 0
        assert subprocess.run(verify, input=out.read_bytes() + b"x", capture_output=True).returncode != 0

    async def test_quit_keeps_the_session_resumable(self, make_app, session_root):
        from sessions.engine.session import Session

        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-001")
            await pilot.press("q")
            await wait_for(pilot, lambda: app.session.closed, what="closed")
        closed = [r.event for r in read_records(app.session.journal.path)][-1]
        assert isinstance(closed, ev.SessionClosed) and not closed.finished
        again = Session.resume(app.session.id, root=session_root)
        try:
            assert again.state.session_id == app.session.id
        finally:
            again.close()


class TestProbes:
    async def test_run_probes_then_accept_a_pass_with_one_key(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            await pilot.press("P")
            await wait_for(pilot, lambda: app.session.state.probes, what="probe result")
            (key, result), = app.session.state.probes.items()
            assert result.status == "pass"
            box = next(b for b in screen.task_view.query(CheckItem) if b.box.key == key)
            box.focus()
            await pilot.press("p")
            await wait_for(pilot, lambda: key in app.session.state.checkboxes, what="accepted")
            ticked = events(app, ev.CheckboxSet)[-1]
            assert ticked.key == key and ticked.evidence.startswith("probe cmd(")
