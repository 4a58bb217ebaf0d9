"""``runbook lint``, ``runbook show`` and ``runbook plan``.

Exit codes: 0 clean (or only warnings/info), 1 lint errors, 2 usage or
unreadable input (one line naming the file, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from runbook.errors import UserError
from runbook.lint.lint import lint as lint_runbook
from runbook.model import Approval, Block, Diagnostic, Runbook, Step, TargetSpec
from runbook.parse.durations import format_minutes, parse_duration
from runbook.parse.parser import parse_file, resolved_target
from runbook.sanitize.terminal_text import visible
from runbook.serialize import diagnostics_to_json, runbook_to_json
from runbook.targets.suggest import not_chosen_text, suggest_targets

if TYPE_CHECKING:
    from rich.console import Console

    from runbook.plan import Plan
    from runbook.targets.inventory import Inventory


def _suggestions(rb: Runbook) -> list[Diagnostic]:
    from runbook.probes.suggest import suggest  # lazy: only `lint` needs it

    return list(suggest(rb))


def lint(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    code = 0
    for path in args.files:
        try:
            rb = parse_file(path)
        except UserError as exc:
            print(f"runbook: {exc}", file=sys.stderr)
            results.append({"path": path, "error": str(exc), "diagnostics": []})
            code = 2
            continue
        diags = lint_runbook(rb)
        if getattr(args, "suggest_probes", False):
            diags += _suggestions(rb)
        if any(d.severity == "error" for d in diags) and code == 0:
            code = 1
        results.append({"path": path, "diagnostics": diags})
        if args.format == "text":
            for d in diags:
                print(d.format())
    if args.format == "json":
        out = []
        for r in results:
            diags = r["diagnostics"]
            entry = {"path": r["path"], "diagnostics": diagnostics_to_json(diags),
                     "errors": sum(d.severity == "error" for d in diags),
                     "warnings": sum(d.severity == "warning" for d in diags),
                     "infos": sum(d.severity == "info" for d in diags)}
            if "error" in r:
                entry["error"] = r["error"]
            out.append(entry)
        json.dump({"files": out, "exit_code": code}, sys.stdout, indent=2, ensure_ascii=False)
        print()
    elif len(args.files) > 1 or code != 2:
        total = [d for r in results for d in r["diagnostics"]]
        counts = {s: sum(d.severity == s for d in total) for s in ("error", "warning", "info")}
        print(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info", file=sys.stderr)
    return code


def _console() -> Console:
    """A Rich console on the terminal itself (its colours are ours); callers print
    :func:`~runbook.sanitize.terminal_text.visible` text only."""
    from rich.console import Console

    return Console(file=getattr(sys.stdout, "unsafe", sys.stdout), highlight=False, soft_wrap=True,
                   no_color=bool(os.environ.get("NO_COLOR")) or None)


def target_text(spec: TargetSpec) -> str:
    flags = [f for f, on in (("serial", spec.serial), ("pause", spec.pause), ("pty", spec.pty), ("detached", spec.detached)) if on]
    if spec.timeout:
        flags.append(f"timeout={spec.timeout:g}s")
    if spec.mode:
        flags.append(f"mode={spec.mode}")
    extra = (", " + ", ".join(flags)) if flags else ""
    return f"{spec.pattern} ({spec.source}{extra})"


def _hosts(inventory: Inventory | None, spec: TargetSpec) -> str:
    if inventory is None:
        return ""
    try:
        hosts = inventory.resolve(spec.pattern)
    except UserError as exc:
        return f" !! {exc}"
    names = [h.name for h in hosts]
    return ": " + (", ".join(names) if names else "no hosts")


def _step_lines(step: Step, indent: str, inventory: Inventory | None) -> Iterable[tuple[str, str]]:
    title = f"{indent}{step.number}. {step.title}"
    if step.hint:
        title += f" {step.hint}"
    yield title, "bold"
    if step.runnable:
        spec = resolved_target(step)
        if spec.chosen:
            yield f"{indent}   → target {target_text(spec)}{_hosts(inventory, spec)}", "cyan"
        else:
            yield f"{indent}   → {not_chosen_text(suggest_targets(step, inventory))}", "yellow"
    for b in step.blocks:
        yield f"{indent}   {_block_text(step, b)}", "dim" if b.kind in ("output", "text") else ""
    for e in step.expected:
        first = e.text.splitlines()[0] if e.text else ""
        lit = f"  [checks: {', '.join(repr(x) for x in e.literals)}]" if e.literals else ""
        yield f"{indent}   expected: {first[:90]}{lit}", "green"
    if step.placeholders:
        names = ", ".join((p.token or p.name) + (" (secret)" if p.secret else "") for p in step.placeholders)
        yield f"{indent}   needs: {names}", "yellow"


def _block_text(step: Step, b: Block) -> str:
    lines = b.code.count("\n") + (0 if b.code.endswith("\n") or not b.code else 1)
    where = f"line {b.line}"
    if b.kind == "file":
        mode = f", mode {b.target.mode}" if b.target and b.target.mode else ""
        return f"file → {b.path} ({b.lang or 'text'}, {lines} lines, {where}{mode})"
    if b.kind == "command":
        own = f", target {target_text(b.target)}" if b.target is not None and b.target != step.target else ""
        return f"$ {b.lang or 'sh'} ({lines} lines, {where}{own})"
    return f"{b.kind} ({b.lang or 'plain'}, {lines} lines, {where})"


def _outline(rb: Runbook, diags: list[Diagnostic], inventory: Inventory | None) -> Iterable[tuple[str, str]]:
    boxes = list(rb.checkboxes())
    yield rb.title, "bold underline"
    yield f"{rb.path}  sha256 {rb.sha256[:16]}…  {len(rb.phases)} phases, {len(rb.tasks)} tasks, {len(boxes)} checkboxes", "dim"
    if rb.default_target is not None:
        yield f"  steps without a target of their own run on: {target_text(rb.default_target)}", "cyan"
    for key, value in rb.overview.items():
        yield f"  {key}: {value}", "dim"
    for p in rb.phases:
        yield "", ""
        dur = f"  ({p.duration_text})" if p.duration_text else ""
        risk = f"  risk {p.risk_text or p.risk.value}" if p.risk_text else ""
        name = f"Phase {p.number}: {p.title}" if p.number else "Tasks outside any phase"
        yield f"{name}{dur}{risk}  [line {p.line}]", "bold magenta"
        for t in p.tasks:
            deps = ", ".join(t.dependencies) if t.dependencies else "none"
            yield f"  {t.id}  {t.title}  [line {t.line}]", "bold"
            if t.inferred:  # no task heading: nothing but steps and checkboxes was written
                yield (f"    inferred from its section · checklist {sum(b.checked for b in t.checklist)}/"
                       f"{len(t.checklist)}"), "dim"
                for s in t.steps:
                    yield from _step_lines(s, "    ", inventory)
                    if s.checkbox:
                        yield f"       ticks {s.checkbox} when it succeeds", "dim"
                continue
            approval = {Approval.REQUIRED: " · approval required", Approval.NONE: " · approval none"}.get(
                t.approval if t.approval is not Approval.DEFAULT else rb.approval, "")
            yield (f"    {t.category or '-'} · {t.duration_text or '?'} · risk {t.risk_text or t.risk.value}"
                   f" · depends on {deps}{approval}"), ""
            rb_text = "none"
            if t.rollback is not None:
                rb_text = f"{len(t.rollback.steps)} step(s)" if t.rollback.applicable else "N/A"
            yield (f"    prerequisites {sum(b.checked for b in t.prerequisites)}/{len(t.prerequisites)} · "
                   f"acceptance {sum(b.checked for b in t.acceptance)}/{len(t.acceptance)} · rollback {rb_text} · "
                   f"notes {len(t.notes)}"), "dim"
            for s in t.steps:
                yield from _step_lines(s, "    ", inventory)
            if t.rollback is not None and t.rollback.steps:
                yield "    rollback:", "red"
                for s in t.rollback.steps:
                    yield from _step_lines(s, "      ", inventory)
        for g in p.gates:
            yield f"  Gate: {g.title}  [line {g.line}]", "bold yellow"
            if g.gate:
                yield f"    rule: {g.gate}", "yellow"
            for s in g.steps:
                yield from _step_lines(s, "    ", inventory)
    if rb.sections:
        yield "", ""
        yield "Sections", "bold"
        for sec in rb.sections:
            extra = []
            if sec.checkboxes:
                extra.append(f"{len(sec.checkboxes)} checkboxes")
            if sec.tables:
                extra.append(f"{len(sec.tables)} table(s)")
            indent = "  " * max(1, sec.level - 1)
            yield f"{indent}{sec.title}" + (f"  ({', '.join(extra)})" if extra else "") + f"  [line {sec.line}]", ""
    counts = {sev: sum(d.severity == sev for d in diags) for sev in ("error", "warning", "info")}
    yield "", ""
    yield (f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
           + ("  (runbook lint for details)" if diags else "")), "red" if counts["error"] else "dim"


def show(args: argparse.Namespace) -> int:
    rb = parse_file(args.file)
    inventory = None
    if getattr(args, "inventory", None):
        from runbook.targets.inventory import Inventory

        inventory = Inventory.load(args.inventory)
    diags = lint_runbook(rb)
    if args.format == "json":
        json.dump(runbook_to_json(rb, diags), sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    from rich.text import Text

    console = _console()
    for line, style in _outline(rb, diags, inventory):
        console.print(Text(visible(line), style=style or ""))
    return 0


def _stated_comparison(rb: Runbook, p: Plan) -> list[tuple[str, str]]:
    """The document's own Total Duration / Critical Path next to the computed figures."""
    stated = {k.lower(): (k, v) for k, v in rb.overview.items() if k.lower() in ("total duration", "critical path")}
    if not stated:
        return []
    out = [("The document states: " + "; ".join(f"{k} {v}" for k, v in stated.values()), "dim")]
    if "critical path" in stated:
        minutes = parse_duration(stated["critical path"][1]).minutes
        as_time = f" = {format_minutes(minutes, day_hours=0)} at 8 h a day" if minutes is not None else ""
        out.append((f"Stated critical path {stated['critical path'][1]}{as_time}; computed here "
                    f"{format_minutes(p.critical_minutes)} from the {len(p.order)} tasks in this document", "dim"))
    return out


def _untargeted(rb: Runbook) -> dict[str, list[tuple[str, str]]]:
    """Task id -> (step name, "target: not chosen (suggested: ...)") for its steps nobody targeted."""
    out: dict[str, list[tuple[str, str]]] = {}
    for task in rb.tasks:
        steps = [(f"step {s.number}", s) for s in task.steps]
        if task.rollback is not None:
            steps += [(f"rollback step {s.number}", s) for s in task.rollback.steps]
        rows = [(name, not_chosen_text(suggest_targets(s))) for name, s in steps
                if s.runnable and not (s.target is not None and s.target.chosen)]
        if rows:
            out[task.id] = rows
    return out


def plan(args: argparse.Namespace) -> int:
    from runbook.plan import RULE_TEXT
    from runbook.plan import plan as make_plan

    rb = parse_file(args.file)
    p = make_plan(rb, tasks_only=bool(getattr(args, "tasks_only", False)))
    untargeted = _untargeted(rb)
    if args.format == "json":
        data = p.to_json()
        data["untargeted"] = [{"task": tid, "step": name, "target": text}
                              for tid, rows in untargeted.items() for name, text in rows]
        data.update({"title": rb.title, "path": rb.path, "stated": {k: v for k, v in rb.overview.items()
                                                                  if k.lower() in ("total duration", "critical path")}})
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    from rich.text import Text

    console = _console()
    out: list[tuple[str, str]] = [(f"{rb.title}: {len(p.order)} tasks in dependency order", "bold"),
                                  (f"Rule: {RULE_TEXT[p.rule]}", "")]
    for ph in p.phases:
        said = f'"{ph.text}"' if ph.text else "(none stated)"
        out.append((f"  Phase {ph.phase} [line {ph.line}] Dependencies {said} -> {ph.reading}", "dim"))
    out.append(("", ""))
    for i, t in enumerate(p.order, 1):
        mark = "*" if t.critical else " "
        after = list(t.dependencies) + [f"phase {n}" for n in t.after_phases]
        deps = f"  after {', '.join(after)}" if after else ""
        ext = p.external.get(t.id)
        ext_text = f"  (external: {', '.join(ext)})" if ext else ""
        out.append((f"{mark}{i:3d}. {t.id:<20} {format_minutes(t.duration_minutes):>16}  "
                    f"start +{format_minutes(t.earliest_start)}, end +{format_minutes(t.earliest_finish)}  "
                    f"{t.title}{deps}{ext_text}", "bold" if t.critical else ""))
        for name, text in untargeted.get(t.id, ()):
            out.append((f"       {name}: {text}", "yellow"))
    out.append(("", ""))
    out.append((f"Critical path: {' -> '.join(p.critical_path) or '-'}  ({format_minutes(p.critical_minutes)})", "bold red"))
    out.append((f"Total duration: {format_minutes(p.total_minutes)} (tasks one after another); "
                f"critical path {format_minutes(p.critical_minutes)}", ""))
    if p.external:
        out.append(("External dependencies (ignored): " + "; ".join(f"{k} -> {', '.join(v)}" for k, v in p.external.items()), "yellow"))
    if p.unknown_durations:
        out.append(("No duration (counted as 0): " + ", ".join(p.unknown_durations), "yellow"))
    for c in p.cycles:
        out.append(("Dependency cycle: " + " -> ".join(c + (c[0],)), "red"))
    out.extend(_stated_comparison(rb, p))
    for line, style in out:
        console.print(Text(visible(line), style=style))
    return 0
