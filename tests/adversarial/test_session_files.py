"""The session directory's own files: never overwritten, never followed through symlinks,
never trusted when someone else can write them.

Attacks: ``runbook export --out SESSION/journal.jsonl`` (the report replaces the
journal); a journal, lock, ``runbook.log`` or session directory replaced by a symlink
to a file the attacker wants truncated or appended to (a root run would follow it); a
session directory or journal writable by group/others or owned by another user.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.adversarial.session_kit import assert_clean_refusal, book, run, session, sessions  # noqa: F401
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


# --- symlinks: never followed -------------------------------------------------------------


def test_a_symlinked_journal_is_refused_not_appended_through(book, session, tmp_path):
    journal = session / "journal.jsonl"
    elsewhere = tmp_path / "elsewhere.jsonl"
    os.replace(journal, elsewhere)  # the attack: the journal's name points at another (valid) file
    journal.symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    r = run(["exec", book, "--task", "ADV-001", "--session", session])
    assert_clean_refusal(r)
    assert "is a symlink" in r.stderr and "never follows a symlink" in r.stderr, r.stderr
    assert elsewhere.read_bytes() == before and "hello from adversarial" not in r.stdout


def test_a_symlinked_lock_is_refused_and_its_target_not_truncated(book, session, tmp_path):
    victim = tmp_path / "precious.conf"
    victim.write_text("precious configuration\n")
    (session / "lock").unlink()
    (session / "lock").symlink_to(victim)  # the attack: the writer truncates and rewrites its lock
    r = run(["exec", book, "--task", "ADV-001", "--session", session])
    assert_clean_refusal(r)
    assert "lock is a symlink" in r.stderr, r.stderr
    assert victim.read_text() == "precious configuration\n"


def test_a_symlinked_runbook_log_is_never_appended_to(book, session, tmp_path):
    victim = tmp_path / "precious.conf"
    victim.write_text("precious configuration\n")
    (session / "runbook.log").unlink()
    (session / "runbook.log").symlink_to(victim)  # the attack: the structlog JSON lands in the victim
    r = run(["exec", book, "--task", "ADV-001", "--session", session])
    assert "Traceback" not in r.stderr
    assert victim.read_text() == "precious configuration\n"
    assert "runbook.log" in r.stderr  # the operator is told the log is not written
    assert run(["journal", "verify", session]).returncode == 0


def test_a_symlinked_checkpoint_sidecar_is_never_appended_to(book, session, tmp_path):
    key = tmp_path / "k"
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    victim = tmp_path / "precious.conf"
    victim.write_text("precious configuration\n")
    (session / "checkpoints.sig.jsonl").symlink_to(victim)
    r = run(["exec", book, "--task", "ADV-001", "--session", session], env={"RUNBOOK_SIGNING_KEY": str(key)})
    assert "Traceback" not in r.stderr, r.stderr
    assert victim.read_text() == "precious configuration\n"


def test_a_symlinked_session_directory_is_refused(book, session, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(session)  # the attack: a session directory that is a link to somewhere else
    before = (session / "journal.jsonl").read_bytes()
    r = run(["exec", book, "--task", "ADV-001", "--session", alias])
    assert_clean_refusal(r)
    assert "session directory is a symlink" in r.stderr, r.stderr
    assert (session / "journal.jsonl").read_bytes() == before


# --- permissions and ownership: sshd StrictModes -------------------------------------------


@pytest.mark.parametrize(("what", "mode", "fix"), [
    ("dir", 0o770, "chmod 700"), ("dir", 0o707, "chmod 700"),
    ("journal", 0o620, "chmod 600"), ("journal", 0o666, "chmod 600"),
])
def test_a_session_writable_by_group_or_others_is_refused_with_the_fix(book, session, what, mode, fix):
    target = session if what == "dir" else session / "journal.jsonl"
    os.chmod(target, mode)  # the attack surface: anyone in the group (or anyone) may rewrite it
    before = (session / "journal.jsonl").read_bytes()
    r = run(["exec", book, "--task", "ADV-001", "--session", session])
    assert_clean_refusal(r)
    assert "writable by" in r.stderr and f"Fix: `{fix} {target}`" in r.stderr, r.stderr
    assert (session / "journal.jsonl").read_bytes() == before
    os.chmod(target, 0o700 if what == "dir" else 0o600)  # the fix works
    assert run(["exec", book, "--task", "ADV-001", "--session", session]).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
@pytest.mark.parametrize("what", ["dir", "journal"])
def test_a_session_owned_by_another_user_is_refused(book, session, what):
    target = session if what == "dir" else session / "journal.jsonl"
    os.chown(target, 65534, 65534)  # nobody's: a root run must not write a session another user controls
    r = run(["exec", book, "--task", "ADV-001", "--session", session])
    assert_clean_refusal(r)
    assert "is owned by" in r.stderr and "uid 65534" in r.stderr, r.stderr
