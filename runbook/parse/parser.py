"""Markdown checklist -> :class:`runbook.model.Runbook`.

The document shape (see ``checklists/prod-k8s-deployment.md``)::

    # Title
    ## Phase N: Title (duration)          -> Phase (metadata paragraph: Purpose, Risk Level, ...)
    ### Task ID: Title                   -> Task (metadata list: Category, Duration, ...)
    #### Description / Prerequisites / Steps / Acceptance Criteria / Rollback Procedure / Notes
    ### Phase N Smoke Test               -> Gate of the phase (**Gate**: rule)
    ## Anything else                     -> Section (tables, checkboxes, text)

:func:`parse` never raises: whatever it cannot place becomes a section or a
diagnostic.  :func:`parse_file` reads the file (one clear :class:`InputError` for
bad input) and applies the ``NAME.targets.yaml`` bindings beside it.

Checkbox keys: ``TASKID/prerequisites/i``, ``TASKID/acceptance/i``,
``gate:<phase>/i``, ``section:<slug-path>/i`` (``i`` counts from 0); stable as
long as the headings and the order of boxes in their list stay the same.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from runbook.errors import read_text_file
from runbook.mirror_config import mirror_destination
from runbook.model import (
    Approval,
    Block,
    Checkbox,
    Diagnostic,
    Gate,
    Phase,
    Rollback,
    Runbook,
    Section,
    Step,
    TargetSource,
    TargetSpec,
    Task,
)
from runbook.notify_config import notify_urls
from runbook.parse.annotations import ANNOTATION_RE, bindings_path, has_target_keys, parse_pairs, spec_from
from runbook.parse.annotations import load_bindings as _load_bindings
from runbook.parse.durations import parse_duration
from runbook.parse.front_matter import FrontMatter, split_front_matter
from runbook.parse.markdown_blocks import FenceProblem, Node, count_lines, normalize, parse_blocks
from runbook.parse.placeholders import find_placeholders, merge
from runbook.parse.sinks import (
    GATE_PHASE_RE,
    GATE_RE,
    META_KEYS,
    PHASE_RE,
    SUBSECTIONS,
    TASK_ID_RE,
    TASK_WORD_RE,
    GateB,
    PhaseB,
    TaskB,
    TextSink,
    _meta_item,
    parse_dependencies,
    parse_risk,
    slug,
)
from runbook.parse.steps import Ctx, RawBox, RawStep, StepsCollector, strip_md
from runbook.targets.bindings import Bindings

__all__ = ["load_bindings", "parse", "parse_dependencies", "parse_file", "parse_risk", "resolved_target"]


def parse(
    text: str,
    path: str,
    *,
    day_hours: float = 8,
    bindings: Mapping[str, Mapping[str, Any]] | None = None,
    bindings_file: str | None = None,
) -> Runbook:
    """Parse a Markdown runbook.  Never raises: problems become diagnostics.

    ``bindings`` (from :func:`load_bindings`) supply targets and probes the
    document does not give itself; ``bindings_file`` names it in diagnostics.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()  # many small acyclic objects: bench/parse.py, 2,000 full tasks: 3.6 s CPU with, 7.3 s without
    try:
        builder = _Builder(text, path, day_hours, bindings if isinstance(bindings, Bindings) else Bindings(bindings),
                           bindings_file)
        rb = builder.build()
        if not rb.tasks and builder.lc:
            from runbook.parse.infer import infer  # no task headings: infer tasks from the sections

            rb = infer(builder)
        return rb
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never crash on input
        lc = count_lines(normalize(text))
        diags = (Diagnostic(path, 1, "error", f"internal parser error: {type(exc).__name__}: {exc}", "internal"),)
        return Runbook(
            title=os.path.basename(path), path=path,
            sha256=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
            diagnostics=diags if lc else (), line_count=lc,
        )
    finally:
        if gc_was_enabled:
            gc.enable()


def load_bindings(runbook_path: str) -> Bindings:
    """``NAME.targets.yaml`` beside the runbook (``{}`` when absent); InputError when invalid."""
    return _load_bindings(runbook_path)


def parse_file(path: str, *, day_hours: float = 8, bindings: bool = True) -> Runbook:
    """Read and parse ``path``; raises :class:`runbook.errors.InputError` for unreadable input."""
    text = read_text_file(path)
    found = load_bindings(path) if bindings else {}
    return parse(text, path, day_hours=day_hours, bindings=found, bindings_file=bindings_path(path) if found else None)


def resolved_target(step: Step, block: Block | None = None) -> TargetSpec:
    """Where a block (or the step) runs: the block's own spec, else the step's.

    With neither the spec is not chosen (``pattern == ""``): there is no implicit ``local``.
    """
    if block is not None and block.target is not None:
        return block.target
    return step.target or TargetSpec()


SHORTCODE_RE = re.compile(r"^\s*(?:\{\{[<%].*?[%>]\}\}|\{%.*?%\}|\{\{.*?\}\})\s*$", re.S)


def is_shortcode(text: str) -> bool:
    """A Hugo/Jekyll/Liquid tag alone (``{{< note >}}``, ``{{% heading %}}``, ``{% include x %}``)."""
    return "{" in text and bool(SHORTCODE_RE.match(text))


def phase_title(m: re.Match[str], day_hours: float) -> tuple[str, str]:
    """(title, duration text) of a phase heading match; a parenthesised note that is no duration stays in the title."""
    title = strip_md(m.group("title") or "")
    dur = (m.group("dur") or "").strip()
    if dur and parse_duration(dur, day_hours).minutes is None:
        return f"{title} ({dur})".strip(), ""
    return title, dur


def _sub_name(plain: str) -> str | None:
    for name, rx in SUBSECTIONS:
        if rx.match(plain):
            return name
    return None


class _Builder:
    no_tasks_message = "no tasks found (tasks are '### Task ID: Title' headings under '## Phase N: Title')"

    def __init__(self, text: str, path: str, day_hours: float, bindings: Bindings, bindings_file: str | None) -> None:
        self.text = text
        self.path = path
        self.day_hours = day_hours
        self.bindings = bindings
        self.bindings_file = bindings_file or "bindings"
        self.used_bindings: set[str] = set()
        self.binding_problems: set[str] = set()  # each reported once, at its key's line
        norm = normalize(text)
        self.lines = norm.split("\n")
        self.lc = count_lines(norm)
        self.ctx = Ctx(path, self.lines, self.lc)
        self.ctx.on_secret = self._secret
        self.ctx.on_approval = self._approval
        self.doc_approval: tuple[Approval, int] | None = None  # approval= before the first heading
        self.problems: list[FenceProblem] = []
        self.front: FrontMatter
        self.front, markdown = split_front_matter(norm)  # metadata, never headings; lines keep their numbers
        self.nodes = parse_blocks(markdown, self.problems)
        self.title: str | None = None
        self.title_line = 0
        self.phases: list[PhaseB] = []
        self.phase: PhaseB | None = None
        self.task: TaskB | None = None
        self.gate: GateB | None = None
        self.sections: list[TextSink] = []
        self.stack: list[TextSink] = []
        self.preamble: TextSink | None = None
        self.doc_secrets: list[str] = []
        self.prefixes: set[str] = set()
        self.doc_default: TargetSpec | None = None
        self.seen_heading = False

    # -- walking ----------------------------------------------------------------
    def build(self) -> Runbook:
        self._fence_diagnostics()
        self._bindings_default()
        front = self._document_spec()
        if front is not None:  # the front matter's runbook: defaults, over the bindings' default
            self.doc_default = front
        for i, node in enumerate(self.nodes):
            if node.kind == "heading" and is_shortcode(node.text):
                self._content(Node("paragraph", node.line, node.end, text=node.text))  # never a heading
            elif node.kind == "heading":
                self.seen_heading = True
                self._heading(node, i)
            elif node.kind == "html" and not self.seen_heading and self._document_default(node):
                continue
            elif node.kind != "hr":
                self._content(node)
        self._close()
        return self._freeze()

    def _bindings_default(self) -> None:
        """``default:`` in the bindings file: the document default (a comment in the document wins)."""
        values = self.bindings.get("default")
        if values is None:
            return
        self.used_bindings.add("default")
        if not has_target_keys(values):
            return
        spec, problems = spec_from(values, TargetSpec(), TargetSource.DOCUMENT)
        for p in problems:
            self.ctx.diagnostics.append(Diagnostic(self.bindings_file, 1, "warning", f"default: {p}", "bindings"))
        self.doc_default = spec if spec.chosen else None

    def _document_default(self, node: Node) -> bool:
        """``<!-- runbook: target=local -->`` before the first heading: every step's default target."""
        m = ANNOTATION_RE.search(node.text)
        if not m:
            return False
        pairs, problems = parse_pairs(m.group(1))
        if not has_target_keys(pairs) or "target" not in pairs:
            return False
        if set(pairs) - {"secret", "target", "serial", "parallel", "pty", "no-pty", "detached", "pause", "timeout"}:
            problems.append("a document default takes target, serial, parallel, pty, no-pty, detached, pause, timeout")
        for p in problems:
            self.ctx.diag(node.line, "warning", "annotation", f"runbook annotation: {p}")
        if "secret" in pairs:
            self._secret([x for x in pairs.pop("secret").replace(",", " ").split() if x], node.line)
        if "approval" in pairs:
            self._approval(pairs.pop("approval"), node.line)
        spec, problems = spec_from(pairs, self.doc_default or TargetSpec(), TargetSource.DOCUMENT)
        for p in problems:
            self.ctx.diag(node.line, "warning", "annotation", p)
        if spec.chosen:
            self.doc_default = spec
        return True

    def _approval(self, value: str, line: int) -> None:
        """``approval=required|none`` in an annotation: the task's, or every task's before a task."""
        parsed = Approval.parse(value)
        if parsed is None:
            self.ctx.diag(line, "warning", "annotation", f"runbook annotation: approval must be required or none, "
                                                          f"not {value!r}")
            return
        if self.task is not None:
            if self.task.approval and Approval.parse(self.task.approval) != parsed:
                self.ctx.diag(line, "warning", "annotation",
                              f"approval={value} contradicts approval={self.task.approval} at line "
                              f"{self.task.approval_line}; the first is kept")
                return
            self.task.approval, self.task.approval_line = value, line
        elif self.doc_approval is None:
            self.doc_approval = (parsed, line)

    def _task_approval(self, task: Task, written: TaskB) -> Task:
        """A task's approval: its annotation, else its binding (``TASK-ID: {approval: required}``)."""
        if written.approval:
            parsed = Approval.parse(written.approval)
            if parsed is not None:
                return replace(task, approval=parsed)
        bound = self.bindings.get(task.id, {}).get("approval")
        if bound is not None:
            self.used_bindings.add(task.id)
            return replace(task, approval=Approval(bound))
        return task

    def _document_approval(self) -> Approval:
        """Every task's default: an annotation before the first heading, else the front matter's
        ``runbook: {approval: ...}``, else the bindings file's ``default: {approval: ...}``."""
        if self.doc_approval is not None:
            return self.doc_approval[0]
        front = (self.front.defaults or {}).get("approval")
        if front is not None:
            parsed = Approval.parse(str(front))
            if parsed is None:
                self.ctx.diag(1, "warning", "front-matter", f"runbook defaults: approval must be required or none, "
                                                            f"not {front!r}")
            else:
                return parsed
        bound = self.bindings.get("default", {}).get("approval")
        return Approval(bound) if bound is not None else Approval.DEFAULT

    def _secret(self, names: list[str], line: int) -> None:
        (self.task.secrets if self.task is not None else self.doc_secrets).extend(n.strip("<>$") for n in names)

    def _fence_diagnostics(self) -> None:
        if self.front.problem:
            self.ctx.diag(self.front.problem_line, "warning", "front-matter", f"{self.front.problem}; it is kept as metadata")
        for p in self.problems:
            if p.swallowed:
                heads = [f"{t!r} (line {ln})" for ln, t in p.swallowed if t.startswith("#")][:3]
                boxes = sum(1 for _, t in p.swallowed if not t.startswith("#"))
                what = ", ".join(heads) + (f" and {boxes} more structural line(s)" if boxes and heads
                                           else f"{boxes} structural line(s)" if boxes else "")
                self.ctx.diag(
                    p.line, "error", "stray-fence",
                    f"code fence {p.markup} opened here runs to line {p.end} and swallows document structure: {what}; "
                    "its content was recovered as Markdown",
                )
            elif p.unclosed:
                self.ctx.diag(p.line, "error", "unclosed-fence",
                              f"code fence {p.markup} opened here is never closed (it runs to line {p.end})")

    def _close(self) -> None:
        if self.task is not None:
            self.task.close_collectors()
        if self.gate is not None:
            self.gate.collector.flush_recovery()
        self.task = None
        self.gate = None

    def _next_is_metadata(self, idx: int) -> bool:
        nxt = self.nodes[idx + 1] if idx + 1 < len(self.nodes) else None
        if nxt is None or nxt.kind not in ("list", "paragraph"):
            return False
        texts = [i.children[0].text for i in nxt.children if i.children and i.children[0].kind == "paragraph"] \
            if nxt.kind == "list" else nxt.text.split("\n")
        keys = [META_KEYS.get(kv[0].lower()) for kv in map(_meta_item, texts) if kv]
        return any(k in ("duration", "risk", "dependencies", "category") for k in keys)

    def _heading(self, node: Node, idx: int) -> None:
        lvl = node.level
        plain = strip_md(node.text)
        if self.task is not None:
            self.task.close_collectors()
        if self.gate is not None:
            self.gate.collector.flush_recovery()
        if lvl == 1 and self.title is None and not self.phases and self.preamble is None and not self.sections:
            self.title, self.title_line = plain, node.line
            self.preamble = TextSink(self.ctx, plain, 1, node.line)
            self.preamble.slugpath = slug(plain)
            return
        if lvl == 1 and self.task is not None:
            self.ctx.diag(node.line, "warning", "heading-level",
                          f"level-1 heading {('# ' + node.text)!r} inside task {self.task.id} breaks the document "
                          "structure (a shell comment outside its code block?)")
            if self.task.sub == "steps" and self.task.steps is not None:
                self.task.steps.start_recovery(node)
            else:
                self.task.feed(Node("paragraph", node.line, node.end, text="# " + node.text))
            return
        pm = PHASE_RE.match(plain)
        if pm:
            if lvl != 2:
                self.ctx.diag(node.line, "warning", "heading-level", f"phase heading at level {lvl}; phases are '## Phase N: Title'")
            self._open_phase(node, pm)
            return
        tm = TASK_WORD_RE.match(plain) or TASK_ID_RE.match(plain)
        if tm and 2 <= lvl <= 4 and (lvl == 3 or TASK_WORD_RE.match(plain) or self._next_is_metadata(idx)):
            if lvl != 3:
                self.ctx.diag(node.line, "warning", "heading-level", f"task heading at level {lvl}; tasks are '### Task ID: Title'")
            self._open_task(tm.group("id"), strip_md(tm.group("title")), node)
            return
        sub = _sub_name(plain)
        if self.task is not None and (lvl == 4 or (lvl == 3 and sub)):
            if lvl == 3:
                self.ctx.diag(node.line, "warning", "heading-level",
                              f"'{plain}' of task {self.task.id} is at level 3; task sections are '#### {plain}'")
            self._enter_sub(sub, plain, node.line)
            return
        if self.task is not None and lvl >= 5:
            (self.task.steps if self.task.sub == "steps" and self.task.steps else self.task).feed(node)
            return
        if GATE_RE.search(plain) and 2 <= lvl <= 4 and (self.phase is not None or GATE_PHASE_RE.match(plain)):
            gm = GATE_PHASE_RE.match(plain)
            phase = next((p for p in self.phases if gm and p.number == gm.group(1)), self.phase)
            if phase is not None and (self.task is None or lvl <= 3):
                self._close()
                self.stack = [s for s in self.stack if s.level < lvl]
                gate = GateB(plain, node.line, phase.number, StepsCollector(self.ctx, "gate", plain, f"gate of phase {phase.number}"))
                phase.gates.append(gate)
                self.gate = gate
                return
        if lvl in (3, 4) and self.phase is not None and self._next_is_metadata(idx) and self.gate is None:
            tid = slug(plain).upper()
            self.ctx.diag(node.line, "info", "task-id", f"task heading without an id; using {tid}")
            self._open_task(tid, plain, node)
            return
        if self.gate is not None and lvl > 3:
            self.gate.collector.feed(Node("paragraph", node.line, node.end, text=node.text))
            return
        if sub and lvl >= 3 and self.task is None and sub in ("prerequisites", "steps", "acceptance", "rollback"):
            self.ctx.diag(node.line, "warning", "heading-level", f"'{plain}' is outside any task")
        self._open_section(node, plain)

    def _open_phase(self, node: Node, m: re.Match[str]) -> None:
        self._close()
        self.stack = []
        title, dur = phase_title(m, self.day_hours)
        sink = TextSink(self.ctx, strip_md(node.text), 2, node.line)
        sink.slugpath = f"phase-{m.group('num').lower()}"
        phase = PhaseB(m.group("num"), title, node.line, dur, sink)
        self.phases.append(phase)
        self.phase = phase

    def _open_task(self, tid: str, title: str, node: Node) -> None:
        self._close()
        self.stack = [s for s in self.stack if s.level < min(node.level, 3)]
        if self.phase is None:
            self.ctx.diag(node.line, "warning", "task-outside-phase", f"task {tid} is not under a '## Phase N: Title' heading")
            sink = TextSink(self.ctx, "Tasks", 2, node.line)
            sink.slugpath = "phase-none"
            self.phase = PhaseB("", "", node.line, "", sink)
            self.phases.append(self.phase)
        self.task = TaskB(tid, title, node.line, self.phase.number, self.ctx)
        self.phase.tasks.append(self.task)

    def _enter_sub(self, sub: str | None, plain: str, line: int) -> None:
        task = self.task
        assert task is not None
        name = sub or "extra:" + slug(plain)
        task.sub = name
        task.sub_titles[name] = plain
        if name == "steps" and task.steps is None:
            task.steps = StepsCollector(self.ctx, "steps", "", f"task {task.id}")
        elif name == "rollback" and task.rollback is None:
            task.rollback = StepsCollector(self.ctx, "rollback", "", f"rollback of {task.id}")
            task.rollback_line = line
        elif name not in ("steps", "rollback"):
            task.sink(name, plain, line)

    def _open_section(self, node: Node, plain: str) -> None:
        lvl = node.level
        self._close()
        if lvl <= 2:
            if lvl == 1:
                self.ctx.diag(node.line, "warning", "heading-level", f"second level-1 heading {plain!r}; sections are '## Title'")
            self.phase = None
            self.stack = []
        self.stack = [s for s in self.stack if s.level < lvl]
        parent = self.stack[-1] if self.stack else (self.phase.sink if self.phase is not None else None)
        sink = TextSink(self.ctx, plain, lvl, node.line, parent.title if parent is not None else None)
        sink.slugpath = (parent.slugpath + "/" if parent is not None else "") + slug(plain)
        if self.stack and lvl > self.stack[-1].level + 1:
            self.ctx.diag(node.line, "warning", "heading-level",
                          f"heading level jumps from {self.stack[-1].level} to {lvl} ({plain!r})")
        self.sections.append(sink)
        self.stack.append(sink)

    def _content(self, node: Node) -> None:
        if self.task is not None:
            self.task.feed(node)
        elif self.gate is not None:
            self.gate.feed(node)
        elif self.stack:
            self.stack[-1].feed(node)
        elif self.phase is not None:
            self.phase.feed(node)
        else:
            if self.preamble is None:
                self.preamble = TextSink(self.ctx, "(preamble)", 0, node.line)
                self.preamble.slugpath = "preamble"
            self.preamble.feed(node)

    # -- freezing ---------------------------------------------------------------
    def _prefix(self, base: str) -> str:
        p, n = base, 1
        while p in self.prefixes:
            n += 1
            p = f"{base}#{n}"
        self.prefixes.add(p)
        return p

    def _boxes(self, prefix: str, boxes: list[RawBox], probes: Mapping[int, str] | None = None) -> tuple[Checkbox, ...]:
        out = []
        keys: dict[int, str] = {}
        for i, b in enumerate(boxes):
            probe = b.probe or (probes or {}).get(i)
            keys[id(b)] = key = f"{prefix}/{i}"
            parent = keys.get(id(b.parent)) if b.parent is not None else None
            out.append(Checkbox(key, b.text, b.checked, self.ctx.clamp(b.line), probe, parent))
        return tuple(out)

    def _binding_problem(self, key: str, message: str) -> None:
        if message not in self.binding_problems:
            self.binding_problems.add(message)
            self.ctx.diagnostics.append(Diagnostic(self.bindings_file, self.bindings.line(key), "warning", message, "bindings"))

    def _binding_spec(self, keys: list[str]) -> TargetSpec | None:
        """The document default overlaid with the bindings of ``keys`` (most general first)."""
        spec = self.doc_default
        for key in keys:
            values = self.bindings.get(key)
            if values is None:
                continue
            self.used_bindings.add(key)
            if has_target_keys(values):
                spec, problems = spec_from(values, spec or TargetSpec(), "bindings")
                for p in problems:
                    self._binding_problem(key, f"{key}: {p}")
        return spec

    def _document_spec(self) -> TargetSpec | None:
        """The front matter's ``runbook:`` defaults, when they say where steps run."""
        values = self.front.defaults
        if not values or not has_target_keys(values):
            return None
        spec, problems = spec_from(values, self.doc_default or TargetSpec(), TargetSource.DOCUMENT)
        for p in problems:
            self.ctx.diag(1, "warning", "front-matter", f"runbook defaults: {p}")
        return spec

    def _step(self, raw: RawStep, keys: list[str], secrets: list[str]) -> Step:
        base = self._binding_spec(keys)  # the document default overlaid with the bindings
        blocks = []
        first_target = None
        for b in raw.blocks:
            if b.kind in ("command", "file") and has_target_keys(b.annotations):
                spec, problems = spec_from(b.annotations, base or TargetSpec(), b.annotations.get("source", "annotation"))
                for p in problems:
                    self.ctx.diag(b.line, "warning", "annotation", p)
                b = replace(b, target=spec)
                first_target = first_target or spec
            blocks.append(b)
        phs = merge(find_placeholders(b.code, b.kind, b.line + 1, secrets, b.code_line) for b in blocks)
        runnable = any(b.kind in ("command", "file") for b in blocks)
        target = (first_target or base or TargetSpec()) if runnable else None
        return Step(raw.number, raw.title, self.ctx.clamp(raw.line), raw.hint, "\n\n".join(raw.text), tuple(blocks),
                    tuple(raw.expected), phs, target)

    def _section(self, sink: TextSink, prefix: str, title: str | None = None, parent: str | None = None) -> Section:
        phs = merge(find_placeholders(b.code, b.kind, b.line + 1, self.doc_secrets, b.code_line) for b in sink.blocks
                    if b.kind in ("command", "file")) if sink.blocks else ()
        return Section(
            title or sink.title, sink.level, self.ctx.clamp(sink.line), "\n\n".join(sink.text),
            self._boxes(prefix, sink.boxes), tuple(sink.blocks), tuple(sink.tables), parent if parent is not None else sink.parent,
            phs,
        )

    def _task(self, tb: TaskB) -> Task:
        prefix = self._prefix(tb.id)
        secrets = self.doc_secrets + tb.secrets
        meta = {k: v for k, (v, _) in tb.meta.items()}
        canon: dict[str, tuple[str, int]] = {}
        for key, (value, line) in tb.meta.items():
            canon.setdefault(META_KEYS.get(key.lower(), key.lower()), (value, line))
        dur_text = strip_md(canon.get("duration", ("", 0))[0])
        duration = parse_duration(dur_text, self.day_hours) if dur_text else None
        deps_text = strip_md(canon.get("dependencies", ("", 0))[0])
        risk_text = strip_md(canon.get("risk", ("", 0))[0])
        steps = tuple(self._step(s, [tb.id, f"{tb.id}.{s.number}"], secrets) for s in (tb.steps.steps if tb.steps else []))
        extra: list[Section] = []
        if tb.steps is not None and (tb.steps.boxes or tb.steps.text):
            extra.append(Section(tb.sub_titles.get("steps", "Steps"), 4, self.ctx.clamp(tb.steps.steps[0].line if tb.steps.steps else tb.line),
                                 "\n\n".join(tb.steps.text), self._boxes(f"{prefix}/steps", tb.steps.boxes)))
        rollback = None
        if tb.rollback is not None:
            rb = tb.rollback
            # a TASK key binds the task's steps; its rollback has its own keys (it goes where the damage is)
            rsteps = tuple(self._step(s, [f"{tb.id}.rollback", f"{tb.id}.rollback.{s.number}"], secrets) for s in rb.steps)
            rollback = Rollback("\n\n".join(rb.text), self.ctx.clamp(tb.rollback_line), tuple(rb.blocks), rsteps, not tb.rollback_na)
            if rb.boxes:
                extra.append(Section("Rollback Procedure", 4, self.ctx.clamp(tb.rollback_line), "", self._boxes(f"{prefix}/rollback", rb.boxes)))
        description = ""
        prereq: tuple[Checkbox, ...] = ()
        acceptance: tuple[Checkbox, ...] = ()
        notes: list[str] = []
        for name, sink in tb.sinks.items():
            if name == "description":
                description = "\n\n".join(sink.text)
                if sink.boxes or sink.blocks or sink.tables:
                    extra.append(self._section(sink, f"{prefix}/description", parent=tb.id))
            elif name in ("prerequisites", "acceptance"):
                probes = {}
                if name == "acceptance":
                    for i in range(len(sink.boxes)):
                        key = f"{tb.id}.acceptance.{i + 1}"
                        if key in self.bindings and self.bindings[key].get("probe"):
                            probes[i] = str(self.bindings[key]["probe"])
                            self.used_bindings.add(key)
                boxes = self._boxes(f"{prefix}/{name}", sink.boxes, probes)
                if name == "prerequisites":
                    prereq = boxes
                else:
                    acceptance = boxes
                if sink.items or sink.blocks or sink.tables or (sink.text and not sink.items):
                    self.ctx.diag(sink.line, "info", "not-a-checkbox",
                                  f"{sink.title} of {tb.id} has content that is not a checkbox; kept as text")
                    extra.append(Section(sink.title, 4, self.ctx.clamp(sink.line), "\n\n".join(sink.text), (), tuple(sink.blocks),
                                         tuple(sink.tables), tb.id))
            elif name == "notes":
                notes = list(sink.items) + [t for t in sink.text if not t.startswith(("- ", "  "))]
                if sink.boxes or sink.blocks or sink.tables:
                    extra.append(self._section(sink, f"{prefix}/notes", parent=tb.id))
        for name in tb.extra_order:
            sink = tb.sinks[name]
            extra.append(self._section(sink, f"{prefix}/{slug(sink.title)}", parent=tb.id))
        return Task(
            id=tb.id, title=tb.title, line=self.ctx.clamp(tb.line), phase=tb.phase,
            category=strip_md(canon.get("category", ("", 0))[0]),
            duration_minutes=duration.minutes if duration else None, duration_text=dur_text,
            dependencies=parse_dependencies(deps_text), dependencies_text=deps_text,
            risk=parse_risk(risk_text) if risk_text else parse_risk(""), risk_text=risk_text,
            description=description, prerequisites=prereq, steps=steps, acceptance=acceptance, rollback=rollback,
            notes=tuple(notes), extra=tuple(extra), metadata=meta,
            metadata_lines={k: self.ctx.clamp(ln) for k, (_, ln) in tb.meta.items()}, secrets=tuple(tb.secrets),
        )

    def _gate(self, gb: GateB) -> Gate:
        prefix = self._prefix(f"gate:{gb.phase}")
        c = gb.collector
        steps = tuple(self._step(s, [f"gate:{gb.phase}", f"gate:{gb.phase}.{s.number}"], self.doc_secrets) for s in c.steps)
        return Gate(gb.title, self.ctx.clamp(gb.line), "\n\n".join(c.text), gb.rule, steps, self._boxes(prefix, c.boxes))

    def _freeze(self) -> Runbook:
        phases = []
        sections: list[Section] = []
        if self.preamble is not None and not self.preamble.empty():
            sections.append(self._section(self.preamble, "section:" + self._prefix(self.preamble.slugpath)))
        for pb in self.phases:
            tasks = tuple(self._task_approval(self._task(t), t) for t in pb.tasks)
            gates = tuple(self._gate(g) for g in pb.gates)
            dur = parse_duration(pb.duration_text, self.day_hours) if pb.duration_text else None
            meta = {META_KEYS.get(k, k): strip_md(v) for k, (v, _) in pb.meta.items()}
            risk_text = meta.get("risk", "")
            phases.append(Phase(
                pb.number, pb.title, self.ctx.clamp(pb.line), dur.minutes if dur else None, pb.duration_text,
                meta.get("purpose", ""), meta.get("dependencies", ""), parse_risk(risk_text), risk_text, tasks, gates,
                "\n\n".join(pb.sink.text),
            ))
            if pb.sink.boxes or pb.sink.tables or pb.sink.blocks:
                sections.append(self._section(pb.sink, "section:" + self._prefix(pb.sink.slugpath)))
        for sink in self.sections:
            sections.append(self._section(sink, "section:" + self._prefix(sink.slugpath)))
        overview: dict[str, str] = {}
        for sink in self.sections:
            if sink.level <= 2 and strip_md(sink.title).lower() in ("overview", "document control", "summary"):
                for k, (v, _) in sink.meta.items():
                    overview.setdefault(strip_md(k), strip_md(v))
        for key in self.bindings:
            if key not in self.used_bindings:
                self._binding_problem(key, f"binding {key!r} matches no task, step or criterion")
        if self.lc and not any(p.tasks for p in phases):
            self.ctx.diag(1, "warning", "no-tasks", self.no_tasks_message)
        notify = self._notify()
        mirror = self._mirror()
        approval = self._document_approval()  # before the diagnostics are collected: it may add one
        diags = sorted(self.ctx.diagnostics, key=lambda d: (d.path != self.path, d.line))
        return Runbook(
            title=self.document_title(), path=self.path,
            sha256=hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest(),
            overview=overview, phases=tuple(phases), sections=tuple(sections), diagnostics=tuple(diags),
            line_count=self.lc, secrets=tuple(dict.fromkeys(self.doc_secrets)), front_matter=self.front_scalars(),
            default_target=self.doc_default if self.doc_default is not None and self.doc_default.chosen else None,
            notify=notify, approval=approval, mirror=mirror,
        )

    def document_title(self) -> str:
        """The H1, else the front matter's title, else the first heading, else the file name."""
        if self.title:
            return self.title
        if self.front.title:
            return self.front.title
        if self.sections:
            return strip_md(self.sections[0].title)
        return os.path.basename(self.path)

    def _notify(self) -> tuple[str, ...]:
        """Notification URLs: the front matter's ``notify:`` then the bindings file's."""
        urls: list[str] = []
        if "notify" in self.front.data:
            found, problems = notify_urls(self.front.data["notify"])
            line = next((i + 1 for i, text in enumerate(self.lines[:self.front.end])
                         if text.lstrip().startswith(("notify:", "notify =", "notify="))), 1)
            for problem in problems:
                self.ctx.diag(line, "error", "notify", problem)
            urls.extend(found)
        urls.extend(u for u in self.bindings.notify if u not in urls)
        return tuple(urls)

    def _mirror(self) -> str:
        """The journal mirror: the front matter's ``mirror:``, else the bindings file's."""
        if "mirror" in self.front.data:
            dest, problem = mirror_destination(self.front.data["mirror"])
            if problem:
                line = next((i + 1 for i, text in enumerate(self.lines[:self.front.end])
                             if text.lstrip().startswith(("mirror:", "mirror =", "mirror="))), 1)
                self.ctx.diag(line, "error", "mirror", problem)
            if dest:
                return dest
        return self.bindings.mirror

    def front_scalars(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.front.data.items() if isinstance(v, (str, int, float, bool))}
