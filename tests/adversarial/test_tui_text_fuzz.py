"""Any text renders in the TUI without an exception, and nothing but text is drawn.

Hypothesis writes a runbook whose phase title, task title, step title, checkbox, command and
notes are arbitrary text mixed with markup (``[/var]``, ``[@click=app.quit]``), escape
sequences and bidi controls; a host with an arbitrary name prints arbitrary bytes.  The TUI
(Pilot) opens it, shows the task and the output: no exception, and every drawn segment is
printable text.  Examples are few (each opens the app): CI runs this on 2 cores.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions.journal import events as ev
from tests.adversarial.test_tui_attacks import drawn, unsafe
from tests.tui.conftest import fixed_clock, screen_text, wait_for
from tests.tui.test_actions import log_text, main_screen

NASTY = ["[/var]", "[bold]", "[@click=app.quit]x[/]", "[/]", "[", "]", "\\[b]", "[red on", "\x1b]52;c;eA==\x07",
         "\x1bc", "\x1bk", "\x1b\\", "\x1b#8", "\x1b[2J", "\u009b", "\u202e", "\u2066", "\u2069", "\u200b", "\t",
         "\r", "\x00", "\x7f", "\ufeff", "\u0301", "日本", "\U0001f600", "*", "`", "<X>", "$Y"]
PIECE = st.one_of(st.sampled_from(NASTY), st.text(st.characters(exclude_categories=("Cs",)), max_size=8))
TEXT = st.lists(PIECE, min_size=1, max_size=6).map("".join)
LINE = TEXT.map(lambda t: " ".join(t.splitlines()) or "x")


def book(phase: str, task: str, step: str, box: str, command: str, note: str) -> str:
    command = command.replace("`", "'")
    return _no_nul(f"""# Fuzz

## Phase 0: {phase} (1 hour)

### Task FUZZ-001: {task}

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Prerequisites

- [ ] {box}

#### Steps

1. **{step}**

<!-- runbook: target=local -->
```bash
{command}
```

#### Notes

- {note}
""")


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\\0")  # a NUL makes the file binary: refused before the TUI opens (tested elsewhere)


async def scenario(path: Path, root: Path, host: str, output: bytes) -> None:
    from runbook.parse.parser import parse_file
    from tui.app import RunbookApp
    from tui.launch import Launch

    runbook = parse_file(str(path))
    app = RunbookApp(Launch(runbook=runbook, root=root, mode="new", clock=fixed_clock))
    app.animation_level = "none"
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await main_screen(pilot)
            task = runbook.tasks[0] if runbook.tasks else None
            if task is not None and task.steps:
                screen.jump_to(task.id)
                session = app.session
                session.record(ev.StepStarted("run-fuzz", task.id, task.steps[0].number, (host,), "x"))
                session.record_output(ev.OutputChunk.from_bytes("run-fuzz", host, "stdout", output))
                session.record(ev.HostFinished("run-fuzz", host, "succeeded", 0))
                session.record(ev.StepFinished("run-fuzz", "succeeded"))
                await wait_for(pilot, lambda: "── succeeded" in log_text(screen, host), what="the output drawn")
            await pilot.pause()
            assert screen_text(app)
            assert unsafe(drawn(app)) == []
            await pilot.press("ctrl+p")
            await pilot.press("F", "u")
            await pilot.pause(0.1)
            assert unsafe(drawn(app)) == []
    finally:
        if app.session is not None and not app.session.closed:
            app.session.close("test over")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phase=LINE, task=LINE, step=LINE, box=LINE, command=TEXT, note=LINE, host=LINE,
       output=st.one_of(TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=2000)))
def test_any_text_renders_as_text(phase, task, step, box, command, note, host, output):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.md"
        path.write_text(book(phase, task, step, box, command, note), encoding="utf-8")
        asyncio.run(scenario(path, Path(tmp) / "sessions", host, output))
