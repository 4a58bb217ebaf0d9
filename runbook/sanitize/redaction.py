"""Redaction of secret values from output.

Secret values (placeholders whose names contain PASS, TOKEN, SECRET, ... or that
the runbook marks secret) are substituted into scripts in memory only.  Output
may echo them back; before any byte is shown or journaled it passes through a
:class:`Redactor`, which replaces every occurrence of every secret with a mask.

Output arrives in chunks, and a secret may be split across two of them
(``...pass`` + ``word...``).  A :class:`Redactor` is therefore stateful: it holds
back the shortest tail of a chunk that could still be the beginning of a secret,
until the next chunk shows whether it is one.  Call :meth:`Redactor.flush` when
the stream ends.  Use one redactor per stream (:meth:`Redactor.new_stream` makes
another with the same secrets); the stateless :meth:`Redactor.redact` and
:func:`redact_text` handle whole buffers and strings.

Every non-empty secret given to a redactor is redacted, however short, in one pass
over the original text (a mask is never redacted again).  Secret values shorter than
:data:`MIN_SECRET_LEN` are refused where they are supplied
(:func:`secret_value_problem`): masking one letter everywhere would garble the
output and tell the letter.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = b"***"
MIN_SECRET_LEN = 4  # shorter secret values are refused (see secret_value_problem)


def secret_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a secret value (empty, or shorter than :data:`MIN_SECRET_LEN`
    characters), or None when it can."""
    if value == "":
        return "an empty secret value is refused"
    if len(value) < MIN_SECRET_LEN:
        return (f"a secret value shorter than {MIN_SECRET_LEN} characters is refused "
                f"(got {len(value)}): it could not be redacted from output without garbling it")
    return None


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _covered(data: bytes, secrets: tuple[bytes, ...], limit: int) -> list[tuple[int, int]]:
    """Merged ``[start, end)`` intervals of ``data`` covered by any secret starting before ``limit``."""
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        start = data.find(secret)
        while start != -1 and start < limit:
            spans.append((start, start + len(secret)))
            start = data.find(secret, start + 1)
    if not spans:
        return spans
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        last_start, last_end = merged[-1]
        if start < last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def _mask_spans(data: bytes, spans: list[tuple[int, int]], mask: bytes, upto: int) -> tuple[bytearray, int]:
    """Copy ``data[:upto]`` with ``spans`` masked; return it and where copying stopped.

    Spans never straddle ``upto`` (the caller moved it to a span's start).
    """
    out = bytearray()
    pos = 0
    for start, end in spans:
        if start >= upto:
            break
        out += data[pos:start]
        out += mask
        pos = end
    if pos < upto:
        out += data[pos:upto]
        pos = upto
    return out, pos


class Redactor:
    """Redact secret values from one byte stream, across chunk boundaries.

    :param secrets:
        The secret values (``str`` are encoded as UTF-8); empty ones are ignored.
    :param mask:
        What replaces each run of secret bytes.

    ``feed(chunk)`` returns what can safely be shown now; ``flush()`` returns the
    held-back rest at the end of the stream.  Overlapping secrets are masked as
    one run.
    """

    def __init__(self, secrets: Iterable[str | bytes] = (), mask: bytes = MASK) -> None:
        unique = {_as_bytes(s) for s in secrets if s}
        self.secrets: tuple[bytes, ...] = tuple(sorted(unique, key=len, reverse=True))
        self.mask = mask
        self._longest = len(self.secrets[0]) if self.secrets else 0
        self._firsts = frozenset(s[0] for s in self.secrets)
        self._pending = b""

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def new_stream(self) -> Redactor:
        """A fresh redactor with the same secrets, for another stream."""
        return Redactor(self.secrets, self.mask)

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the next chunk."""
        return len(self._pending)

    def _holdback_start(self, data: bytes, start: int) -> int:
        """Smallest index >= start from which ``data`` is a proper prefix of some secret."""
        n = len(data)
        for i in range(max(start, n - self._longest + 1), n):
            if data[i] not in self._firsts:
                continue
            tail = data[i:]
            if any(len(s) > len(tail) and s.startswith(tail) for s in self.secrets):
                return i
        return n

    def feed(self, chunk: bytes) -> bytes:
        """Redact ``chunk`` (the next bytes of the stream); return what is safe to show now."""
        if not self.secrets:
            return bytes(chunk)
        data = self._pending + bytes(chunk)
        hold = self._holdback_start(data, 0)
        spans = _covered(data, self.secrets, len(data))
        for start, end in spans:  # a run reaching into the held-back tail waits with it
            if start < hold < end:
                hold = start
                break
        out, pos = _mask_spans(data, spans, self.mask, hold)
        self._pending = data[pos:]
        return bytes(out)

    def flush(self) -> bytes:
        """End of stream: return the held-back bytes, redacted."""
        data, self._pending = self._pending, b""
        return self.redact(data)

    def redact(self, data: bytes) -> bytes:
        """Redact a complete buffer (stateless)."""
        if not self.secrets or not data:
            return bytes(data)
        spans = _covered(data, self.secrets, len(data))
        out, _ = _mask_spans(data, spans, self.mask, len(data))
        return bytes(out)

    def redact_text(self, text: str) -> str:
        """Redact a complete string (stateless); the mask is ``***``."""
        if not self.secrets or not text:
            return text
        return self.redact(text.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every occurrence of every non-empty secret replaced by ``***``."""
    return Redactor(secrets).redact_text(text)


def redact_bytes(data: bytes, secrets: Iterable[str | bytes]) -> bytes:
    """Return ``data`` with every occurrence of every non-empty secret replaced by ``***``."""
    return Redactor(secrets).redact(data)
