"""A runbook written elsewhere (tests/corpus), read unmodified, walked and run in the TUI."""

from __future__ import annotations

import shutil
from pathlib import Path

from sessions.journal import events as ev
from tests.tui.conftest import screen_text, wait_for
from tests.tui.test_actions import events, log_text, run_finished, select

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


async def test_a_console_transcript_runbook_runs_a_step_on_the_local_executor(make_app, tmp_path: Path):
    # Runme's examples: "$ echo ..." transcripts in ```sh fences, no task headings.  The
    # document is copied unmodified; the operator's choice of where it runs (local) is a
    # bindings file beside it, as for any runbook.
    book = tmp_path / "runme-examples-README.md"
    shutil.copyfile(CORPUS / book.name, book)
    book.with_suffix(".targets.yaml").write_text("shell: local\n")
    app = make_app(book)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await select(pilot, "shell")
        text = screen_text(app)
        assert "Tasks" in text and "shell" in text and "Hello, runme!" in text
        await pilot.press("r")
        run = await run_finished(pilot, app, "shell", 1)
        assert run.outcome == "succeeded"
        await wait_for(pilot, lambda: "Hello, runme!" in log_text(screen), what="output shown")
        (started,) = events(app, ev.StepStarted)
        assert (started.task, started.step, started.targets) == ("shell", 1, ("local",))
        assert started.command.strip() == 'echo "Hello, runme!"'  # the prompt is not part of the command


async def test_an_inferred_checklist_task_shows_nested_boxes_indented_and_ticks_them(make_app):
    app = make_app(CORPUS / "k8s-release-comms-progress-tracking.md")
    async with app.run_test(size=(110, 40)) as pilot:
        from tests.tui.test_actions import main_screen
        from tui.widgets.checklist import CheckItem

        screen = await main_screen(pilot)
        screen.jump_to("currently-tracked-goals")
        rows = await wait_for(pilot, lambda: list(screen.task_view.query(CheckItem)), what="the checklist")
        assert [r.depth for r in rows[:3]] == [0, 1, 0]  # "Feature Blogs", its child, "Mid Cycle ..."
        await pilot.pause()
        lines = screen_text(app).splitlines()
        parent = next(ln for ln in lines if "[ ] Feature Blogs" in ln)
        child = next(ln for ln in lines if "[ ] Opt-in Outreach" in ln)
        assert child.index("[ ]") == parent.index("[ ]") + 2
        rows[1].focus()
        await pilot.press("space")
        await wait_for(pilot, lambda: app.session.state.checkboxes.get("currently-tracked-goals/checklist/1"),
                       what="the nested box ticked")


async def test_prose_sections_of_an_inferred_runbook_are_shown_as_reference(make_app):
    app = make_app(CORPUS / "openshift-etcdDatabaseQuotaLowSpace.md")
    async with app.run_test(size=(110, 40)) as pilot:
        from tests.tui.test_actions import main_screen

        screen = await main_screen(pilot)
        ref = next(i for i, item in screen.task_tree.items.items() if item.title == "Capacity planning")
        screen.jump_to(ref)
        await wait_for(pilot, lambda: "start planning for new cluster" in screen_text(app), what="the section text")
        assert "Reference" in screen_text(app)
