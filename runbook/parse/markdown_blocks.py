"""Markdown source -> a small tree of block nodes with 1-based source lines.

The parser does not need markdown-it's inline tokens (it reads bold titles and
backticks with regular expressions), so only the block rules run: that halves the
parse time.  :func:`parse_blocks` returns the top-level :class:`Node` list; every
node carries ``line``/``end`` (1-based, inclusive) taken from ``token.map``.

A fence that swallowed Markdown structure (a stray ```` fence eating
``#### Acceptance Criteria``, or a ```bash fence whose closing line is missing, so
that it runs into the next step) is *recovered*: the part before the first
structural line stays a fence, the rest is parsed again as Markdown with its
real line numbers, and a :class:`FenceProblem` says what happened.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from markdown_it import MarkdownIt

if TYPE_CHECKING:
    from markdown_it.token import Token

_MD = MarkdownIt("commonmark").enable("table").disable(["inline", "text_join"])

#: the loggers of the block rules we run: each rule starts with ``LOGGER.debug(...)``, one call
#: per rule tried per line (~400,000 on a 2,000-task runbook, ~20% of markdown-it's time)
_RULE_LOGGERS = tuple(logging.getLogger(name) for name in
                      dict.fromkeys(rule.__module__ for rule in _MD.block.ruler.getRules("")))


def _no_debug(*_args: object, **_kwargs: object) -> None:
    return None


def _quiet_rule_debug() -> None:
    """While nobody listens at DEBUG, the block rules' ``debug`` is a no-op (the same result,
    without the two calls each that ``Logger.debug`` costs); once DEBUG is enabled for them it
    is the logger's own again."""
    for logger in _RULE_LOGGERS:
        if logger.isEnabledFor(logging.DEBUG):
            logger.__dict__.pop("debug", None)
        elif logger.__dict__.get("debug") is not _no_debug:
            logger.debug = _no_debug  # type: ignore[method-assign]

NEWLINE_RE = re.compile(r"\r\n?")

SHELL_LANGS = frozenset({"bash", "sh", "shell", "zsh", "ksh", "dash", "shellscript", "bash-script"})
CONSOLE_LANGS = frozenset({"console", "shell-session", "sh-session", "bash-session", "terminal", "shellsession"})
MARKDOWN_LANGS = frozenset({"markdown", "md", "gfm", "commonmark"})

# "#### Acceptance Criteria", "### Task X-1: Title", "## Phase 2: Title": two or more hashes (a single
# "#" is a shell or YAML comment) and exactly a runbook heading, not a sentence that starts with one
_STRUCT_HEADING_RE = re.compile(
    r"^\s{0,3}#{2,6}\s+(?:"
    r"Task\s+\S+\s*:.*"
    r"|Phase\s+\w+\s*(?:[:\-–—].*|\s+smoke\s+test.*)"
    r"|(?:steps|prerequisites|pre-requisites|acceptance(?:\s+criteria)?|rollback(?:\s+procedure)?|back-?out(?:\s+plan)?"
    r"|notes|description|verification|smoke\s+test)\s*(?:\([^()]*\))?\s*:?"
    r")\s*$",
    re.I,
)
_ANY_HEADING_RE = re.compile(r"^\s{0,3}#{3,6}\s+\S")
_CHECKBOX_LINE_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[[ xX]\]\s")
_STEP_TITLE_RE = re.compile(r"^\s{0,3}(?:\d+[.)]\s+)?\*\*[^*].*\*\*\s*(?:\(.*\))?\s*:?\s*$")
_EXPECTED_RE = re.compile(r"^\s{0,3}expected(?:\s+(?:output|result))?s?\s*:", re.I)


@dataclass(slots=True)
class Node:
    """One block of the document.

    ``kind``: ``heading``, ``paragraph``, ``fence``, ``code`` (indented),
    ``list``, ``item``, ``table``, ``html``, ``hr``, ``quote``.
    """

    kind: str
    line: int
    end: int
    level: int = 0  # heading level
    text: str = ""  # paragraph/heading inline source, html source, fence/code content
    info: str = ""  # fence info string
    markup: str = ""  # fence marker (``` or ~~~~), list bullet
    ordered: bool = False
    number: int | None = None  # list item ordinal as written
    closed: bool = True  # fences: a closing line was found
    recovered: bool = False  # produced by re-parsing a swallowed region
    children: list[Node] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    @property
    def lang(self) -> str:
        return self.info.split("{", 1)[0].strip().split(" ", 1)[0].lower() if self.info else ""


@dataclass(frozen=True, slots=True)
class FenceProblem:
    """A fence that is unclosed or swallowed Markdown structure."""

    line: int  # opening line
    end: int  # last line the fence reached
    unclosed: bool
    swallowed: tuple[tuple[int, str], ...] = ()  # (line, text) of structural lines inside
    recovered: bool = False
    markup: str = ""


def normalize(text: str) -> str:
    """Line endings as markdown-it sees them (CRLF and CR -> LF)."""
    return NEWLINE_RE.sub("\n", text.replace("\x00", "\ufffd"))


def count_lines(norm: str) -> int:
    if not norm:
        return 0
    return norm.count("\n") + (0 if norm.endswith("\n") else 1)


def parse_blocks(norm: str, problems: list[FenceProblem], *, base: int = 0, nested: bool = False) -> list[Node]:
    """Top-level nodes of ``norm`` (already normalised); line numbers shifted by ``base``."""
    _quiet_rule_debug()
    try:
        tokens = _MD.parse(norm)
    except Exception:  # noqa: BLE001 - pragma: no cover - markdown-it never raises on text, but never crash
        return [Node("paragraph", base + 1, base + max(1, count_lines(norm)), text=norm)]
    lines = norm.split("\n")
    total = count_lines(norm)
    nodes = _build(tokens, lines, base, total)
    return _recover(nodes, lines, base, total, problems, nested)


_LEAF_TYPES = frozenset({"fence", "code_block", "html_block", "hr"})
_CONTAINER_TYPES = frozenset({"bullet_list_open", "ordered_list_open", "list_item_open", "blockquote_open"})
_CONTAINER_CLOSE_TYPES = frozenset({"bullet_list_close", "ordered_list_close", "list_item_close", "blockquote_close"})


def _leaf(tok: Token, lines: list[str], start: int, end: int) -> Node:
    """The node of a block token without children (one of :data:`_LEAF_TYPES`)."""
    if tok.type == "fence":
        closed = _is_closing(lines, tok.map[1] - 1 if tok.map else -1, tok.markup, tok.map[0] if tok.map else -1)
        return Node("fence", start, end, text=tok.content, info=tok.info.strip(), markup=tok.markup, closed=closed)
    if tok.type == "code_block":
        return Node("code", start, end, text=tok.content)
    if tok.type == "html_block":
        return Node("html", start, end, text=tok.content)
    return Node("hr", start, end)


def _container(tok: Token, start: int, end: int) -> Node:
    """The node a container token opens (one of :data:`_CONTAINER_TYPES`): a list, an item or a quote."""
    if tok.type in ("bullet_list_open", "ordered_list_open"):
        return Node("list", start, end, ordered=tok.type == "ordered_list_open", markup=tok.markup)
    if tok.type == "list_item_open":
        number = int(tok.info) if tok.info and tok.info.isdigit() else None
        return Node("item", start, end, number=number, markup=tok.markup)
    return Node("quote", start, end)


def _build(tokens: list[Token], lines: list[str], base: int, total: int) -> list[Node]:
    """The node tree of the block tokens.  One pass; the list new nodes go to (``siblings``)
    and the line span are kept in locals (a 2,000-task runbook has ~120,000 tokens)."""
    root: list[Node] = []
    stack: list[Node] = []
    siblings = root  # children of stack[-1], else root
    table: Node | None = None
    row: list[str] | None = None
    last = base + max(total, 1)
    first = base + 1

    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        t = tok.type
        m = tok.map
        if m:
            start = base + m[0] + 1
            end = base + m[1] if m[1] > m[0] else start
            if end > last:
                end = last
        else:
            start = end = stack[-1].line if stack else first
        if t == "heading_open":
            nxt = tokens[i + 1] if i + 1 < n else None
            inline = nxt.content if nxt is not None and nxt.type == "inline" else ""
            siblings.append(Node("heading", start, end, level=int(tok.tag[1:]), text=inline.strip()))
            i += 3
            continue
        if t == "paragraph_open":
            if table is None:
                nxt = tokens[i + 1] if i + 1 < n else None
                inline = nxt.content if nxt is not None and nxt.type == "inline" else ""
                siblings.append(Node("paragraph", start, end, text=inline))
            i += 3
            continue
        if t in _CONTAINER_CLOSE_TYPES:
            if stack:
                stack.pop()
                siblings = stack[-1].children if stack else root
        elif t in _CONTAINER_TYPES:
            node = _container(tok, start, end)
            siblings.append(node)
            stack.append(node)
            siblings = node.children
        elif t in _LEAF_TYPES:
            siblings.append(_leaf(tok, lines, start, end))
        elif t == "table_open":
            table = Node("table", start, end)
            siblings.append(table)
        elif t == "table_close":
            table = None
        elif t == "tr_open" and table is not None:
            row = []
            table.rows.append(row)
        elif t == "inline" and table is not None and row is not None:
            row.append(tok.content.strip())
        i += 1
    return root


def _is_closing(lines: list[str], idx: int, markup: str, open_idx: int) -> bool:
    if idx <= open_idx or idx < 0 or idx >= len(lines) or not markup:
        return False
    s = lines[idx].strip()
    while s.startswith(">"):
        s = s[1:].strip()
    ch = markup[0]
    return len(s) >= len(markup) and s == ch * len(s)


def structural_lines(code: str, lang: str) -> list[tuple[int, str]]:
    """Lines of a fence's content that look like Markdown structure (0-based index, text).

    Headings naming runbook sections, checkbox items, step titles, ``Expected:``
    lines and -- in shell blocks -- another fence opener with a language: all of
    these mean the fence swallowed what the author meant as document text.
    """
    if lang in MARKDOWN_LANGS:
        return []
    shellish = lang in SHELL_LANGS or lang in CONSOLE_LANGS or lang == ""
    found: list[tuple[int, str]] = []
    for idx, ln in enumerate(code.split("\n")):
        if not ln.strip():
            continue
        if _STRUCT_HEADING_RE.match(ln) or _CHECKBOX_LINE_RE.match(ln) or (shellish and (_STEP_TITLE_RE.match(ln) or _EXPECTED_RE.match(ln))) or (lang == "" and _ANY_HEADING_RE.match(ln)) or (lang in SHELL_LANGS and re.match(r"^\s{0,3}(`{3,}|~{3,})\s*[A-Za-z]", ln)):
            found.append((idx, ln.strip()))
    return found


def _recover(
    nodes: list[Node], lines: list[str], base: int, total: int, problems: list[FenceProblem], nested: bool
) -> list[Node]:
    out: list[Node] = []
    for node in nodes:
        if node.children:
            node.children = _recover(node.children, lines, base, total, problems, nested)
        if node.kind == "code" and re.match(r"^\s*(`{3,}|~{3,})", node.text):
            # a fence indented too far became an indented code block: read it as Markdown
            body = _dedent(node.text)
            out.extend(parse_blocks(body, problems, base=node.line - 1, nested=True))
            continue
        if node.kind != "fence":
            out.append(node)
            continue
        struct = structural_lines(node.text, node.lang)
        unclosed = not node.closed and not nested
        if not struct:
            if unclosed:
                problems.append(FenceProblem(node.line, node.end, True, (), False, node.markup))
            out.append(node)
            continue
        content = node.text.split("\n")
        if content and content[-1] == "":
            content.pop()
        k = struct[0][0]
        swallowed = tuple((node.line + 1 + idx, text) for idx, text in struct)
        problems.append(FenceProblem(node.line, node.end, unclosed, swallowed, True, node.markup))
        head = content[:k]
        while head and not head[-1].strip():
            head.pop()
        if head:
            keep = Node(
                "fence", node.line, node.line + len(head), text="\n".join(head) + "\n", info=node.info,
                markup=node.markup, closed=False, recovered=True,
            )
            out.append(keep)
        rest = "\n".join(content[k:]) + "\n"
        sub = parse_blocks(rest, problems, base=node.line + k, nested=True)
        for s in sub:
            _mark_recovered(s)
        if sub and node.closed:
            _extend_last_fence(sub, node.end)
        out.extend(sub)
    return out


def _dedent(text: str) -> str:
    lines = text.split("\n")
    widths = [len(ln) - len(ln.lstrip(" ")) for ln in lines if ln.strip()]
    cut = min(widths) if widths else 0
    return "\n".join(ln[cut:] for ln in lines)


def _mark_recovered(node: Node) -> None:
    node.recovered = True
    for c in node.children:
        _mark_recovered(c)


def _extend_last_fence(nodes: list[Node], end: int) -> None:
    """An inner fence left open inside a recovered region ends where the outer fence closed."""
    last = nodes[-1]
    while last.children:
        last = last.children[-1]
    if last.kind == "fence" and not last.closed:
        last.end = max(last.end, end)
        last.closed = True


def walk(nodes: list[Node]) -> Iterator[Node]:
    """Every node, depth first, in document order."""
    for n in nodes:
        yield n
        if n.children:
            yield from walk(n.children)

