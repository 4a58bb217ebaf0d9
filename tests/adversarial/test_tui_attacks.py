"""Terminal attacks through the TUI (Pilot): text is text.

- markup: a runbook whose titles, steps and checkboxes hold ``[/var]``, ``[bold]`` and
  ``[@click=app.quit]`` (Rich/Textual markup: a closing tag with no opening one raised
  MarkupError and crashed the TUI; ``@click`` would run an action); ``[/x]`` typed into the
  "type the host name" dialog;
- a crash: journaled as ``session_closed reason=crashed`` (not ``quit``), exit code 70, the
  session resumable;
- escape sequences in remote output (the real sshd fleet): ``ESC c`` (reset the terminal),
  ``ESC k NAME ESC \\`` (rename the tmux window), ``ESC # 8`` (fill the screen with E), OSC 52
  (write the clipboard) must not reach the terminal through the output pane; 3 MB of random
  bytes neither;
- Trojan Source: bidi controls in a command are shown in the step view.

"Reaches the terminal" is checked on what Textual draws: every segment of the rendered
screen (:func:`drawn`) holds printable text only.
"""

from __future__ import annotations

import asyncio
import random
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.segment import Segment

from runbook.sanitize.terminal_text import UNSAFE_CATEGORIES, visible
from sessions.journal import events as ev
from sessions.journal.journal import read_records
from sessions.store import list_sessions
from tests.tui.conftest import frozen, make_app, operator_env, screen_text, session_root, wait_for, workdir  # noqa: F401
from tests.tui.test_actions import log_text, modal, run_finished, select, type_text
from tui.widgets.modals import TypeHostModal

MARKUP_BOOK = """# Markup [bold]Book[/bold]

## Phase 0: Grow [/var] (1 hour)

**Risk Level**: LOW

### Task MARK-001: Resize [/var] and [@click=app.quit]click[/]

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Prerequisites

- [ ] Disk [/dev/sdb] attached [red]now[/red]

#### Steps

1. **Extend [/var] [@click=app.quit]x[/]** ([bold]hint)

<!-- runbook: target=local -->
```bash
echo "[/var] [bold]not bold[/bold]"
```

Expected: `[/var]`

#### Acceptance Criteria

- [ ] Grown [/x]

#### Rollback Procedure

N/A
"""


PLAIN_BOOK = """# Plain Book

## Phase 0: Checks (1 hour)

**Risk Level**: LOW

### Task PLAIN-001: Look at a host

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Print something**

<!-- runbook: target=local -->
```bash
COMMAND
```

#### Rollback Procedure

N/A
"""


def drawn(app: Any) -> str:
    """The text of every segment Textual would write for the current screen (control
    segments, Textual's own cursor moves, excepted)."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, force_terminal=True, color_system="truecolor", legacy_windows=False)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return "".join(s.text for s in console.render(update) if isinstance(s, Segment) and not s.control)


def unsafe(text: str) -> list[str]:
    return sorted({repr(c) for c in text if unicodedata.category(c) in UNSAFE_CATEGORIES and c not in "\n\t"})


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestMarkupIsText:
    async def test_markup_in_titles_steps_and_checkboxes_shows_literally(self, make_app, tmp_path):
        """The phase title ``Grow [/var]`` crashed the TUI (MarkupError) before it drew anything."""
        app = make_app(write(tmp_path, "markup.md", MARKUP_BOOK))
        async with app.run_test(size=(140, 45)) as pilot:
            await select(pilot, "MARK-001")
            text = screen_text(app)
            for literal in ("Grow [/var]", "Resize [/var] and [@click=app.quit]click[/]",
                            "Extend [/var] [@click=app.quit]x[/]", "Disk [/dev/sdb] attached [red]now[/red]",
                            'echo "[/var] [bold]not bold[/bold]"'):
                assert literal in text, f"{literal!r} not shown literally"
            await pilot.press("ctrl+p")
            await type_text(pilot, "Resize")
            await wait_for(pilot, lambda: "Jump to MARK-001: Resize [/var]" in screen_text(app),
                           what="the palette lists the task literally")
            await pilot.press("escape")
        assert app.return_code in (0, None)

    async def test_markup_typed_into_the_type_host_dialog(self, make_app):
        """``[/x]`` typed as the host name raised MarkupError while showing "'[/x]' is not ..."."""
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await select(pilot, "MINI-001")
            dialog = TypeHostModal("rm -rf /var/[/x] on [bold]web-1", "web-[1]")
            app.push_screen(dialog)
            await modal(pilot, TypeHostModal)
            await type_text(pilot, "[/x]")
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is dialog
            assert "✘ '[/x]' is not 'web-[1]'" in screen_text(app)
            assert "rm -rf /var/[/x] on [bold]web-1" in screen_text(app)
        assert app.return_code in (0, None)


class TestCrash:
    async def test_a_crash_is_journaled_as_a_crash_exits_non_zero_and_resumes(self, tmp_path, monkeypatch):
        """A crash looked like a quit: exit 0 and ``session_closed reason=quit``.  The crash is
        injected here (the widget drawing the tree raises); run_app is what ``runbook run`` runs."""
        from runbook.parse.parser import parse_file
        from tests.tui.conftest import MINI
        from tui.app import RunbookApp
        from tui.commands import resumable_session, run_app
        from tui.launch import Launch
        from tui.widgets.tree import TaskTree

        original = RunbookApp.run_async
        monkeypatch.setattr(RunbookApp, "run_async", lambda self, **kw: original(self, headless=True, **kw))

        def boom(self: Any, *args: Any) -> None:
            raise RuntimeError("injected crash")

        monkeypatch.setattr(TaskTree, "refresh_state", boom)
        monkeypatch.chdir(tmp_path)
        root = tmp_path / "sessions"
        launch = Launch(runbook=parse_file(str(MINI)), root=root, mode="new")
        code = await asyncio.wait_for(run_app(launch), 60)
        assert code == 70
        journal = next(root.glob("*/journal.jsonl"))
        last = list(read_records(journal))[-1].event
        assert isinstance(last, ev.SessionClosed) and last.reason == "crashed", last
        assert [s.status for s in list_sessions(root)] == ["paused"]
        assert resumable_session(root, str(MINI)) is not None


ATTACK = (r"printf 'reset \033c tmux \033kpwned\033\\ fill \033#8 clip \033]52;c;cm0gLXJmIH4K\007 "
          r"title \033]0;pwned\007 c1 \302\2332J bidi \342\200\256 end\n'")


@pytest.mark.sshd
class TestRemoteOutputInThePane:
    async def test_escape_sequences_from_a_host_are_shown_not_obeyed(self, make_app, ssh_fleet, tmp_path):
        book = PLAIN_BOOK.replace("COMMAND", ATTACK).replace("target=local", "target=node-1")
        inv = ssh_fleet.write_inventory(tmp_path / "inventory.yaml", {"web": ["node-1"]})
        app = make_app(write(tmp_path, "remote.md", book), inventory_path=str(inv), known_hosts=str(ssh_fleet.known_hosts))
        async with app.run_test(size=(160, 45)) as pilot:
            screen = await select(pilot, "PLAIN-001")
            await pilot.press("r")
            await run_finished(pilot, app, "PLAIN-001", 1)
            await wait_for(pilot, lambda: "end" in log_text(screen, "node-1"), what="the output shown")
            shown = log_text(screen, "node-1")
            assert "reset \\x1bc tmux \\x1bkpwned\\x1b\\ fill \\x1b#8 clip \\x1b]52;c;cm0gLXJmIH4K\\x07" in shown
            assert "title \\x1b]0;pwned\\x07 c1  bidi \\u202e end" in shown  # C1 CSI dropped like ESC [
            assert unsafe(shown) == []
            assert unsafe(drawn(app)) == []

    async def test_three_megabytes_of_random_bytes(self, make_app):
        """Random bytes (every control character, broken UTF-8, escape sequences by chance)."""
        app = make_app()
        data = random.Random(11).randbytes(3 * 1024 * 1024)
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            session = app.session
            session.record(ev.StepStarted("run-rand", "MINI-001", 1, ("local",), "cat /dev/urandom"))
            for i in range(0, len(data), 64 * 1024):
                session.record_output(ev.OutputChunk.from_bytes("run-rand", "local", "stdout", data[i:i + 64 * 1024]))
            session.record(ev.HostFinished("run-rand", "local", "succeeded", 0))
            session.record(ev.StepFinished("run-rand", "succeeded"))
            await wait_for(pilot, lambda: "── succeeded" in log_text(screen), timeout=60, what="the output flushed")
            await pilot.pause()
            assert unsafe(log_text(screen)) == []
            assert unsafe(drawn(app)) == []
            lines = screen_text(app).split("\n")
            wide = [line for line in lines if cell_len(line) != 100]
            assert len(lines) == 32 and wide == [], wide  # the layout holds


class TestHostNames:
    async def test_hosts_whose_names_differ_only_in_punctuation_get_their_own_tabs(self, make_app):
        """"web 1" and "web_1" mapped to the same widget id: DuplicateIds crashed the TUI."""
        app = make_app()
        hosts = ("web 1", "web_1", "web[/x]1", "web\x1b]0;t\x071")
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            session = app.session
            session.record(ev.StepStarted("run-names", "MINI-001", 1, hosts, "hostname"))
            for host in hosts:
                session.record_output(ev.OutputChunk("run-names", host, "stdout", f"I am {host}\n"))
                session.record(ev.HostFinished("run-names", host, "succeeded", 0))
            session.record(ev.StepFinished("run-names", "succeeded"))
            await wait_for(pilot, lambda: len(screen.output.hosts) == len(hosts), what="a tab per host")
            await pilot.pause(0.2)
            assert all(f"I am {visible(h)}" in log_text(screen, h) for h in hosts)
            assert unsafe(drawn(app)) == []


class TestTrojanSourceInTheStepView:
    async def test_bidi_controls_in_a_command_are_shown(self, make_app, tmp_path):
        trojan = 'echo "checking access\u202e\u2066" ; touch ./pwned ; echo "\u2069\u2066"'
        app = make_app(write(tmp_path, "trojan.md", PLAIN_BOOK.replace("COMMAND", trojan)))
        async with app.run_test(size=(140, 45)) as pilot:
            await select(pilot, "PLAIN-001")
            assert 'echo "checking access\\u202e\\u2066" ; touch ./pwned ; echo "\\u2069\\u2066"' in screen_text(app)
            assert unsafe(drawn(app)) == []
