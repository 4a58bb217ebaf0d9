"""The embedded demo fleet (real asyncssh servers on 127.0.2.x) and the TUI driving it."""

from __future__ import annotations

import asyncio
import getpass
import os

import asyncssh
import pytest

from sessions.journal import events as ev
from tests.tui.conftest import DEMO
from tests.tui.test_actions import events, log_text, modal, run_finished, select, type_text
from tui.demo_fleet import HOSTS, DemoFleet
from tui.widgets.modals import ChooseHostModal, ReasonModal


@pytest.fixture
async def fleet(tmp_path):
    f = DemoFleet(tmp_path / "fleet")
    f.prepare()
    await f.start()
    yield f
    await f.stop()


def connect(fleet: DemoFleet, host: str):
    return asyncssh.connect(HOSTS[host], fleet.port, username=getpass.getuser(),
                            client_keys=[str(fleet.files.client_key)], known_hosts=str(fleet.files.known_hosts))


class TestDemoFleet:
    async def test_commands_status_stdin_and_host_identity(self, fleet):
        async with connect(fleet, "web-2") as conn:
            r = await conn.run("hostname; echo oops >&2; exit 3")
            assert (r.stdout, r.stderr, r.exit_status) == ("web-2\n", "oops\n", 3)
            r = await conn.run("bash -s", input="echo from stdin $RUNBOOK_DEMO_HOST\n")
            assert r.stdout == "from stdin web-2\n" and r.exit_status == 0

    async def test_signals_pty_and_sftp(self, fleet, tmp_path):
        async with connect(fleet, "db-1") as conn:
            proc = await conn.create_process("sleep 30")
            await asyncio.sleep(0.3)
            proc.send_signal("INT")
            await asyncio.wait_for(proc.wait_closed(), 10)
            assert proc.exit_signal is not None and proc.exit_signal[0] == "INT"
            r = await conn.run("tty >/dev/null && echo has-a-tty", term_type="xterm")
            assert "has-a-tty" in r.stdout
            async with conn.start_sftp_client() as sftp, sftp.open(str(tmp_path / "uploaded"), "w") as fh:
                await fh.write("content")
        assert (tmp_path / "uploaded").read_text() == "content"

    async def test_a_command_dies_with_its_connection(self, fleet, tmp_path):
        marker = tmp_path / "pid"
        async with connect(fleet, "web-1") as conn:
            await conn.create_process(f"echo $$ > {marker}; exec sleep 60")
            for _ in range(100):
                if marker.exists() and marker.read_text().strip():
                    break
                await asyncio.sleep(0.05)
        pid = int(marker.read_text())
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the remote command outlived its SSH connection")

    async def test_same_keys_and_port_when_started_again(self, tmp_path):
        first = DemoFleet(tmp_path / "fleet")
        first.prepare()
        port, known = first.port, first.files.known_hosts.read_text()
        again = DemoFleet(tmp_path / "fleet")
        again.prepare()
        assert again.port == port and again.files.known_hosts.read_text() == known
        assert oct(os.stat(tmp_path / "fleet").st_mode & 0o777) == "0o700"


class TestDemoInTheTui:
    async def test_run_a_fleet_step_on_one_chosen_host(self, fleet, make_app):
        app = make_app(DEMO, inventory_path=str(fleet.files.inventory), known_hosts=str(fleet.files.known_hosts))
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "DEMO-FLEET-001")
            assert "web-1, web-2 (parallel)" in screen.task_view.step_view(1).targets
            await pilot.press("h")
            choose = await modal(pilot, ChooseHostModal)
            assert choose.hosts == ["web-1", "web-2", "db-1", "local"]  # the step's targets first, then every host
            await pilot.press("down", "enter")
            await modal(pilot, ReasonModal)  # dependencies unfinished
            await type_text(pilot, "prep checked by hand")
            await pilot.press("enter")
            gate = await modal(pilot, ReasonModal)  # the phase 1 gate never ran
            assert "Phase 1 gate step 1 never ran" in gate.message
            await type_text(pilot, "gate checked by hand")
            await pilot.press("enter")
            run = await run_finished(pilot, app, "DEMO-FLEET-001", 1)
            assert run.outcome == "succeeded" and run.targets == ("web-2",)
            assert "host web-2 up" in log_text(screen, "web-2")
            assert [e.targets for e in events(app, ev.StepStarted)] == [("web-2",)]

    async def test_a_serial_pause_step_asks_between_hosts(self, fleet, make_app, tmp_path):
        from tui.widgets.modals import ConfirmModal

        book = tmp_path / "pause.md"
        book.write_text(PAUSE_RUNBOOK)
        app = make_app(book, inventory_path=str(fleet.files.inventory), known_hosts=str(fleet.files.known_hosts))
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "PAUSE-001")
            await pilot.press("r")
            confirm = await modal(pilot, ConfirmModal)
            assert "web-1 is done" in confirm.message and "web-2" in confirm.message
            assert app.session.state.runs and next(iter(app.session.state.runs.values())).hosts["web-2"].status == "pending"
            await pilot.press("y")
            run = await run_finished(pilot, app, "PAUSE-001", 1)
            assert run.outcome == "succeeded" and set(run.hosts) == {"web-1", "web-2"}


PAUSE_RUNBOOK = """# Pause

## Phase 1: Rollout (1 hour)

### Task PAUSE-001: Restart One at a Time

- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

1. **Restart**

<!-- runbook: target=web serial pause -->
```bash
echo "restarted on $(hostname)"
```
"""
