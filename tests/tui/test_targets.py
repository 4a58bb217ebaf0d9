"""Pilot tests: the target picker and its preview, retargeting, `h` on any inventory host, and a
rollback retargeted to the host where the task failed.

The inventory's hosts run on this machine (``ansible_connection: local``) under their own names
(``$RUNBOOK_HOST``), so a step that fails "on m-2" really fails there; their addresses are
loopback ones shown in the preview, never connected to.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import Checkbox, Input, OptionList, Static

from sessions.journal import events as ev
from tests.tui.conftest import wait_for
from tests.tui.test_actions import events, modal, run_finished, select, type_text
from tui.widgets.modals import ChooseHostModal, ChooseTargetModal, ReasonModal, TypeHostModal

BOOK = """# Targets Book

## Phase 1: Work (1 hour)

### Task TGT-001: Join [/var] the [bold]masters[/bold]

- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

1. **Prepare**

```bash
# On m-2:
echo "prepared on $RUNBOOK_HOST" > {marks}/prep-$RUNBOOK_HOST
```

2. **Join**

```bash
echo "join on $RUNBOOK_HOST"
[ "$RUNBOOK_HOST" != m-2 ] || {{ echo "join failed"; exit 3; }}
```

3. **Annotated**

<!-- runbook: target=web -->
```bash
echo "annotated on $RUNBOOK_HOST" > {marks}/ann-$RUNBOOK_HOST
```

#### Rollback Procedure

```bash
rm -rf {marks}/scratch-$RUNBOOK_HOST
echo "reset on $RUNBOOK_HOST" > {marks}/reset-$RUNBOOK_HOST
```
"""

INVENTORY = """
all:
  children:
    masters:
      hosts:
        m-1: {ansible_connection: local, ansible_host: 127.0.0.11, ansible_user: ops}
        m-2: {ansible_connection: local, ansible_host: 127.0.0.12, ansible_user: ops}
        m-3: {ansible_connection: local, ansible_host: 127.0.0.13, ansible_user: ops}
    web:
      hosts:
        web-1: {ansible_connection: local, ansible_host: 127.0.0.21, ansible_user: www}
"""


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    marks = tmp_path / "marks"
    marks.mkdir()
    book = tmp_path / "targets.md"
    book.write_text(BOOK.format(marks=marks))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    return book, inventory, marks


def preview(picker: ChooseTargetModal) -> str:
    rendered = picker.query_one("#target-preview", Static).render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


def candidates(picker: ChooseTargetModal) -> list[str]:
    options = picker.query_one("#target-candidates", OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def set_pattern(pilot: Any, picker: ChooseTargetModal, text: str) -> None:
    field = picker.query_one(Input)
    field.value = ""
    field.focus()
    await type_text(pilot, text)
    await pilot.pause()


def started(app: Any, task: str, step: int, rollback: bool = False) -> list[tuple[str, ...]]:
    return [e.targets for e in events(app, ev.StepStarted) if (e.task, e.step, e.rollback) == (task, step, rollback)]


class TestTargetPicker:
    async def test_picker_preview_choice_applies_to_the_untargeted_steps(self, make_app, tmp_path):
        book, inventory, marks = setup(tmp_path)
        app = make_app(book, inventory_path=str(inventory))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await select(pilot, "TGT-001")
            assert screen.task_view.step_view().targets.startswith("not chosen: r asks, T chooses (suggested: m-2")
            await pilot.press("r")
            picker = await modal(pilot, ChooseTargetModal)
            # the suggestion from '# On m-2:' first and prefilled; local offered last, as this machine
            assert picker.query_one(Input).value == "m-2"
            listed = candidates(picker)
            assert listed[0].startswith("★ suggested  m-2  '# On m-2:' at line")
            assert [c.split()[0] for c in listed[1:]] == ["m-1", "m-3", "web-1", "masters", "web", "local"]
            assert listed[-1] == f"local  this machine ({socket.gethostname()})"
            assert "m-2" in preview(picker) and "127.0.0.12" in preview(picker) and "ops" in preview(picker)
            context = str(picker.query_one(".modal-message").render())
            assert "Join [/var] the [bold]masters[/bold]: Prepare" in context  # document text shown literally
            # live preview as the pattern changes
            await set_pattern(pilot, picker, "masters")
            shown = preview(picker)
            assert "runs on 3 hosts" in shown
            assert all(h in shown for h in ("m-1", "m-2", "m-3", "127.0.0.11", "127.0.0.13"))
            await set_pattern(pilot, picker, "nope-*")
            assert "matches no host" in preview(picker)
            await pilot.press("enter")
            assert "matches no host" in str(picker.query_one("#error").render())
            assert isinstance(app.screen, ChooseTargetModal)  # refused: still asking
            await set_pattern(pilot, picker, "masters")
            assert picker.query_one("#target-all", Checkbox).value  # for the task's other untargeted steps
            await pilot.press("enter")
            run = await run_finished(pilot, app, "TGT-001", 1)
            assert run.outcome == "succeeded" and run.targets == ("m-1", "m-2", "m-3")
            [chosen] = events(app, ev.TargetChosen)
            assert (chosen.task, chosen.pattern, chosen.step, chosen.rollback, chosen.hosts) == (
                "TGT-001", "masters", None, False, ("m-1", "m-2", "m-3"))
            assert sorted(p.name for p in marks.iterdir()) == ["prep-m-1", "prep-m-2", "prep-m-3"]
            views = {v.step.number: v for v in screen.task_view.query("StepView")}
            await wait_for(pilot, lambda: views[2].targets.startswith("m-1, m-2, m-3"), what="step 2 shows its hosts")
            # step 2 has no target either: the choice applies, no question
            screen.task_view.pin_step(2)
            await pilot.pause()
            await pilot.press("r")
            run = await run_finished(pilot, app, "TGT-001", 2)
            assert run.targets == ("m-1", "m-2", "m-3") and run.hosts["m-2"].status == "failed"
            # step 3 is annotated (target=web): the task's choice does not reach it
            screen.task_view.pin_step(3)
            await pilot.pause()
            await pilot.press("r")
            run = await run_finished(pilot, app, "TGT-001", 3)
            assert run.targets == ("web-1",)
            assert len(events(app, ev.TargetChosen)) == 1

    async def test_escape_runs_nothing_and_journals_nothing(self, make_app, tmp_path):
        book, inventory, marks = setup(tmp_path)
        app = make_app(book, inventory_path=str(inventory))
        async with app.run_test(size=(120, 40)) as pilot:
            await select(pilot, "TGT-001")
            await pilot.press("r")
            await modal(pilot, ChooseTargetModal)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, ChooseTargetModal), what="picker closed")
            await pilot.pause(0.3)
            assert events(app, ev.StepStarted) == [] and events(app, ev.TargetChosen) == []
            assert list(marks.iterdir()) == []

    async def test_local_is_never_preselected(self, make_app, tmp_path):
        book, inventory, _ = setup(tmp_path)
        book.write_text(book.read_text().replace("# On m-2:", "# run it on the jump host"))
        app = make_app(book, inventory_path=str(inventory))
        async with app.run_test(size=(120, 40)) as pilot:
            await select(pilot, "TGT-001")
            await pilot.press("r")
            picker = await modal(pilot, ChooseTargetModal)
            assert candidates(picker)[0].startswith("★ suggested  local")  # suggested first ...
            assert picker.query_one(Input).value == ""  # ... but not preselected
            await pilot.press("enter")
            assert isinstance(app.screen, ChooseTargetModal)
            await pilot.press("escape")


class TestRetargeting:
    async def test_retarget_an_annotated_step_and_save_the_choice(self, make_app, tmp_path):
        book, inventory, marks = setup(tmp_path)
        before = book.read_bytes()
        app = make_app(book, inventory_path=str(inventory))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await select(pilot, "TGT-001")
            screen.task_view.pin_step(3)
            await pilot.pause()
            await pilot.press("T")
            picker = await modal(pilot, ChooseTargetModal)
            assert picker.query_one(Input).value == ""  # its annotation says web; nothing preselected
            assert not picker.query_one("#target-all", Checkbox).value  # it has a target of its own
            assert "targets.targets.yaml" in str(picker.query_one("#target-save", Checkbox).label)
            picker.query_one("#target-save", Checkbox).value = True
            await set_pattern(pilot, picker, "m-3")
            assert "runs on 1 host" in preview(picker) and "127.0.0.13" in preview(picker)
            await pilot.press("enter")
            await wait_for(pilot, lambda: events(app, ev.TargetChosen), what="choice journaled")
            [chosen] = events(app, ev.TargetChosen)
            assert (chosen.pattern, chosen.step, chosen.saved_to) == ("m-3", 3, str(tmp_path / "targets.targets.yaml"))
            assert "TGT-001.3: \"m-3\"" in (tmp_path / "targets.targets.yaml").read_text()
            assert book.read_bytes() == before  # the Markdown is untouched
            await pilot.press("r")
            run = await run_finished(pilot, app, "TGT-001", 3)
            assert run.targets == ("m-3",) and (marks / "ann-m-3").exists() and not (marks / "ann-web-1").exists()

    async def test_h_offers_every_inventory_host(self, make_app, tmp_path):
        book, inventory, marks = setup(tmp_path)
        app = make_app(book, inventory_path=str(inventory))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await select(pilot, "TGT-001")
            screen.task_view.pin_step(3)
            await pilot.pause()
            await pilot.press("h")
            chooser = await modal(pilot, ChooseHostModal)
            assert chooser.hosts == ["web-1", "m-1", "m-2", "m-3", "local"]  # its target first, then all
            chooser.query_one(OptionList).highlighted = chooser.hosts.index("m-2")
            await pilot.press("enter")
            run = await run_finished(pilot, app, "TGT-001", 3)
            assert run.targets == ("m-2",) and (marks / "ann-m-2").exists()
            assert events(app, ev.TargetChosen) == []  # one run on one host: not a lasting choice


class TestRollbackTargets:
    async def test_rollback_retargeted_to_the_failed_host(self, make_app, tmp_path):
        book, inventory, marks = setup(tmp_path)
        app = make_app(book, inventory_path=str(inventory))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await select(pilot, "TGT-001")
            app.session.choose_target("TGT-001", "masters", hosts=("m-1", "m-2", "m-3"))
            screen.task_view.pin_step(2)
            await pilot.pause()
            await pilot.press("r")
            run = await run_finished(pilot, app, "TGT-001", 2)
            assert run.hosts["m-2"].status == "failed" and run.hosts["m-1"].status == "succeeded"
            # roll back: the rollback has no target (the task's choice is for its steps)
            await pilot.press("b")
            reason = await modal(pilot, ReasonModal)
            reason.query_one(Input).value = "join failed on m-2"
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.task_view.rollback_mode and screen.task_view.step_view() is not None,
                           what="rollback shown")
            await pilot.pause()
            await pilot.press("r")
            picker = await modal(pilot, ChooseTargetModal)
            assert picker.query_one(Input).value == "m-2"  # where the damage is, suggested and prefilled
            first = candidates(picker)[0]
            assert first.startswith("★ suggested  m-2  where TGT-001's steps failed or are unknown: m-2: step 2 failed")
            assert [c.split()[0] for c in candidates(picker)[1:4]] == ["m-1", "m-3", "web-1"]  # every host offered
            assert "runs on 1 host" in preview(picker) and "127.0.0.12" in preview(picker)
            await pilot.press("enter")
            confirm = await modal(pilot, TypeHostModal)  # rm -rf: the confirmation names the host
            assert "on m-2" in confirm.message and confirm.expected == "m-2"
            await type_text(pilot, "m-2")
            await pilot.press("enter")
            run = await run_finished(pilot, app, "TGT-001", 1, rollback=True)
            assert run.outcome == "succeeded" and run.targets == ("m-2",)
            assert started(app, "TGT-001", 1, rollback=True) == [("m-2",)]
            assert (marks / "reset-m-2").exists() and not (marks / "reset-m-1").exists()
            rollback_choice = [e for e in events(app, ev.TargetChosen) if e.rollback]
            assert [(e.pattern, e.step) for e in rollback_choice] == [("m-2", None)]
