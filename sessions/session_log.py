"""Logging: structlog JSON lines to ``<session dir>/runbook.log``, never to the terminal.

:func:`configure_logging` points structlog *and* the standard library's logging
(asyncssh logs through it) at one file handler with a JSON formatter.  It adds no
stream handler and leaves stdout/stderr alone, so nothing ever lands on the
TUI's terminal.  Calling it again for another session moves the log there.

Secret values never reach the log: every string in a log entry passes through
the registered secret sources (:func:`add_secret_source`, e.g.
``Session.secrets``) and each secret is replaced by ``***``.
"""

from __future__ import annotations

import logging as _stdlib_logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog

LOG_NAME = "runbook.log"
_MARK = "_runbook_session_handler"
_secret_sources: list[Callable[[], Iterable[str]]] = []


def add_secret_source(source: Callable[[], Iterable[str]]) -> Callable[[], None]:
    """Register a callable giving the secret values to mask; returns its remover."""
    _secret_sources.append(source)

    def remove() -> None:
        if source in _secret_sources:
            _secret_sources.remove(source)

    return remove


def _secrets() -> list[str]:
    out: list[str] = []
    for source in list(_secret_sources):
        try:
            out.extend(s for s in source() if s)
        except Exception:  # noqa: BLE001 - a closing session must not break logging
            continue
    return sorted(set(out), key=len, reverse=True)


def _mask(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for s in secrets:
            if s in value:
                value = value.replace(s, "***")
        return value
    if isinstance(value, dict):
        return {k: _mask(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_mask(v, secrets) for v in value)
    return value


def redact_secrets(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask every secret value in the entry."""
    secrets = _secrets()
    if not secrets:
        return event_dict
    return {k: _mask(v, secrets) for k, v in event_dict.items()}


def _processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]


class _QuietFileHandler(_stdlib_logging.FileHandler):
    """A file handler that never reports its own failures on stderr (a full disk must
    not print tracebacks over the TUI; the journal reports the failure)."""

    def handleError(self, record: _stdlib_logging.LogRecord) -> None:
        pass

    def _open(self) -> Any:
        # O_NOFOLLOW: a runbook.log replaced by a symlink is refused, never appended through
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def configure_logging(session_dir: str | os.PathLike[str], level: int = _stdlib_logging.INFO) -> Path:
    """Send all logging to ``<session_dir>/runbook.log`` (mode 0600) as JSON lines.

    Returns the log path.  Never touches stdout or stderr.
    """
    path = Path(session_dir) / LOG_NAME
    handler = _QuietFileHandler(path, encoding="utf-8", delay=False)
    setattr(handler, _MARK, True)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(sort_keys=True)],
        foreign_pre_chain=_processors(),
    ))
    root = _stdlib_logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    if root.level == _stdlib_logging.NOTSET or root.level > level:
        root.setLevel(level)
    # asyncssh logs ~16 INFO lines per connection (and costs ~3 ms each on a fan-out); the
    # journal already records what ran where, so keep its warnings and errors only.
    _stdlib_logging.getLogger("asyncssh").setLevel(max(level, _stdlib_logging.WARNING))
    structlog.configure(
        processors=_processors() + [structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return path


def get_logger(name: str = "runbook", **bound: Any) -> Any:
    """A structlog logger (``log.info("event", key=value)``)."""
    return structlog.get_logger(name, **bound)
