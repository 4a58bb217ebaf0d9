"""Render a :class:`sessions.report.model.Report` as Markdown.

Everything that came from the journal is escaped: inline text gets backslash escapes
(so ``<script>`` or ``[x](y)`` in a note stays text), code and output go into fences
longer than any backtick run inside them, and terminal escape sequences are removed
(:func:`clean_text`).  Output is cut to ``lines`` lines per host (first and last
half), with the size and sha256 of the full output, which the JSON export carries.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sessions.report.model import (
    CheckboxReport,
    Report,
    RunReport,
    StepReport,
    TaskReport,
    clean_text,
    cut_lines,
    exit_text,
    fmt_bytes,
    fmt_duration,
    fmt_ts,
    matrix_text,
    outcome_word,
    plural,
    task_meta,
)

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")


Add = Callable[[str], None]  # appends one line of the document


def esc(text: object) -> str:
    """One line of inline Markdown showing ``text`` literally."""
    if text is None:
        return ""
    return _MD_SPECIAL.sub(r"\\\1", clean_text(str(text), multiline=False))


def fence(text: str, lang: str = "") -> str:
    body = clean_text(text)
    runs = [len(m) for m in re.findall(r"`+", body)] + [len(m) for m in re.findall(r"~+", body)]
    ticks = "`" * max(3, max(runs, default=0) + 1)
    if not body.endswith("\n"):
        body += "\n"
    return f"{ticks}{lang}\n{body}{ticks}\n"


def _row(*cells: object) -> str:
    return "| " + " | ".join(esc(c) if c not in (None, "") else "-" for c in cells) + " |"


def _who(who: str, ts: str = "") -> str:
    parts = []
    if who:
        parts.append(f"by {esc(who)}")
    if ts:
        parts.append(f"at {esc(fmt_ts(ts))}")
    return " ".join(parts)


def render_md(report: Report, *, lines: int = 200) -> str:
    r = report
    out: list[str] = []
    add = out.append
    add(f"# Session report: {esc(r.runbook_title or r.runbook_path or r.session_id)}\n")
    add(f"Session `{esc(r.session_id)}` \u00b7 exported {esc(fmt_ts(r.exported_at))} by runbook {esc(r.tool_version)}"
        f" \u00b7 journal head `{esc(r.journal_head)}` ({r.record_count} records)\n")
    for w in r.warnings:
        add(f"> **Note:** {esc(w)}\n")

    add(f"## Deviations ({len(r.deviations)})\n")
    if not r.deviations:
        add("None: every step that ran succeeded, nothing was skipped or overridden.\n")
    else:
        add(_row("When", "Kind", "What", "Reason", "Who"))
        add("|---|---|---|---|---|")
        for d in r.deviations:
            add(_row(fmt_ts(d.ts) if d.ts else "", d.kind, d.message, d.reason, d.who))
        add("")

    add("## Session\n")
    add("| | |\n|---|---|")
    opened_sha = r.runbook_sha256_opened if r.runbook_sha256_opened != r.runbook_sha256 else ""
    rows = [
        ("Runbook", r.runbook_title),
        ("Runbook file", f"{r.runbook_path} ({r.runbook_status})"),
        ("Runbook sha256", r.runbook_sha256 + (f" (opened with {opened_sha})" if opened_sha else "")),
        ("Session id", r.session_id),
        ("Operators", ", ".join(r.operators)),
        ("Jump host", ", ".join(r.jump_hosts)),
        ("Operator origin", ", ".join(r.origins)),
        ("Started", fmt_ts(r.started)),
        ("Ended", fmt_ts(r.ended) + (f" ({r.close_reason})" if r.close_reason else "") if r.ended
         else f"not closed (last activity {fmt_ts(r.last_activity)})"),
        ("Finished", "yes" if r.finished else "no"),
        ("Window end", fmt_ts(r.window_end) if r.window_end else "none set"),
        ("Tool version", ", ".join(r.tool_versions)),
        ("Journal head", r.journal_head),
        ("Journal records", str(r.record_count)),
        ("Signed checkpoints", str(sum(1 for c in r.checkpoints if c["signed"]))),
    ]
    for k, v in rows:
        add(_row(k, v))
    add("")
    if len(r.openings) > 1:
        add("Opened:\n")
        for o in r.openings:
            how = "resumed" if o["resumed"] else "created"
            hand = f", handed over from {esc(o['handover_from'])}" if o.get("handover_from") else ""
            add(f"- {esc(fmt_ts(o['ts']))}: {how} by {esc(o['operator'])} on {esc(o['jump_host'])}{hand}")
        add("")
    if r.placeholders:
        add("Values supplied:\n")
        for p in r.placeholders:
            val = "(secret, not recorded)" if p["secret"] else f"`{esc(p['value'])}`"
            add(f"- {esc(p['name'])}: {val} {_who(p['who'], p['ts'])}")
        add("")
    if r.notes:
        add("Notes:\n")
        for n in r.notes:
            add(f"- {esc(n['text'])} ({_who(n['who'], n['ts'])})")
        add("")
    if r.approvers:
        add("Approvers (four-eyes approval):\n")
        for a in r.approvers:
            add(f"- {esc(a['path'])} (sha256 {esc(a['sha256'])}) {_who(a['who'], a['ts'])}")
        add("")

    for ph in r.phases:
        add(f"## {('Phase ' + esc(ph.number) + ': ') if ph.number else ''}{esc(ph.title)}\n")
        for t in ph.tasks:
            _task(add, t, lines)
    return "\n".join(out).rstrip("\n") + "\n"


def _task(add: Add, t: TaskReport, lines: int) -> None:
    title = f" \u2014 {esc(t.title)}" if t.title else ""
    add(f"### {esc(t.id)}{title}\n")
    meta = [f"**{esc(t.status)}**"]
    meta += task_meta(t, esc)
    add(" \u00b7 ".join(meta) + "\n")
    _approvals(add, t)
    if t.status == "pending" and not any(s.runs or s.skipped for s in t.steps) and not any(
            c.history for c in t.checkboxes):
        return
    for s in t.steps:
        _step(add, s, lines, rollback=False)
    for g in t.guards:
        verb = "overridden" if g["overridden"] else "passed"
        step = f" (step {g['step']})" if g.get("step") is not None else ""
        add(f"- Guard {esc(g['guard'])}{step} {verb} {_who(g['who'], g['ts'])}: {esc(g['detail'])}")
    if t.guards:
        add("")
    for rb in t.rollbacks:
        add(f"- **Rollback started** {_who(rb['who'], rb['ts'])}: {esc(rb['reason'])}")
    if t.rollbacks:
        add("")
    for s in t.rollback_steps:
        _step(add, s, lines, rollback=True)
    if t.checkboxes:
        add("Checkboxes:\n")
        for c in t.checkboxes:
            add(_checkbox(c))
        add("")
    if t.notes:
        add("Notes:\n")
        for n in t.notes:
            add(f"- {esc(n['text'])} ({_who(n['who'], n['ts'])})")
        add("")


def _approvals(add: Add, t: TaskReport) -> None:
    """The task's four-eyes approval: requests, refusals, and each grant with its signature and the
    request it signs (check it: ``ssh-keygen -Y verify -f APPROVERS -I PRINCIPAL -n NAMESPACE -s SIG < REQUEST``)."""
    for a in t.approvals:
        if a["kind"] == "requested":
            add(f"- Approval requested {_who(a['who'], a['ts'])}: request {esc(a['request_id'])} "
                f"(plan sha256 {esc(a['plan_sha256'])}; operator keys {esc(', '.join(a['operator_keys']) or 'none')})")
        elif a["kind"] == "refused":
            key = f" (key {esc(a['key_fingerprint'])})" if a["key_fingerprint"] else ""
            add(f"- Approval **refused** {_who(a['who'], a['ts'])}{key}: {esc(a['reason'])}")
        else:
            add(f"- **Approved** by {esc(a['principal'])} with {esc(a['key_fingerprint'])} "
                f"(request {esc(a['request_id'])}, checked {_who(a['who'], a['ts'])}); the signature "
                f"(namespace {esc(a['namespace'])}) and the request it signs:\n")
            add(fence(a["signature"]))
            add(fence(a["message"], "json"))
    if t.approvals:
        add("")


def _checkbox(c: CheckboxReport) -> str:
    mark = "x" if c.checked else " "
    kind = {"acceptance": "acceptance", "prerequisite": "prerequisite"}.get(c.kind, "")
    line = f"- [{mark}] {esc(c.text or c.key)}" + (f" ({kind})" if kind else "")
    if c.checked:
        line += f" \u2014 ticked {_who(c.who, c.ts)}"
        if c.evidence:
            line += f"; evidence: {esc(c.evidence)}"
    else:
        line += " \u2014 not ticked" + (f" ({esc(c.reason)}, {_who(c.who, c.ts)})" if c.history else "")
    if c.probe_result:
        p = c.probe_result
        line += f"; probe `{esc(p['probe'])}`: {esc(p['status'])} {esc(p['evidence'])}"
    return line


def _step(add: Add, s: StepReport, lines: int, rollback: bool) -> None:
    kind = "Rollback step" if rollback else "Step"
    title = f": {esc(s.title)}" if s.title else ""
    add(f"#### {kind} {s.number}{title} \u2014 {esc(outcome_word(s.status))}\n")
    if s.hosts:
        add(f"Last outcome per host over {plural(s.run_count, 'run')}: {esc(matrix_text(s))}\n")
    if s.skipped:
        add(f"Skipped {_who(s.skipped['who'], s.skipped['ts'])}: {esc(s.skipped['reason'])}\n")
    if not s.runs and not s.skipped:
        add("Not run.\n")
    for run in s.runs:
        _run(add, run, lines)


def _run(add: Add, run: RunReport, lines: int) -> None:
    again = " (superseded by a later run)" if run.superseded else ""
    flags = ", ".join(x for x in (run.mode, "detached" if run.detached else "", "pty" if run.pty else "") if x)
    add(f"Run `{esc(run.run_id)}`{again} {_who(run.who, run.started)} on {esc(', '.join(run.targets))} "
        f"({esc(flags)}): **{esc(outcome_word(run.outcome))}** in {fmt_duration(run.duration_s)}\n")
    add(fence(run.command, "bash"))
    add("| Host | Outcome | Exit | Duration | Output |\n|---|---|---|---|---|")
    for h in run.hosts:
        outcome = outcome_word(h.outcome) + (f" (operator: {h.decided}: {h.decided_reason})" if h.decided else "")
        if h.no_end_recorded:
            outcome += " (no end recorded)"
        add(_row(h.host, outcome, exit_text(h), fmt_duration(h.duration_s),
                 f"{plural(h.output.lines, 'line')}, {fmt_bytes(h.output.bytes)}, sha256 {h.output.sha256}"))
    add("")
    for f in run.files:
        add(f"- uploaded `{esc(f['path'])}` to {esc(f['host'])} (mode {esc(f['mode'])}, sha256 {esc(f['sha256'])})")
    if run.files:
        add("")
    for h in run.hosts:
        if h.error:
            add(f"Host {esc(h.host)}: {esc(h.error)}\n")
        for x in h.expectations:
            add(f"- expectation #{x['index'] + 1} on {esc(h.host)}: {'met' if x['passed'] else 'NOT met'}"
                + (f" ({esc(x['evidence'])})" if x.get("evidence") else ""))
        if h.expectations:
            add("")
        if not h.output.bytes:
            continue
        shown, omitted = cut_lines(h.output.text, lines)
        note = (f", first and last {lines} of {h.output.lines} lines shown" if omitted else "")
        add(f"Output of {esc(h.host)} (sha256 {h.output.sha256}{note}):\n")
        if shown:
            add(fence("\n".join(shown)))
