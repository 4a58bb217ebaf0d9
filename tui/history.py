"""Output history for a resumed session: the tail of each host's output, from the journal.

Read in a thread (the journal is only read; this process keeps appending to it).
Only the last ``max_lines`` lines per host are kept, with the run headings, as the
live pane would have shown them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path

from sessions.journal import events as ev


def _tails(journal_path: Path, max_lines: int, upto: int | None = None) -> dict[str, list[str]]:
    """Per host, the last ``max_lines`` lines (0: every line), of the records up to seq ``upto`` (None: all)."""
    from sessions.journal.journal import read_records

    tails: dict[str, deque[str]] = {}
    partial: dict[str, str] = {}
    open_hosts: dict[str, set[str]] = {}  # run id -> hosts whose end was not seen yet
    for rec in read_records(journal_path):
        if upto is not None and rec.seq > upto:
            break
        e = rec.event
        if isinstance(e, ev.StepStarted):
            heading = f"── {e.task} {'rollback ' if e.rollback else ''}step {e.step} · {rec.ts[11:19]} UTC · run {e.run_id[:8]} ──"
            open_hosts[e.run_id] = set(e.targets)
            for host in e.targets:
                lines = tails.setdefault(host, deque(maxlen=max_lines or None))
                if partial.get(host):
                    lines.append(partial.pop(host))
                lines.append(heading)
        elif isinstance(e, ev.OutputChunk):
            lines = tails.setdefault(e.host, deque(maxlen=max_lines or None))
            text = partial.pop(e.host, "") + (e.data if e.b64 is None else e.raw.decode("utf-8", "replace"))
            parts = text.split("\n")
            rest = parts.pop()
            lines.extend(parts)
            if rest:
                partial[e.host] = rest
        elif isinstance(e, ev.HostFinished):
            open_hosts.get(e.run_id, set()).discard(e.host)
            lines = tails.setdefault(e.host, deque(maxlen=max_lines or None))
            if partial.get(e.host):
                lines.append(partial.pop(e.host))
            detail = f"exit {e.exit_status}" if e.exit_status is not None else (e.exit_signal or e.error or "")
            lines.append(f"── {e.outcome}{' · ' + detail if detail else ''} · {e.duration_s:.1f}s ──")
        elif isinstance(e, ev.StepOutcomeUnknown):
            hosts = open_hosts.get(e.run_id, set()) if e.host is None else {e.host}
            for host in sorted(hosts):
                lines = tails.setdefault(host, deque(maxlen=max_lines or None))
                if partial.get(host):
                    lines.append(partial.pop(host))
                lines.append(f"── ? OUTCOME UNKNOWN: {e.why} ──")
            open_hosts.get(e.run_id, set()).difference_update(hosts)
    for host, rest in partial.items():
        tails.setdefault(host, deque(maxlen=max_lines or None)).append(rest)
    return {host: list(lines) for host, lines in tails.items() if lines}


async def output_tails(journal_path: Path, max_lines: int = 5000, upto: int | None = None) -> dict[str, list[str]]:
    return await asyncio.to_thread(_tails, journal_path, max_lines, upto)


def _host_output(journal_path: Path, host: str) -> str:
    lines = _tails(journal_path, 0).get(host)
    return "\n".join(lines) + "\n" if lines else ""


async def host_output(journal_path: Path, host: str) -> str:
    """Everything ``host`` printed in this session (with the run headings), from the journal."""
    return await asyncio.to_thread(_host_output, journal_path, host)
