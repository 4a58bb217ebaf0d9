"""The report model (plain dataclasses, JSON-ready) and the deviation rules.

A deviation is anything an auditor must look at: a step that failed, was skipped or
whose outcome is unknown, a guard overridden, an acceptance criterion left unticked, a
rollback, a journal repair, a runbook change mid-session, a host key accepted, a
session not finished or run past its window.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sessions.journal import events as ev
from sessions.state.state import SessionState

BAD_OUTCOMES = ("failed", "timeout", "cancelled")
OUTCOME_WORDS = {"expectation_failed": "failed (expectation)", "unknown": "outcome unknown"}


def outcome_word(outcome: str) -> str:
    """How a report says an outcome: ``expectation_failed`` is ``failed (expectation)``."""
    return OUTCOME_WORDS.get(outcome, outcome)


def matrix_text(step: StepReport) -> str:
    """``web-1 succeeded (2 runs), web-2 failed (expectation)``: the last outcome per host."""
    return ", ".join(f"{c['host']} {outcome_word(c['status'])}" + (f" ({c['runs']} runs)" if c["runs"] > 1 else "")
                     for c in step.hosts)


def fmt_ts(ts: str | None) -> str:
    """``2026-11-27T04:32:16.123456Z`` -> ``2026-11-27 04:32:16Z`` (``-`` when empty)."""
    d = _parse(ts)
    if d is None:
        return ts or "-"
    return d.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def task_meta(t: TaskReport, esc: Callable[[object], str]) -> list[str]:
    """Who and when of a task, each part escaped by the renderer's ``esc``."""
    parts = []
    if t.who:
        parts.append(f"by {esc(t.who)}")
    if t.started:
        parts.append(f"started {esc(fmt_ts(t.started))}")
    if t.finished:
        parts.append(f"ended {esc(fmt_ts(t.finished))}")
    if t.skip_reason:
        parts.append(f"skipped: {esc(t.skip_reason)}")
    return parts


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        d = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else None


@dataclass
class OutputText:
    bytes: int
    lines: int
    sha256: str  # of the full output as exported
    text: str


@dataclass
class HostResult:
    host: str
    outcome: str  # effective: an operator decision on an unknown outcome counts
    status: str  # as recorded
    exit_status: int | None
    exit_signal: str | None
    duration_s: float
    error: str
    decided: str | None
    decided_reason: str
    decided_by: str
    no_end_recorded: bool
    output: OutputText
    expectations: list[dict[str, Any]]
    superseded: bool = False  # a later run of the step ran on this host


@dataclass
class RunReport:
    run_id: str
    task: str
    step: int
    rollback: bool
    command: str
    targets: list[str]
    mode: str
    detached: bool
    pty: bool
    who: str
    started: str
    finished: str
    outcome: str
    duration_s: float
    hosts: list[HostResult]
    files: list[dict[str, Any]]
    superseded: bool  # a later run of the same step exists


@dataclass
class StepReport:
    number: int
    title: str
    runs: list[RunReport]
    status: str
    skipped: dict[str, Any] | None
    runnable: bool = True
    # the step's status as a host matrix: the last outcome per host over all its runs
    hosts: list[dict[str, Any]] = field(default_factory=list)  # {host, status, runs, run_id}
    run_count: int = 0


@dataclass
class CheckboxReport:
    key: str
    text: str
    kind: str  # prerequisite | acceptance | other
    checked: bool = False
    who: str = ""
    ts: str = ""
    evidence: str = ""
    reason: str = ""  # why it was unticked, when it was
    probe: str | None = None
    probe_result: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TaskReport:
    id: str
    title: str
    status: str
    who: str
    started: str
    finished: str
    skip_reason: str
    in_runbook: bool
    steps: list[StepReport] = field(default_factory=list)
    rollback_steps: list[StepReport] = field(default_factory=list)
    checkboxes: list[CheckboxReport] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    guards: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    # four-eyes approval: each request, grant (principal, key fingerprint, the signature and the
    # message it signs) and refusal, in order (``kind``: requested, granted, refused)
    approvals: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PhaseReport:
    number: str
    title: str
    tasks: list[TaskReport] = field(default_factory=list)


@dataclass
class Deviation:
    kind: str
    message: str
    task: str = ""
    step: int | None = None
    host: str = ""
    reason: str = ""
    who: str = ""
    ts: str = ""


@dataclass
class Report:
    exported_at: str
    tool_version: str
    journal_path: str
    journal_head: str
    record_count: int
    redacted_records: list[int]
    torn_tail: bool
    unknown_event_types: list[str]
    runbook_status: str
    enriched: bool
    session_id: str = ""
    runbook_title: str = ""
    runbook_path: str = ""
    runbook_sha256: str = ""
    runbook_sha256_opened: str = ""
    operators: list[str] = field(default_factory=list)
    jump_hosts: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    tool_versions: list[str] = field(default_factory=list)
    openings: list[dict[str, Any]] = field(default_factory=list)
    started: str = ""
    ended: str = ""
    close_reason: str = ""
    last_activity: str = ""
    closed: bool = False
    finished: bool = False
    window_end: str | None = None
    placeholders: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    phases: list[PhaseReport] = field(default_factory=list)
    # the approvers file(s) journaled (``--approvers``): path, sha256, the text (public keys), when
    approvers: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def tasks(self) -> list[TaskReport]:
        return [t for p in self.phases for t in p.tasks]


# --- deviations -------------------------------------------------------------------


def _host_deviations(out: list[Deviation], t: TaskReport, step: StepReport, run: RunReport) -> None:
    what = f"rollback step {step.number}" if run.rollback else f"step {step.number}"
    for h in run.hosts:
        base: dict[str, Any] = dict(task=t.id, step=step.number, host=h.host, who=run.who, ts=run.finished or run.started)
        if h.superseded:
            if h.outcome in BAD_OUTCOMES + ("unknown", "expectation_failed"):
                out.append(Deviation("retried", f"{what} {outcome_word(h.outcome)} on {h.host} and was run again",
                                     **base))
            continue
        if h.status == "unknown" or h.no_end_recorded:
            why = h.error or ("no end recorded" if h.no_end_recorded else "end not seen")
            if h.decided in ("succeeded", "failed"):
                out.append(Deviation("outcome_unknown", f"{what} outcome unknown on {h.host} ({why}); "
                                     f"operator decided: {h.decided}", reason=h.decided_reason,
                                     **{**base, "who": h.decided_by or run.who}))
            else:
                out.append(Deviation("outcome_unknown", f"{what} outcome unknown on {h.host} ({why}), undecided",
                                     **base))
        elif h.outcome in BAD_OUTCOMES:
            code = f"exit {h.exit_status}" if h.exit_status is not None else (
                f"signal {h.exit_signal}" if h.exit_signal else h.outcome)
            out.append(Deviation("step_failed", f"{what} {h.outcome} on {h.host} ({code})", reason=h.error, **base))
        elif h.outcome == "skipped":
            out.append(Deviation("host_skipped", f"{what} not run on {h.host} (run stopped before it)", **base))
        for x in h.expectations:
            if not x["passed"]:
                verdict = (f"; operator decided: {h.decided}" + (f" ({h.decided_reason})" if h.decided_reason else "")
                           if h.decided and h.status != "unknown" else
                           "; failed until the operator decides" if h.outcome == "expectation_failed" else "")
                out.append(Deviation("expectation_failed", f"{what}: expectation #{x['index'] + 1} not met on "
                                     f"{h.host}{verdict}", reason=x.get("evidence", ""),
                                     **({**base, "who": h.decided_by or run.who} if h.decided else base)))


def _task_deviations(out: list[Deviation], r: Report, t: TaskReport) -> None:
    if t.status == "skipped":
        out.append(Deviation("task_skipped", f"task {t.id} skipped", task=t.id, reason=t.skip_reason, who=t.who,
                             ts=t.finished))
    started = t.status in ("in_progress", "done") or any(s.runs for s in t.steps)
    for step in t.rollback_steps:
        for run in step.runs:
            _host_deviations(out, t, step, run)
    for step in t.steps:
        for run in step.runs:
            _host_deviations(out, t, step, run)
        if step.skipped:
            out.append(Deviation("step_skipped", f"step {step.number} of {t.id} skipped", task=t.id,
                                 step=step.number, reason=step.skipped["reason"], who=step.skipped["who"],
                                 ts=step.skipped["ts"]))
        elif t.status == "done" and not step.runs and step.runnable and r.enriched:
            out.append(Deviation("step_not_run", f"step {step.number} of {t.id} neither run nor skipped",
                                 task=t.id, step=step.number, ts=t.finished))
    for g in t.guards:
        if g["overridden"]:
            where = f" step {g['step']}" if g.get("step") is not None else ""
            message = (f"task {t.id} finished with work not done" if g["guard"] == "finish" else
                       f"{g['guard']} guard overridden for {t.id}{where}")
            out.append(Deviation("guard_overridden", message, task=t.id,
                                 step=g.get("step"), reason=g["detail"], who=g["who"], ts=g["ts"]))
    for rbk in t.rollbacks:
        out.append(Deviation("rollback", f"rollback of {t.id} started", task=t.id, reason=rbk["reason"],
                             who=rbk["who"], ts=rbk["ts"]))
    for cb in t.checkboxes:
        if cb.probe_result and cb.probe_result["status"] in ("fail", "error"):
            out.append(Deviation("probe_failed", f"probe {cb.probe_result['probe']} {cb.probe_result['status']} "
                                 f"for \u201c{cb.text}\u201d", task=t.id, reason=cb.probe_result["evidence"]))
        if cb.checked:
            continue
        relevant = (
            (cb.kind in ("acceptance", "prerequisite") and started)
            or (cb.kind == "other" and (started or (r.finished and t.id.startswith("section:"))))
            or bool(cb.history)
        )
        if relevant and t.status != "skipped":
            label = {"acceptance": "acceptance criterion", "prerequisite": "prerequisite"}.get(cb.kind, "checkbox")
            reason = cb.reason or ("ticked, then unticked" if cb.history else "never ticked")
            out.append(Deviation("unticked", f"{label} left unticked: \u201c{cb.text or cb.key}\u201d", task=t.id,
                                 reason=reason, who=cb.who, ts=cb.ts))


def build_deviations(r: Report, s: SessionState, pairs: list[tuple[str, ev.Event]]) -> list[Deviation]:
    out: list[Deviation] = []
    for t in r.tasks():
        _task_deviations(out, r, t)
    for ts, e in pairs:
        if isinstance(e, ev.RunbookChanged):
            detail = ", ".join(x for x in (
                f"added {', '.join(e.tasks_added)}" if e.tasks_added else "",
                f"removed {', '.join(e.tasks_removed)}" if e.tasks_removed else "") if x)
            out.append(Deviation("runbook_changed", f"runbook changed during the session "
                                 f"({e.old_sha256[:12]} -> {e.new_sha256[:12]})", reason=detail, ts=ts))
        elif isinstance(e, ev.Recovered):
            out.append(Deviation("journal_recovered", f"journal repaired on open: {e.what}",
                                 reason=e.detail or (f"{e.bytes_dropped} bytes dropped" if e.bytes_dropped else ""),
                                 ts=ts))
        elif isinstance(e, ev.HostKeyAccepted):
            out.append(Deviation("host_key_accepted", f"new host key accepted for {e.host}", host=e.host,
                                 reason=e.fingerprint, who=e.who, ts=ts))
        elif isinstance(e, ev.ApprovalRefused):  # someone offered a signature that did not hold
            out.append(Deviation("approval_refused", f"approval of {e.task} refused", task=e.task,
                                 reason=e.reason + (f" (key {e.key_fingerprint})" if e.key_fingerprint else ""),
                                 who=e.who, ts=ts))
        elif isinstance(e, ev.NotificationFailed):  # the team was not told (--notify)
            out.append(Deviation("notification_failed", f"notification not delivered: {e.trigger} to {e.url}",
                                 reason=f"{e.error} ({e.attempts} attempt(s))", ts=ts))
        elif isinstance(e, ev.MirrorHandover):  # the jump host was lost: carried on elsewhere (--from)
            before = f"{e.previous_operator or '?'} on {e.previous_host or '?'}"
            torn = f"; a torn last record ({e.torn_bytes} bytes) dropped" if e.torn_bytes else ""
            out.append(Deviation("mirror_handover", f"session carried on from its mirror {e.source}",
                                 reason=f"{e.records} records copied; {before} -> {e.operator} on {e.host}{torn}",
                                 who=e.operator, ts=ts))
        elif isinstance(e, ev.MirrorChanged) and e.state in ("lost", "refused"):  # records not replicated for a while
            out.append(Deviation(f"mirror_{e.state}", f"journal mirror {e.dest} {e.state} at record {e.acked_seq}",
                                 reason=e.detail, ts=ts))
        elif isinstance(e, ev.WindowAlert):
            what = "the critical path no longer fitted in the window" if e.level == "red" else "the window was tight"
            out.append(Deviation("window_alert", f"window {e.level}: {what}",
                                 reason=f"{round(e.left_s / 60)} min left, critical path {round(e.critical_s / 60)} min",
                                 ts=ts))
    if r.unknown_event_types:
        out.append(Deviation("journal", "journal holds events this version does not know: "
                             + ", ".join(r.unknown_event_types)))
    if r.torn_tail:
        out.append(Deviation("journal", "the journal's last record is torn (crash mid-write); left out"))
    if r.redacted_records:
        out.append(Deviation("secrets", f"{len(r.redacted_records)} journal records held secrets and were redacted "
                             "in this export"))
    if not r.finished:
        tasks = [t for t in r.tasks() if not t.id.startswith(("section:", "gate:"))]
        done = sum(1 for t in tasks if t.status in ("done", "skipped"))
        state = "still open" if not r.closed else f"closed ({r.close_reason or 'quit'})"
        out.append(Deviation("unfinished", f"session not finished: {state}, {done} of {len(tasks)} tasks done",
                             ts=r.last_activity))
    end = _parse(r.window_end)
    last = _parse(r.ended or r.last_activity)
    if end and last and last > end:
        late = [run for t in r.tasks() for st in t.steps + t.rollback_steps for run in st.runs
                if (_parse(run.started) or end) > end]
        out.append(Deviation("window", f"session ran past the window end {fmt_ts(r.window_end)}"
                             + (f"; {len(late)} step runs started after it" if late else ""),
                             ts=r.ended or r.last_activity))
    out.sort(key=lambda d: d.ts or "")
    return out


# --- text helpers shared by the md and html renderers -----------------------------

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_NONCHAR = re.compile(r"[\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str, *, multiline: bool = True) -> str:
    """Text safe to show in a report viewed in a terminal or a browser: terminal escape
    sequences and control characters removed, bidi overrides made visible (``<U+202E>``),
    ``\\r`` turned into line breaks.  Single-line when ``multiline`` is false."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        text = " ".join(text.split("\n"))
    text = _CONTROL.sub("", text.replace("\t", "    ") if not multiline else text)
    text = _BIDI.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)
    return _NONCHAR.sub("\ufffd", text)


def cut_lines(text: str, limit: int) -> tuple[list[str], int]:
    """First and last lines of ``text`` (``limit`` in all) and how many were left out."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) <= limit:
        return lines, 0
    head = (limit + 1) // 2
    tail = limit - head
    omitted = len(lines) - limit
    return lines[:head] + [f"\u2026 {omitted} lines not shown \u2026"] + (lines[-tail:] if tail else []), omitted


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def exit_text(h: HostResult) -> str:
    if h.exit_status is not None:
        return str(h.exit_status)
    if h.exit_signal:
        return f"signal {h.exit_signal}"
    return "-"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
