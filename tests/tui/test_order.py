"""Pilot tests: order (gates, dependencies), re-runs, lint where it matters, unmet expectations."""

from __future__ import annotations

from sessions import events as ev

from tests.tui.conftest import screen_text, wait_for
from tests.tui.test_actions import events, modal, run_finished, select, type_text
from tui.widgets.modals import ConfirmModal, ReasonModal


def started(app, task):
    return [e for e in events(app, ev.StepStarted) if e.task == task]


class TestOrder:
    async def test_a_gate_that_never_ran_blocks_the_next_phase(self, make_app):
        app = make_app()
        async with app.run_test(size=(120, 32)) as pilot:
            screen = await select(pilot, "MINI-101")
            label = screen.task_tree._item_nodes["MINI-101"].label.plain
            assert "⊘" in label and "gate:0 not passed" in label
            assert "blocked: gate:0 not passed" in str(screen.query_one("#task-meta").render())
            await pilot.press("r")
            reason = await modal(pilot, ReasonModal)
            assert "gate:0 step 1 never ran" in reason.message
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert started(app, "MINI-101") == []
            await pilot.press("r")
            await modal(pilot, ReasonModal)
            await type_text(pilot, "gate checked by hand on the console")
            await pilot.press("enter")
            await run_finished(pilot, app, "MINI-101", 1)
            await wait_for(pilot, lambda: "⊘" not in screen.task_tree._item_nodes["MINI-101"].label.plain,
                           what="the mark gone once overridden")
        override = events(app, ev.GuardOverridden)[-1]
        assert (override.guard, override.task, override.reason) == (
            "gate", "MINI-101", "gate checked by hand on the console")

    async def test_a_passed_gate_unblocks_the_next_phase(self, make_app, workdir):
        (workdir / "mini-gate-ok").touch()
        app = make_app()
        async with app.run_test(size=(120, 32)) as pilot:
            screen = await select(pilot, "gate:0")
            await pilot.press("r")
            await run_finished(pilot, app, "gate:0", 1)
            await wait_for(pilot, lambda: "⊘" not in screen.task_tree._item_nodes["MINI-101"].label.plain,
                           what="MINI-101 unblocked")
            await select(pilot, "MINI-101")
            await pilot.press("r")
            await run_finished(pilot, app, "MINI-101", 1)
        assert events(app, ev.GuardOverridden) == []


class TestReruns:
    async def test_running_a_step_that_succeeded_again_asks_first(self, make_app):
        app = make_app()
        async with app.run_test(size=(120, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            await pilot.press("r")
            first = await run_finished(pilot, app, "MINI-001", 1)
            screen.task_view.pin_step(1)
            await pilot.press("r")
            again = await modal(pilot, ConfirmModal)
            assert "already succeeded on local (1 run(s) so far)" in again.message
            await pilot.press("n")
            await pilot.pause(0.2)
            assert len([e for e in started(app, "MINI-001") if e.step == 1]) == 1
            await pilot.press("r")
            await modal(pilot, ConfirmModal)
            await pilot.press("y")
            await wait_for(pilot, lambda: (r := app.session.state.step_run("MINI-001", 1)) is not None
                           and r.run_id != first.run_id and r.finished, what="second run")
            assert app.session.state.step_matrix("MINI-001", 1).cell("local").runs == 2
            assert "×2" in screen_text(app) or "2 runs" in screen_text(app)
        [g] = [e for e in events(app, ev.GuardPassed) if e.guard == "rerun"]
        assert (g.task, g.step, g.detail) == ("MINI-001", 1, f"after={first.run_id}; confirmed")


class TestFinishing:
    async def test_finishing_with_unticked_criteria_or_skipped_steps_needs_a_reason(self, make_app):
        app = make_app()
        async with app.run_test(size=(120, 32)) as pilot:
            await select(pilot, "MINI-001")
            app.session.skip_step("MINI-001", 1, "greeting not needed tonight")
            await pilot.press("d")
            reason = await modal(pilot, ReasonModal)
            assert "step(s) 1 skipped" in reason.message and "step(s) 2, 3 not succeeded" in reason.message
            assert "2 acceptance criteria unticked" in reason.message
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert app.session.state.task_status("MINI-001") != "done"
            await pilot.press("d")
            await modal(pilot, ReasonModal)
            await type_text(pilot, "rest done by hand, CHG-42")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.session.state.task_status("MINI-001") == "done", what="done")
        [o] = events(app, ev.GuardOverridden)
        assert o.guard == "finish" and o.reason.startswith("rest done by hand, CHG-42 (not done: step(s) 1 skipped")
