"""The journal under attack: a second writer let in by a deleted lock, a journal replaced or
emptied under a session, a lock left on another host.

Each attack is run against the real CLI: ``runbook exec --session`` processes, one of them
live (blocked in a step until the test releases it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.adversarial.session_kit import assert_clean_refusal, book, events, popen, run, session, sessions  # noqa: F401


def _live_writer(book: Path, session: Path) -> subprocess.Popen:
    """``runbook exec --session`` blocked inside step ADV-002.1 (until ``release`` exists)."""
    proc = popen(["exec", book, "--task", "ADV-002", "--session", session])
    deadline = time.monotonic() + 60
    line = ""
    while "waiting" not in line:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the live writer never started its step"
    return proc


def _finish(proc: subprocess.Popen, book: Path) -> tuple[int, str, str]:
    (book.parent / "release").touch()
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_deleting_the_lock_of_a_live_writer_does_not_admit_a_second_writer(book, session):
    journal = session / "journal.jsonl"
    first = _live_writer(book, session)
    try:
        (session / "lock").unlink()  # the attack: the lock file is gone, the writer is live
        before = journal.read_bytes()
        second = run(["exec", book, "--task", "ADV-001", "--session", session])
        assert second.returncode != 0, second.stdout + second.stderr
        assert "Traceback" not in second.stderr
        assert f"open for writing by pid {first.pid}" in second.stderr, second.stderr
        assert journal.read_bytes() == before  # the second process wrote nothing
        listed = json.loads(run(["sessions", "--session-dir", session.parent, "--format", "json"]).stdout)
        assert listed[0]["status"] == "active" and f"pid {first.pid}" in listed[0]["holder"], listed
    finally:
        code, out, err = _finish(first, book)
    assert code == 0, err
    assert "released" in out
    kinds = [e["type"] for e in events(journal)]
    assert "step_outcome_unknown" not in kinds  # the live writer's step was never called unknown
    assert kinds.count("session_opened") == 2  # created, then resumed once by the live writer only
    assert run(["journal", "verify", session]).returncode == 0


def test_a_journal_replaced_under_a_live_writer_is_not_written_to(book, session, tmp_path):
    journal = session / "journal.jsonl"
    first = _live_writer(book, session)
    try:
        # the attack: a copy (a valid chain) takes the journal's name; the writer's file is unlinked
        shutil.copy2(journal, tmp_path / "copy.jsonl")
        os.replace(tmp_path / "copy.jsonl", journal)
        replaced = journal.read_bytes()
    finally:
        code, out, err = _finish(first, book)
    assert code != 0, (out, err)
    assert "the journal changed under this process" in err and "removed, renamed or replaced" in err, err
    assert "Traceback" not in err
    assert journal.read_bytes() == replaced  # nothing appended to the impostor


def test_an_appended_record_under_a_live_writer_stops_it(book, session):
    journal = session / "journal.jsonl"
    first = _live_writer(book, session)
    try:
        with open(journal, "ab") as fh:  # the attack: someone else appends while the writer is live
            fh.write(b'{"forged":true}\n')
    finally:
        code, out, err = _finish(first, book)
    assert code != 0, (out, err)
    assert "the journal changed under this process" in err and "another writer appended" in err, err
    assert journal.read_bytes().endswith(b'{"forged":true}\n')  # nothing written after the foreign bytes


@pytest.mark.parametrize("content", [b"", b'{"event":{"type":"sess'], ids=["zero-length", "torn-first-line"])
def test_a_journal_without_a_valid_first_record_is_refused_for_writing(book, session, content):
    journal = session / "journal.jsonl"
    journal.write_bytes(content)  # the attack: truncate the history away
    r = run(["exec", book, "--task", "ADV-001", "--session", session])
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "refusing to write" in r.stderr, r.stderr
    assert journal.read_bytes() == content  # no new chain replaced the history
    assert "hello from adversarial" not in r.stdout  # and nothing ran


def test_a_lock_held_on_another_host_says_how_to_check_before_removing_it(book, session):
    lock = session / "lock"
    lock.write_text(json.dumps({"pid": 4242, "host": "jump-2.example", "since": "2026-12-01T01:00:00Z"}))
    before = (session / "journal.jsonl").read_bytes()
    r = run(["exec", book, "--task", "ADV-001", "--session", session])
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "pid 4242 on jump-2.example" in r.stderr
    assert "ssh jump-2.example ps -p 4242" in r.stderr and "only then remove" in r.stderr, r.stderr
    assert "delete" not in r.stderr
    assert (session / "journal.jsonl").read_bytes() == before


# --- records that chain but do not decode -----------------------------------------------------


def rechain(journal: Path, seq: int, change) -> None:
    """Apply ``change(event)`` to record ``seq`` and recompute every hash from there on: the
    chain holds, as after an edit by someone who knows the format (the chain is not keyed)."""
    from sessions.journal.journal import GENESIS, canonical, record_hash

    records = [json.loads(line) for line in journal.read_bytes().splitlines()]
    change(records[seq - 1]["event"])
    prev = GENESIS
    out = []
    for rec in records:
        rec["prev"] = prev
        rec["h"] = record_hash(rec["seq"], rec["ts"], prev, rec["event"])
        out.append(canonical(rec) + b"\n")
        prev = rec["h"]
    journal.write_bytes(b"".join(out))


def _seq_of(journal: Path, kind: str) -> int:
    return next(i for i, e in enumerate(events(journal), start=1) if e["type"] == kind)


@pytest.mark.parametrize(("kind", "field", "value", "says"), [
    ("host_finished", "duration_s", "fast", "field 'duration_s' must be a number, not a string"),
    ("output", "data", 42, "field 'data' must be a string, not an integer"),
    ("output", "b64", "not base64!", "field 'b64' is not base64"),
    ("step_started", "targets", ["local", 7], "field 'targets' must be a list of strings"),
    ("step_started", "step", True, "field 'step' must be an integer, not a boolean"),
])
def test_a_chained_record_with_a_wrong_field_type_is_reported_by_seq(session, book, kind, field, value, says):
    journal = session / "journal.jsonl"
    seq = _seq_of(journal, kind)
    rechain(journal, seq, lambda e: e.__setitem__(field, value))  # the attack
    where = f"journal.jsonl:{seq}: journal broken at record seq {seq}: bad event: {kind}: {says}"

    verify = run(["journal", "verify", session])
    assert verify.returncode == 1 and "Traceback" not in verify.stderr + verify.stdout
    assert where in verify.stdout, verify.stdout
    assert f"records 1-{seq - 1} chain correctly" in verify.stdout

    show = run(["journal", "show", session])
    assert show.returncode == 1 and "Traceback" not in show.stderr, show.stderr
    assert where in show.stderr, show.stderr
    shown = [line.split()[0] for line in show.stdout.splitlines() if line[:6].strip().isdigit()]
    assert shown == [str(i) for i in range(1, seq)]  # every good record before it, none after

    for args in (["journal", "show", session, "--format", "json"], ["export", session, "--out", "-"],
                 ["exec", book, "--task", "ADV-002", "--session", session]):
        r = run(args)
        assert r.returncode != 0 and "Traceback" not in r.stderr, (args, r.stderr)
        assert f"record seq {seq}" in r.stderr and says in r.stderr, (args, r.stderr)

    listed = json.loads(run(["sessions", "--session-dir", session.parent, "--format", "json"]).stdout)
    assert listed[0]["status"] == "broken" and f"record seq {seq}" in listed[0]["problem"], listed
