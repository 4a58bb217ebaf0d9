"""Tasks and steps for documents without task headings (alert runbooks, upgrade guides, notebooks).

:func:`runbook.parse.parser.parse` reads the seed's dialect first (``### ID: Title`` under
``## Phase N: Title``); when that finds no task, :func:`infer` reads the same blocks
again this way:

* the sections (headings) form a tree; a section that directly holds a runnable
  block (a command or a file) or a checkbox becomes a task -- the deepest heading
  that holds the block wins -- with a stable id made from its heading
  (``restore-from-snapshot``, ``-2`` when taken) and the heading as its title;
  a document without headings is one task named after the document;
* a section whose sub-headings are ``Step N`` / ``N.`` headings, one of which holds
  a runnable block, is one task whose steps are those headings (with everything
  under them);
* otherwise the steps of a task come, in order of preference, from numbered list
  items, bold paragraphs (``**Title**``), checkboxes that carry a command (the step
  ticks its checkbox when it succeeds), else each runnable block is a step, titled
  by the sentence that introduces it;
* ``Phase N: Title (duration)`` headings are phases at any level; sections with
  prose only stay sections (reference); nothing is dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from runbook.model import Runbook, Section, Task
from runbook.parse.markdown_blocks import Node
from runbook.parse.parser import _Builder, is_shortcode, phase_title
from runbook.parse.sinks import PHASE_RE, PhaseB, TaskB, TextSink, slug
from runbook.parse.steps import CHECK_RE, Ctx, StepsCollector, bold_title, box_command, classify, list_entries, strip_md

__all__ = ["STEP_HEADING_RE", "infer"]

STEP_HEADING_RE = re.compile(r"^(?:step\s+\d+\b\s*[:.)\-–—]?\s*.*|\d+[.)]\s+\S.*)$", re.I)


@dataclass(eq=False)
class _Sec:
    """A heading and what it holds: its direct content and its sub-sections."""

    node: Node | None  # None: the document itself
    level: int
    title: str
    line: int
    parent: _Sec | None = None
    content: list[Node] = field(default_factory=list)
    children: list[_Sec] = field(default_factory=list)
    task: bool = False
    step_kids: list[_Sec] = field(default_factory=list)  # Step N sub-headings that are this task's steps
    phase: bool = False


def infer(first: _Builder) -> Runbook:
    """The runbook of ``first``'s document read by structure inference."""
    return _Inference(first).run()


def _walk(nodes: list[Node]) -> Iterator[Node]:
    for n in nodes:
        yield n
        if n.children:
            yield from _walk(n.children)


class _Inference(_Builder):
    no_tasks_message = "no tasks found: no section holds a command block or a checkbox"

    def __init__(self, first: _Builder) -> None:
        self.text, self.path, self.day_hours = first.text, first.path, first.day_hours
        self.bindings, self.bindings_file = first.bindings, first.bindings_file
        self.used_bindings: set[str] = set()
        self.lines, self.lc = first.lines, first.lc
        self.ctx = Ctx(self.path, self.lines, self.lc)
        self.ctx.on_secret = self._secret
        self.ctx.on_approval = self._approval
        self.doc_approval = first.doc_approval
        self.problems, self.front, self.nodes = first.problems, first.front, first.nodes
        self.doc_default, self.seen_heading = first.doc_default, first.seen_heading  # the document default target
        self.title: str | None = None
        self.title_line = 0
        self.phases: list[PhaseB] = []
        self.phase: PhaseB | None = None
        self.task: TaskB | None = None
        self.gate = None
        self.sections: list[TextSink] = []
        self.stack: list[TextSink] = []
        self.preamble: TextSink | None = None
        self.doc_secrets: list[str] = []
        self.prefixes: set[str] = set()
        self.task_ids: set[str] = set()
        self.default_phase: PhaseB | None = None
        self._probe_ctx = Ctx(self.path, self.lines, self.lc)  # classifying while planning: diagnostics dropped
        self._runnable: dict[int, bool] = {}

    # -- reading ----------------------------------------------------------------
    def run(self) -> Runbook:
        self._fence_diagnostics()
        root = self._tree()
        self._plan(root)
        self._emit(root, [])
        self._close()
        return replace(self._freeze(), inferred=True)

    def _tree(self) -> _Sec:
        root = _Sec(None, 0, "", 1)
        stack = [root]
        seen_heading = False
        for node in self.nodes:
            if node.kind == "hr":
                continue
            if node.kind == "heading" and is_shortcode(node.text):
                node = Node("paragraph", node.line, node.end, text=node.text)  # a template tag, never a heading
            if node.kind != "heading":
                stack[-1].content.append(node)
                continue
            plain = strip_md(node.text)
            if not seen_heading and node.level == 1:
                self.title, self.title_line = plain, node.line  # the H1: its content is the document's
                seen_heading = True
                continue
            seen_heading = True
            while stack[-1].level >= node.level:
                stack.pop()
            sec = _Sec(node, node.level, plain, node.line, stack[-1])
            stack[-1].children.append(sec)
            stack.append(sec)
        return root

    def _fence_runnable(self, node: Node) -> bool:
        key = id(node)
        if key not in self._runnable:
            self._runnable[key] = any(b.kind in ("command", "file") for b in classify(node, self._probe_ctx))
        return self._runnable[key]

    def _holds(self, nodes: list[Node]) -> bool:
        """Runnable blocks or checkboxes directly in ``nodes`` (lists and quotes included)."""
        for n in _walk(nodes):
            if n.kind == "fence" and self._fence_runnable(n):
                return True
            if n.kind == "item" and n.children and n.children[0].kind == "paragraph" and CHECK_RE.match(n.children[0].text.strip()):
                return True
        return False

    def _plan(self, sec: _Sec) -> None:
        if sec.node is not None and PHASE_RE.match(sec.title):
            sec.phase = True
        steps = [c for c in sec.children if STEP_HEADING_RE.match(c.title) and not PHASE_RE.match(c.title)]
        if steps and any(self._holds(c.content) for c in steps):
            sec.task = True
            sec.step_kids = steps
            for c in sec.children:
                if c not in steps:
                    self._plan(c)
            return
        sec.task = self._holds(sec.content)
        for c in sec.children:
            self._plan(c)

    def _strategy(self, nodes: list[Node]) -> str:
        """Where the steps of a task's own content come from (see the module docstring)."""
        for i, n in enumerate(nodes):
            if n.kind == "list" and n.ordered:
                after = nodes[i + 1] if i + 1 < len(nodes) else None
                if any(x.kind == "fence" and self._fence_runnable(x) for x in _walk(n.children)) or (
                        after is not None and after.kind == "fence" and self._fence_runnable(after)):
                    return "numbered"
        bold = False
        for n in nodes:
            if n.kind == "paragraph" and bold_title(n.text.strip()):
                bold = True
            elif bold and n.kind == "fence" and self._fence_runnable(n):
                return "bold"
        for n in nodes:
            if n.kind != "list":
                continue
            for e in list_entries(n):
                if e.box is not None and (box_command(e.box.text) is not None
                                          or any(x.kind == "fence" and self._fence_runnable(x) for x in e.extra)):
                    return "boxes"
        return "blocks"

    # -- building ---------------------------------------------------------------
    def _emit(self, sec: _Sec, path: list[_Sec]) -> None:
        outer_phase = self.phase
        if sec.phase and sec.node is not None:
            self._open_phase_sec(sec)
        if sec.task:
            strategy = "headings" if sec.step_kids and not self._holds(sec.content) else self._strategy(sec.content)
            self._open_inferred(sec, strategy)
            for node in sec.content:
                self.task.feed(node)  # type: ignore[union-attr]
            for kid in sec.step_kids:
                self._feed_step_heading(kid)
            self._close()
        elif sec.node is None:
            if self.title is not None:  # the H1 and what it holds (as the seed's reading names it)
                self.preamble = TextSink(self.ctx, self.title, 1, self.title_line)
                self.preamble.slugpath = slug(self.title)
            for node in sec.content:
                self._content(node)
        elif not sec.phase:
            self._open_sink(sec, path)
            for node in sec.content:
                self.stack[-1].feed(node)
        else:
            for node in sec.content:
                self.phase.feed(node)  # type: ignore[union-attr]
        for kid in sec.children:
            if kid not in sec.step_kids:
                self._emit(kid, path + ([sec] if sec.node is not None else []))
        self.phase = outer_phase

    def _feed_step_heading(self, kid: _Sec) -> None:
        assert self.task is not None and self.task.steps is not None
        collector = self.task.steps
        collector.feed(Node("heading", kid.line, kid.line, level=kid.level, text=kid.node.text if kid.node else kid.title))
        for node in kid.content:
            collector.feed(node)
        for sub in kid.children:  # everything under a step heading belongs to the step
            collector.feed(Node("paragraph", sub.line, sub.line, text=sub.title))
            self._feed_subtree(collector, sub)

    def _feed_subtree(self, collector: StepsCollector, sec: _Sec) -> None:
        for node in sec.content:
            collector.feed(node)
        for sub in sec.children:
            collector.feed(Node("paragraph", sub.line, sub.line, text=sub.title))
            self._feed_subtree(collector, sub)

    def _open_phase_sec(self, sec: _Sec) -> None:
        self._close()
        m = PHASE_RE.match(sec.title)
        assert m is not None
        title, dur = phase_title(m, self.day_hours)
        sink = TextSink(self.ctx, sec.title, sec.level, sec.line)
        sink.slugpath = f"phase-{m.group('num').lower()}"
        self.phase = PhaseB(m.group("num"), title, sec.line, dur, sink)
        self.phases.append(self.phase)

    def _task_id(self, title: str) -> str:
        base = slug(title)
        if len(base) > 40:  # "view-kubernetes-deployments-to-see-if-the-app..." -> at a word boundary
            base = base[:41].rsplit("-", 1)[0] or base[:40]
        tid, n = base, 1
        while tid in self.task_ids:
            n += 1
            tid = f"{base}-{n}"
        self.task_ids.add(tid)
        return tid

    def _open_inferred(self, sec: _Sec, strategy: str) -> None:
        self._close()
        title = sec.title.rstrip(":").strip() or sec.title if sec.node is not None else self._document_name()
        tid = self._task_id(title)
        phase = self.phase
        if phase is None:
            if self.default_phase is None:
                sink = TextSink(self.ctx, "Tasks", 2, sec.line)
                sink.slugpath = "phase-none"
                self.default_phase = PhaseB("", "", sec.line, "", sink)
                self.phases.append(self.default_phase)
            phase = self.default_phase
        task = TaskB(tid, title, sec.line, phase.number, self.ctx)
        task.sub = "steps"
        task.steps = StepsCollector(self.ctx, "infer", title, f"task {tid}", strategy)
        phase.tasks.append(task)
        self.task = task

    def _document_name(self) -> str:
        if self.title:
            return self.title
        if self.front.title:
            return self.front.title
        return os.path.splitext(os.path.basename(self.path))[0] or "document"

    def _open_sink(self, sec: _Sec, path: list[_Sec]) -> None:
        self._close()
        parent = path[-1].title if path else None
        sink = TextSink(self.ctx, sec.title, sec.level, sec.line, parent)
        sink.slugpath = "/".join(slug(p.title) for p in path + [sec])
        self.sections.append(sink)
        self.stack = [sink]

    # -- freezing -----------------------------------------------------------------
    def _task(self, tb: TaskB) -> Task:
        c = tb.steps
        assert c is not None
        prefix = self._prefix(tb.id)
        secrets = self.doc_secrets + tb.secrets
        box_keys = {id(b): f"{prefix}/checklist/{i}" for i, b in enumerate(c.boxes)}
        steps = []
        for raw in c.steps:
            step = self._step(raw, [tb.id, f"{tb.id}.{raw.number}"], secrets)
            if raw.box is not None:
                step = replace(step, checkbox=box_keys.get(id(raw.box)))
            steps.append(step)
        extra: tuple[Section, ...] = ()
        if c.loose:
            extra = (Section(tb.title, 4, self.ctx.clamp(tb.line), "", (), tuple(c.loose), (), tb.id),)
        return Task(
            id=tb.id, title=tb.title, line=self.ctx.clamp(tb.line), phase=tb.phase, description="\n\n".join(c.text),
            steps=tuple(steps), extra=extra, secrets=tuple(tb.secrets), inferred=True,
            checklist=self._boxes(f"{prefix}/checklist", c.boxes),
        )

    def document_title(self) -> str:
        return self._document_name()
