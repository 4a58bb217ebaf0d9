"""Non-regular and oversized inputs: /dev/zero, a FIFO, a huge file, for every file runbook reads.

Attack: hand the tool a file that never ends (``/dev/zero``: read until MemoryError) or
never starts (a FIFO nobody writes: the read hangs the operator's terminal), or a file
far larger than any runbook.  Each is refused at once with exit 2 and one line naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.adversarial.session_kit import assert_clean_refusal, book, run, session, sessions  # noqa: F401 (fixtures)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.md"
    os.mkfifo(path)
    return path


def _commands(bad: Path, book: Path, sessions: Path) -> list[tuple[list, int]]:
    """Every command line that names an input file, with ``bad`` in that place, and its exit
    code (a probe whose kubeconfig cannot be used is an ERROR verdict: exit 1)."""
    return [
        (["lint", bad], 2),
        (["show", bad], 2),
        (["plan", bad], 2),
        (["probe", bad], 2),
        (["show", book, "--inventory", bad], 2),
        (["exec", book, "--task", "ADV-001", "--inventory", bad, "--session-dir", sessions], 2),
        (["exec", book, "--task", "ADV-001", "--var-file", bad, "--session-dir", sessions], 2),
        (["probe", book, "--kubeconfig", bad], 1),
        (["journal", "verify", bad], 2),
        (["journal", "show", bad], 2),
        (["export", bad, "--out", "-"], 2),
        (["verify", bad, "--allowed-signers", book], 2),
    ]


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_never_ending_and_never_starting_inputs_are_refused(kind, fifo, book, tmp_path):
    bad = Path("/dev/zero") if kind == "dev-zero" else fifo
    for args, code in _commands(bad, book, tmp_path / "sessions"):
        r = run(args, timeout=30, env={"KUBECONFIG": ""})
        assert r.returncode == code, (args, r.returncode, r.stderr[-500:])
        out = r.stderr + r.stdout
        assert "Traceback" not in out, (args, out[-2000:])
        what = "a character device" if kind == "dev-zero" else "a FIFO"
        assert f"{bad}: is {what}" in out, (args, out)
    assert not (tmp_path / "sessions").exists()


def test_a_fifo_as_bindings_file_is_refused(book, tmp_path):
    os.mkfifo(tmp_path / "book.targets.yaml")  # NAME.targets.yaml beside the runbook
    r = run(["lint", book], timeout=30)
    assert_clean_refusal(r)
    assert "book.targets.yaml: is a FIFO" in r.stderr


def test_a_signing_key_that_is_a_fifo_is_refused(session, tmp_path):
    key = tmp_path / "key"
    os.mkfifo(key)
    r = run(["export", session, "--out", tmp_path / "r.md", "--sign", key], timeout=30)
    assert_clean_refusal(r)
    assert "is a FIFO" in r.stderr and not (tmp_path / "r.md").exists()


def test_inputs_over_the_size_limit_are_refused_and_the_limit_is_configurable(book, tmp_path):
    big = tmp_path / "big.md"
    big.write_bytes(book.read_bytes() + b"\n" + b"filler line\n" * 200_000)  # ~2.4 MB
    inventory = tmp_path / "inv.yaml"
    inventory.write_text("hosts:\n" + "".join(f"  h{i}:\n    ansible_host: 127.0.0.1\n" for i in range(50_000)))
    small = {"RUNBOOK_MAX_INPUT_MB": "1"}
    for args in (["lint", big], ["show", big], ["show", book, "--inventory", inventory]):
        r = run(args, env=small)
        assert_clean_refusal(r)
        assert "over the 1 MB input limit" in r.stderr and "RUNBOOK_MAX_INPUT_MB" in r.stderr, r.stderr
    assert run(["lint", big], env={"RUNBOOK_MAX_INPUT_MB": "8"}).returncode in (0, 1)
    r = run(["lint", book], env={"RUNBOOK_MAX_INPUT_MB": "lots"})
    assert_clean_refusal(r)


def test_a_journal_record_over_the_limit_is_refused_not_read_whole(session, tmp_path):
    journal = session / "journal.jsonl"
    with open(journal, "ab") as fh:  # one 3 MB 'record' with no newline inside
        fh.write(b'{"event":' + b"x" * 3_000_000 + b"}\n")
    r = run(["journal", "verify", journal], env={"RUNBOOK_MAX_INPUT_MB": "1"})
    assert_clean_refusal(r)
    assert "over the 1 MB input limit" in r.stderr
