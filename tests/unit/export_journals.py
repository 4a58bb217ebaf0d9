"""Session journals for the export tests, written with ``sessions.journal.journal.Journal``
directly (as the engine and ``Session`` would write them), so these tests do not
depend on the engine."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sessions.journal import events as ev
from sessions.journal.journal import Journal

SESSION_ID = "20261127T043216Z-3f9a"
RUNBOOK_TEXT = """# Demo runbook

## Phase 1: Prepare

### Task T-1: Check hosts
"""
# Values a test plants: they must never show up in an export.
SECRET_VALUE = "hunter2-S3cr3t-value"
SECRET_TOKEN = "abcdef.0123456789abcdef"


def write_runbook(directory: Path, text: str = RUNBOOK_TEXT) -> tuple[Path, str]:
    path = directory / "demo.md"
    path.write_text(text)
    return path, hashlib.sha256(text.encode()).hexdigest()


def opened(runbook: Path, sha: str, *, operator: str = "alice", resumed: bool = False,
           handover_from: str | None = None) -> ev.SessionOpened:
    return ev.SessionOpened(
        session_id=SESSION_ID, runbook_path=str(runbook), runbook_sha256=sha, runbook_title="Demo runbook",
        operator=operator, origin="127.0.0.1", jump_host="jump-01", tool_version="0.1.0",
        task_ids=("T-1", "T-2", "T-3", "T-4"), window_end="2099-11-27T06:00:00Z", resumed=resumed,
        handover_from=handover_from, pid=4242,
    )


def full_session(directory: Path, *, finished: bool = True, output_lines: int = 3) -> tuple[Path, Path]:
    """A session that went through most of what can happen.  Returns (journal, runbook)."""
    runbook, sha = write_runbook(directory)
    path = directory / SESSION_ID / "journal.jsonl"
    with Journal.create(path) as j:
        j.append(opened(runbook, sha))
        j.append(ev.PlaceholderSupplied("NAMESPACE", secret=False, value="prod", who="alice"))
        j.append(ev.PlaceholderSupplied("DB_PASSWORD", secret=True, value=None,
                                        value_hash=hashlib.sha256(b"salt" + SECRET_VALUE.encode()).hexdigest(),
                                        salt="c2FsdA==", who="alice"))
        # T-1: ran fine on two hosts
        j.append(ev.TaskStarted("T-1", who="alice"))
        j.append(ev.CheckboxSet("T-1/prerequisites/0", text="Backups verified", who="alice"))
        j.append(ev.StepStarted("r1", "T-1", 1, ("web-1", "web-2"), "uptime && echo '<redacted:DB_PASSWORD>'",
                                who="alice"))
        for n in range(output_lines):
            j.append_output(ev.OutputChunk("r1", "web-1", "stdout", f"web-1 line {n}\n"))
            j.append_output(ev.OutputChunk("r1", "web-2", "stdout", f"web-2 line {n}\n"))
        j.append_output(ev.OutputChunk.from_bytes("r1", "web-2", "stderr", b"\xff\xfe binary\n"))
        j.append(ev.HostFinished("r1", "web-1", "succeeded", exit_status=0, duration_s=1.25))
        j.append(ev.HostFinished("r1", "web-2", "succeeded", exit_status=0, duration_s=1.5))
        j.append(ev.ExpectationChecked("r1", "web-1", 0, True, "load average"))
        j.append(ev.StepFinished("r1", "succeeded", duration_s=1.5))
        j.append(ev.CheckboxSet("T-1/acceptance/0", text="All hosts up", who="alice", evidence="uptime ok"))
        j.append(ev.CheckboxSet("T-1/acceptance/1", text="Load below 2", who="alice"))
        j.append(ev.CheckboxCleared("T-1/acceptance/1", text="Load below 2", who="alice",
                                    reason="load was 3.1 on web-2"))
        j.append(ev.TaskCompleted("T-1", who="alice"))
        # T-2: a failure, a re-run, an unknown outcome decided by hand, an override, a skip, a rollback
        j.append(ev.GuardOverridden("risk", "T-2", reason="change board approved CAB-77", step=1, who="alice"))
        j.append(ev.TaskStarted("T-2", who="alice"))
        j.append(ev.StepStarted("r2", "T-2", 1, ("db-1",), "systemctl restart db", who="alice"))
        j.append(ev.OutputChunk("r2", "db-1", "stderr", "Job for db.service failed\n"))
        j.append(ev.HostFinished("r2", "db-1", "failed", exit_status=1, duration_s=2.0))
        j.append(ev.StepFinished("r2", "failed", duration_s=2.0))
        j.append(ev.StepStarted("r3", "T-2", 1, ("db-1",), "systemctl restart db", who="alice"))
        j.append(ev.HostFinished("r3", "db-1", "succeeded", exit_status=0, duration_s=3.0))
        j.append(ev.StepFinished("r3", "succeeded", duration_s=3.0))
        j.append(ev.StepStarted("r4", "T-2", 2, ("db-1", "db-2"), "migrate --all", mode="serial", who="alice"))
        j.append(ev.OutputChunk("r4", "db-1", "stdout", "migrating...\n"))
        j.append(ev.StepOutcomeUnknown("r4", why="connection lost", host="db-1"))
        j.append(ev.StepFinished("r4", "unknown"))
        j.append(ev.OutcomeDecided("r4", "succeeded", reason="checked schema version by hand", host="db-1",
                                   who="alice"))
        j.append(ev.StepSkipped("T-2", 3, reason="not needed for this release", who="alice"))
        j.append(ev.RollbackStarted("T-2", reason="db-2 never migrated", who="alice"))
        j.append(ev.StepStarted("r5", "T-2", 1, ("db-1",), "restore-snapshot", rollback=True, who="alice"))
        j.append(ev.HostFinished("r5", "db-1", "succeeded", exit_status=0, duration_s=9.0))
        j.append(ev.StepFinished("r5", "succeeded", duration_s=9.0))
        j.append(ev.Note("db-2 needs a maintenance slot <b>next week</b>", task="T-2", who="alice"))
        j.append(ev.TaskCompleted("T-2", who="alice"))
        # T-3 skipped; T-4 never started
        j.append(ev.TaskSkipped("T-3", reason="covered by T-2", who="alice"))
        j.append(ev.Note("handing over at 05:00", who="alice"))
        j.append(ev.HostKeyAccepted("db-2", "SHA256:abcdefgh", who="alice"))
        j.append(ev.SessionClosed("finished" if finished else "quit", finished=finished))
    return path, runbook


def resume(path: Path, runbook: Path, sha: str, *, operator: str = "bob") -> None:
    """Append a resume by another operator (handover) and a little more work."""
    j = Journal.open(path)
    try:
        j.append(opened(runbook, sha, operator=operator, resumed=True, handover_from="alice"))
        j.append(ev.TaskStarted("T-4", who=operator))
        j.append(ev.StepStarted("r6", "T-4", 1, ("web-1",), "echo resumed", who=operator))
        j.append(ev.OutputChunk("r6", "web-1", "stdout", "resumed\n"))
        j.append(ev.HostFinished("r6", "web-1", "succeeded", exit_status=0, duration_s=0.1))
        j.append(ev.StepFinished("r6", "succeeded", duration_s=0.1))
        j.append(ev.TaskCompleted("T-4", who=operator))
        j.append(ev.SessionClosed("finished", finished=True))
    finally:
        j.close()
