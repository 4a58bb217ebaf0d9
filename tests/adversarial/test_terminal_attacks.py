"""Terminal attacks through the CLI: escape sequences and Trojan Source in documents, file
names, inventories and remote output never reach the operator's terminal as themselves.

The attacker writes a runbook (or a host's output) holding:

- OSC 52 (``ESC ] 52 ; c ; BASE64 BEL``): writes the operator's clipboard, so the next paste
  runs the attacker's command;
- OSC 0 (``ESC ] 0 ; TEXT BEL``): sets the window title;
- DCS (``ESC P ... ESC \\``): device control strings (terminal queries, sixel);
- ``ESC [ 2 J``: clears the screen, hiding what came before;
- ``ESC c`` (reset), ``ESC k TITLE ESC \\`` (tmux/screen window name), ``ESC # 8`` (fill the
  screen with ``E``), and C1 CSI U+009B (a one-character ``ESC [``);
- a bidi override (U+202E) and isolates (U+2066, U+2069) that make a command read
  differently from what runs (Trojan Source).

Every test runs the real ``runbook`` in a subprocess and checks the raw bytes it wrote:
no ESC, no BEL, no C1 control, no bidi control; the attack is *shown*, as ``\\x1b]52;``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.adversarial.cli import run_cli

OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"  # clipboard := "rm -rf ~"
OSC0 = "\x1b]0;pwned\x07"
DCS = "\x1bP+q544e\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\u009b2J"
RLO, LRI, PDI = "\u202e", "\u2066", "\u2069"

# What may never be in anything the CLI prints: ESC, BEL, C1 controls, bidi controls
# (encoded as UTF-8 bytes), and zero-width characters.
FORBIDDEN = re.compile(rb"[\x1b\x07\x08\x0b\x0c\x0d]|\xc2[\x80-\x9f]|\xe2\x80[\x8b-\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def assert_clean(data: bytes, what: str) -> None:
    m = FORBIDDEN.search(data)
    assert m is None, f"{what} printed {m.group(0)!r} raw at byte {m.start()}: {data[max(0, m.start() - 60):m.start() + 40]!r}"


def book(title_attack: str = OSC52, command: str = "echo hello") -> str:
    return f"""# Evil Book {OSC0}

## Phase 0: Grow [/var] {title_attack} (1 hour)

**Purpose**: p {DCS}
**Risk Level**: LOW

### Task EVIL-001: Task {title_attack} [bold]x[/bold]

- **Category**: Test {CLEAR}
- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Prerequisites

- [ ] box {DCS} {C1_CSI}

#### Steps

1. **Step {title_attack}** ({OSC0})

<!-- runbook: target=local -->
```bash
{command}
```

Expected: `hello` {CLEAR}

#### Acceptance Criteria

- [ ] done {OSC52}

#### Rollback Procedure

N/A
"""


@pytest.fixture
def evil(tmp_path: Path) -> Path:
    path = tmp_path / "evil.md"
    path.write_text(book(), encoding="utf-8")
    return path


class TestEscapesInDocuments:
    def test_show_prints_osc52_in_titles_visibly(self, evil):
        r = run_cli(["show", evil])
        assert r.returncode == 0, r.stderr
        assert_clean(r.stdout + r.stderr, "runbook show")
        out = r.stdout.decode()
        assert "Task \\x1b]52;c;cm0gLXJmIH4K\\x07 [bold]x[/bold]" in out  # shown, not dropped
        assert "Evil Book \\x1b]0;pwned\\x07" in out

    def test_show_json_is_still_the_same_json(self, evil):
        r = run_cli(["show", evil, "--format", "json"])
        assert r.returncode == 0, r.stderr
        assert_clean(r.stdout, "runbook show --format json")
        data = json.loads(r.stdout)
        assert data["title"] == f"Evil Book {OSC0}"

    def test_plan_prints_titles_visibly(self, evil):
        r = run_cli(["plan", evil])
        assert r.returncode == 0, r.stderr
        assert_clean(r.stdout + r.stderr, "runbook plan")
        assert "\\x1b]52;c;" in r.stdout.decode()

    def test_lint_with_an_escape_in_the_file_name(self, tmp_path):
        name = tmp_path / f"notes{OSC0}{CLEAR}.md"
        name.write_text(book(command=f"echo hello {OSC52}"), encoding="utf-8")
        for fmt in ("text", "json"):
            r = run_cli(["lint", name, "--format", fmt])
            assert_clean(r.stdout + r.stderr, f"runbook lint --format {fmt}")
        r = run_cli(["lint", name])
        out = r.stdout.decode()
        assert "notes\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H.md:" in out
        assert "invisible-character" not in out or "U+001B" in out
        missing = run_cli(["lint", tmp_path / f"gone{OSC52}.md"])
        assert missing.returncode == 2
        assert_clean(missing.stderr, "runbook lint (missing file)")
        assert b"gone\\x1b]52;c;" in missing.stderr

    def test_exec_dry_run_prints_the_step_visibly(self, evil):
        r = run_cli(["exec", evil, "--task", "EVIL-001", "--dry-run"])
        assert r.returncode == 0, r.stderr
        assert_clean(r.stdout + r.stderr, "runbook exec --dry-run")
        assert "Step \\x1b]52;c;" in r.stdout.decode()


TROJAN = f'echo "checking access{RLO}{LRI}" ; touch ./pwned ; echo "{PDI}{LRI}"'


@pytest.fixture
def trojan(tmp_path: Path) -> Path:
    path = tmp_path / "trojan.md"
    path.write_text(book(title_attack="ok", command=TROJAN).replace(OSC0, "").replace(DCS, "").replace(CLEAR, "")
                    .replace(C1_CSI, "").replace(OSC52, ""), encoding="utf-8")
    return path


class TestTrojanSource:
    """A command whose bidi controls make ``touch ./pwned`` read as part of a quoted string."""

    def test_lint_reports_the_bidi_controls_as_an_error_at_their_line(self, trojan):
        r = run_cli(["lint", trojan])
        assert r.returncode == 1, r.stdout
        assert_clean(r.stdout + r.stderr, "runbook lint")
        line = trojan.read_text().splitlines().index(TROJAN) + 1
        assert re.search(rf"trojan\.md:{line}: error: command in step 1 of EVIL-001 holds bidi control "
                         r"U\+202E RIGHT-TO-LEFT OVERRIDE at column \d+, bidi control U\+2066 LEFT-TO-RIGHT ISOLATE",
                         r.stdout.decode()), r.stdout

    def test_show_and_dry_run_show_the_controls(self, trojan):
        for args in (["show", trojan], ["exec", trojan, "--task", "EVIL-001", "--dry-run"]):
            r = run_cli(args)
            assert r.returncode == 0, r.stderr
            assert_clean(r.stdout + r.stderr, " ".join(map(str, args)))
            if args[0] == "exec":
                assert '| echo "checking access\\u202e\\u2066" ; touch ./pwned ; echo "\\u2069\\u2066"' in r.stdout.decode()

    def test_journal_show_shows_the_controls(self, trojan, tmp_path):
        sessions = tmp_path / "sessions"
        r = run_cli(["exec", trojan, "--task", "EVIL-001", "--session-dir", sessions, "--yes"], cwd=tmp_path)
        assert (tmp_path / "pwned").exists(), r.stderr  # what ran is the hidden command
        assert_clean(r.stdout + r.stderr, "runbook exec")
        journal = next(sessions.glob("*/journal.jsonl"))
        shown = run_cli(["journal", "show", journal])
        assert shown.returncode == 0, shown.stderr
        assert_clean(shown.stdout + shown.stderr, "runbook journal show")
        assert 'echo "checking access\\u202e\\u2066" ; touch ./pwned' in shown.stdout.decode()
        as_json = run_cli(["journal", "show", journal, "--format", "json"])
        assert_clean(as_json.stdout, "runbook journal show --format json")
        commands = [json.loads(line)["event"].get("command") for line in as_json.stdout.splitlines()]
        assert TROJAN + "\n" in commands or TROJAN in commands


ATTACK_OUTPUT = (r"printf 'clip \033]52;c;cm0gLXJmIH4K\007 title \033]0;pwned\007 reset \033c "
                 r"tmux \033kpwned\033\\ fill \033#8 clear \033[2J c1 \302\2332J dcs \033P+q544e\033\\ end\n'")


@pytest.mark.sshd
class TestRemoteOutput:
    def test_remote_escape_sequences_are_printed_visibly(self, ssh_fleet, tmp_path):
        """``exec`` over the real sshd fleet: a host prints every attack; the operator's terminal
        gets them as text, in exec's output, ``journal show`` and ``sessions``."""
        path = tmp_path / "remote.md"
        path.write_text(book(title_attack="ok", command=ATTACK_OUTPUT).replace("target=local", "target=node-1"),
                        encoding="utf-8")
        inv = ssh_fleet.write_inventory(tmp_path / "inventory.yaml", {"web": ["node-1"]})
        sessions = tmp_path / "sessions"
        r = run_cli(["exec", path, "--task", "EVIL-001", "--inventory", inv, "--known-hosts", ssh_fleet.known_hosts,
                     "--session-dir", sessions, "--yes"])
        assert_clean(r.stdout + r.stderr, "runbook exec (remote output)")
        out = r.stdout.decode()
        assert "[node-1] clip \\x1b]52;c;cm0gLXJmIH4K\\x07 title \\x1b]0;pwned\\x07 reset \\x1bc tmux \\x1bkpwned" in out
        assert "fill \\x1b#8 clear \\x1b[2J c1 \\u009b2J dcs \\x1bP+q544e\\x1b\\ end" in out
        journal = next(sessions.glob("*/journal.jsonl"))
        shown = run_cli(["journal", "show", journal])
        assert_clean(shown.stdout + shown.stderr, "runbook journal show (remote output)")
        assert "clip \\x1b]52;c;" in shown.stdout.decode()
        listed = run_cli(["sessions", "--session-dir", sessions])
        assert listed.returncode == 0, listed.stderr
        assert_clean(listed.stdout + listed.stderr, "runbook sessions")
        assert "Evil Book \\x1b]0;pwned" in listed.stdout.decode()
        as_json = run_cli(["sessions", "--session-dir", sessions, "--format", "json"])
        assert_clean(as_json.stdout, "runbook sessions --format json")
        assert json.loads(as_json.stdout)[0]["runbook_title"] == f"Evil Book {OSC0}"
