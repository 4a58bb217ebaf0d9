"""Export from the TUI: the Markdown report of this session, written beside its journal.

Uses the same functions as ``runbook export`` (``sessions.export``,
``sessions.export_commands``).  Building the report reads the whole journal, so it
runs in a thread: the journal is only read, the session keeps appending.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any


def _export(journal_path: Path, out: Path, secrets: list[str], fmt: str) -> Path:
    from sessions.export import build_report, read_journal
    from sessions.export_commands import _write, render

    journal = read_journal(journal_path)
    report = build_report(journal, secrets=secrets)
    _write(str(out), render(report, journal, fmt, 200))
    return out


async def export_report(session: Any, fmt: str = "md") -> Path:
    """Write ``<session dir>/<id>.<fmt>`` and return its path (UserError when it fails)."""
    session.sync()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", session.id) + f".{fmt}"
    out = Path(session.dir) / name
    return await asyncio.to_thread(_export, Path(session.journal.path), out, list(session.secrets()), fmt)
