"""Steps, gates and rollback procedures: from block nodes to raw steps and blocks.

:class:`StepsCollector` is fed the nodes of a ``#### Steps`` section (or a phase
smoke test, or a rollback procedure) one by one and keeps raw, mutable steps;
:mod:`runbook.parse.parser` freezes them into :class:`runbook.model.Step` once the
whole document (and so every ``secret=`` annotation) is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from runbook.model import Block, Diagnostic, Expectation
from runbook.parse.annotations import ANNOTATION_RE, PROBE_RE, fence_attrs, parse_pairs
from runbook.parse.markdown_blocks import CONSOLE_LANGS, SHELL_LANGS, Node
from runbook.shell.heuristics import example_block, looks_like_command, looks_like_shell, looks_like_shell_paragraphs, statement_lines

CHECK_RE = re.compile(r"^\[([ xX])\](?:\s+|$)(.*)$", re.S)
EXPECTED_RE = re.compile(
    r"^(?:\*\*|__)?(expected(?:\s+(?:output|result|results))?|(?:sample|example)\s+output|output)\s*:?(?:\*\*|__)?\s*:\s*(.*)$",
    re.S | re.I,
)
BOLD_TITLE_RE = re.compile(r"^(?:\*\*|__)(?P<title>[^*_].*?)(?:\*\*|__)\s*(?P<hint>\([^()]*\)|[-–—:][^\n]*)?\s*:?\s*$", re.S)
LEAD_BOLD_RE = re.compile(r"^(?:\*\*|__)(?P<title>[^*_].*?)(?:\*\*|__)\s*(?P<hint>.*)$")
LITERAL_RE = re.compile(r"``\s?(.+?)\s?``|`([^`\n]+)`")
PATH_COMMENT_RE = re.compile(
    r"^\s*(?:#|//|--|;|/\*|<!--)\s*(?:(?:file|path)\s*:\s*)?((?:/|~/)[\w.@%+,=:\-/]+)\s*(?:\*/|-->)?\s*$", re.I
)
PROMPT_RE = re.compile(r"^(?:[\w.-]+@[\w.-]+(?::[^$#\n]*)?)?\$ (.*)$")


_BOLD_RE = re.compile(r"(\*\*|__)(.+?)\1")
_EM_RE = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?!\w)")


def strip_md(text: str) -> str:
    """Plain text of an inline snippet: no emphasis markers, single spaces."""
    if "*" in text or "__" in text:
        text = _BOLD_RE.sub(r"\2", text)
        if "*" in text:
            text = _EM_RE.sub(r"\1", text)
    return " ".join(text.split())


def literals(text: str) -> tuple[str, ...]:
    out = []
    for m in LITERAL_RE.finditer(text):
        lit = (m.group(1) or m.group(2) or "").strip()
        if lit and lit not in out:
            out.append(lit)
    return tuple(out)


def split_title(text: str) -> tuple[str, str, str]:
    """``**Title** (hint)\\nmore`` -> (title, hint, more)."""
    first, _, more = text.strip().partition("\n")
    m = LEAD_BOLD_RE.match(first.strip())
    if m:
        return strip_md(m.group("title")).rstrip(":"), m.group("hint").strip(), more.strip()
    return strip_md(first), "", more.strip()


def bold_title(text: str) -> tuple[str, str] | None:
    """A paragraph that is only a bold title (optionally with a parenthesised hint)."""
    if "\n" in text.strip():
        return None
    m = BOLD_TITLE_RE.match(text.strip())
    if not m:
        return None
    return strip_md(m.group("title")), (m.group("hint") or "").strip()


@dataclass(slots=True, eq=False)
class RawBox:
    text: str
    checked: bool
    line: int
    probe: str | None = None
    parent: RawBox | None = None  # the checkbox this one is nested under


@dataclass(slots=True)
class Entry:
    """One list item: a checkbox or a plain item, with nodes that are neither."""

    box: RawBox | None
    text: str
    line: int
    depth: int
    extra: list[Node] = field(default_factory=list)


def list_entries(node: Node, depth: int = 0, parent: RawBox | None = None) -> Iterator[Entry]:
    for item in node.children:
        children = item.children
        first = children[0] if children and children[0].kind == "paragraph" else None
        text = first.text.strip() if first is not None else ""
        rest = children[1:] if first is not None else children
        box = None
        m = CHECK_RE.match(text)
        if m:
            body = m.group(2).strip()
            probe = None
            pm = PROBE_RE.search(body)
            if pm:
                probe = pm.group(1).strip()
                body = (body[: pm.start()] + body[pm.end():]).strip()
            box = RawBox(body, m.group(1) in "xX", item.line, probe, parent)
        entry = Entry(box, text, item.line, depth)
        nested: list[Node] = []
        for c in rest:
            if c.kind == "list":
                nested.append(c)
            elif c.kind == "html" and box is not None and (probe := PROBE_RE.search(c.text)) and box.probe is None:
                box.probe = probe.group(1).strip()
            elif c.kind == "paragraph" and box is not None:
                box.text = (box.text + "\n" + c.text.strip()).strip()
            elif c.kind == "paragraph":
                entry.text = (entry.text + "\n" + c.text.strip()).strip()
            else:
                entry.extra.append(c)
        yield entry
        for sub in nested:
            yield from list_entries(sub, depth + 1, box if box is not None else parent)


class Ctx:
    """What the collectors need from the parser: source lines, diagnostics, secrets."""

    def __init__(self, path: str, lines: list[str], line_count: int) -> None:
        self.path = path
        self.lines = lines
        self.line_count = line_count
        self.diagnostics: list[Diagnostic] = []
        self.on_secret: Callable[[list[str], int], None] = lambda names, line: None
        self.on_approval: Callable[[str, int], None] = lambda value, line: None

    def clamp(self, line: int) -> int:
        return max(1, min(line, self.line_count or 1))

    def diag(self, line: int, severity: str, code: str, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.path, self.clamp(line), severity, message, code))  # type: ignore[arg-type]

    def source(self, node: Node) -> str:
        return "\n".join(self.lines[node.line - 1: node.end]).strip("\n")

    def annotation(self, node: Node, inner: str) -> tuple[dict[str, str], int] | None:
        """A ``<!-- runbook: ... -->`` comment (``inner``: its pairs) at ``node``: its problems
        reported, ``secret=`` and ``approval=`` handed on; the rest (for the next block or
        step), or None when nothing is left."""
        pairs, problems = parse_pairs(inner)
        for p in problems:
            self.diag(node.line, "warning", "annotation", f"runbook annotation: {p}")
        if "secret" in pairs:
            self.on_secret([s for s in re.split(r"[,\s]+", pairs.pop("secret")) if s], node.line)
        if "approval" in pairs:
            self.on_approval(pairs.pop("approval"), node.line)
        return (pairs, node.line) if pairs else None


def classify(node: Node, ctx: Ctx, *, output: bool = False, annotation: tuple[dict[str, str], int] | None = None) -> list[Block]:
    """Blocks for one fence: command, file (path comment), output, text; console splits in two."""
    attrs, problems = fence_attrs(node.info)
    for p in problems:
        ctx.diag(node.line, "warning", "annotation", f"fence attributes: {p}")
    merged: dict[str, str] = {}
    if annotation:
        merged.update(annotation[0])
    merged.update(attrs)
    merged.pop("secret", None)
    merged.pop("approval", None)
    if attrs:
        merged["source"] = "fence"
    elif annotation:
        merged["source"] = "annotation"
    lang = node.lang
    code = node.text
    end = node.end
    kind = merged.get("kind")
    if kind not in (None, "command", "file", "output", "text"):
        ctx.diag(node.line, "warning", "annotation", f"unknown block kind {kind!r}")
        kind = None
    if output and kind is None:
        return [Block("output", lang, code, node.line, None, end, merged)]
    if kind == "file" or "path" in merged:
        return [Block("file", lang, code, node.line, merged.get("path") or None, end, merged)]
    if kind in ("command", "output", "text"):
        return [Block(kind, lang, code, node.line, None, end, merged)]  # type: ignore[arg-type]
    if lang in CONSOLE_LANGS:
        return _console(node, merged, ctx)
    if lang in SHELL_LANGS and _starts_with_prompt(code):
        return _console(node, merged, ctx)  # "$ cmd" lines in a ```bash block: a transcript
    if lang in SHELL_LANGS:
        if not looks_like_shell(code):
            stmt = next(statement_lines(code), (0, ""))
            ctx.diag(
                node.line, "warning", "not-shell",
                f"```{lang} block is not runnable shell (line {node.line + 1 + stmt[0]}: {stmt[1][:60]!r}); "
                "kept as text, it will not be run",
            )
            return [Block("text", lang, code, node.line, None, end, merged)]
        example = example_block(code)
        if example:
            ctx.diag(
                node.line, "warning", "example-block",
                f"```{lang} block is an example ({example[0]!r}, dummy value {example[1]!r}); shown, not run",
            )
            return [Block("text", lang, code, node.line, None, end, merged)]
        return [Block("command", lang, code, node.line, None, end, merged)]
    lines = code.split("\n")
    first_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first_idx is not None:
        pm = PATH_COMMENT_RE.match(lines[first_idx])
        if pm:
            body = "\n".join(lines[first_idx + 1:])
            # the line after the code's final newline is the closing fence, or (a fence left open
            # at the end of the document) no line at all: never past the block's end
            src = tuple(min(node.line + 2 + first_idx + i, end) for i in range(len(lines) - first_idx - 1))
            return [Block("file", lang, body, node.line, pm.group(1), end, merged, None, src)]
    if lang == "" and looks_like_shell_paragraphs(code):
        ctx.diag(
            node.line, "info", "fence-language",
            "code block without a language looks like shell; it is shown, not run (write ```bash to run it)",
        )
    return [Block("text", lang, code, node.line, None, end, merged)]


def _starts_with_prompt(code: str) -> bool:
    first = next((ln for ln in code.split("\n") if ln.strip()), "")
    return bool(PROMPT_RE.match(first))


def _console(node: Node, merged: dict[str, str], ctx: Ctx | None = None) -> list[Block]:
    cmds: list[str] = []
    cmd_lines: list[int] = []
    outs: list[str] = []
    out_lines: list[int] = []
    cont = False
    for i, ln in enumerate(node.text.split("\n")):
        src = node.line + 1 + i
        if cont:
            cmds.append(re.sub(r"^> ", "", ln))
            cmd_lines.append(src)
            cont = ln.rstrip().endswith("\\")
            continue
        m = PROMPT_RE.match(ln)
        if m:
            cmds.append(m.group(1))
            cmd_lines.append(src)
            cont = m.group(1).rstrip().endswith("\\")
        elif ln.strip() or outs:
            outs.append(ln)
            out_lines.append(src)
    while outs and not outs[-1].strip():
        outs.pop()
        out_lines.pop()
    blocks = []
    if not cmds and outs and ctx is not None:
        ctx.diag(node.line, "warning", "console-without-prompt",
                 f"```{node.lang} block has no prompt line ('$ command'): it is shown as output and never run")
    if cmds:
        blocks.append(Block("command", "bash", "\n".join(cmds) + "\n", node.line, None, node.end, merged, None, tuple(cmd_lines)))
    if outs or not cmds:
        blocks.append(Block("output", node.lang, "\n".join(outs) + ("\n" if outs else ""), node.line, None, node.end, {}, None, tuple(out_lines)))
    return blocks


_INLINE_CODE_RE = re.compile(r"`([^`\n]+)`")


def box_command(text: str) -> str | None:
    """The command a checkbox carries: its first inline code span that reads as a command."""
    for m in _INLINE_CODE_RE.finditer(text):
        if looks_like_command(m.group(1)):
            return m.group(1).strip()
    return None


def _hint(text: str) -> str:
    """A step title from the prose before a block: its first sentence, plain, without the closing colon."""
    plain = strip_md(" ".join(text.strip().split("\n")))
    plain = re.sub(r"\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])", r"\1", plain).replace("`", "")
    m = re.match(r"(.+?[.!?])(?:\s|$)", plain)
    first = (m.group(1) if m else plain).strip().rstrip(":.").strip()
    return first if len(first) <= 100 else first[:99].rstrip() + "…"


def _comment_title(code: str) -> str:
    for ln in code.split("\n"):
        s = ln.strip()
        if not s or s.startswith("#!"):
            continue
        if s.startswith("#"):
            return s.lstrip("#").strip().rstrip(":")[:80]
        return ""
    return ""


@dataclass(slots=True)
class RawStep:
    number: int
    title: str
    line: int
    hint: str = ""
    text: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    expected: list[Expectation] = field(default_factory=list)
    box: RawBox | None = None  # the checkbox this step ticks when it succeeds


@dataclass(slots=True)
class _Recovery:
    lines: list[str]
    src: list[int]
    heading: str


class StepsCollector:
    """Feeds of one Steps section, smoke test or rollback procedure.

    ``mode``: ``steps`` (numbered items and bold paragraphs start steps),
    ``gate`` (an implicit step per section unless titled), ``rollback`` (each
    runnable block is a step), ``infer`` (a section that became a task, see
    :mod:`runbook.parse.infer`; ``strategy`` says where its steps come from:
    ``headings`` (the caller opens them), ``numbered`` items, ``bold`` paragraphs,
    ``boxes`` carrying a command, or ``blocks``: each runnable block a step).
    """

    def __init__(self, ctx: Ctx, mode: str, default_title: str = "", owner: str = "", strategy: str = "") -> None:
        self.ctx = ctx
        self.mode = mode
        self.strategy = strategy
        self.pending_text: list[str] = []  # infer/blocks: prose waiting for the block it introduces
        self.loose: list[Block] = []  # infer: blocks before any step that are not runnable
        self.item_step: RawStep | None = None  # infer: the step of the list item being fed
        self.default_title = default_title
        self.owner = owner
        self.steps: list[RawStep] = []
        self.boxes: list[RawBox] = []
        self.text: list[str] = []
        self.blocks: list[Block] = []
        self.annotation: tuple[dict[str, str], int] | None = None
        self.pending_output: tuple[int, RawStep] | None = None
        self.pending_list: RawStep | None = None
        self.recovery: _Recovery | None = None
        self.title_hint = ""

    # -- helpers ---------------------------------------------------------------
    def current(self, line: int) -> RawStep:
        if not self.steps:
            title = self.default_title or f"Step {len(self.steps) + 1}"
            self.steps.append(RawStep(1, title, line))
        return self.steps[-1]

    def _add_text(self, text: str) -> None:
        if self.mode == "infer" and self.strategy == "blocks":
            self.pending_text.append(text)
        elif self.mode == "rollback" or not self.steps:
            self.text.append(text)
        else:
            self.steps[-1].text.append(text)

    def finish(self) -> None:
        """End of the section: prose still waiting for a block belongs to the last step (or the section)."""
        self.flush_recovery()
        if self.pending_text:
            (self.steps[-1].text if self.steps else self.text).extend(self.pending_text)
            self.pending_text = []

    def _block_step(self, block: Block) -> RawStep:
        """infer: a new step for a runnable block, titled by the prose that introduced it."""
        title = self.title_hint or block.annotations.get("runme-name", "")  # the sentence before, else Runme's name
        if not title and block.kind == "command":
            title = _comment_title(block.code)
        if not title:
            title = self.default_title or "Step"
            if self.steps:
                title = f"{title} ({len(self.steps) + 1})"
        step = self.new_step(title, "", block.line)
        step.text.extend(self.pending_text)
        self.pending_text = []
        self.title_hint = ""
        step.blocks.append(block)
        return step

    def new_step(self, title: str, hint: str, line: int, number: int | None = None) -> RawStep:
        used = {s.number for s in self.steps}
        n = number if number is not None else (max(used) + 1 if used else 1)
        if n in used:
            fixed = max(used) + 1
            self.ctx.diag(line, "warning", "step-numbering", f"step number {n} repeats in {self.owner}; numbered {fixed}")
            n = fixed
        step = RawStep(n, title, line, hint)
        self.steps.append(step)
        return step

    # -- feeding ---------------------------------------------------------------
    def feed(self, node: Node, in_item: bool = False) -> None:
        kind = node.kind
        if self.recovery is not None and not (kind == "paragraph" and looks_like_command(node.text)):
            self.flush_recovery()
        if self.annotation is not None and kind not in ("fence", "html"):
            self.ctx.diag(self.annotation[1], "warning", "annotation", "runbook annotation is not followed by a code block; ignored")
            self.annotation = None
        if kind != "fence" and kind != "list":
            self.pending_list = None if kind != "paragraph" else self.pending_list
        if kind == "fence":
            self._fence(node)
            return
        if kind != "html" and self.pending_output is not None and kind != "list":
            self.pending_output = None
        if kind == "paragraph":
            self._paragraph(node, in_item)
        elif kind == "list":
            self._list(node, in_item)
            self.pending_output = None
        elif kind == "html":
            self._html(node)
        elif kind == "heading":
            if self.mode == "rollback":
                self.title_hint = strip_md(node.text)
                self.text.append(strip_md(node.text))
            else:
                title, hint, _ = split_title(node.text)
                self.new_step(title, hint, node.line)
        elif kind in ("table", "quote", "code"):
            self._add_text(self.ctx.source(node))

    def start_recovery(self, node: Node) -> None:
        self.flush_recovery()
        self.recovery = _Recovery(["#" * node.level + " " + node.text], [node.line], node.text)

    def flush_recovery(self) -> None:
        rec = self.recovery
        self.recovery = None
        if rec is None:
            return
        if len(rec.lines) == 1:
            self._add_text(rec.lines[0])
            return
        step = self.current(rec.src[0])
        block = Block(
            "command", "bash", "\n".join(rec.lines) + "\n", rec.src[0], None, rec.src[-1],
            {"recovered": "stray-heading"}, None, tuple(rec.src),
        )
        step.blocks.append(block)
        where = f"step {step.number} ({step.title})" if self.mode != "rollback" else "the rollback"
        for text, line in zip(rec.lines[1:], rec.src[1:], strict=True):
            self.ctx.diag(
                line, "warning", "recovered-command",
                f"{text.splitlines()[0][:60]!r} is outside any code block; recovered as a command of {where}",
            )

    def _paragraph(self, node: Node, in_item: bool) -> None:
        t = node.text.strip()
        if self.recovery is not None:
            self.recovery.lines.append(t)
            self.recovery.src.append(node.line)
            return
        m = EXPECTED_RE.match(t)
        if m:
            label, rest = m.group(1).lower(), m.group(2).strip()
            step = self.current(node.line) if self.mode != "rollback" or self.steps else None
            if step is None:
                self.text.append(t)
                return
            if rest:
                step.expected.append(Expectation(strip_md(rest) if not literals(rest) else rest, node.line, literals(rest)))
            if not rest or rest.endswith(":") or "output" in label:
                self.pending_output = (node.line, step)
                self.pending_list = step
            return
        self.pending_list = None
        bt = bold_title(t)
        if self.mode == "infer":
            if bt and not in_item and self.strategy == "bold":
                self.new_step(bt[0].rstrip(":"), bt[1], node.line)
                return
            self.title_hint = _hint(t)
        if bt and not in_item and self.mode != "infer":
            title, hint = bt
            if self.mode == "steps" or (self.mode == "gate" and not title.endswith(":")):
                self.new_step(title.rstrip(":"), hint, node.line)
                return
            self.title_hint = title.rstrip(":")
        elif self.mode in ("steps", "infer") and not in_item and looks_like_command(t):
            self.ctx.diag(
                node.line, "warning", "command-outside-fence",
                f"{t.splitlines()[0][:60]!r} looks like a command but is not in a code block; it will not be run",
            )
        self._add_text(t)

    def _fence(self, node: Node) -> None:
        output = self.pending_output
        blocks = classify(node, self.ctx, output=output is not None, annotation=self.annotation)
        self.annotation = None
        self.pending_output = None
        self.pending_list = None
        self.blocks.extend(blocks)
        if output is not None:
            line, step = output
            step.blocks.extend(blocks)
            if not step.expected or step.expected[-1].line != line:
                step.expected.append(Expectation(blocks[0].code.strip("\n"), line, ()))
            return
        if self.mode == "infer":
            for b in blocks:
                runnable = b.kind in ("command", "file")
                if self.item_step is not None:
                    self.item_step.blocks.append(b)
                elif self.steps and (self.strategy != "blocks" or not runnable):
                    self.steps[-1].blocks.append(b)
                elif runnable:
                    self._block_step(b)
                else:
                    self.loose.append(b)
            return
        if self.mode == "rollback":
            for b in blocks:
                if b.kind in ("command", "file"):
                    n = len(self.steps) + 1
                    title = self.title_hint or _comment_title(b.code) or f"Rollback step {n}"
                    self.steps.append(RawStep(n, title, b.line, "", [], [b]))
                    self.title_hint = ""
                elif self.steps:
                    self.steps[-1].blocks.append(b)
            return
        self.current(node.line).blocks.extend(blocks)

    def _list(self, node: Node, in_item: bool) -> None:
        if self.pending_list is not None:
            step = self.pending_list
            self.pending_list = None
            for e in list_entries(node):
                if e.box is not None:
                    self.boxes.append(e.box)
                else:
                    step.expected.append(Expectation(e.text, e.line, literals(e.text)))
                for x in e.extra:
                    self.feed(x, in_item=True)
            return
        items = node.children
        firsts = [i.children[0].text.strip() if i.children and i.children[0].kind == "paragraph" else "" for i in items]
        has_fence = any(c.kind == "fence" for i in items for c in i.children)
        all_boxes = firsts and all(CHECK_RE.match(f) for f in firsts)
        stepish = (
            not in_item and not all_boxes and self.mode in ("steps", "rollback")
            and (node.ordered or has_fence or all(f.startswith(("**", "__")) for f in firsts))
        )
        if self.mode == "infer":
            stepish = not in_item and not all_boxes and (
                (self.strategy == "numbered" and node.ordered) or (self.strategy in ("numbered", "blocks") and has_fence))
            if not stepish:
                self._infer_entries(node, in_item)
                return
        if stepish and self.mode in ("steps", "infer"):
            for item, first in zip(items, firsts, strict=True):
                title, hint, more = split_title(first) if first else (f"Step {len(self.steps) + 1}", "", "")
                pending, self.pending_text = self.pending_text, []
                step = self.new_step(title, hint, item.line, item.number if node.ordered and self.mode == "steps" else None)
                step.text.extend(pending)
                if more:
                    step.text.append(more)
                outer, self.item_step = self.item_step, (step if self.mode == "infer" else None)
                for c in item.children[1:] if first else item.children:
                    self.feed(c, in_item=True)
                self.item_step = outer
            return
        if stepish:  # rollback: item title names the next runnable block
            for item, first in zip(items, firsts, strict=True):
                if first:
                    self.title_hint = split_title(first)[0].rstrip(":")
                    self.text.append(first)
                for c in item.children[1:] if first else item.children:
                    self.feed(c, in_item=True)
            return
        for e in list_entries(node):
            if e.box is not None:
                self.boxes.append(e.box)
            elif e.text:
                self._add_text("  " * e.depth + "- " + e.text)
            for x in e.extra:
                self.feed(x, in_item=True)

    def _infer_entries(self, node: Node, in_item: bool) -> None:
        """A list that does not make steps: checkboxes (a command in one makes it a step), text, blocks."""
        for e in list_entries(node):
            step = None
            if e.box is not None:
                self.boxes.append(e.box)
                if self.strategy == "boxes":
                    cmd = box_command(e.box.text)
                    if cmd is not None or any(x.kind == "fence" for x in e.extra):
                        step = self.new_step(strip_md(e.box.text.split("\n")[0]), "", e.line)
                        step.box = e.box
                        if cmd is not None:
                            step.blocks.append(Block("command", "bash", cmd + "\n", e.line, None, e.line, {"inline": "true"}))
            elif e.text:
                self._add_text("  " * e.depth + "- " + e.text)
                self.title_hint = _hint(e.text)
            outer, self.item_step = self.item_step, (step or self.item_step)
            for x in e.extra:
                self.feed(x, in_item=True)
            self.item_step = outer

    def _html(self, node: Node) -> None:
        m = ANNOTATION_RE.search(node.text)
        pm = PROBE_RE.search(node.text)
        if m:
            found = self.ctx.annotation(node, m.group(1))
            if found:
                self.annotation = found
        elif pm:
            if self.boxes and self.boxes[-1].probe is None:
                self.boxes[-1].probe = pm.group(1).strip()
            else:
                self.ctx.diag(node.line, "warning", "probe", "probe annotation does not follow a checkbox; ignored")
        else:
            self._add_text(node.text.strip())
