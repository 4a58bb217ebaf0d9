"""The JSON export: the report model plus the journal records verbatim.

Layout: the first line holds the format, a journal summary and the report; then
one journal record per line, exactly as in the journal file; then ``]}``::

    {"format":"runbook-session-export","format_version":1,"journal":{"count":N,"head":"<sha256>",
     "redacted":[]},"report":{... sessions.report.model.Report, output in full ...},"records":[
    {"event":{...},"h":"...","prev":"...","seq":1,"ts":"..."},
    ...
    ]}

Each record is the JSON object of one journal line, so :func:`verify_chain` recomputes
every record hash and link offline.  ``journal.redacted`` lists records the export's
secret check had to change (normally none): their links are checked, their content
hash cannot be.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

from sessions.journal.format import GENESIS, RECORD_KEYS, canonical, line_hash_ok, record_hash
from sessions.report.build import JournalCopy
from sessions.report.model import Report
from sessions.report.redact import MARK

FORMAT = "runbook-session-export"
FORMAT_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RECORDS_OPEN = b',"records":[\n'
_RECORDS_CLOSE = b"\n]}\n"


def parse_line(raw: bytes) -> Any:
    """The JSON value of one record line of an export (``ValueError`` if it is not one)."""
    return json.loads(raw)


def plain(obj: Any) -> Any:
    """The report model as JSON-ready dicts and lists (a faster ``dataclasses.asdict``)."""
    if dataclasses.is_dataclass(obj):
        return {k: plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    return obj


def render_json(report: Report, journal: JournalCopy) -> bytes:
    head = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "journal": {"count": journal.count, "head": journal.head, "redacted": list(journal.redacted)},
        "report": plain(report),
    }
    first = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]  # without the closing brace
    parts = [first.encode("utf-8"), _RECORDS_OPEN]
    parts.append(b",\n".join(line if line is not None else canonical(rec)
                              for line, rec in zip(journal.lines, journal.records, strict=True)))
    parts.append(_RECORDS_CLOSE)
    return b"".join(parts)


def looks_like_export(data: bytes) -> bool:
    return data.lstrip()[:1] == b"{" and FORMAT.encode() in data[:200]


def _visibly_redacted(event: Any) -> bool:
    """A record the export redacted carries the mark (or a secret value set to null)."""
    if not isinstance(event, dict):
        return False
    if event.get("type") == "placeholder_supplied" and event.get("value") is None:
        return True
    if event.get("type") == "output" and event.get("b64"):
        import base64

        try:
            return MARK.encode() in base64.b64decode(event["b64"])
        except ValueError:
            return False
    return MARK in json.dumps(event, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    message: str
    count: int = 0
    head: str = ""
    redacted: tuple[int, ...] = ()


def _split(data: bytes) -> tuple[dict[str, Any], list[bytes]] | None:
    """The layout :func:`render_json` writes: ``(head, record lines)``; None for any
    other layout (then the whole file is parsed as one JSON document)."""
    nl = data.find(b"\n")
    if nl < 0 or not data[: nl + 1].endswith(_RECORDS_OPEN) or not data.endswith(_RECORDS_CLOSE):
        return None
    try:
        head = json.loads(data[: nl + 1 - len(_RECORDS_OPEN)] + b"}")
    except ValueError:
        return None
    if not isinstance(head, dict) or "records" in head:
        return None
    lines = data[nl + 1 : len(data) - len(_RECORDS_CLOSE)].split(b"\n")
    for i in range(len(lines) - 1):
        if lines[i][-1:] != b",":
            return None
        lines[i] = lines[i][:-1]
    if lines[-1][-1:] == b",":
        return None
    return head, lines


def export_records(data: bytes) -> list[dict[str, Any]]:
    """The journal records of a JSON export whose chain :func:`verify_chain` accepted."""
    split = _split(data)
    if split is not None:
        return [parse_line(line) for line in split[1]]
    records = json.loads(data).get("records")
    return records if isinstance(records, list) else []


def _load_export(data: bytes) -> tuple[dict[str, Any], list[bytes] | None, list[Any] | None] | ChainCheck:
    """``(document, record lines, None)`` for the layout :func:`render_json` writes, ``(document,
    None, records)`` for any other JSON layout, or the :class:`ChainCheck` that refuses ``data``."""
    split = _split(data)
    if split is not None:
        return split[0], split[1], None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return ChainCheck(False, f"not valid JSON ({exc})")
    if not isinstance(doc, dict):
        return ChainCheck(False, "not a runbook session export")
    records = doc.get("records")
    if not isinstance(records, list):
        return ChainCheck(False, "export lacks its journal records")
    return doc, None, records


def _record_problem(i: int, rec: Any, line: bytes | None, prev: str, redacted: set[int]) -> str:
    """Why record ``i`` (parsed from ``line``, when the export has record lines) breaks the
    chain after ``prev``; "" when it holds."""
    if type(rec) is not dict or rec.keys() != RECORD_KEYS:
        return f"record {i}: not a journal record (wrong fields)"
    if rec["seq"] != i or type(rec["seq"]) is not int:
        return f"record {i}: sequence number is {rec['seq']!r} (a record is missing, moved or altered)"
    if rec["prev"] != prev:
        return f"record seq {i} does not chain to the previous record"
    h = rec["h"]
    if type(h) is not str or not _HEX64.fullmatch(h):
        return f"record seq {i}: bad hash field"
    if i in redacted:
        return "" if _visibly_redacted(rec["event"]) else f"record seq {i} is listed as redacted but shows no redaction"
    if line is not None:
        good = line_hash_ok(line, h)
    else:
        try:
            good = record_hash(i, rec["ts"], prev, rec["event"]) == h
        except (TypeError, ValueError):
            good = False
    return "" if good else f"record seq {i} altered (hash mismatch)"


def _summary_problem(meta: dict[str, Any], report: dict[str, Any], first: Any, count: int, prev: str) -> str:
    """Why the export's journal summary or report header does not match its records; "" when they do."""
    if meta.get("count") != count or meta.get("head") != prev:
        return (f"journal summary (count {meta.get('count')}, head {str(meta.get('head'))[:12]}) "
                f"does not match the records ({count}, {prev[:12]})")
    if report.get("journal_head") != prev or report.get("record_count") != count:
        return "report header names another journal head or record count"
    if isinstance(first, dict) and first.get("type") == "session_opened" and \
            first.get("session_id") != report.get("session_id"):
        return "report is for another session than the records"
    return ""


def verify_chain(data: bytes) -> ChainCheck:
    """Recompute the hash chain of the records in a JSON export.

    Records written one per line (as exported) are hashed as the journal format defines
    (:func:`sessions.journal.format.line_hash_ok`: the line without its ``h`` member); any other
    layout is parsed whole and each record's canonical JSON is hashed (``record_hash``)."""
    loaded = _load_export(data)
    if isinstance(loaded, ChainCheck):
        return loaded
    doc, lines, records = loaded
    if doc.get("format") != FORMAT:
        return ChainCheck(False, "not a runbook session export")
    meta, report = doc.get("journal"), doc.get("report")
    if not isinstance(meta, dict) or not isinstance(report, dict):
        return ChainCheck(False, "export lacks its journal summary or report")
    redacted = meta.get("redacted") or []
    if not isinstance(redacted, list) or not all(isinstance(x, int) for x in redacted):
        return ChainCheck(False, "bad list of redacted records")
    skip = set(redacted)
    prev = GENESIS
    count = len(lines) if lines is not None else len(records or ())
    first: Any = None
    for i in range(1, count + 1):
        line = lines[i - 1] if lines is not None else None
        if line is not None:
            try:
                rec = parse_line(line)
            except ValueError:
                return ChainCheck(False, f"record {i}: not valid JSON", i - 1, prev)
        else:
            rec = records[i - 1] if records is not None else None
        problem = _record_problem(i, rec, line, prev, skip)
        if problem:
            return ChainCheck(False, problem, i - 1, prev)
        if i == 1:
            first = rec["event"]
        prev = rec["h"]
    if count == 0:
        return ChainCheck(False, "export holds no journal records")
    problem = _summary_problem(meta, report, first, count, prev)
    if problem:
        return ChainCheck(False, problem, count, prev)
    note = f"; {len(skip)} records redacted at export (links checked, content not)" if skip else ""
    return ChainCheck(True, f"hash chain intact ({count} records, head {prev[:16]}\u2026{note})", count, prev,
                      tuple(sorted(skip)))
