"""Export from the TUI: the Markdown report of this session, written beside its journal,
and signed (``<report>.sig``, namespace ``runbook-report``) with the session's
``$RUNBOOK_SIGNING_KEY`` when it has one, as ``runbook export --sign`` would.

Uses the same functions as ``runbook export`` (``sessions.report.build``,
``sessions.commands.export``).  Building the report reads the whole journal, so it
runs in a thread: the journal is only read, the session keeps appending.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sessions.engine.session import Session
    from sessions.signing import SigningKey


def _export(journal_path: Path, out: Path, secrets: list[str], fmt: str, key: SigningKey | None) -> tuple[Path, str]:
    from sessions.commands.export import _write, render
    from sessions.report.build import build_report, read_journal
    from sessions.signing import REPORT_NAMESPACE

    journal = read_journal(journal_path)
    report = build_report(journal, secrets=secrets)
    data = render(report, journal, fmt, 200)
    _write(str(out), data)
    if key is None:
        return out, ""
    _write(f"{out}.sig", key.sign(data, REPORT_NAMESPACE))
    return out, key.label


async def export_report(session: Session, fmt: str = "md") -> tuple[Path, str]:
    """Write ``<session dir>/<id>.<fmt>`` (and its ``.sig`` when the session has a signing
    key); return its path and the signing key's label ("" when unsigned).  UserError when it fails."""
    session.sync()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", session.id) + f".{fmt}"
    out = Path(session.dir) / name
    return await asyncio.to_thread(
        _export, Path(session.journal.path), out, list(session.secrets()), fmt, session.signing_key
    )
