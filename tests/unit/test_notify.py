"""Notifications (``--notify URL``): a real HTTP server on 127.0.0.1 receives them; a real
Session journals each delivery; the engine runs real local commands."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.notify_config import mask_url
from runbook.parse.parser import parse_file
from runbook.targets.inventory import Inventory
from sessions.engine.engine import Engine
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.journal import read_records
from sessions.state.state import replay
from sessions.team.notify import Notifier, Trigger, check_urls
from tests.webhook import Webhook

SECRET = "Pa55-hunter2-Zq9"

BOOK = """<!-- runbook: target=local -->
# Notify Book

## Phase 1: Work (1 hour)

### Task T-1: Change things

- **Duration**: 30 minutes
- **Risk Level**: LOW

#### Steps

1. **Say ok**

```bash
echo ok
```

2. **Use the password**

```bash
echo "connecting with password=<DB_PASSWORD> now"
echo "the last words"
exit 3
```

### Phase 1 Smoke Test

```bash
echo SMOKE OK
```

**Gate**: the smoke test passes before Phase 2.

## Phase 2: More (1 hour)

### Task T-2: More things

- **Duration**: 30 minutes
- **Dependencies**: T-1

#### Steps

1. **Again**

```bash
echo again
```
"""


@pytest.fixture
def book(tmp_path: Path):
    path = tmp_path / "book.md"
    path.write_text(BOOK)
    return parse_file(str(path))


def journal_events(session: Session, kind: type) -> list[ev.Event]:
    session.sync()
    return [r.event for r in read_records(session.journal.path) if isinstance(r.event, kind)]


async def run(engine: Engine, task: str, step: int) -> str:
    summary = await engine.run_step_summary(task, step)
    return summary.outcome


async def test_failures_gate_override_and_close_reach_the_webhook(tmp_path, book):
    with Webhook() as hook:
        session = Session.create(book, root=tmp_path / "s")
        engine = Engine(session, Inventory.from_text(""))
        notifier = Notifier(session, [hook.url], window_every=0)
        notifier.start()
        try:
            session.supply("DB_PASSWORD", SECRET, True)
            assert await run(engine, "T-1", 1) == "succeeded"
            assert await run(engine, "T-1", 2) == "failed"
            session.override_guard("dependencies", "T-2", f"CAB said yes; the password is {SECRET}")
            assert await run(engine, "gate:1", 1) == "succeeded"
            await notifier.finish("quit")
        finally:
            await engine.close()
            session.close()
        assert hook.events() == ["step_failed", "guard_overridden", "gate_passed", "session_closed"]
        failed, override, gate, closed = (p["json"] for p in hook.posts)
        assert {p["path"] for p in hook.posts} == {hook.path}
        assert failed["text"].startswith("[runbook] Notify Book · session ")
        assert "T-1 step 2 (Use the password) failed on local" in failed["text"]
        assert "the last words" in failed["text"]
        assert failed["details"]["hosts"]["local"]["exit_status"] == 3
        assert failed["details"]["hosts"]["local"]["output_tail"][-1] == "the last words"
        assert failed["session"] == session.id and failed["event"] == "step_failed"
        assert "dependencies guard overridden on T-2" in override["text"]
        assert "Phase 1 gate passed" in gate["text"]
        assert "session closed (quit)" in closed["text"]
        # the secret never went out: neither the output line that held it nor the operator's reason
        assert all(SECRET.encode() not in body for body in hook.raw)
        assert "connecting with password=" in failed["text"]
    sent = journal_events(session, ev.NotificationSent)
    assert [e.trigger for e in sent] == ["step_failed", "guard_overridden", "gate_passed", "session_closed"]
    assert all(e.status == 204 and e.attempts == 1 and e.url == mask_url(hook.url) for e in sent)
    raw = session.journal.path.read_bytes()
    assert b"s3cretWebhookToken" not in raw  # the webhook's path (its token) is never journaled
    state = replay(read_records(session.journal.path))
    assert state.notifications_sent == 4 and state.notification_failures == ()


@pytest.mark.parametrize("mode", ["error", "hang"])
async def test_a_failing_server_slows_no_step_and_the_failure_is_journaled(tmp_path, book, mode):
    with Webhook(mode) as hook:
        session = Session.create(book, root=tmp_path / "s")
        engine = Engine(session, Inventory.from_text(""))
        notifier = Notifier(session, [hook.url], timeout=1.0, retries=2, backoff=0.05, window_every=0)
        notifier.start()
        try:
            session.supply("DB_PASSWORD", SECRET, True)
            t0 = time.monotonic()
            assert await run(engine, "T-1", 2) == "failed"
            assert await run(engine, "T-1", 1) == "succeeded"  # the next step runs while the first message waits
            steps_s = time.monotonic() - t0
            await notifier.finish("quit", grace=10)
        finally:
            await engine.close()
            session.close()
    print(f"two steps with a {mode} webhook: {steps_s:.2f} s")
    assert steps_s < 20  # generous: a blocking delivery would hold each step 3 x 1 s at least
    failures = journal_events(session, ev.NotificationFailed)
    assert [f.trigger for f in failures] == ["step_failed", "session_closed"]
    why = "HTTP 500" if mode == "error" else "no answer within 1 s"
    assert all(f.error == why and f.attempts == 3 for f in failures), failures
    assert hook.attempts == 6
    assert journal_events(session, ev.NotificationSent) == []
    state = replay(read_records(session.journal.path))
    assert [f.trigger for f in state.notification_failures] == ["step_failed", "session_closed"]


async def test_what_is_still_waiting_at_close_is_journaled_as_not_delivered(tmp_path, book):
    with Webhook("hang") as hook:
        session = Session.create(book, root=tmp_path / "s")
        notifier = Notifier(session, [hook.url], timeout=30, window_every=0)
        notifier.start()
        session.override_guard("dependencies", "T-2", "go")
        await notifier.finish("quit", grace=0.5)
        session.close()
    failures = journal_events(session, ev.NotificationFailed)
    assert [(f.trigger, f.error) for f in failures] == [
        ("guard_overridden", "not delivered before the session closed"),
        ("session_closed", "not delivered before the session closed")]


async def test_window_turning_amber_then_red_is_journaled_and_sent_once_each(tmp_path, book):
    start = datetime.now(UTC)
    now = [start]
    with Webhook() as hook:
        # the critical path is 60 minutes (T-1 then T-2): 70 minutes left is tight, 50 is over
        session = Session.create(book, root=tmp_path / "s", window_end=start + timedelta(minutes=70))
        notifier = Notifier(session, [hook.url], window_every=0, clock=lambda: now[0])
        notifier.start()
        try:
            notifier.check_window()
            notifier.check_window()
            now[0] = start + timedelta(minutes=20)
            notifier.check_window()
            now[0] = start + timedelta(minutes=80)
            notifier.check_window()  # still red (closed now): no new alert
            await notifier.finish("quit")
        finally:
            session.close()
        assert hook.events() == ["window_amber", "window_red", "session_closed"]
        assert "the change window is tight: 1 h 10 min left" in hook.posts[0]["json"]["text"]
        assert "no longer fits" in hook.posts[1]["json"]["text"]
    alerts = journal_events(session, ev.WindowAlert)
    assert [a.level for a in alerts] == ["amber", "red"]
    assert replay(read_records(session.journal.path)).window_alerts == tuple(alerts)


async def test_a_resumed_session_does_not_repeat_what_was_said(tmp_path, book):
    with Webhook() as hook:
        session = Session.create(book, root=tmp_path / "s",
                                 window_end=datetime.now(UTC) + timedelta(minutes=30))
        notifier = Notifier(session, [hook.url], window_every=0)
        notifier.start()
        notifier.check_window()
        await notifier.finish("quit")
        session.close()
        again = Session.resume(session.id, root=tmp_path / "s")
        notifier = Notifier(again, [hook.url], window_every=0)
        notifier.start()
        notifier.check_window()
        await notifier.finish("quit")
        again.close()
        assert hook.events() == ["window_red", "session_closed", "session_closed"]


def test_only_http_urls_are_accepted_and_credentials_are_masked():
    for bad in ("ftp://example.test/x", "javascript:alert(1)", "http:///path", "file:///etc/passwd",
                "http://host:99999/", "http://a b/", "http://x/\x1b[31m"):
        with pytest.raises(UserError) as info:
            check_urls([bad])
        assert info.value.exit_code == 2 and "\x1b" not in str(info.value)
    assert check_urls(["http://127.0.0.1:1/a", "http://127.0.0.1:1/a", "https://[::1]/b"]) == [
        "http://127.0.0.1:1/a", "https://[::1]/b"]
    shown = mask_url("https://bot:hunter2@hooks.example.test:8443/services/T0/B0/tok3n?x=1")
    assert shown.startswith("https://hooks.example.test:8443/… #")
    assert "hunter2" not in shown and "tok3n" not in shown and "bot" not in shown


async def test_basic_credentials_in_the_url_are_sent_as_a_header(tmp_path, book):
    with Webhook() as hook:
        url = hook.url.replace("http://", "http://bot:pa%3Ass@")
        session = Session.create(book, root=tmp_path / "s")
        notifier = Notifier(session, [url], window_every=0)
        notifier.start()
        await notifier.finish("quit")
        session.close()
        assert hook.events() == ["session_closed"]
        assert hook.headers[0]["Authorization"] == "Basic Ym90OnBhOnNz"  # bot:pa:ss
    assert b"pa%3Ass" not in session.journal.path.read_bytes()
    assert Trigger.SESSION_CLOSED == "session_closed"
    assert json.loads(hook.raw[0])["details"] == {"reason": "quit", "finished": False}


def test_notify_urls_from_front_matter_and_bindings_file(tmp_path):
    from runbook.errors import InputError

    path = tmp_path / "doc.md"
    path.write_text("---\ntitle: T\nnotify: http://127.0.0.1:9/front\n---\n" + BOOK)
    (tmp_path / "doc.targets.yaml").write_text("notify:\n  - http://127.0.0.1:9/bound\n  - http://127.0.0.1:9/front\n")
    assert parse_file(str(path)).notify == ("http://127.0.0.1:9/front", "http://127.0.0.1:9/bound")
    (tmp_path / "doc.targets.yaml").write_text("T-1: local\nnotify:\n  - gopher://127.0.0.1/x\n")
    with pytest.raises(InputError) as info:
        parse_file(str(path))
    assert "doc.targets.yaml:3: notify: ?://127.0.0.1/… #" in str(info.value)
    (tmp_path / "doc.targets.yaml").unlink()
    path.write_text("---\ntitle: T\nnotify: [ftp://x/y]\n---\n" + BOOK)
    rb = parse_file(str(path))
    assert rb.notify == ()
    assert [(d.line, d.severity, d.code) for d in rb.diagnostics if d.code == "notify"] == [(3, "error", "notify")]


async def test_a_full_queue_drops_its_oldest_message_and_journals_it(tmp_path, book):
    with Webhook("hang") as hook:
        session = Session.create(book, root=tmp_path / "s")
        notifier = Notifier(session, [hook.url], timeout=30, queue_limit=1, window_every=0)
        notifier.start()
        for n in range(3):  # the first is being sent (hanging); the second is dropped for the third
            session.override_guard("dependencies", "T-2", f"reason {n}")
            await asyncio.sleep(0.1)
        await notifier.finish("quit", grace=0.2)
        session.close()
    failures = journal_events(session, ev.NotificationFailed)
    assert [f.error.split(":")[0] for f in failures] == [
        "dropped", "dropped", "not delivered before the session closed", "not delivered before the session closed"]
    assert [f.about_seq is not None for f in failures] == [True, True, True, False]


async def test_the_report_lists_what_the_team_was_not_told(tmp_path, book):
    from sessions.report.build import build_report

    with Webhook("error") as hook:
        session = Session.create(book, root=tmp_path / "s",
                                 window_end=datetime.now(UTC) + timedelta(minutes=30))
        notifier = Notifier(session, [hook.url], retries=0, window_every=0)
        notifier.start()
        notifier.check_window()
        await notifier.finish("quit")
        session.close()
    report = build_report(session.journal.path)
    kinds = [(d.kind, d.message) for d in report.deviations if d.kind in ("notification_failed", "window_alert")]
    assert kinds == [("window_alert", "window red: the critical path no longer fitted in the window"),
                     ("notification_failed", f"notification not delivered: window_red to {mask_url(hook.url)}"),
                     ("notification_failed", f"notification not delivered: session_closed to {mask_url(hook.url)}")]
