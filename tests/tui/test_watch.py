"""``runbook watch``: the TUI, read-only, following a session that ``runbook exec`` writes in
another process (a real subprocess, a real journal); nothing the watcher does writes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sessions.engine.session import Session
from sessions.journal.journal import read_records, verify
from sessions.team.watch import READ_ONLY, ReadOnlyError, WatchedSession
from tests.tui.conftest import screen_text, wait_for

_SCRIPT = Path(sys.executable).parent / "runbook"
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]

BOOK = """<!-- runbook: target=local -->
# Watch Book

## Phase 1: Work (1 hour)

### Task W-1: Slow work

- **Duration**: 10 minutes
- **Risk Level**: LOW

#### Prerequisites

- [ ] The change manager is watching

#### Steps

1. **Slow output**

```bash
echo first-line
sleep 1.5
echo second-line
```

2. **Quick**

```bash
echo step-two-done
```

3. **Hold on** until the test is done with the running session (a file it creates)

```bash
i=0; while [ ! -e release ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo held
```
"""


def _journal(root: Path) -> Path:
    found = list(root.glob("*/journal.jsonl"))
    return found[0] if found and found[0].stat().st_size else None  # type: ignore[return-value]


def _lock_fingerprint(directory: Path) -> tuple[int, int, bytes] | None:
    lock = directory / "lock"
    if not lock.exists():
        return None
    st = lock.stat()
    return st.st_ino, st.st_mtime_ns, lock.read_bytes()


async def test_watch_follows_exec_in_another_process_and_writes_nothing(tmp_path):
    from tui.launch import Launch
    from tui.messages import CheckboxToggleRequested
    from tui.screens.watch import WatchScreen
    from tui.watching import WatchApp, _engine

    book = tmp_path / "book.md"
    book.write_text(BOOK)
    root = tmp_path / "sessions"
    writer = subprocess.Popen([*RUNBOOK, "exec", str(book), "--task", "W-1", "--session-dir", str(root), "--yes"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        for _ in range(300):
            path = _journal(root)
            if path is not None and b'"step_started"' in path.read_bytes():
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"exec never started its step: {writer.communicate(timeout=30)}")
        sid = path.parent.name
        lock_before = _lock_fingerprint(path.parent)
        assert lock_before is not None  # the writer holds it
        with pytest.raises(Exception, match=r"lock|in use|held"):  # another writer would be refused ...
            Session.resume(sid, root=root)
        session = WatchedSession.open(sid, root=root)  # ... a watcher is not
        app = WatchApp(Launch(runbook=session.runbook, root=root, mode="watch"), session=session,
                       engine=_engine(session))
        async with app.run_test(size=(120, 40)) as pilot:
            assert isinstance(app.screen, WatchScreen)
            await wait_for(pilot, lambda: "second-line" in screen_text(app), timeout=20, what="the live output")
            await wait_for(pilot, lambda: app.session.state.step_status("W-1", 2) == "succeeded", timeout=20,
                           what="step 2 to succeed")
            assert writer.poll() is None  # step 3 still runs: the lock is the writer's
            assert _lock_fingerprint(path.parent) == lock_before  # the watcher never touched it
            assert READ_ONLY in screen_text(app)
            before = path.read_bytes()
            for key in ("r", "a", "n", "d", "o", "s", "e", "y", "b"):
                await pilot.press(key)
            await pilot.pause(0.1)
            assert refusals(app)[:2] == ["running a step", "running the task"]
            assert len(refusals(app)) == 9, refusals(app)
            assert path.read_bytes() == before
            (tmp_path / "release").touch()  # step 3 may end now (it held the lock while the keys were tried)
            assert writer.wait(timeout=60) == 0, writer.stderr.read() if writer.stderr else ""
            # a second operator (this process) resumes: ticks the box and overrides a guard; the watch follows
            other = Session.resume(sid, root=root)
            key = "W-1/prerequisites/0"
            other.set_checkbox(key, True, evidence="seen on the bridge")
            other.override_guard("window", "W-1", "CAB approved the extension")
            other.close("quit")
            await wait_for(pilot, lambda: app.session.state.closed and key in app.session.state.checkboxes,
                           timeout=10, what="the second operator's records")
            assert app.session.state.checkboxes[key].checked
            assert [g.guard for g in app.session.state.guards] == ["window"]
            before = path.read_bytes()
            app.screen.post_message(CheckboxToggleRequested(key, False))
            await pilot.pause(0.2)
            assert refusals(app)[-1] == "ticking a checkbox"
            await pilot.press("q")
        assert path.read_bytes() == before  # quitting the watch journals nothing
        records = list(read_records(path))
        assert session.state.count == len(records) and verify(path).ok
        assert type(records[-1].event).__name__ == "SessionClosed"
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def refusals(app) -> list[str]:
    """What the operator was told is not theirs to do, from the toasts shown (oldest first)."""
    told = " is for the operator of this session"
    return [n.message.split(told)[0] for n in app._notifications if n.title == READ_ONLY and told in n.message]


def test_every_intent_of_a_watched_session_is_refused(tmp_path):
    book = tmp_path / "book.md"
    book.write_text(BOOK)
    from runbook.parse.parser import parse_file

    live = Session.create(parse_file(str(book)), root=tmp_path / "s")
    try:
        watched = WatchedSession.open(live.id, root=tmp_path / "s")
        size = live.journal.path.stat().st_size
        for call in (lambda: watched.set_checkbox("W-1/prerequisites/0", True), lambda: watched.note("hi"),
                     lambda: watched.start_task("W-1"), lambda: watched.skip_task("W-1", "x"),
                     lambda: watched.decide("r", "failed"), lambda: watched.supply("X", "y", False),
                     lambda: watched.override_guard("window", "W-1", "r"), lambda: watched.ensure_writable(),
                     lambda: watched.choose_target("W-1", "local"), lambda: watched.complete_task("W-1")):
            with pytest.raises(ReadOnlyError, match=READ_ONLY):
                call()
        live.note("written by the operator")
        assert watched.poll() == 1 and watched.state.notes[-1].text == "written by the operator"
        assert watched.poll() == 0
        assert live.journal.path.stat().st_size > size
        assert os.stat(live.journal.path).st_mode & 0o777 == 0o600
    finally:
        live.close()
    assert watched.poll() == 1 and watched.state.closed


def test_a_record_that_does_not_chain_stops_the_watch(tmp_path):
    from runbook.parse.parser import parse_file

    book = tmp_path / "book.md"
    book.write_text(BOOK)
    live = Session.create(parse_file(str(book)), root=tmp_path / "s")
    try:
        watched = WatchedSession.open(live.id, root=tmp_path / "s")
        live.note("one")
        with open(live.journal.path, "ab") as fh:  # someone else's bytes in the middle of the chain
            fh.write(b'{"event":{"type":"note","text":"forged"},"seq":99}\n')
        assert watched.poll() == 1 and watched.state.notes[-1].text == "one"
        assert watched.poll() == 0 and watched.error.startswith("stopped following: ")
    finally:
        live.close()


def test_watch_of_a_missing_session_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([*RUNBOOK, "watch", "nope", "--session-dir", str(tmp_path / "none")], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and proc.stderr.startswith("runbook: ") and "Traceback" not in proc.stderr


def test_watch_of_a_session_whose_runbook_is_gone_says_so(tmp_path):
    from runbook.errors import UserError
    from runbook.parse.parser import parse_file

    book = tmp_path / "book.md"
    book.write_text(BOOK)
    live = Session.create(parse_file(str(book)), root=tmp_path / "s")
    live.close()
    book.unlink()
    with pytest.raises(UserError, match=r"is gone: cannot show it \(runbook journal show .* --follow"):
        WatchedSession.open(live.id, root=tmp_path / "s")
