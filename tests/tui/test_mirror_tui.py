"""``runbook run --mirror DEST``: the header shows the mirror's head; losing it is a notice, never a stop."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessions.journal.journal import read_records
from sessions.team.mirror import MirrorDest
from tests.integration.sshd import SSHFleet
from tests.tools import require
from tests.tui.conftest import wait_for
from tests.tui.test_actions import run_finished, select

BOOK = """<!-- runbook: target=local -->
# TUI Mirror Book

## Phase 1: Work (1 hour)

### Task TM-1: Print

- **Duration**: 10 minutes
- **Risk Level**: LOW

#### Steps

1. **Print**

```bash
for i in 1 2 3 4 5; do echo line $i; done
```
"""


@pytest.fixture
def mirror_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SSHFleet]:
    """A loopback sshd as the mirror host, ``backup-jump`` in the SSH config of a throwaway ``$HOME``."""
    require("sshd")
    require("ssh-keygen")
    fleet = SSHFleet.start(tmp_path / "fleet", ["mirror"], base=44)
    fleet.user = pwd.getpwuid(os.getuid()).pw_name  # sshd logs in as this account ($USER is the test operator's)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(fleet.ssh_config({"backup-jump": "mirror"}))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    try:
        yield fleet
    finally:
        fleet.stop()


def _header(app) -> str:
    from tui.screens.main import MainScreen

    main = next(s for s in app.screen_stack if isinstance(s, MainScreen))  # under a modal too
    return str(main.query_one("#header-mirror").render())


async def test_the_header_shows_the_mirror_and_a_lost_mirror_is_a_notice(make_app, tmp_path: Path,
                                                                          mirror_fleet: SSHFleet) -> None:
    book = tmp_path / "tm.md"
    book.write_text(BOOK)
    remote_root = tmp_path / "remote"
    app = make_app(book, mirror=MirrorDest.parse(f"backup-jump:{remote_root}"), window_end="2026-12-08T04:00:00Z")
    async with app.run_test(size=(80, 24)) as pilot:
        await select(pilot, "TM-1")
        await wait_for(pilot, lambda: _header(app).startswith("mirror ✔"), what="the mirror in the header")
        await pilot.pause(0.1)
        mirror, clock = app.screen.query_one("#header-mirror").region, app.screen.query_one("#header-clock").region
        assert mirror.width >= len(_header(app)) and mirror.right <= clock.x  # in sight at 80 columns
        await pilot.press("r")
        await run_finished(pilot, app, "TM-1", 1)
        count = app.session.journal.count
        await wait_for(pilot, lambda: _header(app) == f"mirror ✔ {app.session.journal.count}",
                       what=f"the header to show record {count} acknowledged")

        mirror_fleet.stop()
        app.session.note("the mirror host is down")  # a record to send: the write fails
        await wait_for(pilot, lambda: "lost" in _header(app), what="the header to say the mirror is lost")
        await wait_for(pilot, lambda: any("lost" in n.message and "the session goes on" in n.message
                                          for n in app._notifications), what="a notice that the mirror is lost")
        first = app.session.state.step_run("TM-1", 1)
        await pilot.press("r", "y")  # steps still run (a re-run: confirmed)
        await wait_for(pilot, lambda: app.session.state.step_run("TM-1", 1) is not first, what="the re-run")
        run = await run_finished(pilot, app, "TM-1", 1)
        assert run.outcome == "succeeded"

        mirror_fleet.restart()
        await wait_for(pilot, lambda: _header(app) == f"mirror ✔ {app.session.journal.count}", timeout=20,
                       what="the mirror to catch up")
        await pilot.press("q")
    journal = app.session.journal.path
    remote = remote_root / app.session.id / "journal.jsonl"
    assert remote.read_bytes() == journal.read_bytes()
    states = [r.event.state for r in read_records(journal) if r.event.TYPE == "mirror_changed"]
    assert states == ["started", "lost", "restored"]


async def test_resume_from_the_mirror_opens_the_tui_with_the_step_unknown_and_the_handover_journaled(
        make_app, tmp_path: Path, mirror_fleet: SSHFleet) -> None:
    """``runbook resume --from``: the journal a dead jump host left on the mirror, copied over SFTP,
    opened in the TUI as after a crash, the handover journaled right after the session_opened."""
    from runbook.parse.parser import parse_file
    from sessions.engine.session import Session
    from sessions.journal import events as ev
    from sessions.team.mirror import fetch_from_mirror, split_from

    book = tmp_path / "tm.md"
    book.write_text(BOOK)
    first = Session.create(parse_file(str(book)), root=tmp_path / "jump-1")  # the jump host that dies
    first.start_task("TM-1")
    first.record(ev.StepStarted("run-1", "TM-1", 1, ("local",), "for i in 1 2 3 4 5; do echo line $i; done"))
    first.record(ev.HostStarted("run-1", "local"))
    mirrored = tmp_path / "remote" / first.id
    mirrored.mkdir(parents=True)
    (mirrored / "journal.jsonl").write_bytes(first.journal.path.read_bytes())  # what the mirror had acknowledged
    records = first.journal.count
    first.journal.close()  # gone without a session_closed

    dest, sid = split_from(f"backup-jump:{mirrored}", None)
    fetched = await fetch_from_mirror(dest, sid, tmp_path / "jump-2")
    app = make_app(book, mode="resume", ref=str(fetched.journal),
                   announce=(fetched.handover("carol", "jump-2"),))
    app.launch.root = tmp_path / "jump-2"
    async with app.run_test(size=(120, 32)) as pilot:
        await select(pilot, "TM-1")
        run = app.session.state.runs["run-1"]
        assert run.finished and run.status == "unknown"
        await wait_for(pilot, lambda: any(f"carried on from the mirror backup-jump:{mirrored}" in n.message
                                          for n in app._notifications), what="the handover said on opening")
        await pilot.press("q")
    events = [r.event for r in read_records(fetched.journal)]
    assert events[records].TYPE == "session_opened" and events[records].resumed
    handover = events[records + 1]
    assert handover.TYPE == "mirror_handover" and handover.source == f"backup-jump:{mirrored}"
    assert (handover.records, handover.operator, handover.host) == (records, "carol", "jump-2")
    assert any(e.TYPE == "step_outcome_unknown" and e.run_id == "run-1" for e in events[records:])
