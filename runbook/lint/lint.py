"""Structural and content checks on a parsed runbook.

:func:`lint` returns the parser's own diagnostics plus these rules, each printed
as ``file:line: error|warning|info: message`` (``Diagnostic.code`` names the rule):

errors
    ``duplicate-task-id``, ``dependency-cycle``, ``high-risk-no-rollback``, ``bad-probe``,
    ``invisible-character`` (bidi controls, zero-width or control characters in a command or file,
    :mod:`runbook.lint.invisible_chars`)
    (a checkbox's probe expression that :func:`runbook.probes.check_probe` rejects), and from
    the parser ``stray-fence`` / ``unclosed-fence``.
warnings
    ``external-dependency``, ``missing-acceptance``, ``missing-rollback``,
    ``missing-steps``, ``unknown-risk``, ``risk-above-phase``, ``step-numbering``,
    ``elided-command`` (``...`` in a command), ``example-values`` (``xxxxx``),
    ``recomputed-value`` (``$(date ...)`` evaluated twice), ``mixed-hosts`` (``# On host-2:`` and
    ``# On host-3:``, or "on all masters" and "on first master" in one block), ``kubectl-args``,
    ``environment-mismatch`` (``dev-`` hosts in a PROD runbook), and from the parser
    ``heading-level``, ``not-shell``, ``example-block``, ``recovered-command``, ``annotation``.
info
    ``no-target`` (once per task or gate: steps nobody targeted, with the suggestion),
    ``unfilled-placeholder``, ``destructive-command``, ``interactive-command``,
    ``endless-command``, ``phase-gap``, ``critical-attached`` (a CRITICAL step over SSH that needs a
    terminal or ``sudo``: run it ``detached``); ``k8s-config`` (warning) from :mod:`runbook.lint.k8s`.

:func:`destructive_patterns` is shared with the engine's guards.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator

from runbook.lint.invisible_chars import check_invisible
from runbook.lint.k8s import check_kubeadm_config, check_kubectl_args
from runbook.model import Block, Diagnostic, Risk, Runbook, Step, Task
from runbook.shell.destructive import PATTERNS, destructive_patterns, find_destructive  # noqa: F401 (shared)
from runbook.shell.heuristics import EXAMPLE_VALUE_RE
from runbook.shell.interactive import pty_reason

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
RISK_RANK = {Risk.LOW: 1, Risk.MEDIUM: 2, Risk.HIGH: 3, Risk.CRITICAL: 4}

DESTRUCTIVE = PATTERNS  # (label, regex): the patterns runbook.shell.destructive matches commands against
_COMMENT_RE = re.compile(r"(?:^|(?<=\s))#.*$")
_ELIDED_RE = re.compile(r"(?<![\w./])\.\.\.(?![\w./])|…")
_DATE_SUB_RE = re.compile(r"\$\(\s*date\b[^)]*\)")
_INTERACTIVE_RE = re.compile(r"\b(?:kubectl|docker|podman|crictl)\b[^\n]*\s(?:run|exec)\b[^\n]*\s(?:-it|-ti|-i\s+-t|-t\s+-i|--stdin\s+--tty|--tty\s+--stdin)\b")
_ENDLESS_RE = re.compile(r"\b(?:kubectl\b[^\n|;]*\s(?:logs|get)\b[^\n|;]*\s(?:-f|--follow|-w|--watch)\b|tail\s+(?:-\w*\s+)*-[fF]\b|journalctl\b[^\n|;]*\s(?:-f|--follow)\b|^\s*watch\s)")
_ON_HOST_RE = re.compile(r"^\s*#\s*On\s+([A-Za-z0-9][\w.-]*\w)\s*:", re.I)
_ON_SCOPE_RE = re.compile(
    r"^\s*#.*\bon\s+((?:all|every|each|the\s+first|first|one|any)\s+(?:\w+\s+)?"
    r"(?:masters?|workers?|nodes?|hosts?|control[- ]plane(?:\s+nodes?)?))\b",
    re.I,
)
_ENV_HOST_RE = re.compile(r"(?<![\w.-])(dev|stg|staging|uat|prod)-[a-z0-9]+-[a-z0-9-]*[a-z0-9](?:\.[a-z0-9-]+)*(?![\w-])", re.I)


AddDiagnostic = Callable[[int, str, str, str], None]  # (line, severity, code, message)


def _code_only(line: str) -> str:
    s = line.strip()
    if s.startswith("#"):
        return ""
    return _COMMENT_RE.sub("", line) if " #" in line else line


def _runnable_steps(rb: Runbook) -> Iterator[tuple[str, Task | None, Step]]:
    for phase in rb.phases:
        for task in phase.tasks:
            for step in task.steps:
                yield f"step {step.number} of {task.id}", task, step
            if task.rollback is not None:
                for step in task.rollback.steps:
                    yield f"rollback step {step.number} of {task.id}", task, step
        for gate in phase.gates:
            for step in gate.steps:
                yield f"{gate.title} (phase {phase.number})", None, step


def lint(rb: Runbook) -> list[Diagnostic]:
    """The parser's diagnostics and every rule above, sorted by line."""
    out: list[Diagnostic] = list(rb.diagnostics)

    def add(line: int, severity: str, code: str, message: str) -> None:
        line = max(1, min(line, rb.line_count or 1))
        out.append(Diagnostic(rb.path, line, severity, message, code))  # type: ignore[arg-type]

    _tasks(rb, add)
    _dependencies(rb, add)
    _phases(rb, add)
    for owner, task, step in _runnable_steps(rb):
        _step(rb, owner, step, add)
        if task is not None and task.risk == Risk.CRITICAL:
            _critical_terminal(owner, step, add)
    _environment(rb, add)
    _probes(rb, add)
    _targets(rb, add)
    out.sort(key=lambda d: (d.path != rb.path, d.line, SEVERITY_ORDER.get(d.severity, 3), d.code))
    return out


def _tasks(rb: Runbook, add: AddDiagnostic) -> None:
    seen: dict[str, Task] = {}
    for phase in rb.phases:
        for task in phase.tasks:
            risk_line = task.metadata_lines.get(_meta_key(task, "risk"), task.line)
            if task.id in seen:
                add(task.line, "error", "duplicate-task-id", f"task id {task.id} is used twice (first at line {seen[task.id].line})")
            else:
                seen[task.id] = task
            if task.inferred:
                continue  # no task heading: no metadata, acceptance or rollback was ever written
            if not task.steps:
                add(task.line, "warning", "missing-steps", f"task {task.id} has no steps")
            else:
                numbers = [s.number for s in task.steps]
                if numbers != list(range(1, len(numbers) + 1)):
                    add(task.steps[0].line, "warning", "step-numbering",
                        f"steps of {task.id} are numbered {', '.join(map(str, numbers))}, not 1..{len(numbers)}")
            if not task.acceptance:
                add(task.line, "warning", "missing-acceptance", f"task {task.id} has no acceptance criteria")
            if task.risk is Risk.UNKNOWN:
                what = f"unknown risk level {task.risk_text!r}" if task.risk_text else "no risk level"
                add(risk_line, "warning", "unknown-risk", f"task {task.id}: {what} (LOW, MEDIUM, HIGH or CRITICAL)")
            rb_ok = task.rollback is not None and task.rollback.applicable and (task.rollback.steps or task.rollback.text.strip())
            if task.risk.needs_confirmation and not rb_ok:
                why = "its rollback is N/A" if task.rollback is not None and not task.rollback.applicable else "it has no rollback procedure"
                add(task.rollback.line if task.rollback is not None else task.line, "error", "high-risk-no-rollback",
                    f"task {task.id} is {task.risk.value} risk but {why}")
            elif task.rollback is None:
                add(task.line, "warning", "missing-rollback", f"task {task.id} has no rollback procedure")
            if (phase.risk in RISK_RANK and task.risk in RISK_RANK and RISK_RANK[task.risk] > RISK_RANK[phase.risk]):
                add(risk_line, "warning", "risk-above-phase",
                    f"task {task.id} is {task.risk.value} risk but its phase {phase.number} says {phase.risk_text or phase.risk.value}")


def _targets(rb: Runbook, add: AddDiagnostic) -> None:
    """``no-target``: runnable steps nobody targeted (no annotation, binding or document default)."""
    from runbook.parse.annotations import bindings_path
    from runbook.targets.suggest import suggest_targets

    groups: dict[str, list[tuple[str, Step]]] = defaultdict(list)
    lines: dict[str, int] = {}
    for phase in rb.phases:
        for task in phase.tasks:
            lines[task.id] = task.line
            groups[task.id] += [(f"step {s.number}", s) for s in task.steps]
            if task.rollback is not None:
                groups[task.id] += [(f"rollback step {s.number}", s) for s in task.rollback.steps]
        for gate in phase.gates:
            key = f"gate of phase {phase.number}"
            lines.setdefault(key, gate.line)
            groups[key] += [(f"step {s.number}", s) for s in gate.steps]
    for owner, steps in groups.items():
        missing = [(name, s) for name, s in steps if s.runnable and not (s.target is not None and s.target.chosen)]
        if not missing:
            continue
        hint = "the document suggests no host"
        for name, step in missing:
            found = suggest_targets(step)
            if found:
                hint = f"suggested for {name}: {found[0].text()}"
                break
        add(lines[owner], "info", "no-target",
            f"{owner}: {len(missing)} step(s) have no target ({', '.join(n for n, _ in missing)}): the operator "
            f"chooses before they run; {hint}; or bind them in {os.path.basename(bindings_path(rb.path))} "
            "or set a document default")


def _probes(rb: Runbook, add: AddDiagnostic) -> None:
    """``bad-probe`` at the checkbox line; the probes package is imported only when a probe exists."""
    boxes = [box for box in rb.checkboxes() if box.probe is not None]
    if not boxes:
        return
    from runbook.probes import check_probe

    for box in boxes:
        try:
            reason = check_probe(box.probe or "")
        except Exception as exc:  # noqa: BLE001 - lint never crashes on its input
            reason = f"{type(exc).__name__}: {exc}"
        if reason:
            add(box.line, "error", "bad-probe", f"bad probe {box.probe!r} on checkbox {box.key}: {reason}")


def _meta_key(task: Task, canon: str) -> str:
    names = {"risk": ("risk level", "risk"), "dependencies": ("dependencies", "depends on", "dependency", "requires")}[canon]
    for key in task.metadata_lines:
        if key.lower() in names:
            return key
    return ""


def _dependencies(rb: Runbook, add: AddDiagnostic) -> None:
    ids = {t.id for t in rb.tasks}
    graph: dict[str, list[str]] = defaultdict(list)
    lines: dict[str, int] = {}
    for task in rb.tasks:
        line = task.metadata_lines.get(_meta_key(task, "dependencies"), task.line)
        lines.setdefault(task.id, line)
        for dep in task.dependencies:
            if dep == task.id:
                add(line, "error", "dependency-cycle", f"task {task.id} depends on itself")
            elif dep in ids:
                graph[task.id].append(dep)
            else:
                add(line, "warning", "external-dependency",
                    f"{task.id} depends on {dep}, which is not in this document (external: confirm it is done)")
    for cycle in find_cycles(graph):
        add(lines.get(cycle[0], 1), "error", "dependency-cycle", "dependency cycle: " + " -> ".join(cycle + [cycle[0]]))


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One cycle (as a path) per strongly connected component with more than one task."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # iterative Tarjan
        work = [(v, iter(graph.get(v, ())))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, ()))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    comps.append(comp)

    for v in list(graph):
        if v not in index:
            strong(v)
    cycles = []
    for comp in comps:
        members = set(comp)
        start = min(comp)
        path, seen, cur = [start], {start}, start
        while True:
            nxt = next((d for d in graph.get(cur, ()) if d in members), None)
            if nxt is None or nxt in seen:
                if nxt is not None and nxt != start:
                    path = path[path.index(nxt):]
                break
            path.append(nxt)
            seen.add(nxt)
            cur = nxt
        cycles.append(path)
    return cycles


def _phases(rb: Runbook, add: AddDiagnostic) -> None:
    prev = None
    for phase in rb.phases:
        if phase.risk is Risk.UNKNOWN and phase.risk_text:
            add(phase.line, "warning", "unknown-risk", f"phase {phase.number}: unknown risk level {phase.risk_text!r}")
        m = re.fullmatch(r"(\d+)[A-Za-z]?", phase.number or "")
        if m:
            n = int(m.group(1))
            if prev is not None and n > prev + 1:
                missing = f"{prev + 1}" if n == prev + 2 else f"{prev + 1}-{n - 1}"
                add(phase.line, "info", "phase-gap", f"phase {phase.number} follows phase {prev}: phase(s) {missing} are not in this document")
            prev = n


def _step(rb: Runbook, owner: str, step: Step, add: AddDiagnostic) -> None:
    if step.placeholders:
        names = ", ".join((p.token or p.name) + (" (secret)" if p.secret else "") for p in step.placeholders)
        add(step.placeholders[0].line, "info", "unfilled-placeholder", f"{owner} needs values for {names}")
    for block in step.blocks:
        if block.kind in ("command", "file"):
            check_invisible(owner, block, add)
        if block.kind == "command":
            _block(owner, step, block, add)
            check_kubectl_args(owner, block, add)
        else:
            check_kubeadm_config(owner, block, add)


def _block(owner: str, step: Step, block: Block, add: AddDiagnostic) -> None:
    lines = block.code.split("\n")
    dates: dict[str, int] = {}
    hosts: list[tuple[str, int]] = []
    example: list[tuple[str, int]] = []
    spec = block.target or step.target
    pty = spec.pty if spec else False
    destructive_at: dict[int, list[str]] = {}  # line -> labels of destructive commands starting there
    for finding in find_destructive(block.code):
        at = destructive_at.setdefault(finding.line, [])
        at.extend(x for x in finding.labels if x not in at)
    for i, raw in enumerate(lines):
        src = block.code_line(i)
        hm = _ON_HOST_RE.match(raw) or _ON_SCOPE_RE.match(raw)
        scope = " ".join(hm.group(1).split()) if hm else None
        if scope and scope not in [h for h, _ in hosts]:
            hosts.append((scope, src))
        code = _code_only(raw)
        if not code.strip():
            continue
        found = destructive_at.get(i, [])
        if found:
            add(src, "info", "destructive-command", f"destructive command ({', '.join(found)}) in {owner}: {code.strip()[:80]!r}")
        if _ELIDED_RE.search(code):
            add(src, "warning", "elided-command", f"command in {owner} elides arguments with '...'; it cannot run as written")
        for m in EXAMPLE_VALUE_RE.finditer(code):
            example.append((m.group(1), src))
        for m in _DATE_SUB_RE.finditer(code):
            text = " ".join(m.group(0).split())
            if text in dates and dates[text] != src:
                add(src, "warning", "recomputed-value",
                    f"{text} is evaluated again here (first at line {dates[text]}): the value, e.g. a file name, will differ")
            dates.setdefault(text, src)
        if _INTERACTIVE_RE.search(code) and not pty:
            add(src, "info", "interactive-command",
                f"interactive command (-it) in {owner} needs a terminal: annotate the block with <!-- runbook: pty -->")
        if _ENDLESS_RE.search(code):
            add(src, "info", "endless-command", f"command in {owner} follows output until interrupted (Ctrl-C to stop it)")
    if example:
        values = ", ".join(f"{v!r} (line {ln})" for v, ln in example[:4])
        add(example[0][1], "warning", "example-values",
            f"{owner} contains example values {values}: an example, not a command to run; use <PLACEHOLDERS>")
    if len(hosts) > 1:
        listed = ", ".join(f"{h} (line {ln})" for h, ln in hosts)
        add(hosts[1][1], "warning", "mixed-hosts",
            f"one block in {owner} holds commands meant for different hosts: {listed}; it runs on one target")


_SUDO_RE = re.compile(r"(?:^|[\s;&|(`])sudo\b")
_LOCAL_PATTERNS = frozenset({"local", "localhost"})


def _critical_terminal(owner: str, step: Step, add: AddDiagnostic) -> None:
    """A CRITICAL step over SSH that needs a terminal or sudo dies with the connection (or the
    jump host): suggest ``detached``.  Once per step, at the first such line."""
    for block in step.blocks:
        spec = block.target or step.target
        if block.kind != "command" or (spec is not None and (spec.detached or (spec.pattern in _LOCAL_PATTERNS
                                                               and spec.source != "default"))):
            continue
        for i, raw in enumerate(block.code.split("\n")):
            code = _code_only(raw)
            if not code.strip():
                continue
            why = pty_reason(code) or ("uses sudo" if _SUDO_RE.search(code) else None)
            if why is None and spec is not None and spec.pty:
                why = "runs with a terminal (pty)"
            if why:
                add(block.code_line(i), "info", "critical-attached",
                    f"CRITICAL {owner} runs over SSH with a terminal or sudo ({why}): if the connection or "
                    "the jump host drops, it dies half-way; consider running it detached (<!-- runbook: detached --> or --detached: it "
                    "survives and is re-attached; there is no terminal then, so sudo must not prompt: sudo -n)")
                return


def _environment(rb: Runbook, add: AddDiagnostic) -> None:
    env_text = (rb.overview.get("Environment", "") + " " + rb.title).lower()
    env = "prod" if re.search(r"\bprod(uction)?\b", env_text) else ("dev" if re.search(r"\bdev(elopment)?\b", env_text) else "")
    if not env:
        return
    others = {"prod": ("dev", "stg", "staging", "uat"), "dev": ("prod",)}[env]
    for _, _, step in _runnable_steps_and_text(rb):
        for block in step.blocks:
            for i, raw in enumerate(block.code.split("\n")):
                for m in _ENV_HOST_RE.finditer(raw):
                    if m.group(1).lower() in others:
                        add(block.code_line(i), "warning", "environment-mismatch",
                            f"{m.group(1).upper()} host name {m.group(0)!r} in a {env.upper()} runbook")


def _runnable_steps_and_text(rb: Runbook) -> Iterator[tuple[str, Task | None, Step]]:
    yield from _runnable_steps(rb)
