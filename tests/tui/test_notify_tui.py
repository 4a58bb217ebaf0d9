"""``runbook run --notify URL``: the TUI's session notifies a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from sessions.journal.journal import read_records
from tests.tui.conftest import wait_for
from tests.tui.test_actions import run_finished, select
from tests.webhook import Webhook

BOOK = """<!-- runbook: target=local -->
# TUI Notify Book

## Phase 1: Work (1 hour)

### Task TN-1: Break

- **Duration**: 10 minutes
- **Risk Level**: LOW

#### Steps

1. **Fail**

```bash
echo about to fail
exit 2
```
"""


async def test_a_failed_step_and_the_quit_are_notified_from_the_tui(make_app, tmp_path: Path):
    book = tmp_path / "tn.md"
    book.write_text(BOOK)
    with Webhook() as hook:
        app = make_app(book, notify=(hook.url,))
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "TN-1")
            await pilot.press("r")
            run = await run_finished(pilot, app, "TN-1", 1)
            assert run.outcome == "failed"
            await wait_for(pilot, lambda: hook.events() == ["step_failed"], what="the failure notified")
            await pilot.press("q")
        assert hook.events() == ["step_failed", "session_closed"]
        assert "TN-1 step 1 (Fail) failed on local" in hook.posts[0]["json"]["text"]
        assert "about to fail" in hook.posts[0]["json"]["text"]
        assert "session closed (quit)" in hook.posts[1]["json"]["text"]
    types = [type(r.event).__name__ for r in read_records(app.session.journal.path)]
    assert types[-3:] == ["NotificationSent", "NotificationSent", "SessionClosed"]
