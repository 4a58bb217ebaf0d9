"""Pilot: starting a task that needs a four-eyes approval opens a modal that shows the request and
waits (polling for the signature, or a signature file typed in); the step does not run before."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from sessions.journal import events as ev
from tests.tools import require
from tests.tui.conftest import screen_text, wait_for
from tests.tui.test_actions import events, modal, run_finished, select, type_text
from tui.widgets.modals import ApprovalModal

BOOK = """# Approval in the TUI

## Phase 1: Change

### Task APP-001: Needs four eyes
- **Risk Level**: LOW

<!-- runbook: approval=required -->

#### Steps
1. **Touch**
   <!-- runbook: target=local -->
   ```bash
   echo approved-run > {marker}
   ```
"""


def keygen(*args: str) -> None:
    subprocess.run([require("ssh-keygen"), *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("RUNBOOK_SIGNING_KEY", raising=False)
    keygen("-q", "-t", "ed25519", "-N", "", "-C", "operator", "-f", str(home / ".ssh" / "id_ed25519"))
    for name in ("bob", "mallory"):
        keygen("-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(tmp_path / name))
    approvers = tmp_path / "approvers"
    approvers.write_text(f"bob@example {' '.join((tmp_path / 'bob.pub').read_text().split()[:2])}\n")
    book = tmp_path / "approval.md"
    book.write_text(BOOK.format(marker=tmp_path / "marker"))
    return {"book": book, "approvers": approvers, "bob": tmp_path / "bob", "mallory": tmp_path / "mallory",
            "marker": tmp_path / "marker", "tmp": tmp_path}


def sign(key: Path, request: Path, out: Path) -> None:
    """The approver, elsewhere: the stock tool, then the file appears whole (like runbook approve)."""
    copy = out.with_suffix(".req")
    copy.write_bytes(request.read_bytes())
    keygen("-Y", "sign", "-f", str(key), "-n", "runbook-approval", str(copy))
    Path(f"{copy}.sig").replace(out)


async def test_the_step_waits_for_the_approval_then_runs(make_app, world) -> None:
    app = make_app(world["book"], approvers=str(world["approvers"]))
    async with app.run_test(size=(110, 36)) as pilot:
        await select(pilot, "APP-001")
        assert "⚿" in screen_text(app)  # the tree says the task needs an approval
        await pilot.press("r")
        dialog = await modal(pilot, ApprovalModal)
        [requested] = events(app, ev.ApprovalRequested)
        request = Path(requested.path)
        assert request.is_file() and dialog.request_path == str(request)
        text = screen_text(app)
        assert "runbook approve" in text and request.name in text.replace("\n", "")
        await pilot.pause(1.0)
        assert events(app, ev.StepStarted) == [] and not world["marker"].exists()  # nothing runs while it waits
        signer = threading.Thread(target=sign, args=(world["bob"], request, Path(f"{request}.sig")))
        signer.start()
        await run_finished(pilot, app, "APP-001", 1)
        signer.join()
        assert world["marker"].read_text() == "approved-run\n"
    [granted] = events(app, ev.ApprovalGranted)
    assert granted.principal == "bob@example" and granted.source == f"{request}.sig"
    kinds = [type(e).__name__ for e in events(app)]
    assert kinds.index("ApprovalGranted") < kinds.index("StepStarted")


async def test_a_refused_signature_is_shown_and_escape_runs_nothing(make_app, world) -> None:
    app = make_app(world["book"], approvers=str(world["approvers"]))
    async with app.run_test(size=(110, 36)) as pilot:
        await select(pilot, "APP-001")
        await pilot.press("r")
        dialog = await modal(pilot, ApprovalModal)
        request = Path(events(app, ev.ApprovalRequested)[0].path)
        bad = world["tmp"] / "mallory.sig"
        sign(world["mallory"], request, bad)
        await type_text(pilot, str(bad))
        await pilot.press("enter")
        status = await wait_for(pilot, lambda: str(dialog.query_one("#approval-status").render()) or None)
        assert "refused" in status and "not in the approvers file" in status
        assert app.screen is dialog  # still waiting
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ApprovalModal)
        assert events(app, ev.StepStarted) == [] and not world["marker"].exists()
    [refused] = events(app, ev.ApprovalRefused)
    assert "not in the approvers file" in refused.reason and refused.source == str(bad)


async def test_the_other_steps_values_are_asked_first_so_the_approver_signs_what_runs(make_app, world) -> None:
    from tui.widgets.modals import PlaceholderModal

    book = world["tmp"] / "two.md"
    book.write_text(BOOK.format(marker=world["marker"]) + """2. **Upgrade**
   <!-- runbook: target=local -->
   ```bash
   echo upgrading to <VERSION>
   ```
""")
    app = make_app(book, approvers=str(world["approvers"]))
    async with app.run_test(size=(110, 36)) as pilot:
        await select(pilot, "APP-001")
        await pilot.press("r")
        asked = await modal(pilot, PlaceholderModal)
        assert asked.placeholder_name == "VERSION" and "step 2 of the plan the approver signs" in asked.where
        await type_text(pilot, "1.29.3")
        await pilot.press("enter")
        await modal(pilot, ApprovalModal)
        [requested] = events(app, ev.ApprovalRequested)
        assert "echo upgrading to 1.29.3" in requested.message  # step 2 as it will run
        assert events(app, ev.StepStarted) == []
        await pilot.press("escape")
