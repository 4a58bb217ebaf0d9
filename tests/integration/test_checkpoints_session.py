"""Signed checkpoints wired into a real session and `runbook journal verify`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runbook.model import Runbook
from sessions.engine.session import Session
from tests.tools import require


def _runbook() -> Runbook:
    return Runbook(title="cp", path="/nonexistent/cp.md", sha256="0" * 64)


def _verify(journal: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runbook.cli", "journal", "verify", str(journal)],
                          capture_output=True, text=True)


def _session_with_checkpoints(tmp_path: Path, monkeypatch) -> Path:
    keygen = require("ssh-keygen")
    key = tmp_path / "id_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(key))
    monkeypatch.setenv("RUNBOOK_CHECKPOINT_EVERY_S", "0")
    s = Session.create(_runbook(), root=tmp_path / "sessions")
    for i in range(5):
        s.note(f"note {i}")
    s.close("finished", finished=True)
    return s.journal.path


def test_session_writes_signed_checkpoints_and_verify_accepts(tmp_path, monkeypatch):
    journal = _session_with_checkpoints(tmp_path, monkeypatch)
    assert (journal.parent / "checkpoints.sig.jsonl").exists()
    assert '"type":"checkpoint"' in journal.read_text()
    out = _verify(journal)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "signed checkpoints" in out.stdout


def test_journal_cut_short_after_a_checkpoint_is_detected(tmp_path, monkeypatch):
    journal = _session_with_checkpoints(tmp_path, monkeypatch)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-3]))  # a valid prefix: the chain alone cannot tell
    out = _verify(journal)
    assert out.returncode == 1
    assert "cut short after signed checkpoint" in out.stdout


def test_unloadable_key_is_journaled_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(tmp_path / "missing-key"))
    s = Session.create(_runbook(), root=tmp_path / "sessions")
    try:
        assert any("signed checkpoints are off" in w for w in s.warnings)
        assert "signed checkpoints are off" in s.journal.path.read_text()
    finally:
        s.close()


def test_deleting_the_checkpoint_sidecar_is_detected(tmp_path, monkeypatch):
    journal = _session_with_checkpoints(tmp_path, monkeypatch)
    (journal.parent / "checkpoints.sig.jsonl").unlink()
    out = _verify(journal)
    assert out.returncode == 1, out.stdout
    assert "checkpoint" in out.stdout
