"""Signed checkpoints: written on schedule, verified, and a journal cut short after one is caught."""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh
import pytest

from sessions.journal import events as ev
from sessions.journal.checkpoints import SIDECAR_NAME, Checkpointer, checkpoint_message, verify_checkpoints
from sessions.journal.journal import Journal, read_records
from sessions.signing import CHECKPOINT_NAMESPACE, FileSigningKey, verify_signature
from tests.unit.export_journals import SESSION_ID, opened, write_runbook


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> FileSigningKey:
    return FileSigningKey(asyncssh.generate_private_key("ssh-ed25519"), "test")


def session_with_checkpoints(tmp_path: Path, key: FileSigningKey) -> tuple[Path, list[int]]:
    runbook, sha = write_runbook(tmp_path)
    path = tmp_path / SESSION_ID / "journal.jsonl"
    clock = Clock()
    cps = []
    with Journal.create(path) as j:
        j.append(opened(runbook, sha))
        cp = Checkpointer(j, key, every_s=300, clock=clock)
        assert cp.session_id == SESSION_ID
        for n in range(30):
            j.append(ev.Note(f"note {n}", who="alice"))
            clock.now += 60
            rec = cp.maybe_checkpoint()
            if rec is not None:
                cps.append(rec.seq)
        assert cp.maybe_checkpoint() is None  # nothing new since the last one
        clock.now += 1000
        assert cp.maybe_checkpoint() is None
        j.append(ev.Note("last", who="alice"))
        assert cp.checkpoint() is not None  # forced, e.g. before closing
        j.append(ev.SessionClosed("finished", finished=True))
    return path, cps


def test_checkpoints_every_n_seconds_and_verify(tmp_path: Path, key: FileSigningKey) -> None:
    path, cps = session_with_checkpoints(tmp_path, key)
    assert len(cps) == 6  # every 5 minutes over 30 notes a minute apart
    records = list(read_records(path))
    for seq in cps:
        e = records[seq - 1].event
        assert isinstance(e, ev.Checkpoint) and e.seq == seq - 1 and e.head == records[seq - 2].h
        assert e.namespace == CHECKPOINT_NAMESPACE and e.key_fingerprint == key.fingerprint
        res = verify_signature(checkpoint_message(SESSION_ID, e.seq, e.head), e.signature.encode(),
                               CHECKPOINT_NAMESPACE, public_keys=[key.public_key])
        assert res.ok, res.message
    sidecar = path.parent / SIDECAR_NAME
    assert len(sidecar.read_text().splitlines()) == 7 and (sidecar.stat().st_mode & 0o777) == 0o600
    ok, msg = verify_checkpoints(path, [key.public_line()])
    assert ok and "7 in the journal, 7 in the sidecar" in msg, msg
    ok, msg = verify_checkpoints(path)
    assert ok and "signer not checked" in msg and key.fingerprint in msg
    # records given directly (as journal_commands may have them), sidecar named
    ok, msg = verify_checkpoints(records, [key.public_key], sidecar=sidecar)
    assert ok, msg


def _rewrite(path: Path, keep: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:keep]))


def test_journal_cut_short_after_a_checkpoint(tmp_path: Path, key: FileSigningKey) -> None:
    path, _cps = session_with_checkpoints(tmp_path, key)
    last_signed_seq = json.loads((path.parent / SIDECAR_NAME).read_text().splitlines()[-1])["seq"]
    _rewrite(path, last_signed_seq - 1)  # a valid chain, just shorter
    ok, msg = verify_checkpoints(path, [key.public_key])
    assert not ok and f"journal cut short after signed checkpoint seq {last_signed_seq}" in msg


def test_journal_cut_and_regrown_differs_from_the_checkpoint(tmp_path: Path, key: FileSigningKey) -> None:
    path, cps = session_with_checkpoints(tmp_path, key)
    _rewrite(path, cps[2] - 3)
    with Journal.open(path) as j:  # continue writing something else after the cut
        for n in range(10):
            j.append(ev.Note(f"rewritten {n}", who="mallory"))
    ok, msg = verify_checkpoints(path, [key.public_key])
    assert not ok and "differs from the signed checkpoint" in msg


def test_sidecar_cut_or_forged(tmp_path: Path, key: FileSigningKey) -> None:
    path, _ = session_with_checkpoints(tmp_path, key)
    sidecar = path.parent / SIDECAR_NAME
    lines = sidecar.read_text().splitlines(keepends=True)
    sidecar.write_text("".join(lines[:-2]))
    ok, msg = verify_checkpoints(path, [key.public_key])
    assert not ok and "lacks the signed checkpoint" in msg
    sidecar.unlink()
    assert not verify_checkpoints(path, [key.public_key])[0]
    entry = json.loads(lines[0])
    entry["seq"] += 1  # a signature over another statement
    sidecar.write_text(json.dumps(entry) + "\n" + "".join(lines[1:]))
    ok, msg = verify_checkpoints(path, [key.public_key])
    assert not ok and ("differs" in msg or "BAD signature" in msg), msg


def test_untrusted_key(tmp_path: Path, key: FileSigningKey) -> None:
    path, _ = session_with_checkpoints(tmp_path, key)
    other = FileSigningKey(asyncssh.generate_private_key("ssh-ed25519"), "other")
    ok, msg = verify_checkpoints(path, [other.public_key])
    assert not ok and "not trusted" in msg


def test_no_checkpoints(tmp_path: Path) -> None:
    runbook, sha = write_runbook(tmp_path)
    path = tmp_path / "s" / "journal.jsonl"
    with Journal.create(path) as j:
        j.append(opened(runbook, sha))
    assert verify_checkpoints(path) == (True, "no checkpoints")


def test_checkpointer_with_a_session(tmp_path: Path, key: FileSigningKey) -> None:
    from runbook.parse.parser import parse_file
    from sessions.engine.session import Session

    rb = tmp_path / "rb.md"
    rb.write_text("# T\n\n## Phase 1: P\n\n### Task T-1: t\n")
    session = Session.create(parse_file(str(rb)), root=tmp_path / "sessions")
    try:
        clock = Clock()
        cp = Checkpointer(session, key, every_s=10, clock=clock)
        assert cp.session_id == session.id
        session.note("hello")
        clock.now += 11
        rec = cp.maybe_checkpoint()
        assert rec is not None and session.state.last_checkpoint is not None
    finally:
        session.close("finished", finished=True)
    ok, msg = verify_checkpoints(session.journal.path, [key.public_key])
    assert ok and "1 in the journal" in msg, msg


def test_from_env(tmp_path: Path, key: FileSigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    runbook, sha = write_runbook(tmp_path)
    path = tmp_path / "s" / "journal.jsonl"
    keyfile = tmp_path / "id_ed25519"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(keyfile))
    with Journal.create(path) as j:
        j.append(opened(runbook, sha))
        monkeypatch.delenv("RUNBOOK_SIGNING_KEY", raising=False)
        assert Checkpointer.from_env(j) is None
        monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(keyfile))
        cp = Checkpointer.from_env(j, every_s=0)
        assert cp is not None and cp.maybe_checkpoint() is not None
    pub = tmp_path / "id_ed25519.pub"
    asyncssh.read_private_key(str(keyfile)).write_public_key(str(pub))
    ok, msg = verify_checkpoints(path, [str(pub)])
    assert ok, msg
