"""Terminal side of ``runbook exec``: host-prefixed output, prompts, raw input for PTY steps.

:class:`HostPrinter` prints journaled output (already redacted: it prints what
the journal holds) as ``[web-1] line``: stdout and PTY output to stdout, stderr
to stderr.  Output is shown, never obeyed: escape sequences and other control
characters are printed visibly (``\x1b[31m``), never as themselves
(:class:`~runbook.sanitize.terminal_text.OutputCleaner`).  Lines from different hosts
never mix: a partial line is held until its newline (or the host's end), except
on a PTY where a prompt without newline must show at once.

:class:`Prompter` asks the operator on the terminal: yes/no, a typed host name,
a reason, a value (``getpass`` for secrets).  It only exists when stdin is a TTY.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from runbook.sanitize.terminal_text import OutputCleaner, visible
from sessions.journal import events as ev

if TYPE_CHECKING:
    from sessions.journal.format import Record
    from sessions.state.state import SessionState

MAX_PARTIAL = 64 * 1024


class HostPrinter:
    """Prints ``OutputChunk`` records with a ``[host]`` prefix; subscribe it to the session."""

    def __init__(self, stdout: IO[bytes] | None = None, stderr: IO[bytes] | None = None,
                 prefix: bool = True) -> None:
        self.out = stdout if stdout is not None else sys.stdout.buffer
        self.err = stderr if stderr is not None else sys.stderr.buffer
        self.prefix = prefix
        self._partial: dict[tuple[str, str], bytes] = {}
        self._open_line: set[tuple[str, str]] = set()  # a PTY prompt was printed without its newline
        self._cleaners: dict[tuple[str, str], OutputCleaner] = {}
        self.broken = False

    def __call__(self, record: Record, state: SessionState | None = None) -> None:
        e = record.event
        if isinstance(e, ev.OutputChunk):
            self.chunk(e.host, e.stream, e.raw)
        elif isinstance(e, ev.HostFinished):
            self.end(e.host)

    def _stream(self, stream: str) -> IO[bytes]:
        return self.err if stream == "stderr" else self.out

    def _tag(self, host: str) -> bytes:
        return f"[{visible(host, multiline=False)}] ".encode() if self.prefix else b""

    def chunk(self, host: str, stream: str, data: bytes) -> None:
        key = (host, stream)
        cleaner = self._cleaners.get(key)
        if cleaner is None:
            cleaner = self._cleaners[key] = OutputCleaner()
        data = cleaner.feed(data).encode()
        buf = self._partial.pop(key, b"") + data if key in self._partial else data
        last = buf.rfind(b"\n")
        tag = self._tag(host)
        text = b""
        if last >= 0:
            first = b"" if key in self._open_line else tag
            self._open_line.discard(key)
            body = buf[:last]
            text = first + (body.replace(b"\n", b"\n" + tag) if tag else body) + b"\n"
            rest = buf[last + 1 :]
        else:
            rest = buf
        if rest and (stream == "pty" or len(rest) > MAX_PARTIAL):
            text += (b"" if key in self._open_line else tag) + rest
            self._open_line.add(key)
            rest = b""
        if rest:
            self._partial[key] = rest
        if text:
            self._write(self._stream(stream), text)

    def end(self, host: str) -> None:
        """The host finished: print what is left of its lines."""
        for key in [k for k in self._cleaners if k[0] == host]:
            tail = self._cleaners.pop(key).finish()
            if tail:
                self._partial[key] = self._partial.get(key, b"") + tail.encode()
        for key in [k for k in self._partial if k[0] == host]:
            rest = self._partial.pop(key)
            tag = b"" if key in self._open_line else self._tag(host)
            self._write(self._stream(key[1]), tag + rest + b"\n")
            self._open_line.discard(key)
        for key in [k for k in self._open_line if k[0] == host]:
            self._write(self._stream(key[1]), b"\n")
            self._open_line.discard(key)

    def _write(self, fh: IO[bytes], data: bytes) -> None:
        if self.broken:
            return
        try:
            fh.write(data)
            fh.flush()
        except BrokenPipeError:
            self.broken = True  # the reader went away: keep running, keep journaling


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


class Prompter:
    """Questions on the terminal (stdin must be a TTY); prompts go to stderr."""

    def __init__(self, read: Callable[[str], str] | None = None,
                 read_secret: Callable[[str], str] | None = None) -> None:
        self._read = read or self._input
        self._read_secret = read_secret or (lambda p: getpass.getpass(p, stream=sys.stderr))

    @staticmethod
    def _input(prompt: str) -> str:
        sys.stderr.write(prompt)
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    def confirm(self, question: str) -> bool:
        return self._read(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    def text(self, question: str) -> str:
        return self._read(f"{question}: ")

    def secret(self, question: str) -> str:
        return self._read_secret(f"{question}: ")


class RawInput:
    """While a PTY step runs: the operator's keystrokes go to the remote terminal.

    The local terminal stops echoing and stops buffering lines (the remote PTY
    echoes, and does not echo passwords); Ctrl-C still raises SIGINT here (the
    engine then interrupts the step).  Every byte read from stdin is passed to
    ``send(data)``.  Restored on :meth:`stop`.
    """

    def __init__(self, loop: Any, send: Callable[[bytes], None]) -> None:
        self.loop = loop
        self.send = send
        self.fd = sys.stdin.fileno()
        self._saved: Any = None

    def start(self) -> None:
        import termios

        try:
            self._saved = termios.tcgetattr(self.fd)
            mode = termios.tcgetattr(self.fd)
            mode[3] &= ~(termios.ECHO | termios.ICANON)  # lflag: no echo, no line editing; ISIG stays
            mode[6][termios.VMIN] = 1
            mode[6][termios.VTIME] = 0
            termios.tcsetattr(self.fd, termios.TCSANOW, mode)
        except termios.error:
            self._saved = None
            return
        self.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 1024)
        except OSError:
            data = b""
        if not data:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.fd)
            return
        self.send(data)

    def stop(self) -> None:
        import termios

        if self._saved is None:
            return
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.fd)
        with contextlib.suppress(termios.error):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        self._saved = None
