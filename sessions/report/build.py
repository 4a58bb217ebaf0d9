"""The session report, built from the journal alone.

:func:`build_report` reads a journal (checking its hash chain), runs the defensive
secret check (:mod:`sessions.report.redact`), folds the events with
:func:`sessions.state.state.replay` and turns the result into a :class:`Report`: the
deviations first, then a header, then per phase and task what happened.  The
renderers (:mod:`sessions.report.as_markdown`, :mod:`sessions.report.as_html`,
:mod:`sessions.report.as_json`) only format a :class:`Report`.

The runbook file is not needed: task ids, checkbox texts and commands come from the
journal.  When the file still exists and its sha256 is the one the journal last saw,
titles, phases and the list of checkboxes and steps are added from
``runbook.parse.parser.parse_file``; criteria that were never ticked can only be listed then.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.errors import UserError
from runbook.model import Checkbox, Gate, Runbook, Step, Task
from runbook.reading.files import open_regular
from sessions.journal import events as ev
from sessions.journal.events import UnknownEvent
from sessions.journal.format import Chain, ForeignEvent, decode_event, journal_lines
from sessions.report.model import (
    CheckboxReport,
    Deviation,
    HostResult,
    OutputText,
    PhaseReport,
    Report,
    RunReport,
    StepReport,
    TaskReport,
    build_deviations,
    fmt_ts,
)
from sessions.report.redact import Redactor, secret_values_in
from sessions.state.state import PENDING, RUNNING, UNKNOWN, SessionState, StepRun, replay


@dataclass
class JournalCopy:
    """The journal as exported: the JSON object of every line, in order.

    ``lines`` holds each line as read (None once the secret check changed the record);
    ``redacted`` lists the seqs the secret check had to change: their content no
    longer hashes to ``h`` (the chain links are still checked)."""

    path: str
    records: list[dict[str, Any]]
    lines: list[bytes | None]
    events: list[Any]  # Event; OUTPUT for output chunks (kept as JSON); None: unknown type
    count: int
    head: str
    torn_tail: bool = False
    redacted: list[int] = field(default_factory=list)
    unknown_types: list[str] = field(default_factory=list)
    #: (run_id, host) -> that host's output chunks as exported (filled by :func:`scrub`)
    streams: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)


OUTPUT = object()  # marks an output chunk in JournalCopy.events (not decoded: speed)


def read_journal(path: str | os.PathLike[str]) -> JournalCopy:
    """Read and chain-check a journal (:class:`~sessions.journal.format.Chain`, as every reader
    does); raise :class:`TamperedJournal` at the first bad record.  A torn last line (crash
    mid-append) is left out.  Records of event types this build does not know are kept
    verbatim and left out of the report (the format's unknown-type policy for an export)."""
    p = str(path)
    records: list[dict[str, Any]] = []
    lines: list[bytes | None] = []
    events: list[Any] = []
    chain = Chain(p, keep_unknown=True)
    torn = False
    try:
        fh = os.fdopen(open_regular(p, "journal"), "rb")
    except FileNotFoundError:
        raise UserError(f"{p}: no such journal") from None
    except OSError as exc:
        raise UserError(f"{p}: cannot read journal: {exc.strerror or exc}") from None
    with fh:
        for lineno, (line, complete) in enumerate(journal_lines(fh, p), start=1):
            if not complete:
                torn = True
                break
            prev = chain.head
            seq, ts, h, data, event = chain.parse(line, lineno)
            records.append({"event": data, "h": h, "prev": prev, "seq": seq, "ts": ts})
            lines.append(line)
            # an output chunk stays JSON (OUTPUT): the report reads its bytes from the records
            events.append(OUTPUT if type(event) is ev.OutputChunk else None if type(event) is ForeignEvent
                          else event)
    if not records:
        raise UserError(f"{p}: journal is empty")
    return JournalCopy(p, records, lines, events, chain.count, chain.head, torn, unknown_types=sorted(chain.foreign))


def scrub(journal: JournalCopy, secrets: Iterable[str] = ()) -> Redactor:
    """Remove secrets from the journal copy in place (records, events) and collect each
    host's output stream into ``journal.streams``."""
    red = Redactor(list(secrets) + secret_values_in(r["event"] for r in journal.records))
    idx: dict[tuple[str, str], list[int]] = {}
    for i, rec in enumerate(journal.records):
        data = rec["event"]
        if journal.events[i] is OUTPUT:
            idx.setdefault((data["run_id"], data["host"]), []).append(i)
            continue
        clean = red.event(data)
        if clean is not data:
            _replace(journal, i, clean)
    for key, idxs in idx.items():
        chunks = [_chunk_bytes(journal.records[i]["event"]) for i in idxs]
        new = red.scrub_chunks(chunks)
        if new is not None:
            for i, old, raw in zip(idxs, chunks, new, strict=True):
                if raw != old:
                    chunk = ev.OutputChunk.from_bytes("", "", "", raw)
                    _replace(journal, i, {**journal.records[i]["event"], "data": chunk.data, "b64": chunk.b64})
            chunks = new
        journal.streams[key] = chunks
    journal.redacted.sort()
    return red


def _chunk_bytes(data: dict[str, Any]) -> bytes:
    if data.get("b64") is not None:
        import base64

        return base64.b64decode(data["b64"])
    return str(data.get("data", "")).encode("utf-8", "surrogatepass")


def _replace(journal: JournalCopy, i: int, data: dict[str, Any]) -> None:
    rec = journal.records[i]
    journal.records[i] = {**rec, "event": data}
    journal.lines[i] = None
    if journal.events[i] is not OUTPUT:
        try:
            journal.events[i] = decode_event(data)
        except (UnknownEvent, ValueError, TypeError):
            journal.events[i] = None
    journal.redacted.append(rec["seq"])


# --- the runbook, when it is still there ----------------------------------------


def _runbook_status(path: str, sha: str) -> tuple[str, Any]:
    """``(status, Runbook or None)``; status: matches, changed, missing, unreadable, not parsed."""
    if not path:
        return "unknown", None
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return "missing", None
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})", None
    now = hashlib.sha256(data).hexdigest()
    if now != sha:
        return f"changed (sha256 now {now})", None
    try:
        from runbook.parse.parser import parse_file  # written concurrently; optional here
    except ImportError:
        return "matches (not parsed: runbook.parse.parser unavailable)", None
    try:
        return "matches", parse_file(path)
    except Exception as exc:  # noqa: BLE001 - enrichment must never break an export
        return f"matches (not parsed: {type(exc).__name__})", None


# --- building -------------------------------------------------------------------


def build_report(
    journal: str | os.PathLike[str] | JournalCopy,
    *,
    secrets: Iterable[str] = (),
    use_runbook: bool = True,
) -> Report:
    """Build the report of the session whose journal is at ``journal``."""
    from runbook import __version__

    jc = journal if isinstance(journal, JournalCopy) else read_journal(journal)
    red = scrub(jc, secrets)
    pairs: list[tuple[str, ev.Event]] = []
    seen_out: set[tuple[str, str]] = set()
    for rec, e in zip(jc.records, jc.events, strict=True):
        if e is None:
            continue
        if e is OUTPUT:  # only a host's first chunk changes state (pending -> running)
            data = rec["event"]
            key = (data["run_id"], data["host"])
            if key in seen_out:
                continue
            seen_out.add(key)
            e = decode_event(data)
        pairs.append((rec["ts"], e))
    outputs = jc.streams
    state = replay(pairs)
    status, rb = _runbook_status(state.runbook_path, state.runbook_sha256) if use_runbook else ("not checked", None)
    report = Report(
        exported_at=_utc_now(), tool_version=__version__, journal_path=jc.path, journal_head=jc.head,
        record_count=jc.count, redacted_records=list(jc.redacted), torn_tail=jc.torn_tail,
        unknown_event_types=list(jc.unknown_types), runbook_status=status, enriched=rb is not None,
    )
    _fill_header(report, state, pairs)
    _fill_tasks(report, state, pairs, outputs, rb)
    report.deviations = build_deviations(report, state, pairs)
    if red.hits:
        report.warnings.append(f"the export removed secrets the journal should not have held ({red.hits} places)")
    if not report.enriched:
        report.warnings.append(
            f"runbook file {status}: titles and phases come from the journal; criteria never ticked are not listed"
        )
    return report


def _utc_now() -> str:
    from sessions.journal.journal import utc_now

    return utc_now()


def _fill_header(r: Report, s: SessionState, pairs: list[tuple[str, ev.Event]]) -> None:
    r.session_id, r.runbook_title, r.runbook_path = s.session_id, s.runbook_title, s.runbook_path
    r.runbook_sha256 = s.runbook_sha256
    r.operators = list(s.operators)
    r.started = pairs[0][0] if pairs else ""
    r.last_activity = s.last_activity or ""
    r.closed, r.finished, r.window_end = s.closed, s.finished, s.window_end
    for ts, e in pairs:
        if isinstance(e, ev.SessionOpened):
            r.runbook_sha256_opened = r.runbook_sha256_opened or e.runbook_sha256
            for attr, val in (("jump_hosts", e.jump_host), ("tool_versions", e.tool_version), ("origins", e.origin)):
                if val and val not in getattr(r, attr):
                    getattr(r, attr).append(val)
            r.openings.append({"ts": ts, "operator": e.operator, "resumed": e.resumed,
                               "handover_from": e.handover_from, "jump_host": e.jump_host, "pid": e.pid})
        elif isinstance(e, ev.SessionClosed):
            r.ended, r.close_reason = ts, e.reason
        elif isinstance(e, ev.PlaceholderSupplied):
            secret = e.secret or _secret_name(e.name)
            r.placeholders.append({"name": e.name, "secret": secret, "who": e.who, "ts": ts,
                                   "value": None if secret else e.value})
        elif isinstance(e, ev.Checkpoint):
            r.checkpoints.append({"ts": ts, "seq": e.seq, "head": e.head, "signed": bool(e.signature),
                                  "key_fingerprint": e.key_fingerprint})
        elif isinstance(e, ev.Note) and not e.task:
            r.notes.append({"ts": ts, "who": e.who, "text": e.text})
    if not s.closed:
        r.ended = ""


def _secret_name(name: str) -> bool:
    from runbook.model import is_secret_name

    return is_secret_name(name)


def _host_result(run: StepRun, name: str, out: list[bytes] | None, expectations: list[dict[str, Any]],
                 decided_by: str) -> HostResult:
    h = run.hosts[name]
    status = h.status
    if status in (RUNNING, PENDING) and not run.finished:
        status = UNKNOWN  # no end recorded: outcome unknown, never success
    effective = str(h.effective) if status == h.status else status  # decisions and unmet expectations count
    raw = b"".join(out or ())
    text = raw.decode("utf-8", "replace")
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    return HostResult(
        host=name, outcome=effective, status=status, exit_status=h.exit_status, exit_signal=h.exit_signal,
        duration_s=h.duration_s, error=h.error, decided=h.decided, decided_reason=h.decided_reason,
        decided_by=h.decided_by or decided_by, no_end_recorded=h.status in (RUNNING, PENDING) and not run.finished,
        output=OutputText(len(raw), lines, hashlib.sha256(raw).hexdigest(), text),
        expectations=expectations,
    )


@dataclass
class _Journaled:
    """What the journal says about runs and tasks beyond the folded state, indexed for the report."""

    started: dict[str, ev.StepStarted] = field(default_factory=dict)
    finished_ts: dict[str, str] = field(default_factory=dict)
    decided_by: dict[tuple[str, str | None], str] = field(default_factory=dict)
    uploads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    expect: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    skips: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    box_hist: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    guards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rollbacks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    approvals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # task ids in the order the journal first names them

    def seen(self, task: str) -> None:
        if task and task not in self.order:
            self.order.append(task)

    def add_run_event(self, ts: str, e: ev.Event) -> bool:
        """Index an event about a step run; False when ``e`` is not one."""
        if isinstance(e, ev.StepStarted):
            self.started[e.run_id] = e
            self.seen(e.task)
        elif isinstance(e, ev.StepFinished):
            self.finished_ts[e.run_id] = ts
        elif isinstance(e, ev.StepOutcomeUnknown):
            self.finished_ts.setdefault(e.run_id, ts)
        elif isinstance(e, ev.OutcomeDecided):
            self.decided_by[(e.run_id, e.host)] = e.who
        elif isinstance(e, ev.FileUploaded):
            self.uploads.setdefault(e.run_id, []).append(
                {"host": e.host, "path": e.path, "sha256": e.sha256, "mode": e.mode})
        elif isinstance(e, ev.ExpectationChecked):
            self.expect.setdefault((e.run_id, e.host), []).append(
                {"index": e.index, "passed": e.passed, "evidence": e.evidence})
        else:
            return False
        return True

    def add_task_event(self, ts: str, e: ev.Event) -> None:
        """Index an event about a task (skips, checkboxes, notes, guards, rollbacks, approvals)."""
        if isinstance(e, ev.SessionOpened):
            for t in e.task_ids:
                self.seen(t)
        elif isinstance(e, ev.StepSkipped):
            self.skips[(e.task, e.step)] = {"reason": e.reason, "who": e.who, "ts": ts}
            self.seen(e.task)
        elif isinstance(e, (ev.CheckboxSet, ev.CheckboxCleared)):
            self.box_hist.setdefault(e.key, []).append({
                "ts": ts, "who": e.who, "checked": isinstance(e, ev.CheckboxSet), "text": e.text,
                "evidence": getattr(e, "evidence", ""), "reason": getattr(e, "reason", "")})
            self.seen(e.key.split("/", 1)[0])
        elif isinstance(e, ev.Note) and e.task:
            self.notes.setdefault(e.task, []).append({"ts": ts, "who": e.who, "text": e.text})
            self.seen(e.task)
        elif isinstance(e, (ev.GuardPassed, ev.GuardOverridden)):
            self.guards.setdefault(e.task, []).append({
                "ts": ts, "who": e.who, "guard": e.guard, "step": e.step,
                "overridden": isinstance(e, ev.GuardOverridden),
                "detail": getattr(e, "reason", "") or getattr(e, "detail", "")})
            self.seen(e.task)
        elif isinstance(e, ev.RollbackStarted):
            self.rollbacks.setdefault(e.task, []).append({"ts": ts, "who": e.who, "reason": e.reason})
            self.seen(e.task)
        elif isinstance(e, (ev.ApprovalRequested, ev.ApprovalGranted, ev.ApprovalRefused)):
            self.approvals.setdefault(e.task, []).append(_approval_entry(ts, e))
            self.seen(e.task)
        elif isinstance(e, (ev.TaskStarted, ev.TaskCompleted, ev.TaskSkipped)):
            self.seen(e.task)


def _run_reports(s: SessionState, j: _Journaled,
                 outputs: dict[tuple[str, str], list[bytes]]) -> dict[tuple[str, int, bool], list[RunReport]]:
    """Every run of the session as a :class:`RunReport`, grouped by (task, step, rollback)."""
    runs_by_step: dict[tuple[str, int, bool], list[RunReport]] = {}
    for rid, run in s.runs.items():
        st = j.started.get(rid)
        hosts = [
            _host_result(run, h, outputs.get((rid, h)), j.expect.get((rid, h), []),
                         j.decided_by.get((rid, h)) or j.decided_by.get((rid, None), ""))
            for h in run.hosts
        ]
        latest = s.latest_run.get((run.task, run.step, run.rollback)) == rid
        matrix = s.step_matrix(run.task, run.step, run.rollback)
        for hr in hosts:  # a host's result stands until a later run ran on that host
            cell = matrix.cell(hr.host)
            hr.superseded = cell is not None and bool(cell.run_id) and cell.run_id != rid
        rr = RunReport(
            run_id=rid, task=run.task, step=run.step, rollback=run.rollback, command=run.command,
            targets=list(run.targets), mode=run.mode, detached=run.detached, pty=bool(st and st.pty),
            who=run.who or (st.who if st else ""), started=run.started,
            finished=run.ended or j.finished_ts.get(rid, ""),
            outcome=_run_outcome(hosts, run), duration_s=run.duration_s, hosts=hosts,
            files=j.uploads.get(rid, []), superseded=not latest,
        )
        runs_by_step.setdefault((run.task, run.step, run.rollback), []).append(rr)
    return runs_by_step


def _phases_of(rb: Runbook | None, order: list[str]) -> tuple[list[tuple[PhaseReport, list[str]]], dict[str, _Item]]:
    """The report's phases, each with the ids of its tasks, and the runbook's item behind each id.

    The runbook's phases (tasks, then gates) come first, then checklists outside tasks, then
    tasks the journal names that the runbook file does not hold."""
    tasks_rb: dict[str, _Item] = {}
    phases: list[tuple[PhaseReport, list[str]]] = []
    if rb is not None:
        for ph in rb.phases:
            ids: list[str] = []
            for t in ph.tasks:
                tasks_rb[t.id] = t
                ids.append(t.id)
            for g in ph.gates:
                gid = f"gate:{ph.number}"
                tasks_rb[gid] = g
                ids.append(gid)
            phases.append((PhaseReport(number=ph.number, title=ph.title), ids))
        section_ids: list[str] = []
        for sec in rb.sections:
            for cb in sec.checkboxes:
                sid = cb.key.split("/", 1)[0]
                if sid not in tasks_rb:
                    tasks_rb[sid] = _SectionBoxes(sec.parent or sec.title)
                    section_ids.append(sid)
                item = tasks_rb[sid]
                if isinstance(item, _SectionBoxes):  # a section box keyed like a task is the task's
                    item.checkboxes.append(cb)
        if section_ids:
            phases.append((PhaseReport(number="", title="Checklists outside tasks"), section_ids))
    extra = [t for t in order if t not in tasks_rb]
    if extra:
        title = "Tasks not in the runbook file" if rb is not None else "Tasks (from the journal)"
        phases.append((PhaseReport(number="", title=title), extra))
    return phases, tasks_rb


def _fill_tasks(r: Report, s: SessionState, pairs: list[tuple[str, ev.Event]],
                outputs: dict[tuple[str, str], list[bytes]], rb: Runbook | None) -> None:
    j = _Journaled()
    for ts, e in pairs:
        if isinstance(e, ev.ApproversSet):
            r.approvers.append({"ts": ts, "who": e.who, "path": e.path, "sha256": e.sha256, "text": e.text})
        elif not j.add_run_event(ts, e):
            j.add_task_event(ts, e)
    runs_by_step = _run_reports(s, j, outputs)
    phases, tasks_rb = _phases_of(rb, j.order)
    for pr, task_ids in phases:
        pr.tasks = [
            _task_report(tid, tasks_rb.get(tid), s, runs_by_step, j.skips, j.box_hist, j.notes, j.guards,
                         j.rollbacks, j.approvals)
            for tid in task_ids
        ]
    r.phases = [pr for pr, _ in phases]


def _approval_entry(ts: str, e: ev.ApprovalRequested | ev.ApprovalGranted | ev.ApprovalRefused) -> dict[str, Any]:
    """One approval record of a task, as the reports show it."""
    if isinstance(e, ev.ApprovalRequested):
        return {"kind": "requested", "ts": ts, "who": e.who, "request_id": e.request_id, "request": e.path,
                "plan_sha256": e.plan_sha256, "operator_keys": list(e.operator_keys)}
    if isinstance(e, ev.ApprovalGranted):
        return {"kind": "granted", "ts": ts, "who": e.who, "request_id": e.request_id, "principal": e.principal,
                "key_fingerprint": e.key_fingerprint, "namespace": e.namespace, "signature": e.signature,
                "message": e.message, "source": e.source}
    return {"kind": "refused", "ts": ts, "who": e.who, "request_id": e.request_id, "reason": e.reason,
            "key_fingerprint": e.key_fingerprint, "principal": e.principal, "source": e.source}


class _SectionBoxes:
    """Checkboxes of a document section outside any task (e.g. the final gate)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.checkboxes: list[Checkbox] = []


_Item = Task | Gate | _SectionBoxes  # what a report's task row stands for in the runbook


def _run_outcome(hosts: list[HostResult], run: StepRun) -> str:
    from sessions.state.state import worst

    if not hosts:
        return run.outcome if run.finished else UNKNOWN
    return worst(h.outcome for h in hosts)


def _task_report(tid: str, t: _Item | None, s: SessionState, runs_by_step: dict[tuple[str, int, bool], list[RunReport]],
                 skips: dict[tuple[str, int], dict[str, Any]], box_hist: dict[str, list[dict[str, Any]]],
                 notes: dict[str, list[dict[str, Any]]], guards: dict[str, list[dict[str, Any]]],
                 rollbacks: dict[str, list[dict[str, Any]]],
                 approvals: dict[str, list[dict[str, Any]]] | None = None) -> TaskReport:
    ts = s.tasks.get(tid)
    tr = TaskReport(
        id=tid, title=t.title if t is not None else "",
        status=s.item_status(tid, (st.number for st in _steps_of(t)), gate=isinstance(t, Gate)),
        who=ts.who if ts else "", started=(ts.started or "") if ts else "", finished=(ts.finished or "") if ts else "",
        skip_reason=ts.skip_reason if ts else "", in_runbook=t is not None,
        notes=notes.get(tid, []), guards=guards.get(tid, []), rollbacks=rollbacks.get(tid, []),
        approvals=(approvals or {}).get(tid, []),
    )
    step_titles = {st.number: st.title for st in _steps_of(t)}
    rollback = t.rollback if isinstance(t, Task) else None
    rb_titles = {st.number: st.title for st in (rollback.steps if rollback is not None else ())}
    for is_rb, titles, target in ((False, step_titles, tr.steps), (True, rb_titles, tr.rollback_steps)):
        numbers = set(titles) if not is_rb else set()
        numbers |= {n for (task, n, rb_) in runs_by_step if task == tid and rb_ == is_rb}
        if not is_rb:
            numbers |= {n for (task, n) in skips if task == tid}
        for n in sorted(numbers):
            runs = sorted(runs_by_step.get((tid, n, is_rb), []), key=lambda x: x.started)
            skip = skips.get((tid, n)) if not is_rb else None
            status = s.step_status(tid, n, is_rb)
            matrix = s.step_matrix(tid, n, is_rb)
            cells = [{"host": c.host, "status": str(c.status), "runs": c.runs, "run_id": c.run_id} for c in matrix.hosts]
            target.append(StepReport(number=n, title=titles.get(n, ""), runs=runs, status=str(status),
                                     skipped=skip, runnable=_runnable(t, n) if not is_rb else True,
                                     hosts=cells, run_count=matrix.runs))
    boxes: dict[str, CheckboxReport] = {}
    for kind, items in _boxes_of(t):
        for box in items:
            # a box written as `- [x]` in the runbook starts ticked, as the TUI shows it
            boxes[box.key] = CheckboxReport(key=box.key, text=box.text, kind=kind, probe=box.probe, checked=box.checked,
                                            evidence="pre-checked in the runbook" if box.checked else "")
    for key, hist in box_hist.items():
        if key.split("/", 1)[0] == tid and key not in boxes:
            boxes[key] = CheckboxReport(key=key, text=hist[-1]["text"], kind=_box_kind(key))
    for key, cb in boxes.items():
        st = s.checkboxes.get(key)
        hist = box_hist.get(key, [])
        cb.history = hist
        if st is not None:
            cb.checked, cb.who, cb.ts = st.checked, st.who, st.ts
            cb.evidence = st.evidence if st.checked else ""
            cb.reason = "" if st.checked else st.evidence
        cb.text = cb.text or (hist[-1]["text"] if hist else "")
        probe = s.probes.get(key)
        if probe is not None:
            cb.probe_result = {"probe": probe.probe, "status": probe.status, "evidence": probe.evidence,
                               "duration_s": probe.duration_s}
    tr.checkboxes = list(boxes.values())
    return tr


def _steps_of(t: _Item | None) -> Sequence[Step]:
    return t.steps if isinstance(t, (Task, Gate)) else ()


def _boxes_of(t: _Item | None) -> list[tuple[str, Sequence[Checkbox]]]:
    """The item's checkboxes by kind: a task's prerequisites and acceptance criteria, a gate's
    or a section's boxes ("other")."""
    if isinstance(t, Task):
        return [("prerequisite", t.prerequisites), ("acceptance", t.acceptance)]
    if isinstance(t, (Gate, _SectionBoxes)):
        return [("other", t.checkboxes)]
    return []


def _runnable(task: _Item | None, n: int) -> bool:
    for st in _steps_of(task):
        if st.number == n:
            return st.runnable
    return True


def _box_kind(key: str) -> str:
    if "/acceptance/" in key:
        return "acceptance"
    if "/prerequisites/" in key:
        return "prerequisite"
    return "other"


def report_to_json(report: Report) -> dict[str, Any]:
    return dataclasses.asdict(report)


__all__ = ["Deviation", "JournalCopy", "Report", "build_report", "fmt_ts", "read_journal", "report_to_json", "scrub"]
