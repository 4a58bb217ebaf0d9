"""Errors meant for the operator: printed as one line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a refused action.  ``exit_code`` is what the CLI exits with.

    The message names the file and line (or host and step) when there is one.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class InputError(UserError):
    """A file that cannot be read as a runbook (missing, binary, not UTF-8, empty)."""


def read_text_file(path: str, what: str = "runbook") -> str:
    """Read a UTF-8 text file or raise :class:`InputError` with one clear line."""
    from runbook.reading.files import read_input

    try:
        raw = read_input(path, what)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a {what}") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not raw.strip():
        raise InputError(f"{path}: file is empty")
    if b"\x00" in raw[:8192]:
        raise InputError(f"{path}: binary file, not a Markdown {what}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    return text
