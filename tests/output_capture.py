"""Test support for executors: collect streamed output and look at the process table."""

from __future__ import annotations

import asyncio
import subprocess

GUARD = 30  # seconds: a hang guard, never a timing assertion


class Output:
    """An ``OnOutput`` callback that keeps every chunk and can wait for some text."""

    def __init__(self) -> None:
        self.chunks: list[tuple[str, str, bytes]] = []
        self._changed = asyncio.Event()

    def __call__(self, host: str, stream: str, data: bytes) -> None:
        self.chunks.append((host, stream, data))
        self._changed.set()

    def text(self, stream: str | None = None, host: str | None = None) -> str:
        return b"".join(
            d for h, s, d in self.chunks if (stream is None or s == stream) and (host is None or h == host)
        ).decode()

    async def wait_for(self, needle: str) -> None:
        while needle not in self.text():
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), GUARD)


def processes() -> str:
    """Every process's argv on this machine (``ps -eo args``)."""
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
