"""Containers the parser fills while walking the document: sections, tasks, gates, phases.

Also the small value parsers for metadata: risk levels, dependencies, slugs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from runbook.model import Block, Risk
from runbook.parse.annotations import ANNOTATION_RE, PROBE_RE
from runbook.parse.markdown_blocks import Node
from runbook.parse.steps import Ctx, RawBox, StepsCollector, classify, list_entries, strip_md

PHASE_RE = re.compile(r"^Phase\s+(?P<num>[0-9]+[A-Za-z]?|[IVX]+)\s*[:.\-–—]\s*(?P<title>.*?)\s*(?:\((?P<dur>[^()]*)\))?\s*$", re.I)
TASK_WORD_RE = re.compile(r"^Task\s+(?P<id>[^\s:]+?)\s*(?::|\s[-–—.]|\.\s)\s*(?P<title>.+)$", re.I)
TASK_ID_RE = re.compile(r"^(?P<id>[A-Z][A-Z0-9]*(?:[-_.][A-Z0-9]+)*[-_.]?\d+[A-Z]?)\s*(?::|\s[-–—])\s*(?P<title>.+)$")
GATE_RE = re.compile(r"smoke\s*test|\bgate\b|go\s*/\s*no[- ]go", re.I)
GATE_PHASE_RE = re.compile(r"^Phase\s+([0-9]+[A-Za-z]?)\b", re.I)
GATE_RULE_RE = re.compile(r"^Gate\s*:\s*(.*)$", re.S | re.I)
META_RE = re.compile(r"^(?:\*\*|__)(?P<key>[^*_\n:]+?):?(?:\*\*|__)\s*:?\s*(?P<value>.*)$", re.S)
PLAIN_META_RE = re.compile(r"^(?P<key>[A-Za-z][\w /-]{0,30}?)\s*:\s+(?P<value>.+)$", re.S)
TASK_ID_IN_TEXT_RE = re.compile(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*-[A-Z]*\d+[A-Z0-9]*\b")
RISK_WORD_RE = re.compile(r"\b(LOW|MEDIUM|MED|MODERATE|HIGH|CRITICAL)\b", re.I)
NA_RE = re.compile(r"^\s*(?:\*\*)?(?:N/?A|not applicable|none|no rollback)\b", re.I)

SUBSECTIONS = (
    ("description", re.compile(r"^(description|overview|summary|purpose|context|background)\b", re.I)),
    ("prerequisites", re.compile(r"^(pre-?requisites?|pre-?conditions?|requirements|before you (start|begin))\b", re.I)),
    ("steps", re.compile(r"^(steps|procedure|implementation|instructions|execution|tasks)\b", re.I)),
    ("acceptance", re.compile(r"^(acceptance|success criteria|verification|validation criteria|done when|definition of done|exit criteria)", re.I)),
    ("rollback", re.compile(r"^(roll-?back|back-?out|undo|revert)", re.I)),
    ("notes", re.compile(r"^(notes?|remarks|comments|tips|caveats)\b", re.I)),
)
META_KEYS = {
    "category": "category", "duration": "duration", "estimated duration": "duration", "estimate": "duration",
    "effort": "duration", "time": "duration", "dependencies": "dependencies", "depends on": "dependencies",
    "dependency": "dependencies", "requires": "dependencies", "risk": "risk", "risk level": "risk",
    "owner": "owner", "assignee": "owner", "environment": "environment", "purpose": "purpose",
}
RISK_ORDER = {Risk.LOW: 1, Risk.MEDIUM: 2, Risk.HIGH: 3, Risk.CRITICAL: 4}


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", strip_md(text).lower()).strip("-")
    return s or "section"


def parse_risk(text: str) -> Risk:
    """``LOW (read-only)`` -> LOW, ``**CRITICAL**`` -> CRITICAL; the highest word wins."""
    best: Risk | None = None
    for m in RISK_WORD_RE.finditer(strip_md(text)):
        word = m.group(1).upper()
        risk = Risk.MEDIUM if word in ("MED", "MODERATE") else Risk(word)
        if best is None or RISK_ORDER[risk] > RISK_ORDER[best]:
            best = risk
    return best or Risk.UNKNOWN


def parse_dependencies(text: str) -> tuple[str, ...]:
    """Task ids in a Dependencies value (``None`` -> ())."""
    out: list[str] = []
    for m in TASK_ID_IN_TEXT_RE.finditer(strip_md(text)):
        if m.group(0) not in out:
            out.append(m.group(0))
    return tuple(out)


def _meta_item(text: str) -> tuple[str, str] | None:
    m = META_RE.match(text.strip())
    if m:
        return m.group("key").strip(), m.group("value").strip()
    m = PLAIN_META_RE.match(text.strip())
    if m and m.group("key").strip().lower() in META_KEYS:
        return m.group("key").strip(), m.group("value").strip()
    return None


class TextSink:
    """Collects prose, tables, checkboxes and blocks of a section-like container."""

    def __init__(self, ctx: Ctx, title: str, level: int, line: int, parent: str | None = None) -> None:
        self.ctx, self.title, self.level, self.line, self.parent = ctx, title, level, line, parent
        self.text: list[str] = []
        self.items: list[str] = []
        self.boxes: list[RawBox] = []
        self.blocks: list[Block] = []
        self.tables: list[tuple[tuple[str, ...], ...]] = []
        self.annotation: tuple[dict[str, str], int] | None = None
        self.slugpath = ""
        self.meta: dict[str, tuple[str, int]] = {}

    def feed(self, node: Node) -> None:
        k = node.kind
        if self.annotation is not None and k not in ("fence", "html"):
            self.ctx.diag(self.annotation[1], "warning", "annotation", "runbook annotation is not followed by a code block; ignored")
            self.annotation = None
        if k == "paragraph":
            self.text.append(node.text.strip())
        elif k == "list":
            self._feed_list(node)
        elif k == "fence":
            self.blocks.extend(classify(node, self.ctx, annotation=self.annotation))
            self.annotation = None
        elif k == "table":
            self.tables.append(tuple(tuple(r) for r in node.rows))
        elif k == "html":
            self._feed_html(node)
        elif k == "heading":
            self.text.append("#" * node.level + " " + node.text)
        elif k in ("quote", "code"):
            self.text.append(self.ctx.source(node))

    def _feed_list(self, node: Node) -> None:
        """A list: checkboxes, items (as text), ``**Key**: value`` metadata items and their sub-items."""
        for e in list_entries(node):
            if e.box is not None:
                self.boxes.append(e.box)
            elif e.text:
                self.items.append(e.text)
                self.text.append("  " * e.depth + "- " + e.text)
                kv = _meta_item(e.text) if e.depth == 0 else None
                if kv:
                    self.meta.setdefault(kv[0], (kv[1], e.line))
                elif e.depth > 0 and self.meta:
                    key = list(self.meta)[-1]
                    value, line = self.meta[key]
                    self.meta[key] = ((value + "; " if value else "") + strip_md(e.text), line)
            for x in e.extra:
                self.feed(x)

    def _feed_html(self, node: Node) -> None:
        """An HTML block: a runbook annotation, a probe for the last checkbox, or text."""
        m, pm = ANNOTATION_RE.search(node.text), PROBE_RE.search(node.text)
        if m:
            found = self.ctx.annotation(node, m.group(1))
            if found:
                self.annotation = found
        elif pm and self.boxes and self.boxes[-1].probe is None:
            self.boxes[-1].probe = pm.group(1).strip()
        else:
            self.text.append(node.text.strip())

    def empty(self) -> bool:
        return not (self.text or self.boxes or self.blocks or self.tables)


@dataclass(slots=True)
class TaskB:
    id: str
    title: str
    line: int
    phase: str
    ctx: Ctx
    sub: str = "meta"
    meta: dict[str, tuple[str, int]] = field(default_factory=dict)
    sinks: dict[str, TextSink] = field(default_factory=dict)
    steps: StepsCollector | None = None
    rollback: StepsCollector | None = None
    rollback_line: int = 0
    rollback_na: bool = False
    rollback_seen_text: bool = False
    sub_titles: dict[str, str] = field(default_factory=dict)
    extra_order: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    approval: str = ""  # approval= as written in the task (runbook.model.Approval)
    approval_line: int = 0
    prefix: str = ""

    def sink(self, name: str, title: str = "", line: int = 0) -> TextSink:
        if name not in self.sinks:
            self.sinks[name] = TextSink(self.ctx, title or name.title(), 4, line or self.line)
            if name not in ("description", "prerequisites", "acceptance", "notes"):
                self.extra_order.append(name)
        return self.sinks[name]

    def close_collectors(self) -> None:
        for c in (self.steps, self.rollback):
            if c is not None:
                c.finish()

    def feed(self, node: Node) -> None:
        if self.sub == "meta":
            if self._meta(node):
                return
            self.sub = "description"
        if self.sub == "steps":
            assert self.steps is not None
            self.steps.feed(node)
        elif self.sub == "rollback":
            assert self.rollback is not None
            if node.kind == "paragraph" and not self.rollback_seen_text:
                self.rollback_seen_text = True
                if NA_RE.match(node.text):
                    self.rollback_na = True
            self.rollback.feed(node)
        else:
            self.sink(self.sub, self.sub_titles.get(self.sub, ""), node.line).feed(node)

    def _meta(self, node: Node) -> bool:
        if node.kind == "list":
            entries = list(list_entries(node))
            pairs = [(_meta_item(e.text), e) for e in entries if e.depth == 0]
            if not pairs or not any(kv for kv, _ in pairs):
                return False
            last = None
            for e in entries:
                kv = _meta_item(e.text) if e.depth == 0 else None
                if kv:
                    self.meta[kv[0]] = (kv[1], e.line)
                    last = kv[0]
                elif e.depth > 0 and last:
                    v, ln = self.meta[last]
                    self.meta[last] = ((v + "; " if v else "") + strip_md(e.text), ln)
                else:
                    self.sink("description", "Description", e.line).text.append(e.text)
            return True
        if node.kind == "paragraph":
            lines = node.text.strip().split("\n")
            kvs = [_meta_item(ln) for ln in lines]
            if kvs and all(kvs):
                for i, kv in enumerate(kvs):
                    self.meta[kv[0]] = (kv[1], node.line + i)  # type: ignore[index]
                return True
        return node.kind in ("hr", "html") and False


@dataclass(slots=True)
class GateB:
    title: str
    line: int
    phase: str
    collector: StepsCollector
    rule: str = ""
    text: list[str] = field(default_factory=list)

    def feed(self, node: Node) -> None:
        if node.kind == "paragraph":
            m = GATE_RULE_RE.match(strip_md(node.text.strip()))
            if m:
                self.rule = (self.rule + "\n" + m.group(1)).strip()
                return
        self.collector.feed(node)


@dataclass(slots=True)
class PhaseB:
    number: str
    title: str
    line: int
    duration_text: str
    sink: TextSink
    tasks: list[TaskB] = field(default_factory=list)
    gates: list[GateB] = field(default_factory=list)
    meta: dict[str, tuple[str, int]] = field(default_factory=dict)

    def feed(self, node: Node) -> None:
        if node.kind == "paragraph":
            kvs = [_meta_item(ln) for ln in node.text.strip().split("\n")]
            if kvs and all(kvs):
                for i, kv in enumerate(kvs):
                    self.meta.setdefault(kv[0].lower(), (kv[1], node.line + i))  # type: ignore[index]
                return
        self.sink.feed(node)


