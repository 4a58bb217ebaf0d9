"""The session directory's own files: never overwritten, never followed through symlinks,
never trusted when someone else can write them.

Attacks: ``runbook export --out SESSION/journal.jsonl`` (the report replaces the
journal); a journal, lock, ``runbook.log`` or session directory replaced by a symlink
to a file the attacker wants truncated or appended to (a root run would follow it); a
session directory or journal writable by group/others or owned by another user.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.adversarial.session_kit import assert_clean_refusal, book, run, session, sessions  # noqa: F401 (fixtures)
from tests.tools import require


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["journal.jsonl", "lock", "runbook.log", "checkpoints.sig.jsonl"])
def test_export_out_onto_the_sessions_own_files_is_refused(session, name):
    journal = session / "journal.jsonl"
    before = _digest(journal)
    target = session / name
    existed = target.exists()
    old = target.read_bytes() if existed else None
    r = run(["export", session, "--out", target, "--format", "json"])
    assert_clean_refusal(r)
    assert f"{target}: is a session's own {name}" in r.stderr
    assert _digest(journal) == before
    assert (target.read_bytes() if existed else None) == old and target.exists() == existed
    assert run(["journal", "verify", session]).returncode == 0


def test_export_out_onto_another_sessions_journal_through_a_symlinked_dir_is_refused(session, book, sessions,
                                                                                       tmp_path):
    other = run(["exec", book, "--task", "ADV-001", "--session-dir", sessions])
    assert other.returncode == 0, other.stderr
    victim = next(d for d in sessions.iterdir() if d != session) / "journal.jsonl"
    before = _digest(victim)
    (tmp_path / "alias").symlink_to(victim.parent)
    r = run(["export", session, "--out", tmp_path / "alias" / "journal.jsonl"])
    assert_clean_refusal(r)
    assert _digest(victim) == before


def test_a_signed_export_onto_a_session_file_writes_neither_report_nor_signature(session, tmp_path):
    key = tmp_path / "k"
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    before = _digest(session / "journal.jsonl")
    log = (session / "runbook.log").read_bytes()
    r = run(["export", session, "--out", session / "runbook.log", "--sign", key])
    assert_clean_refusal(r)
    assert _digest(session / "journal.jsonl") == before and (session / "runbook.log").read_bytes() == log
    assert not (session / "runbook.log.sig").exists()


def test_export_into_the_session_directory_under_a_new_name_still_works(session):
    r = run(["export", session, "--out", session / "report.md"])
    assert r.returncode == 0, r.stderr
    assert (session / "report.md").read_text().startswith("#")
    assert run(["journal", "verify", session]).returncode == 0
