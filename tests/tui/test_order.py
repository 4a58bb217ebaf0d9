"""Pilot tests: order (gates, dependencies), re-runs, lint where it matters, unmet expectations."""

from __future__ import annotations

from rich.text import Text

from sessions.journal import events as ev
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
            assert "⊘" in label and "Phase 0 gate not passed" in label
            assert "blocked: Phase 0 gate not passed" in str(screen.query_one("#task-meta").render())
            await pilot.press("r")
            reason = await modal(pilot, ReasonModal)
            assert "Phase 0 gate step 1 never ran" in reason.message
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


LINTED = """<!-- runbook: target=local -->
# Linted

## Phase 0: Only (1 hour)

### Task LINT-001: Join and check

- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

1. **Join**

```bash
echo first ... last
```

2. **Check the pod**

```bash
echo "web-0   0/1   Pending"
```

Expected: `Running`

#### Acceptance Criteria

- [ ] Joined

#### Rollback Procedure

N/A (read-only).
"""


class TestLintWhereItMatters:
    async def test_lint_errors_show_a_banner(self, make_app):
        from tests.tui.conftest import DEMO

        app = make_app()
        async with app.run_test(size=(120, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            banner = screen.query_one("#lint-banner")
            assert banner.display and banner.has_class("-shown")
            assert "✘ 1 lint error in mini.md" in banner.text.plain and "line 101" in banner.text.plain
            assert "1 lint error in mini.md" in screen_text(app)
        app = make_app(DEMO)
        async with app.run_test(size=(120, 32)) as pilot:
            screen = await select(pilot, "DEMO-PREP-001")
            assert not screen.query_one("#lint-banner").display

    async def test_each_step_shows_its_diagnostics_and_a_block_that_cannot_run_needs_an_override(
            self, make_app, tmp_path):
        book = tmp_path / "linted.md"
        book.write_text(LINTED)
        app = make_app(book)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await select(pilot, "LINT-001")
            view = screen.task_view.step_view(1)
            assert [d.code for d in view.diagnostics] == ["elided-command"]
            lines = [p.plain for p in view._render_parts(app.session.state, None) if isinstance(p, Text)]
            assert any(line.startswith("   ⚠ lint line 17: command in step 1 of LINT-001 elides arguments")
                       for line in lines), lines
            await wait_for(pilot, lambda: "⚠ lint line 17" in screen_text(app), what="the diagnostic on screen")
            assert screen.task_view.step_view(2).diagnostics == ()
            await pilot.press("r")
            reason = await modal(pilot, ReasonModal)
            assert "cannot run as written" in reason.message
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert started(app, "LINT-001") == []
            await pilot.press("r")
            await modal(pilot, ReasonModal)
            await type_text(pilot, "the dots are literal here")
            await pilot.press("enter")
            await run_finished(pilot, app, "LINT-001", 1)
        [o] = events(app, ev.GuardOverridden)
        assert (o.guard, o.step, o.reason) == ("lint", 1, "the dots are literal here")


class TestExpectations:
    async def test_an_unmet_expectation_is_failed_until_the_operator_decides(self, make_app, tmp_path):
        from tui.widgets.modals import DecideOutcomeModal

        book = tmp_path / "linted.md"
        book.write_text(LINTED)
        app = make_app(book)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await select(pilot, "LINT-001")
            screen.task_view.pin_step(2)
            await pilot.press("r")
            run = await run_finished(pilot, app, "LINT-001", 2)
            assert run.hosts["local"].status == "succeeded"  # the command itself exited 0
            state = app.session.state
            assert state.step_status("LINT-001", 2) == "expectation_failed"
            await wait_for(pilot, lambda: "FAILED (expectation)" in screen_text(app), what="shown as a failure")
            assert "failed (expectation) (o: decide)" in screen_text(app)
            await pilot.press("o")
            decide = await modal(pilot, DecideOutcomeModal)
            assert decide.expectation and "Expected #1" in decide.why and "not found" in decide.why
            await type_text(pilot, "pod went Running a minute later")
            await pilot.click("#succeeded")
            await wait_for(pilot, lambda: app.session.state.step_status("LINT-001", 2) == "succeeded",
                           what="decided")
        [d] = events(app, ev.OutcomeDecided)
        assert (d.decision, d.reason, d.host) == ("succeeded", "pod went Running a minute later", None)


class TestRerunHosts:
    async def test_R_offers_all_hosts_the_failed_ones_or_one(self, make_app):
        from textual.widgets import OptionList

        from tui.widgets.modals import RerunHostsModal

        app = make_app()
        async with app.run_test(size=(120, 32)) as pilot:
            await select(pilot, "MINI-001")
            answers = []
            app.push_screen(RerunHostsModal("Run MINI-001 step 1 again: on which hosts?", ["web-1", "web-2", "db-[1]"],
                                            ["web-2"]), answers.append)
            chooser = await modal(pilot, RerunHostsModal)
            options = await wait_for(pilot, lambda: next(iter(chooser.query(OptionList)), None), what="the list")
            labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
            assert labels == ["all 3 host(s): web-1, web-2, db-[1]", "the failed ones (1): web-2", "only web-1",
                              "only web-2", "only db-[1]"]
            await pilot.press("down", "enter")
            await wait_for(pilot, lambda: answers, what="the choice")
            assert answers == [("failed", ("web-2",))]
