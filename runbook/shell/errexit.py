"""Shell semantics of a step's script: ``set -e -o pipefail`` and where a failing script stopped.

Every command block runs with errexit and pipefail (bash; ``set -e`` alone where
only ``sh`` exists): the first failing command stops the script with its status.
``cmd || true``, ``if cmd``, ``cmd && other`` keep their usual meaning (the shell
does not stop on a failure it is testing).  A block annotated ``errexit=off``
runs exactly as written (only its last command's status counts).

:func:`script` turns the blocks of one script (consecutive command blocks of a
step) into the text the executors run.  Each block is preceded by a header line
(``__runbook_at INDEX on|off "$LINENO"``) that switches the options and records
the line number where the block starts; blocks are separated by a check that
stops the script when the previous block failed.

Where it stopped travels on a side channel that survives pipes, PTYs and
detached spools alike: the main shell's ``ERR`` trap (bash) writes a frame
``\\x1eRUNBOOK-ERR:NONCE:BLOCK:LINE:STATUS\\x1e`` to stderr, and its ``EXIT``
trap (bash and sh) writes ``\\x1eRUNBOOK-EXIT:NONCE:BLOCK:STATUS\\x1e`` when the
script ends non-zero.  The nonce is random per run and set only in the script
(:func:`with_nonce`), never exported; :class:`FrameFilter` removes frames with
that nonce from the output before anything else sees it, so command output can
neither forge a frame nor lose bytes that merely look like one.  Without a
nonce nothing is written.  A block that installs its own ``ERR``/``EXIT`` trap
replaces ours: the failure is still detected, only its line is not reported.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ERREXIT_KEY = "errexit"
_OFF = frozenset({"off", "false", "no", "0"})
_ON = frozenset({"on", "true", "yes", "1", ""})

MARK = b"\x1eRUNBOOK-"
MAX_FRAME = 160  # bytes: longer is not one of our frames
_FRAME = re.compile(rb"\x1eRUNBOOK-(ERR|EXIT):([0-9a-f]{1,64}):(\d{1,9}):(-?\d{1,9})(?::(\d{1,9}))?\x1e")

# POSIX sh: the traps and the header function.  bash-only parts are behind BASH_VERSION.
PRELUDE = """\
__runbook_pid=${BASHPID:-}; __runbook_block=0; __runbook_base=0
__runbook_err() { [ -n "${__runbook_nonce:-}" ] && [ "${BASHPID:-}" = "$__runbook_pid" ] || return 0; \
printf '\\036RUNBOOK-ERR:%s:%s:%s:%s\\036' "$__runbook_nonce" "$__runbook_block" \
"$(( $2 - __runbook_base ))" "$1" >&2 || :; }
__runbook_exit() { [ "$1" != 0 ] && [ -n "${__runbook_nonce:-}" ] || return 0; \
printf '\\036RUNBOOK-EXIT:%s:%s:%s\\036' "$__runbook_nonce" "$__runbook_block" "$1" >&2 || :; }
__runbook_at() { __runbook_block=$1; __runbook_base=$3; if [ "$2" = on ]; then set -e; \
if [ -n "${BASH_VERSION:-}" ]; then set -E -o pipefail; trap '__runbook_err "$?" "$LINENO"' ERR; fi; \
else set +e; if [ -n "${BASH_VERSION:-}" ]; then set +E +o pipefail; trap - ERR; fi; fi; }
trap '__runbook_exit "$?"' EXIT
"""
BETWEEN_BLOCKS = '__runbook_rc=$?; [ "$__runbook_rc" -eq 0 ] || exit "$__runbook_rc"'


def errexit_on(annotations: Mapping[str, str]) -> bool:
    """False when a block's annotations say ``errexit=off``."""
    return str(annotations.get(ERREXIT_KEY, "on")).strip().lower() not in _OFF


def check_value(value: str) -> str | None:
    """A problem with an ``errexit=`` value, or None."""
    v = str(value).strip().lower()
    return None if v in _ON or v in _OFF else f"errexit must be on or off, not {value!r}"


def script(blocks: Iterable[tuple[str, bool]]) -> str:
    """The script running ``blocks`` (text, errexit) in one shell, in order."""
    parts = [PRELUDE.rstrip("\n")]
    for i, (text, errexit) in enumerate(blocks):
        if i:
            parts.append(BETWEEN_BLOCKS)
        parts.append(f'__runbook_at {i} {"on" if errexit else "off"} "$LINENO"')
        parts.append(text.rstrip("\n"))
    return "\n".join(parts) + "\n"


def new_nonce() -> str:
    return secrets.token_hex(8)


def with_nonce(text: str, nonce: str) -> str:
    """``text`` with the side channel switched on for ``nonce`` (hex)."""
    if not re.fullmatch(r"[0-9a-f]{1,64}", nonce):
        raise ValueError("nonce must be lower-case hex")
    return f"__runbook_nonce={nonce}\n" + text


@dataclass(frozen=True, slots=True)
class Stop:
    """Where a script stopped: block index (0-based, in :func:`script` order), line in
    that block (1-based; None when unknown: ``sh``, ``errexit=off``, ``exit N``) and status."""

    block: int
    line: int | None
    status: int


class FrameFilter:
    """Removes this run's frames from output streams and keeps what they said.

    Feed every chunk of every stream through :meth:`feed`; bytes that could be the
    start of a frame split across chunks are held back (:meth:`pending`) until the
    next chunk or :meth:`flush`.
    """

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce.encode("ascii")
        self._held: dict[str, bytes] = {}
        self._err: Stop | None = None
        self._exit: Stop | None = None

    def pending(self, stream: str) -> int:
        return len(self._held.get(stream, b""))

    def feed(self, stream: str, data: bytes) -> bytes:
        buf = self._held.pop(stream, b"") + data
        if MARK[:1] not in buf:
            return buf
        out = bytearray()
        i = 0
        while True:
            j = buf.find(MARK, i)
            if j < 0:
                k = _partial_mark(buf, i)
                out += buf[i:k]
                if k < len(buf):
                    self._held[stream] = buf[k:]
                break
            out += buf[i:j]
            end = buf.find(b"\x1e", j + len(MARK), j + MAX_FRAME)
            if end < 0:
                if len(buf) - j < MAX_FRAME:
                    self._held[stream] = buf[j:]
                    break
                out += buf[j : j + 1]
                i = j + 1
                continue
            m = _FRAME.fullmatch(buf, j, end + 1)
            if m is None or m.group(2) != self.nonce:
                out += buf[j : j + 1]
                i = j + 1
                continue
            self._record(m)
            i = end + 1
        return bytes(out)

    def flush(self, stream: str) -> bytes:
        """The end of ``stream``: what was held back is output after all."""
        return self._held.pop(stream, b"")

    def streams(self) -> list[str]:
        return list(self._held)

    def _record(self, m: re.Match[bytes]) -> None:
        block, status = int(m.group(3)), int(m.group(4))
        if m.group(1) == b"ERR":
            line = int(m.group(4))
            status = int(m.group(5) or 0)
            self._err = Stop(block, line if line > 0 else None, status)  # the main shell's last failure
        else:
            self._exit = Stop(block, None, status)

    def take(self) -> Stop | None:
        """What the frames said since the last call (then forget it)."""
        err, exit_ = self._err, self._exit
        self._err = self._exit = None
        if err is not None and (exit_ is None or exit_.block == err.block):
            return Stop(err.block, err.line, exit_.status if exit_ is not None else err.status)
        return exit_


def _partial_mark(buf: bytes, start: int) -> int:
    """Index from which the end of ``buf`` could be the beginning of a frame (len(buf) if none)."""
    k = buf.rfind(b"\x1e", max(start, len(buf) - len(MARK) + 1))
    if k >= 0 and MARK.startswith(buf[k:]):
        return k
    return len(buf)
