"""CLI handlers: ``runbook sessions`` and ``runbook journal verify|show``.

``runbook journal verify SESSION`` exits 0 when the whole chain holds (printing
the record count and head hash) and 1 when it does not (naming the first bad
record's seq and line).  ``runbook journal show SESSION [--follow]`` prints the
records as text or as JSON lines; ``--follow`` keeps printing new records as
they are appended, like ``tail -f``, until interrupted.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from runbook.sanitize.terminal_text import visible
from sessions.journal import events as ev
from sessions.journal.format import (
    FORMAT_VERSION,
    ForeignEvent,
    JournalReader,
    Record,
    TamperedJournal,
    event_json,
    newer_note,
)
from sessions.journal.journal import JournalTail, verify
from sessions.report.model import outcome_word
from sessions.state.state import Replayer, SessionState
from sessions.store import find_session, list_sessions, session_root


def _short_ts(ts: str | None) -> str:
    if not ts:
        return "-"
    return ts[:19].replace("T", " ")


def sessions_cmd(args: argparse.Namespace) -> int:
    """``runbook sessions``: one line per session, oldest first."""
    root = session_root(getattr(args, "session_dir", None))
    found = list_sessions(root)
    if getattr(args, "format", "text") == "json":
        print(json.dumps([s.to_json() for s in found], indent=2))
        return 0
    if not found:
        print(f"no sessions in {root}")
        return 0
    # One row per session, then the runbook's full title and path on their own line:
    # nothing is cut, and the table still fits 80 columns.
    rows = [("ID", "OPERATOR", "STARTED", "LAST ACTIVITY", "PROGRESS", "STATUS")]
    details = []
    for s in found:
        status = s.status
        if s.unknowns:
            status += f", {s.unknowns} unknown"
        if s.holder:
            status += f" ({s.holder})"
        rows.append((s.id, ",".join(s.operators) or "-", _short_ts(s.started),
                     _short_ts(s.last_activity), s.progress, status))
        title = s.runbook_title or "(untitled)"
        details.append(f"    {title}" + (f" · {s.runbook_path}" if s.runbook_path else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for i, r in enumerate(rows):
        print(visible("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1], multiline=False))
        if i:
            print(visible(details[i - 1], multiline=False))
    broken = [s for s in found if s.problem]
    for s in broken:
        print(f"runbook: {s.problem}", file=sys.stderr)
    return 0


def journal_cmd(args: argparse.Namespace) -> int:
    path = find_session(args.session, getattr(args, "session_dir", None))
    if args.journal_command == "verify":
        return _verify(path, getattr(args, "allowed_signers", None))
    return _show(path, getattr(args, "format", "text"), bool(getattr(args, "follow", False)))


def _mentions_checkpoint(path: Path) -> bool:
    """Whether the journal holds a checkpoint record, without parsing it a second time."""
    return _mentions(path, b'"type":"checkpoint"')


def _mentions(path: Path, needle: bytes) -> bool:
    """Whether the journal holds a record with ``needle`` (``"type":"..."``), without parsing it.

    In canonical JSON an event contains the bytes ``"type":"<type>"``; inside any string
    value (output, notes) its quotes would be escaped, so the byte search has no false
    positives.
    """
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return mm.find(needle) >= 0


def _verify(path: Path, allowed_signers: str | None = None) -> int:
    """The chain, then the signed checkpoints; with ``allowed_signers`` every checkpoint must be
    signed by a key that file allows (namespace ``runbook-checkpoint``), and there must be one."""
    if allowed_signers:
        from sessions.signing import read_allowed_signers

        read_allowed_signers(allowed_signers)  # unreadable: exit 2 before any work
    v = verify(path)
    if v.ok and v.count == 0:  # every session journal starts with session_opened
        print(f"{path}: FAILED: no records (a journal is never empty: cut short, or not a journal)")
        return 1
    if v.ok:
        from sessions.journal.checkpoints import SIDECAR_NAME, verify_checkpoints

        has_checkpoints = (path.parent / SIDECAR_NAME).exists() or _mentions_checkpoint(path)
        if has_checkpoints or allowed_signers:
            ok, message = verify_checkpoints(path, allowed_signers=allowed_signers or None)
            if not ok:
                print(f"{path}: FAILED: {message}")
                return 1
            print(f"{path}: signed checkpoints: {message}")
        if _mentions(path, b'"type":"approval_granted"'):  # four-eyes approvals: each signature again
            from sessions.journal.journal import read_records
            from sessions.team.approval import verify_journaled

            ok, message = verify_journaled(read_records(path))
            if not ok:
                print(f"{path}: FAILED: approval at {message}")
                return 1
            print(f"{path}: approvals: {message}")
        print(f"{path}: ok: {v.count} records, head {v.head}")
        if v.note:
            print(f"{path}: {v.note}")
        return 0
    print(f"{path}: FAILED: {v.message}")
    if v.seq is not None and v.count == 0:
        print(f"{path}: the first record (line {v.line}) is already bad: not a journal, or its start was altered")
    elif v.seq is not None:
        print(f"{path}: records 1-{v.count} chain correctly (head {v.head}); record {v.seq} (line {v.line}) "
              "does not")
    return 1


# --- show ----------------------------------------------------------------------------


def _summary(e: ev.Event) -> str:
    if isinstance(e, ev.SessionOpened):
        how = "resumed" if e.resumed else "created"
        text = f"{how} by {e.operator or '?'}"
        if e.origin:
            text += f" from {e.origin}"
        text += f" on {e.jump_host or '?'} (pid {e.pid}, runbook {e.tool_version}): {e.runbook_path}"
        if e.handover_from:
            text += f"; handover from {e.handover_from}"
        return text
    if isinstance(e, ev.StepStarted):
        flags = " ".join(f for f, on in (("rollback", e.rollback), ("detached", e.detached), ("pty", e.pty)) if on)
        first = e.command.splitlines()[0] if e.command.strip() else ""
        more = " ..." if e.command.strip().count("\n") else ""
        mode = e.mode + (" " + flags if flags else "")
        return f"{e.task} step {e.step} run {e.run_id} on {','.join(e.targets)} ({mode}): {first}{more}"
    if isinstance(e, ev.OutputChunk):
        return f"{e.run_id} {e.host} {e.stream} {len(e.raw)} bytes"
    if isinstance(e, ev.HostFinished):
        extra = f" exit {e.exit_status}" if e.exit_status is not None else ""
        extra += f" signal {e.exit_signal}" if e.exit_signal else ""
        extra += f" ({e.error})" if e.error else ""
        return f"{e.run_id} {e.host} {e.outcome}{extra} in {e.duration_s:.1f}s"
    if isinstance(e, ev.PlaceholderSupplied):
        return f"{e.name} = " + ("<secret>" if e.secret else repr(e.value))
    data = event_json(e)
    data.pop("type", None)
    parts = []
    for k, v in data.items():
        if v in (None, "", (), False) and k not in ("checked", "passed"):
            continue
        parts.append(f"{k}={v!r}" if isinstance(v, str) and (" " in v or not v) else f"{k}={v}")
    return " ".join(parts)


def step_status_lines(state: SessionState) -> list[str]:
    """Each step that ran: its status, the number of runs, and the last outcome per host over them."""
    lines = []
    for (task, step, rollback), runs in state.step_runs.items():
        m = state.step_matrix(task, step, rollback)
        hosts = ", ".join(f"{c.host} {outcome_word(c.status)}" + (f" x{c.runs}" if c.runs > 1 else "")
                          for c in m.hosts)
        what = f"{task} {'rollback ' if rollback else ''}step {step}"
        status = outcome_word(state.step_status(task, step, rollback))
        lines.append(f"{what}: {status} ({len(runs)} run{'s' if len(runs) != 1 else ''})" + (f": {hosts}" if hosts else ""))
    return lines


def _print_step_status(state: SessionState, out: TextIO) -> None:
    lines = step_status_lines(state)
    if lines:
        out.write("# step status (last outcome per host over all runs)\n")
        for line in lines:
            out.write(f"#   {visible(line)}\n")


def _print_record(rec: Record, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(rec.to_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")
        return
    e = rec.event
    kind = e.type_name if isinstance(e, ForeignEvent) else e.TYPE
    out.write(f"{rec.seq:>6} {rec.ts} {kind:<20} {_summary(e)}\n")
    if isinstance(e, ev.OutputChunk):
        if e.b64 is not None:
            out.write(f"{'':>6} | <{len(e.raw)} bytes, not UTF-8>\n")
        else:
            for line in e.data.splitlines():
                out.write(f"{'':>6} | {line}\n")


def _show(path: Path, fmt: str, follow: bool) -> int:
    try:
        return _show_records(path, fmt, follow, sys.stdout)
    except BrokenPipeError:  # `runbook journal show S | head`: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


def _show_records(path: Path, fmt: str, follow: bool, out: TextIO) -> int:
    try:
        return _show_then_follow(path, fmt, follow, out)
    except KeyboardInterrupt:
        if not follow:
            raise
        return 0  # Ctrl-C is how --follow ends, wherever it lands


def _show_then_follow(path: Path, fmt: str, follow: bool, out: TextIO) -> int:
    reader = JournalReader(path)
    fold = Replayer() if fmt != "json" and not follow else None
    try:
        for rec in reader:
            _print_record(rec, fmt, out)
            if fold is not None:
                fold.feed_record(rec)
    except TamperedJournal as exc:
        out.flush()
        print(f"runbook: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except OSError as exc:
        print(f"runbook: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if fold is not None:
        _print_step_status(fold.result(), out)
    out.flush()
    if reader.version > FORMAT_VERSION:
        print(f"runbook: {path}: {newer_note(reader.version, reader.foreign)}", file=sys.stderr)
    if not follow:
        if reader.torn:
            print(f"runbook: {path}:{reader.torn_line}: torn last line ({reader.torn} bytes) not shown",
                  file=sys.stderr)
        return 0
    return _follow(path, reader, fmt, out)


def _follow(path: Path, reader: JournalReader, fmt: str, out: TextIO, poll_s: float = 0.2) -> int:
    """Print records appended after ``reader`` finished, checking the chain, until interrupted."""
    tail = JournalTail.after(reader)
    while True:
        try:
            records = tail.read_new()
        except TamperedJournal as exc:  # altered, or shrank below what was printed
            print(f"runbook: {exc}", file=sys.stderr)
            return 1
        if not records:
            time.sleep(poll_s)
            continue
        for rec in records:
            _print_record(rec, fmt, out)
        out.flush()
