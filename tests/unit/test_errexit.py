"""Shell semantics: every block runs with ``set -e -o pipefail`` and a failure names its line.

Through the real shells (bash, and dash as the ``sh`` of hosts without bash) and
the engine over the real LocalExecutor with pipes, a PTY and detached.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from runbook.model import Block, Phase, Risk, Runbook, Step, TargetSpec, Task
from runbook.parse.parser import parse
from runbook.shell import errexit
from sessions.engine.engine import Engine
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.journal import read_records, verify
from tests.tools import require

NONCE = "0123456789abcdef"

# (block, succeeds, output, failing line (1-based) or None)
CASES = {
    "middle": ("echo first; false; echo after", False, "first\n", 1),
    "second-line": ("echo first\nfalse\necho after", False, "first\n", 2),
    "pipe": ("echo first\nfalse | cat\necho after", False, "first\n", 2),
    "or-true": ("false || true\necho after", True, "after\n", None),
    "if": ("if false; then echo no; fi\necho after", True, "after\n", None),
    "and-list": ("false && echo no\necho after", True, "after\n", None),
    "loop": ("for i in 1 2; do\n  echo $i\n  test $i = 1\ndone\necho after", False, "1\n2\n", 3),
    "function": ("f() {\n  echo in f\n  false\n}\nf\necho after", False, "in f\n", 3),
}


def shell_run(shell: str, text: str, nonce: str = NONCE) -> tuple[int, str, bytes]:
    body = errexit.with_nonce(text, nonce)
    p = subprocess.run([shell, "-c", body], capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr


def stop_of(stderr: bytes, nonce: str = NONCE) -> tuple[errexit.Stop | None, bytes]:
    f = errexit.FrameFilter(nonce)
    rest = f.feed("stderr", stderr) + f.flush("stderr")
    return f.take(), rest


@pytest.mark.parametrize("name", sorted(CASES))
def test_bash_runs_every_block_with_errexit_and_pipefail(name):
    code, ok, out, line = CASES[name]
    rc, stdout, stderr = shell_run("bash", errexit.script([(code, True)]))
    assert (rc == 0) == ok, (rc, stdout, stderr)
    assert stdout == out
    stop, rest = stop_of(stderr)
    assert rest == b""  # the frames are all that was on stderr
    if ok:
        assert stop is None
    else:
        assert stop == errexit.Stop(0, line, rc)


def test_errexit_off_runs_as_written_and_its_last_status_counts():
    rc, out, err = shell_run("bash", errexit.script([("echo first; false; echo after", False)]))
    assert (rc, out) == (0, "first\nafter\n") and stop_of(err)[0] is None
    rc, out, err = shell_run("bash", errexit.script([("false | cat; echo a", False), ("false\necho b", False)]))
    assert (rc, out) == (0, "a\nb\n")
    rc, out, err = shell_run("bash", errexit.script([("echo a; false", False), ("echo never", True)]))
    assert (rc, out) == (1, "a\n") and stop_of(err)[0] == errexit.Stop(0, None, 1)


def test_each_block_has_its_own_setting_and_lines_count_from_its_start():
    blocks = [("echo one\nfalse || echo tolerated", True), ("false\necho off-goes-on", False),
              ("echo three\n\necho x | grep -q y\necho never", True)]
    rc, out, err = shell_run("bash", errexit.script(blocks))
    assert (rc, out) == (1, "one\ntolerated\noff-goes-on\nthree\n")
    assert stop_of(err)[0] == errexit.Stop(2, 3, 1)


def test_exit_in_a_block_names_the_block_and_keeps_its_status():
    rc, _out, err = shell_run("bash", errexit.script([("echo ok", True), ("echo b; exit 7", True)]))
    assert rc == 7 and stop_of(err)[0] == errexit.Stop(1, None, 7)


def test_plain_sh_gets_set_e_and_the_failing_block():
    require("dash")  # Debian's /bin/sh: a missing one fails (the README's test command installs it)
    rc, out, err = shell_run("dash", errexit.script([("echo first; false; echo after", True)]))
    assert (rc, out) == (1, "first\n")
    stop, rest = stop_of(err)
    assert stop == errexit.Stop(0, None, 1) and rest == b""
    rc, out, _ = shell_run("dash", errexit.script([("false || true; if false; then :; fi; echo ok", True)]))
    assert (rc, out) == (0, "ok\n")
    rc, out, _ = shell_run("dash", errexit.script([("false; echo still", False)]))
    assert (rc, out) == (0, "still\n")


def test_without_a_nonce_nothing_is_written():
    p = subprocess.run(["bash", "-c", errexit.script([("false", True)])], capture_output=True, timeout=30)
    assert p.returncode == 1 and p.stderr == b""


def test_the_filter_takes_frames_split_anywhere_and_passes_foreign_ones_on():
    frame = f"\x1eRUNBOOK-ERR:{NONCE}:0:2:1\x1e".encode()
    foreign = b"\x1eRUNBOOK-ERR:ffffffffffffffff:0:9:9\x1e"
    data = b"a\x1eb" + foreign + b"out" + frame + b"\x1e"
    for cut in range(len(data) + 1):
        f = errexit.FrameFilter(NONCE)
        got = f.feed("pty", data[:cut]) + f.feed("pty", data[cut:])
        assert f.pending("pty") <= len(errexit.MARK)
        got += f.flush("pty")
        assert got == b"a\x1eb" + foreign + b"out\x1e", cut
        assert f.take() == errexit.Stop(0, 2, 1)
        assert f.take() is None


def test_a_lone_mark_without_end_is_output():
    f = errexit.FrameFilter(NONCE)
    junk = b"\x1eRUNBOOK-" + b"x" * 400
    assert f.feed("stdout", junk[:10]) + f.feed("stdout", junk[10:]) + f.flush("stdout") == junk


# --- the engine: pipes, PTY, detached ------------------------------------------------------


def book_of(tmp_path: Path, blocks: list[tuple[str, bool]], spec: TargetSpec | None) -> Runbook:
    made, line = [], 10
    for code, on in blocks:
        made.append(Block("command", "bash", textwrap.dedent(code).strip() + "\n", line,
                          end_line=line + code.count("\n") + 2, annotations={} if on else {"errexit": "off"}))
        line += code.count("\n") + 4
    task = Task("T-1", "t", 5, phase="0", risk=Risk.LOW, steps=(Step(1, "s", 9, blocks=tuple(made), target=spec),))
    path = tmp_path / "book.md"
    path.write_text("# book\n")
    return Runbook("Book", str(path), "a" * 64, phases=(Phase("0", "P", 1, tasks=(task,)),))


# on this machine, deliberately (there is no implicit local target: a step nobody targeted does not run)
MODES = {"pipes": TargetSpec("local"), "pty": TargetSpec("local", pty=True), "detached": TargetSpec("local", detached=True)}


async def run_blocks(tmp_path: Path, blocks: list[tuple[str, bool]], mode: str):
    book = book_of(tmp_path, blocks, MODES[mode])
    session = Session.create(book, root=tmp_path / "sessions")
    engine = Engine(session, None)
    try:
        outcome = await engine.run_step("T-1", 1)
    finally:
        await engine.close()
        session.close()
    events = [r.event for r in read_records(session.journal.path)]
    assert verify(session.journal.path).ok
    out = b"".join(e.raw for e in events if isinstance(e, ev.OutputChunk)).decode().replace("\r\n", "\n")
    [fin] = [e for e in events if isinstance(e, ev.HostFinished)]
    return outcome, out, fin, book


@pytest.fixture(params=sorted(MODES))
def mode(request, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # detached spools live under ~/.runbook
    return request.param


@pytest.mark.parametrize("name", ["second-line", "pipe", "or-true", "if", "function"])
async def test_engine_fails_a_step_when_a_command_fails(tmp_path, mode, name):
    code, ok, expected_out, line = CASES[name]
    outcome, out, fin, book = await run_blocks(tmp_path, [(code, True)], mode)
    assert outcome == ("succeeded" if ok else "failed"), (out, fin)
    assert out == expected_out  # and no frame in the journal
    if ok:
        assert fin.failed_line is None and fin.error == ""
        return
    block = book.tasks[0].steps[0].blocks[0]
    src = block.code_line(line - 1)
    text = code.splitlines()[line - 1].strip()
    assert fin.exit_status == 1
    assert (fin.failed_line, fin.failed_block_line, fin.failed_command) == (src, line, text)
    assert fin.error == f"failed at line {line} of the block ({book.path}:{src}): `{text}`, exit 1"


async def test_engine_errexit_off_runs_as_written(tmp_path, mode):
    outcome, out, _fin, _ = await run_blocks(tmp_path, [("echo first; false; echo after", False)], mode)
    assert (outcome, out) == ("succeeded", "first\nafter\n")


async def test_engine_names_the_line_of_the_second_block(tmp_path, mode):
    blocks = [("echo one", True), ("echo two\nfalse | cat\necho never", True)]
    outcome, out, fin, book = await run_blocks(tmp_path, blocks, mode)
    assert (outcome, out) == ("failed", "one\ntwo\n")
    second = book.tasks[0].steps[0].blocks[1]
    assert fin.failed_line == second.code_line(1) and fin.failed_block_line == 2
    assert f"({book.path}:{second.code_line(1)}): `false | cat`, exit 1" in fin.error


def test_parser_reads_errexit_off_from_an_annotation_and_fence_attributes():
    text = textwrap.dedent("""\
        # Book

        ## Phase 0: P

        ### Task T-1: t

        #### Steps

        1. annotated
        <!-- runbook: errexit=off -->
        ```bash
        false
        ```

        2. fence
        ```bash {errexit=off}
        false
        ```

        3. plain
        ```bash
        false
        ```

        4. bad value
        <!-- runbook: errexit=sometimes -->
        ```bash
        false
        ```
        """)
    rb = parse(text, "book.md")
    steps = rb.tasks[0].steps
    assert [errexit.errexit_on(s.blocks[0].annotations) for s in steps] == [False, False, True, True]
    assert any("errexit must be on or off" in d.message and d.line == 26 for d in rb.diagnostics)
