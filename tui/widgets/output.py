"""Live output, one tab per host (Toolong style).

Output arrives from the session (one record per chunk, possibly thousands per
second).  :meth:`OutputPane.feed` only appends to an in-memory buffer; a timer
(:meth:`OutputPane.flush`, every ``flush_interval`` seconds) writes whole lines to
each host's :class:`~textual.widgets.Log`, which keeps at most ``max_lines`` lines.
When a flush brings more lines than that, only the newest ``max_lines`` are
written: the rest is in the journal, never lost.  The log follows the tail until
the operator scrolls up (``Log.write_lines`` does that), End follows again.

Output is shown, never obeyed.  :func:`clean` renders a line as text by construction: CSI
sequences (colours, cursor moves) are dropped, and then every character that is not
printable text (ESC and what follows it, C1 controls, bidi and zero-width characters) is
shown as an escape (``\x1bc``, ``\u202e``) by :func:`runbook.terminal_text.visible`, an
allow-list: whatever a host prints, nothing reaches the terminal but text.  A line
longer than :data:`MAX_LINE` characters is cut (the rest is in the journal).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.content import Content
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Log, Static, TabbedContent, TabPane

from runbook.terminal_text import visible

from tui import format as fmt

if TYPE_CHECKING:
    from typing_extensions import Self

CSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]")  # colours and cursor moves: dropped, never obeyed
MAX_LINE = 4096  # characters of one line shown; the whole line is in the journal
PARTIAL_TICKS = 2  # an unterminated line (a prompt) is shown after this many quiet flushes


def pane_id(host: str) -> str:
    """A widget id for ``host``'s tab; distinct hosts get distinct ids ("a b" and "a_b" too)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", host)
    if safe != host:
        safe += "-" + hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return "host-" + safe


def clean(line: str) -> str:
    """One line of output as text: what a terminal would show after carriage returns, CSI
    sequences dropped, every other control character (and ESC) shown as an escape."""
    line = line.rstrip("\r")
    if "\r" in line:
        line = line.rsplit("\r", 1)[1]
    if "\x1b" in line or "\x9b" in line:
        line = CSI.sub("", line)
    if len(line) > MAX_LINE:
        line = f"{line[:MAX_LINE]} … ({len(line) - MAX_LINE} more characters in the journal)"
    return visible(line)


class HostLog(Log):
    """The output of one host.  ``End`` jumps back to following the tail."""

    BINDINGS = [
        Binding("end", "follow", "Follow", show=False, id="output.follow", tooltip="Scroll to the end and follow new output"),
    ]

    def __init__(self, host: str, max_lines: int) -> None:
        super().__init__(max_lines=max_lines, highlight=False, auto_scroll=True, id=f"log-{pane_id(host)}", classes="host-log")
        self.host = host

    def action_follow(self) -> None:
        self.scroll_end(animate=False)

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Self:
        """Textual's Log, once full, prunes the head but repaints only the rows the new lines had
        before the prune (below the screen): the screen kept showing the old tail, e.g. the last
        run's "succeeded" under a step that had failed.  Repaint what is on screen."""
        full = self.max_lines is not None and self.line_count >= self.max_lines
        super().write_lines(lines, scroll_end)
        if full or (self.max_lines is not None and self.line_count >= self.max_lines):
            self.refresh()
        return self


class OutputPane(Vertical):
    """Per-host output tabs fed from a buffer and flushed on a timer."""

    def __init__(self, *, max_lines: int = 5000, flush_interval: float = 0.08, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_lines = max_lines
        self.flush_interval = flush_interval
        self._pending: dict[str, list[str]] = {}
        self._partial: dict[str, str] = {}
        self._partial_age: dict[str, int] = {}
        self._logs: dict[str, HostLog] = {}
        self._status: dict[str, str] = {}
        self._activate: str | None = None
        self.lines_flushed = 0  # lines that went through the buffer (shown or pruned)
        self.flushes = 0

    def compose(self) -> ComposeResult:
        yield Static("No output yet: run a step (r).", id="output-empty")
        yield TabbedContent(id="output-tabs")

    def on_mount(self) -> None:
        self.add_class("-empty")
        self.query_one("#output-tabs").display = False
        self.set_interval(self.flush_interval, self.flush, name="output-flush")

    # -- intake (cheap, called per chunk) ----------------------------------------
    def feed(self, host: str, data: str) -> None:
        """Buffer output of ``host``.  Nothing is drawn until the next flush."""
        pending = self._pending.get(host)
        if pending is None:
            self._pending[host] = [data]
        else:
            pending.append(data)

    def preload(self, host: str, lines: list[str]) -> None:
        """History from the journal (resume): shown before anything that arrives later."""
        pending = self._pending.setdefault(host, [])
        pending.insert(0, "\n".join(lines) + "\n")

    def begin_run(self, host: str, heading: str, *, activate: bool = False) -> None:
        """Start a run's section on a host's tab (a separator line)."""
        partial = self._partial.pop(host, "")
        self.feed(host, ("\n" if partial else "") + f"── {heading} ──\n")
        if partial:
            self._pending[host].insert(0, partial)
        if activate:
            self._activate = host

    def set_host_status(self, host: str, status: str) -> None:
        if self._status.get(host) == status:
            return
        self._status[host] = status
        log = self._logs.get(host)
        if log is not None and log.is_mounted:
            self._relabel(host)

    # -- drawing (timer) ------------------------------------------------------------
    def flush(self) -> None:
        self.flushes += 1
        for host in list(dict.fromkeys([*self._pending, *self._partial])):  # tabs in target order
            log = self._logs.get(host)
            if log is None:
                self._add_host(host)
                continue
            if not log.is_mounted:
                continue
            chunks = self._pending.pop(host, [])
            self._write(host, log, chunks)
        if self._activate is not None and self._activate in self._logs and self._logs[self._activate].is_mounted:
            self.query_one(TabbedContent).active = pane_id(self._activate)
            self._activate = None

    def _write(self, host: str, log: HostLog, chunks: list[str]) -> None:
        partial = self._partial.pop(host, "")
        if not chunks:
            if not partial:
                return
            age = self._partial_age.get(host, 0) + 1
            if age < PARTIAL_TICKS:
                self._partial[host], self._partial_age[host] = partial, age
                return
            lines = [partial]  # a prompt without newline: show it now
            partial = ""
        else:
            dropped = 0
            keep = len(chunks)
            newlines = 0
            while keep > 0 and newlines <= self.max_lines:  # only the tail can be shown
                keep -= 1
                newlines += chunks[keep].count("\n")
            if keep > 0:  # older chunks only count (each newline is a line): they are in the journal
                dropped = sum(c.count("\n") for c in chunks[:keep])
                partial = ""
                chunks = chunks[keep:]
            text = partial + "".join(chunks)
            lines = text.split("\n")
            partial = lines.pop()
            self.lines_flushed += dropped
        self._partial_age[host] = 0
        if partial:
            self._partial[host] = partial
        if not lines:
            return
        self.lines_flushed += len(lines)
        if len(lines) > self.max_lines:
            lines = lines[-self.max_lines:]
        log.write_lines([clean(line) for line in lines])

    def _add_host(self, host: str) -> None:
        log = HostLog(host, self.max_lines)
        self._logs[host] = log
        tabs = self.query_one(TabbedContent)
        if not tabs.display:
            tabs.display = True
            self.remove_class("-empty")
            self.query_one("#output-empty").display = False
        tabs.add_pane(TabPane(self._label(host), log, id=pane_id(host)))

    def _label(self, host: str) -> Content:
        status = self._status.get(host)
        return Content.from_rich_text(fmt.line(f"{fmt.icon(status)} {host}" if status else host))

    def _relabel(self, host: str) -> None:
        try:
            self.query_one(TabbedContent).get_tab(pane_id(host)).label = self._label(host)
        except Exception:  # the tab is not mounted yet: labelled when it is
            pass

    # -- queries (tests, actions) -----------------------------------------------------
    @property
    def hosts(self) -> list[str]:
        return list(self._logs)

    def log_for(self, host: str) -> HostLog | None:
        return self._logs.get(host)

    @property
    def active_host(self) -> str | None:
        tabs = self.query_one(TabbedContent)
        for host in self._logs:
            if pane_id(host) == tabs.active:
                return host
        return None

    @property
    def backlog(self) -> int:
        """Chunks waiting for the next flush."""
        return sum(len(v) for v in self._pending.values())
