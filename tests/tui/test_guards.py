"""Pilot tests: each guard shows the right dialog and journals the operator's answer."""

from __future__ import annotations

from datetime import timedelta

from sessions.journal import events as ev
from tests.tui.conftest import FIXED_NOW
from tests.tui.test_actions import events, modal, run_finished, select, type_text
from tui.widgets.modals import ConfirmModal, PlaceholderModal, ReasonModal, TypeHostModal


def started(app, task):
    return [e for e in events(app, ev.StepStarted) if e.task == task]


class TestGuards:
    async def test_high_risk_task_declined_runs_nothing(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-002")
            await pilot.press("r")
            confirm = await modal(pilot, ConfirmModal)
            assert "HIGH" in confirm.message
            await pilot.press("n")
            await pilot.pause(0.2)
            assert started(app, "MINI-002") == []
            assert events(app, ev.GuardPassed) == []

    async def test_high_risk_then_dependencies_then_destructive(self, make_app, workdir):
        (workdir / "mini-scratch-dir").mkdir()
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-002")
            await pilot.press("r")
            await modal(pilot, ConfirmModal)
            await pilot.press("y")
            deps = await modal(pilot, ReasonModal)
            assert "MINI-001" in deps.message
            assert "Escape: cancel" in str(deps.query_one(".modal-hint").render())  # says how to get out
            await type_text(pilot, "MINI-001 done by the day shift")
            await pilot.press("enter")
            host = await modal(pilot, TypeHostModal)
            assert host.expected == "local"
            await type_text(pilot, "web-1")
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is host and "not 'local'" in str(host.query_one("#error").render())
            assert started(app, "MINI-002") == []
            host.query_one("Input").value = ""
            await type_text(pilot, "local")
            await pilot.press("enter")
            run = await run_finished(pilot, app, "MINI-002", 1)
            assert run.outcome == "succeeded"
            assert not (workdir / "mini-scratch-dir").exists()
        kinds = [(type(e).__name__, e.guard) for e in events(app) if isinstance(e, (ev.GuardPassed, ev.GuardOverridden))]
        assert kinds == [("GuardPassed", "risk"), ("GuardOverridden", "dependencies"), ("GuardPassed", "destructive")]
        overridden = events(app, ev.GuardOverridden)[0]
        assert overridden.reason == "MINI-001 done by the day shift"
        assert events(app, ev.GuardPassed)[-1].detail.startswith("hosts=local")

    async def test_failed_phase_gate_blocks_the_next_phase_until_overridden(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "gate:0")
            await pilot.press("r")
            gate = await run_finished(pilot, app, "gate:0", 1)
            assert gate.outcome == "failed"
            await select(pilot, "MINI-101")
            await pilot.press("r")
            reason = await modal(pilot, ReasonModal)
            assert "gate" in reason.message
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert started(app, "MINI-101") == []
            await pilot.press("r")
            await modal(pilot, ReasonModal)
            await type_text(pilot, "smoke test flaky, checked by hand")
            await pilot.press("enter")
            await run_finished(pilot, app, "MINI-101", 1)
        override = events(app, ev.GuardOverridden)[-1]
        assert (override.guard, override.task, override.reason) == ("gate", "MINI-101", "smoke test flaky, checked by hand")

    async def test_after_the_window_starting_a_task_needs_an_override(self, make_app):
        ended = (FIXED_NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        app = make_app(window_end=ended)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            assert "window closed" in str(screen.query_one("#header-clock").render())
            assert screen.query_one("#header-clock").has_class("-red")
            await pilot.press("r")
            reason = await modal(pilot, ReasonModal)
            assert "window" in reason.message
            await type_text(pilot, "extension approved by CAB")
            await pilot.press("enter")
            await run_finished(pilot, app, "MINI-001", 1)
        override = events(app, ev.GuardOverridden)[-1]
        assert (override.guard, override.reason) == ("window", "extension approved by CAB")

    async def test_placeholder_prompt_is_masked_for_secrets(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            screen.task_view.pin_step(3)
            await pilot.press("r")
            prompt = await modal(pilot, PlaceholderModal)
            assert prompt.secret and prompt.query_one("Input").password
            await type_text(pilot, "s3cr3t-value")
            await pilot.press("enter")
            run = await run_finished(pilot, app, "MINI-001", 3)
            assert run.outcome == "succeeded"
        journal = app.session.journal.path.read_bytes()
        assert b"s3cr3t-value" not in journal
        supplied = events(app, ev.PlaceholderSupplied)[-1]
        assert supplied.secret and supplied.value is None and supplied.value_hash
