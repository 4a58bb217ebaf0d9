"""Checking ``Expected:`` lines with backticked literals against a host's output.

``Expected: `✅ Cilium was successfully installed!``` is checkable: the literal must
occur in a line of the output.  ``Expected: Average latency < 2ms`` is not: it is
left to the operator.  An :class:`OutputWatch` follows one host's (already
redacted) output as it streams, line by line, per stream, and remembers for each
literal the first line containing it, plus a bounded tail of recent lines.  Memory
is bounded whatever the output size (``seq 3000000`` keeps a few KB), yet every
line is looked at, not only the tail.

Matching ignores ANSI escape sequences and carriage returns (PTY output) and
compares text decoded as UTF-8 (undecodable bytes replaced).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from runbook.model import Expectation

ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
MAX_LINE = 64 * 1024  # longer lines are matched on their first MAX_LINE characters + the rest in pieces
EVIDENCE_MAX = 300
TAIL_LINES = 50


def clean(line: str) -> str:
    """A line as the operator saw it: no ANSI escapes, no carriage returns."""
    line = ANSI_RE.sub("", line)
    if "\r" in line:
        # a progress bar rewrites the line: keep what is visible at the end
        parts = [p for p in line.split("\r") if p]
        line = parts[-1] if parts else ""
    return line


def checkable(expectations: Sequence[Expectation]) -> list[tuple[int, Expectation]]:
    """``(index into Step.expected, expectation)`` for those with backticked literals."""
    return [(i, e) for i, e in enumerate(expectations) if e.literals]


@dataclass(frozen=True, slots=True)
class CheckResult:
    index: int
    passed: bool
    evidence: str


class OutputWatch:
    """Follows one host's output; answers the step's checkable expectations at the end.

    Works on bytes: lines are counted with ``bytes.count`` and literals found with
    ``bytes.find``; only the matching line and the last ``tail_lines`` lines are
    ever decoded.  (A UTF-8 character never contains a newline byte, so chunks
    split anywhere are handled by keeping the partial last line.)
    """

    def __init__(self, expectations: Sequence[Expectation] = (), tail_lines: int = TAIL_LINES) -> None:
        self._checks = checkable(expectations)
        self._literals = {lit: lit.encode("utf-8") for lit in sorted({x for _, e in self._checks for x in e.literals})}
        self._found: dict[str, str] = {}
        self._partial: dict[str, bytes] = {}
        self.tail: deque[str] = deque(maxlen=max(1, tail_lines))
        self.lines = 0
        self.bytes = 0

    def feed(self, stream: str, data: bytes) -> None:
        """Feed a chunk of (redacted) output of ``stream``."""
        self.bytes += len(data)
        buf = self._partial.pop(stream, b"") + data if stream in self._partial else bytes(data)
        last = buf.rfind(b"\n")
        if last < 0:
            if len(buf) > MAX_LINE:  # a huge line: look at what is there, keep an overlap
                self._search(buf[:MAX_LINE])
                buf = buf[MAX_LINE - 256 :]
            self._partial[stream] = buf
            return
        block, rest = buf[:last], buf[last + 1 :]
        self.lines += block.count(b"\n") + 1
        self._tail(block)
        self._search(block)
        if rest:
            self._partial[stream] = rest

    def _tail(self, block: bytes) -> None:
        pos = len(block)
        for _ in range(self.tail.maxlen or 1):
            pos = block.rfind(b"\n", 0, pos)
            if pos < 0:
                break
        text = block[pos + 1 :].decode("utf-8", "replace")
        self.tail.extend(clean(x) for x in text.split("\n"))

    def _search(self, block: bytes) -> None:
        """Find each pending literal in a block of complete lines (one ``bytes.find`` each)."""
        pending = [(lit, raw) for lit, raw in self._literals.items() if lit not in self._found]
        if not pending:
            return
        if b"\r\n" in block:
            block = block.replace(b"\r\n", b"\n")
        dirty = b"\x1b" in block or b"\r" in block
        for lit, raw in pending:
            i = block.find(raw)
            if i >= 0:
                start = block.rfind(b"\n", 0, i) + 1
                end = block.find(b"\n", i)
                self._found[lit] = clean(block[start : end if end >= 0 else len(block)].decode("utf-8", "replace"))
            elif dirty:  # escapes may sit inside the literal's text: look at those lines cleaned
                for line in block.split(b"\n"):
                    if b"\x1b" in line or b"\r" in line:
                        text = clean(line.decode("utf-8", "replace"))
                        if lit in text:
                            self._found[lit] = text
                            break

    def finish(self) -> None:
        """The output ended: a last line without newline still counts."""
        for stream in list(self._partial):
            rest = self._partial.pop(stream)
            if rest:
                self.lines += 1
                self._tail(rest)
                self._search(rest)

    def results(self) -> list[CheckResult]:
        """One result per checkable expectation: all its literals must have been seen."""
        self.finish()
        out: list[CheckResult] = []
        for index, exp in self._checks:
            missing = [lit for lit in exp.literals if lit not in self._found]
            if missing:
                quoted = ", ".join(f"`{m}`" for m in missing)
                out.append(CheckResult(index, False, f"{quoted} not found in {self.lines} lines of output"))
            else:
                lines = _unique(self._found[lit] for lit in exp.literals)
                out.append(CheckResult(index, True, _short(" | ".join(lines))))
        return out


def _unique(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for x in items:
        if x not in seen:
            seen.append(x)
    return seen


def _short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EVIDENCE_MAX else text[: EVIDENCE_MAX - 1] + "…"


def check_text(expectations: Sequence[Expectation], output: str) -> list[CheckResult]:
    """Check ``expectations`` against a whole output at once (tests, probes)."""
    w = OutputWatch(expectations)
    w.feed("stdout", output.encode("utf-8"))
    return w.results()
