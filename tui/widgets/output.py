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
shown as an escape (``\x1bc``, ``\u202e``) by :func:`runbook.sanitize.terminal_text.visible`, an
allow-list: whatever a host prints, nothing reaches the terminal but text.  A line
longer than :data:`MAX_LINE` characters is cut (the rest is in the journal).
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.cells import cell_len, chop_cells
from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Log, Static, TabbedContent, TabPane

from runbook.sanitize.terminal_text import visible
from tui import format as fmt

if TYPE_CHECKING:
    from typing import Self

CSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]")  # colours and cursor moves: dropped, never obeyed
MAX_LINE = 4096  # characters of one line shown; the whole line is in the journal
PARTIAL_TICKS = 2  # an unterminated line (a prompt) is shown after this many quiet flushes
ALL_HOSTS = "*all*"  # the combined view's key (a name no inventory host can have: '*' is a pattern)


def pane_id(host: str) -> str:
    """A widget id for ``host``'s tab; distinct hosts get distinct ids ("a b" and "a_b" too)."""
    if host == ALL_HOSTS:
        return "all-hosts"
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", host)
    if safe != host:
        safe += "-" + hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return "host-" + safe


def clean(line: str) -> str:
    """One line of output as text: what a terminal would show after carriage returns, CSI
    sequences dropped, every other control character (and ESC) shown as an escape."""
    if line.isascii() and line.isprintable() and len(line) <= MAX_LINE:
        return line  # the common case, and nothing to do (a flood is mostly this)
    line = line.rstrip("\r")
    if "\r" in line:
        line = line.rsplit("\r", 1)[1]
    if "\x1b" in line or "\x9b" in line:
        line = CSI.sub("", line)
    if len(line) > MAX_LINE:
        line = f"{line[:MAX_LINE]} … ({len(line) - MAX_LINE} more characters in the journal)"
    return visible(line)


CONTINUATION = "↪ "  # starts a row that continues the line above (soft wrap), never output itself


def wrap_line(line: str, width: int) -> list[str]:
    """``line`` cut into rows of at most ``width`` cells; rows after the first start with
    :data:`CONTINUATION`, so a soft-wrapped line never looks like two lines of output."""
    if len(line) <= width and (line.isascii() or cell_len(line) <= width):  # ASCII: cells <= characters
        return [line]
    if width <= len(CONTINUATION) + 1:
        return [line]
    rows = chop_cells(line, width)
    out = [rows[0]]
    rest = "".join(rows[1:])
    for row in chop_cells(rest, width - len(CONTINUATION)):
        out.append(CONTINUATION + row)
    return out


class MatchHighlighter(Highlighter):
    """Reverse video on every case-insensitive occurrence of the search text."""

    def __init__(self, query: str) -> None:
        self.pattern = re.compile(re.escape(query), re.IGNORECASE) if query else None

    def highlight(self, text: Text) -> None:
        if self.pattern is not None:
            text.highlight_regex(self.pattern, "reverse bold")


class HostLog(Log):
    """The output of one host (or of all hosts, prefixed).  ``End`` follows the tail again.

    The lines as they came are kept (``source``, at most ``max_lines``); what is drawn is
    those lines wrapped to the width when ``wrap`` is on, rebuilt on resize or toggle."""

    BINDINGS = [
        Binding("end", "follow", "Follow", show=False, id="output.follow", tooltip="Scroll to the end and follow new output"),
    ]

    def __init__(self, host: str, max_lines: int, *, wrap: bool = True) -> None:
        super().__init__(max_lines=max_lines, highlight=False, auto_scroll=True, id=f"log-{pane_id(host)}", classes="host-log")
        self.host = host
        self.source: deque[str] = deque(maxlen=max_lines)
        self.wrap = wrap
        self._wrap_width = 0

    def action_follow(self) -> None:
        self.scroll_end(animate=False)

    def _text_width(self) -> int:
        return max(0, self.scrollable_content_region.width - 1)

    def _rows(self, lines: Iterable[str]) -> list[str]:
        if not self.wrap or self._wrap_width <= 0:
            return list(lines)
        width = self._wrap_width
        rows: list[str] = []
        for line in lines:
            rows.extend(wrap_line(line, width))
        return rows

    def add_lines(self, lines: list[str]) -> None:
        """New output lines (already cleaned): kept, then drawn (wrapped if on)."""
        self.source.extend(lines)
        if self.wrap and self._wrap_width == 0:
            self._wrap_width = self._text_width()
        self.write_lines(self._rows(lines))

    def rebuild(self) -> None:
        """Draw ``source`` again (after a resize or a wrap toggle); keeps following if it was."""
        self._wrap_width = self._text_width() if self.wrap else 0
        following = self.is_vertical_scroll_end
        self.clear()
        if self.source:
            super().write_lines(self._rows(self.source), scroll_end=following)
            if following:  # once the new rows are laid out, still at the tail
                self.call_after_refresh(self.scroll_end, animate=False)

    @property
    def settled(self) -> bool:
        """Drawn at the current width (a resize may still be waiting for its rebuild); a hidden
        tab (no width) draws nothing and is rebuilt when it is shown."""
        return not self.wrap or not self.source or self.size.width == 0 or self._wrap_width == self._text_width()

    def set_wrap(self, wrap: bool) -> None:
        if wrap != self.wrap:
            self.wrap = wrap
            self.rebuild()

    def on_resize(self) -> None:
        if self.wrap and self.source and self._text_width() != self._wrap_width:
            self.rebuild()

    def set_search(self, query: str) -> None:
        self.highlight = bool(query)
        self.highlighter = MatchHighlighter(query)
        self.notify_style_update()
        self.refresh()

    def matches(self, query: str) -> list[int]:
        """Rows (as drawn) that hold ``query``, case-insensitive."""
        needle = query.casefold()
        return [y for y, row in enumerate(self.lines) if needle in row.casefold()] if needle else []

    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]  # a call, not a worker
        """The widest new line, for the horizontal scroll range.  Textual measures every line
        in a thread worker, which holds the GIL against the event loop while a step floods
        output; measured here instead, where an ASCII line's width is its length."""
        if lines:
            widest = max(len(line) if line.isascii() and "\t" not in line else cell_len(self._process_line(line))
                         for line in lines)
            self._update_maximum_width(updates, widest)

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Self:
        """Textual's Log, once full, prunes the head but repaints only the rows the new lines had
        before the prune (below the screen): the screen kept showing the old tail, e.g. the last
        run's "succeeded" under a failed run.  Repaint what is on screen."""
        full = self.max_lines is not None and self.line_count >= self.max_lines
        super().write_lines(lines, scroll_end)
        if full or (self.max_lines is not None and self.line_count >= self.max_lines):
            self.refresh()
        return self


class OutputPane(Vertical):
    """Per-host output tabs fed from a buffer and flushed on a timer."""

    ALLOW_MAXIMIZE = True  # z: the whole screen for the output

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
        self.wrap = True
        self.query_text = ""
        self._backfill_due = False  # the all-hosts view exists but has not got the earlier lines yet
        self._matches: list[int] = []
        self._match = -1

    def compose(self) -> ComposeResult:
        yield Static("No output yet: run a step (r).", id="output-empty")
        yield TabbedContent(id="output-tabs")

    def on_mount(self) -> None:
        self._describe()
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
    def recap(self, hosts: list[str], lines: list[str]) -> None:
        """A step's recap (several hosts): on the all-hosts view, after the output already
        buffered, and shown."""
        self.feed(ALL_HOSTS, "".join(line + "\n" for line in lines))
        self._activate = ALL_HOSTS

    def flush(self) -> None:
        self.flushes += 1
        combined = self._logs.get(ALL_HOSTS)
        if self._backfill_due and combined is not None and combined.is_mounted:
            self._backfill(combined)
        for host in list(dict.fromkeys([*self._pending, *self._partial])):  # tabs in target order
            if host == ALL_HOSTS:
                continue  # below, after every host's lines
            log = self._logs.get(host)
            if log is None:
                self._add_host(host)
                continue
            if not log.is_mounted:
                continue
            chunks = self._pending.pop(host, [])
            self._write(host, log, chunks)
        waiting = self._backfill_due or any(h != ALL_HOSTS for h in self._pending)  # a host's lines not drawn yet (tab mounting)
        if ALL_HOSTS in self._pending and combined is None and self.hosts and not waiting:
            self._add_all_hosts()  # a recap, and only one host had output so far
        elif ALL_HOSTS in self._pending and combined is not None and combined.is_mounted and not waiting:
            self._write(ALL_HOSTS, combined, self._pending.pop(ALL_HOSTS))  # a recap comes after the lines it sums up
        tabs = self.query_one(TabbedContent)
        # The first tab activates itself once mounted (a message that lands later): a tab
        # chosen before that would be switched back, so wait for it.
        if self._activate is not None and self._activate in self._logs and self._logs[self._activate].is_mounted and tabs.active:
            tabs.active = pane_id(self._activate)
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
        cleaned = [clean(line) for line in lines]
        log.add_lines(cleaned)
        combined = self._logs.get(ALL_HOSTS)
        if host != ALL_HOSTS and combined is not None and combined.is_mounted and not self._backfill_due:
            combined.add_lines([f"{visible(host, multiline=False)} │ {line}" for line in cleaned])

    def _add_host(self, host: str) -> None:
        log = HostLog(host, self.max_lines, wrap=self.wrap)
        if self.query_text:  # a search active before this host reported
            log.set_search(self.query_text)
        self._logs[host] = log
        tabs = self.query_one(TabbedContent)
        if not tabs.display:
            tabs.display = True
            self.remove_class("-empty")
            self.query_one("#output-empty").display = False
        tabs.add_pane(TabPane(self._label(host), log, id=pane_id(host)))
        if ALL_HOSTS not in self._logs and len(self.hosts) == 2:  # a second host: the combined view
            self._add_all_hosts()

    def _add_all_hosts(self) -> None:
        combined = HostLog(ALL_HOSTS, self.max_lines, wrap=self.wrap)
        if self.query_text:
            combined.set_search(self.query_text)
        self._logs[ALL_HOSTS] = combined
        first = pane_id(self.hosts[0])
        self.query_one(TabbedContent).add_pane(TabPane("0:all hosts", combined, id=pane_id(ALL_HOSTS)), before=first)

        self._backfill_due = True  # done by the first flush that finds the view mounted

    def _backfill(self, combined: HostLog) -> None:
        """What came before the second host, host by host, before anything newer."""
        self._backfill_due = False
        for host, log in self._logs.items():
            if host != ALL_HOSTS:
                combined.add_lines([f"{visible(host, multiline=False)} │ {line}" for line in log.source])

    def _label(self, host: str) -> Content:
        status = self._status.get(host)
        number = self.hosts.index(host) + 1 if host in self.hosts else len(self.hosts) + 1
        key = f"{number}:" if number <= 9 else ""
        return Content.from_rich_text(fmt.line(f"{key}{fmt.icon(status)} {host}" if status else f"{key}{host}"))

    def _relabel(self, host: str) -> None:
        try:
            self.query_one(TabbedContent).get_tab(pane_id(host)).label = self._label(host)
        except Exception:  # noqa: BLE001 - the tab is not mounted yet: labelled when it is
            pass

    # -- operator actions ---------------------------------------------------------------
    def toggle_wrap(self) -> bool:
        """Wrap long lines (the default) or not, on every tab; returns the new setting."""
        self.wrap = not self.wrap
        for log in self._logs.values():
            log.set_wrap(self.wrap)
        self._describe()
        return self.wrap

    def show_host(self, number: int) -> str | None:
        """Show the ``number``-th host's tab (1-based, as labelled), 0 for all hosts."""
        host = ALL_HOSTS if number == 0 else (self.hosts[number - 1] if 0 < number <= len(self.hosts) else None)
        if host is None or host not in self._logs:
            return None
        self.query_one(TabbedContent).active = pane_id(host)
        return host

    def search(self, query: str) -> int:
        """Highlight ``query`` on every tab and go to its last match on the shown tab
        (the newest output); returns how many rows of the shown tab match."""
        self.query_text = query
        for log in self._logs.values():
            log.set_search(query)
        shown = self.shown_log
        self._matches = shown.matches(query) if shown is not None else []
        self._match = len(self._matches) - 1
        self._goto_match()
        return len(self._matches)

    def next_match(self, step: int) -> int | None:
        """Go to the next (``step`` 1) or previous (-1) match; its row, or None."""
        log = self.shown_log
        if not self.query_text or log is None:
            return None
        self._matches = log.matches(self.query_text)  # output may have moved on
        if not self._matches:
            self._match = -1
        else:
            self._match = (self._match + step) % len(self._matches)
        return self._goto_match()

    def _goto_match(self) -> int | None:
        log = self.shown_log
        row = self._matches[self._match] if log is not None and 0 <= self._match < len(self._matches) else None
        if row is not None and log is not None:
            log.scroll_to(y=max(0, row - log.scrollable_content_region.height // 2), animate=False)
        self._describe()
        return row

    def _describe(self) -> None:
        parts = ["wrap" if self.wrap else "no wrap"]
        if self.query_text:
            found = f"{self._match + 1} of {len(self._matches)}" if self._matches else "no match"
            parts.append(f"/{self.query_text}: {found}")
        self.border_subtitle = " · ".join(parts)

    def text_of(self, host: str) -> str:
        """The lines kept for ``host`` (as they came, not wrapped)."""
        log = self._logs.get(host)
        return "\n".join(log.source) + "\n" if log is not None and log.source else ""

    # -- queries (tests, actions) -----------------------------------------------------
    @property
    def shown_log(self) -> HostLog | None:
        tabs = self.query_one(TabbedContent)
        return next((log for host, log in self._logs.items() if pane_id(host) == tabs.active), None)

    @property
    def hosts(self) -> list[str]:
        """The hosts with a tab, in the order they came (the all-hosts view is not one)."""
        return [h for h in self._logs if h != ALL_HOSTS]

    def log_for(self, host: str) -> HostLog | None:
        return self._logs.get(host)

    @property
    def active_host(self) -> str | None:
        """The host whose tab is shown (None for the all-hosts view)."""
        tabs = self.query_one(TabbedContent)
        for host in self.hosts:
            if pane_id(host) == tabs.active:
                return host
        return None
