"""The output pane says where a failing block stopped (shell semantics, issue 10)."""

from __future__ import annotations

from pathlib import Path

from tests.tui.test_actions import log_text, run_finished, select

BOOK = """# Failing Book

## Phase 0: Preparation (1 hour)

### Task FAIL-001: Fails in the middle

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Middle**

<!-- runbook: target=local -->
```bash
echo first
false | cat
echo after
```
"""


async def test_the_output_pane_names_the_failing_line(make_app, tmp_path: Path):
    book = tmp_path / "failing.md"
    book.write_text(BOOK)
    line = BOOK.splitlines().index("false | cat") + 1
    app = make_app(book)
    async with app.run_test(size=(120, 32)) as pilot:
        screen = await select(pilot, "FAIL-001")
        await pilot.press("r")
        run = await run_finished(pilot, app, "FAIL-001", 1)
        assert run.outcome == "failed"
        await pilot.pause(0.2)
        text = log_text(screen)
        assert "first" in text and "after" not in text
        assert f"failed at line 2 of the block ({book}:{line}): `false | cat`, exit 1" in text.replace("\n", "")
