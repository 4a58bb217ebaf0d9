"""Render a :class:`sessions.report.model.Report` as one self-contained HTML page.

No scripts, no external resources.  Every piece of text goes through :func:`h` (HTML
escaping after :func:`clean_text`), every element is closed, void elements are written
``<meta ... />``, so the page is also well-formed XML.  Output is cut to ``lines``
lines per host like the Markdown report.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

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

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#111;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left;
vertical-align:top}pre{background:#f4f4f4;padding:.5em;overflow-x:auto;white-space:pre-wrap}
.dev{background:#fff3f0}.ok{color:#176117}.bad{color:#a40000;font-weight:bold}.meta{color:#555}
code{background:#f4f4f4}h3{border-top:1px solid #ddd;padding-top:.5em}
"""
_BAD = {"failed", "timeout", "cancelled", "unknown", "skipped"}


def h(text: object, multiline: bool = False) -> str:
    """Escaped text for HTML element content or attribute values."""
    if text is None:
        return ""
    return html.escape(clean_text(str(text), multiline=multiline), quote=True)


def _cls(status: str) -> str:
    return "bad" if status in _BAD else ("ok" if status in ("succeeded", "done") else "meta")


def _who(who: str, ts: str = "") -> str:
    parts = ([f"by {h(who)}"] if who else []) + ([f"at {h(fmt_ts(ts))}"] if ts else [])
    return " ".join(parts)


def _table(out: list[str], head: tuple[str, ...], rows: Sequence[tuple[object, ...]], cls: str = "") -> None:
    attr = f' class="{cls}"' if cls else ""
    out.append(f"<table{attr}><thead><tr>" + "".join(f"<th>{h(c)}</th>" for c in head) + "</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{h(c) if c not in (None, '') else '-'}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")


def render_html(report: Report, *, lines: int = 200) -> str:
    r = report
    o: list[str] = []
    title = r.runbook_title or r.runbook_path or r.session_id
    o.append('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8" />'
             '<meta name="viewport" content="width=device-width, initial-scale=1" />'
             f"<title>Session report: {h(title)}</title><style>{_CSS}</style></head><body>")
    o.append(f"<h1>Session report: {h(title)}</h1>")
    o.append(f'<p class="meta">Session <code>{h(r.session_id)}</code> \u00b7 exported {h(fmt_ts(r.exported_at))} by '
             f"runbook {h(r.tool_version)} \u00b7 journal head <code>{h(r.journal_head)}</code> "
             f"({r.record_count} records)</p>")
    for w in r.warnings:
        o.append(f"<p><strong>Note:</strong> {h(w)}</p>")
    o.append(f'<section id="deviations"><h2>Deviations ({len(r.deviations)})</h2>')
    if r.deviations:
        _table(o, ("When", "Kind", "What", "Reason", "Who"),
               [(fmt_ts(d.ts) if d.ts else "", d.kind, d.message, d.reason, d.who) for d in r.deviations], "dev")
    else:
        o.append("<p>None: every step that ran succeeded, nothing was skipped or overridden.</p>")
    o.append("</section>")

    o.append('<section id="session"><h2>Session</h2>')
    opened_sha = r.runbook_sha256_opened if r.runbook_sha256_opened != r.runbook_sha256 else ""
    ended = (fmt_ts(r.ended) + (f" ({r.close_reason})" if r.close_reason else "")) if r.ended else \
        f"not closed (last activity {fmt_ts(r.last_activity)})"
    _table(o, ("Field", "Value"), [
        ("Runbook", r.runbook_title),
        ("Runbook file", f"{r.runbook_path} ({r.runbook_status})"),
        ("Runbook sha256", r.runbook_sha256 + (f" (opened with {opened_sha})" if opened_sha else "")),
        ("Session id", r.session_id),
        ("Operators", ", ".join(r.operators)),
        ("Jump host", ", ".join(r.jump_hosts)),
        ("Operator origin", ", ".join(r.origins)),
        ("Started", fmt_ts(r.started)),
        ("Ended", ended),
        ("Finished", "yes" if r.finished else "no"),
        ("Window end", fmt_ts(r.window_end) if r.window_end else "none set"),
        ("Tool version", ", ".join(r.tool_versions)),
        ("Journal head", r.journal_head),
        ("Journal records", r.record_count),
        ("Signed checkpoints", sum(1 for c in r.checkpoints if c["signed"])),
    ])
    if len(r.openings) > 1:
        _table(o, ("Opened", "How", "Operator", "Jump host", "Handed over from"),
               [(fmt_ts(x["ts"]), "resumed" if x["resumed"] else "created", x["operator"], x["jump_host"],
                 x.get("handover_from") or "") for x in r.openings])
    if r.placeholders:
        _table(o, ("Value", "Supplied", "By", "At"), [
            (p["name"], "(secret, not recorded)" if p["secret"] else p["value"], p["who"], fmt_ts(p["ts"]))
            for p in r.placeholders])
    _notes(o, r.notes)
    if r.approvers:
        o.append("<h4>Approvers (four-eyes approval)</h4><ul>" + "".join(
            f"<li>{h(a['path'])} (sha256 {h(a['sha256'])}) <span class=\"meta\">{_who(a['who'], a['ts'])}</span></li>"
            for a in r.approvers) + "</ul>")
    o.append("</section>")

    for ph in r.phases:
        head = (f"Phase {ph.number}: " if ph.number else "") + ph.title
        o.append(f"<section><h2>{h(head)}</h2>")
        for t in ph.tasks:
            _task(o, t, lines)
        o.append("</section>")
    o.append("</body></html>\n")
    return "".join(o)


def _notes(o: list[str], notes: list[dict[str, Any]]) -> None:
    if notes:
        o.append("<h4>Notes</h4><ul>" + "".join(
            f"<li>{h(n['text'])} <span class=\"meta\">({_who(n['who'], n['ts'])})</span></li>" for n in notes)
            + "</ul>")


def _task(o: list[str], t: TaskReport, lines: int) -> None:
    title = f" \u2014 {h(t.title)}" if t.title else ""
    o.append(f'<article id="task-{h(t.id)}"><h3>{h(t.id)}{title}</h3>')
    meta = [f'<span class="{_cls(t.status)}">{h(t.status)}</span>']
    meta += task_meta(t, h)
    o.append("<p>" + " \u00b7 ".join(meta) + "</p>")
    quiet = t.status == "pending" and not any(s.runs or s.skipped for s in t.steps) and not any(
        c.history for c in t.checkboxes)
    _approvals(o, t)
    if not quiet:
        for s in t.steps:
            _step(o, s, lines, False)
        if t.guards:
            o.append("<ul>" + "".join(
                f"<li>Guard {h(g['guard'])}{(' (step ' + h(g['step']) + ')') if g.get('step') is not None else ''} "
                f"{'<strong>overridden</strong>' if g['overridden'] else 'passed'} {_who(g['who'], g['ts'])}: "
                f"{h(g['detail'])}</li>" for g in t.guards) + "</ul>")
        if t.rollbacks:
            o.append("<ul>" + "".join(f"<li><strong>Rollback started</strong> {_who(x['who'], x['ts'])}: "
                                      f"{h(x['reason'])}</li>" for x in t.rollbacks) + "</ul>")
        for s in t.rollback_steps:
            _step(o, s, lines, True)
        if t.checkboxes:
            o.append("<h4>Checkboxes</h4><ul>" + "".join(_checkbox(c) for c in t.checkboxes) + "</ul>")
        _notes(o, t.notes)
    o.append("</article>")


def _approvals(o: list[str], t: TaskReport) -> None:
    """The task's four-eyes approval: requests, refusals, each grant with its signature and request."""
    if not t.approvals:
        return
    items: list[str] = []
    for a in t.approvals:
        if a["kind"] == "requested":
            items.append(f"<li>Approval requested {_who(a['who'], a['ts'])}: request {h(a['request_id'])} "
                         f"(plan sha256 {h(a['plan_sha256'])}; operator keys "
                         f"{h(', '.join(a['operator_keys']) or 'none')})</li>")
        elif a["kind"] == "refused":
            key = f" (key {h(a['key_fingerprint'])})" if a["key_fingerprint"] else ""
            items.append(f"<li>Approval <strong>refused</strong> {_who(a['who'], a['ts'])}{key}: {h(a['reason'])}</li>")
        else:
            items.append(f"<li><strong>Approved</strong> by {h(a['principal'])} with {h(a['key_fingerprint'])} "
                         f"(request {h(a['request_id'])}, checked {_who(a['who'], a['ts'])}); signature (namespace "
                         f"{h(a['namespace'])}):<pre>{h(a['signature'], True)}</pre>over the request:"
                         f"<pre>{h(a['message'], True)}</pre></li>")
    o.append("<h4>Approval</h4><ul>" + "".join(items) + "</ul>")


def _checkbox(c: CheckboxReport) -> str:
    mark = "\u2611" if c.checked else "\u2610"
    kind = {"acceptance": " (acceptance)", "prerequisite": " (prerequisite)"}.get(c.kind, "")
    s = f"<li>{mark} {h(c.text or c.key)}{kind} \u2014 "
    if c.checked:
        s += f"ticked {_who(c.who, c.ts)}" + (f"; evidence: {h(c.evidence)}" if c.evidence else "")
    else:
        s += '<span class="bad">not ticked</span>' + (f" ({h(c.reason)}, {_who(c.who, c.ts)})" if c.history else "")
    if c.probe_result:
        p = c.probe_result
        s += f"; probe <code>{h(p['probe'])}</code>: {h(p['status'])} {h(p['evidence'])}"
    return s + "</li>"


def _step(o: list[str], s: StepReport, lines: int, rollback: bool) -> None:
    kind = "Rollback step" if rollback else "Step"
    o.append(f"<h4>{kind} {s.number}{(': ' + h(s.title)) if s.title else ''} \u2014 "
             f'<span class="{_cls(s.status)}">{h(outcome_word(s.status))}</span></h4>')
    if s.hosts:
        o.append(f"<p>Last outcome per host over {h(plural(s.run_count, 'run'))}: {h(matrix_text(s))}</p>")
    if s.skipped:
        o.append(f"<p>Skipped {_who(s.skipped['who'], s.skipped['ts'])}: {h(s.skipped['reason'])}</p>")
    if not s.runs and not s.skipped:
        o.append("<p>Not run.</p>")
    for run in s.runs:
        _run(o, run, lines)


def _run(o: list[str], run: RunReport, lines: int) -> None:
    again = " (superseded by a later run)" if run.superseded else ""
    flags = ", ".join(x for x in (run.mode, "detached" if run.detached else "", "pty" if run.pty else "") if x)
    o.append(f"<p>Run <code>{h(run.run_id)}</code>{again} {_who(run.who, run.started)} on "
             f"{h(', '.join(run.targets))} ({h(flags)}): <span class=\"{_cls(run.outcome)}\">{h(outcome_word(run.outcome))}</span> "
             f"in {h(fmt_duration(run.duration_s))}</p>")
    o.append(f"<pre><code>{h(run.command, True)}</code></pre>")
    rows = []
    for x in run.hosts:
        outcome = outcome_word(x.outcome) + (f" (operator: {x.decided}: {x.decided_reason})" if x.decided else "")
        outcome += " (no end recorded)" if x.no_end_recorded else ""
        rows.append((x.host, outcome, exit_text(x), fmt_duration(x.duration_s),
                     f"{plural(x.output.lines, 'line')}, {fmt_bytes(x.output.bytes)}, sha256 {x.output.sha256}"))
    _table(o, ("Host", "Outcome", "Exit", "Duration", "Output"), rows)
    if run.files:
        o.append("<ul>" + "".join(f"<li>uploaded <code>{h(f['path'])}</code> to {h(f['host'])} (mode {h(f['mode'])}, "
                                  f"sha256 {h(f['sha256'])})</li>" for f in run.files) + "</ul>")
    for x in run.hosts:
        if x.error:
            o.append(f"<p>Host {h(x.host)}: {h(x.error)}</p>")
        if x.expectations:
            items = []
            for e in x.expectations:
                met = "met" if e["passed"] else "<strong>NOT met</strong>"
                evidence = f" ({h(e['evidence'])})" if e.get("evidence") else ""
                items.append(f"<li>expectation #{e['index'] + 1} on {h(x.host)}: {met}{evidence}</li>")
            o.append("<ul>" + "".join(items) + "</ul>")
        if not x.output.bytes:
            continue
        shown, omitted = cut_lines(x.output.text, lines)
        note = f", first and last {lines} of {x.output.lines} lines shown" if omitted else ""
        o.append(f'<p class="meta">Output of {h(x.host)} (sha256 {h(x.output.sha256)}{note}):</p>')
        if shown:
            o.append(f"<pre>{h(chr(10).join(shown), True)}</pre>")
