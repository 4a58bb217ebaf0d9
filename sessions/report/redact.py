"""The export's defensive secret check.

The engine redacts secrets before anything is journaled; an export still assumes it
may not have.  :class:`Redactor` removes, from every string that goes into a report:

* known secret values: a secret placeholder whose value reached the journal by
  mistake (``PlaceholderSupplied(secret=True, value=...)`` or a secret-named
  placeholder supplied as plain), and any values the caller passes (the live
  session's ``secrets()``);
* PEM private key blocks;
* in commands only, literal values assigned to secret-named variables or options
  (``DB_PASSWORD=hunter2``, ``--token abc``, ``--certificate-key=...``); references
  (``$X``, ``<X>``), paths and already-redacted values are left alone.

Output is checked per host over the whole stream, so a secret split across two output
chunks is still found; the chunks that held a piece of it are rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from runbook.model import is_secret_name
from sessions.planning.secret_literals import ASSIGN_RE, OPTION_RE, is_reference

MARK = "[REDACTED]"
MIN_SECRET_LEN = 1  # every known value, however short: the engine refuses short secrets at input

_PEM = re.compile(
    rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z)", re.DOTALL
)
_ASSIGN = ASSIGN_RE
_OPTION = OPTION_RE
_is_reference = is_reference


class Redactor:
    """Scrubs secrets out of strings; ``hits`` counts what it removed."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = sorted({v for v in values if v and len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self._bvalues = [v.encode("utf-8") for v in self.values]
        self.hits = 0
        self._key: tuple[str, ...] | None = None
        self._re: re.Pattern[str] | None = None

    def add(self, value: str | None) -> None:
        if value and len(value) >= MIN_SECRET_LEN and value not in self.values:
            self.values = sorted(set(self.values) | {value}, key=len, reverse=True)
            self._bvalues = [v.encode("utf-8") for v in self.values]

    def _pattern(self) -> re.Pattern[str]:
        key = tuple(self.values)
        if self._re is None or self._key != key:
            self._key = key
            # one pass over the original text; a mark already there is kept as it is
            self._re = re.compile("|".join([re.escape(MARK)] + [re.escape(v) for v in self.values]))
        return self._re

    def text(self, s: str) -> str:
        """Remove known secret values and private key blocks from ``s`` (one pass)."""
        out = s
        if self.values and any(v in out for v in self.values):
            out = self._pattern().sub(MARK, out)
        if "PRIVATE KEY-----" in out:
            out = _PEM.sub(MARK.encode(), out.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")
        if out is not s and out != s:
            self.hits += 1
            return out
        return s

    def command(self, s: str) -> str:
        """:meth:`text`, plus literal values of secret-named variables and options."""
        out = self.text(s)

        def assign(m: re.Match[str]) -> str:
            if is_secret_name(m.group(1)) and not _is_reference(m.group(2)):
                return f"{m.group(1)}={MARK}"
            return m.group(0)

        def option(m: re.Match[str]) -> str:
            name = m.group(1)[2:].replace("-", "_")
            if is_secret_name(name) and not _is_reference(m.group(3)):
                return f"{m.group(1)}{m.group(2)}{MARK}"
            return m.group(0)

        if "=" in out:
            out = _ASSIGN.sub(assign, out)
        if "--" in out:
            out = _OPTION.sub(option, out)
        if out != s:
            self.hits += 1
            return out
        return s

    def spans(self, data: bytes) -> list[tuple[int, int]]:
        """Byte ranges of secrets in one host's whole output stream (merged, sorted)."""
        found: list[tuple[int, int]] = []
        for v in self._bvalues:
            start = data.find(v)
            while start >= 0:
                found.append((start, start + len(v)))
                start = data.find(v, start + len(v))
        if b"PRIVATE KEY-----" in data:
            found.extend(m.span() for m in _PEM.finditer(data))
        found.sort()
        merged: list[tuple[int, int]] = []
        for a, b in found:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return merged

    def scrub_chunks(self, chunks: list[bytes]) -> list[bytes] | None:
        """Rewrite consecutive output chunks so that no secret survives, also one split
        across chunks.  None when there was nothing to remove."""
        joined = b"".join(chunks)
        if not self._bvalues and b"PRIVATE KEY-----" not in joined:
            return None
        spans = self.spans(joined)
        if not spans:
            return None
        self.hits += 1
        out: list[bytes] = []
        pos = 0
        mark = MARK.encode()
        for chunk in chunks:
            a, b = pos, pos + len(chunk)
            pos = b
            pieces, cursor = [], a
            for s, e in spans:
                if e <= a or s >= b:
                    continue
                lo, hi = max(s, a), min(e, b)
                pieces.append(chunk[cursor - a : lo - a])
                pieces.append(mark)  # every chunk that loses a piece of a secret shows it
                cursor = hi
            pieces.append(chunk[cursor - a :])
            out.append(b"".join(pieces))
        return out

    def event(self, data: dict[str, Any]) -> dict[str, Any]:
        """A journaled event's JSON with secrets removed (the same object if clean)."""
        changed: dict[str, Any] = {}
        etype = data.get("type")
        if etype == "placeholder_supplied" and data.get("value") and (
            data.get("secret") or is_secret_name(str(data.get("name", "")))
        ):
            changed["value"] = None
        for k, v in data.items():
            if k in changed or k in ("type", "b64") or (etype == "output" and k == "data"):
                continue  # output is scrubbed per host stream (scrub_chunks)
            if isinstance(v, str):
                nv = self.command(v) if (etype == "step_started" and k == "command") else self.text(v)
                if nv is not v:
                    changed[k] = nv
            elif isinstance(v, list) and any(isinstance(x, str) for x in v):
                nl = [self.text(x) if isinstance(x, str) else x for x in v]
                if nl != v:
                    changed[k] = nl
        if not changed:
            return data
        return {**data, **changed}


def secret_values_in(events: Iterable[dict[str, Any]]) -> list[str]:
    """Secret values that reached the journal by mistake (placeholder events)."""
    out = []
    for e in events:
        if e.get("type") == "placeholder_supplied" and e.get("value") and (
                e.get("secret") or is_secret_name(str(e.get("name", "")))):
            out.append(str(e["value"]))
    return out
