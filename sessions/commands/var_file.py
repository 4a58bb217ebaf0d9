"""Placeholder values from a file or from stdin, so that secrets stay out of argv.

``--var NAME=VALUE`` puts the value in the jump host's ``ps`` and shell history; for
secrets, ``runbook exec`` also reads

* ``--var-file FILE``: ``NAME=VALUE`` lines (blank lines and ``#`` comments
  skipped; the value is the rest of the line, one pair of surrounding quotes
  removed).  The file must be a regular file that neither group nor others can
  read or write (as ``ssh`` insists for a private key);
* stdin, when it is not a terminal and values are missing: the same
  ``NAME=VALUE`` lines, or, when exactly one secret value is missing, a single
  line that is that value (``pass show db | runbook exec ...``).

Errors name the file and line, never the value.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable

from runbook.errors import UserError
from runbook.reading.files import open_regular
from sessions.planning.substitution import normalise

MAX_BYTES = 1 << 20
_LINE = re.compile(r"^(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_-]*)=(.*)$")
EXIT_USAGE = 2


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_assignments(text: str, source: str) -> dict[str, str]:
    """``NAME=VALUE`` lines of ``text`` (``source`` names it in errors)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise UserError(f"{source}:{number}: expected NAME=VALUE (the value is not shown)", EXIT_USAGE)
        values[normalise(m.group(1))] = _unquote(m.group(2))
    return values


def read_var_file(path: str) -> dict[str, str]:
    """The ``NAME=VALUE`` lines of ``path``; refused when it is a symbolic link, not a
    regular file (:func:`runbook.reading.files.open_regular`), larger than 1 MB, owned by
    another user, or readable or writable by group or others."""
    try:
        if os.path.islink(path):
            raise UserError(f"--var-file {path}: is a symbolic link; give the file itself", EXIT_USAGE)
        fd = open_regular(path, "var file", limit=MAX_BYTES)
    except OSError as exc:
        raise UserError(f"--var-file {path}: cannot read: {exc.strerror or exc}", EXIT_USAGE) from None
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077:
            raise UserError(
                f"--var-file {path}: readable or writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"it holds secrets: run 'chmod 600 {path}'", EXIT_USAGE)
        if st.st_uid != os.geteuid():
            raise UserError(f"--var-file {path}: owned by another user (uid {st.st_uid})", EXIT_USAGE)
        data = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"--var-file {path}: not UTF-8 text", EXIT_USAGE) from None
    return parse_assignments(text, f"--var-file {path}")


def read_stdin_values(fd: int, missing_secrets: Iterable[str]) -> dict[str, str]:
    """Values piped on stdin (``fd``, not a terminal): ``NAME=VALUE`` lines, or the one
    missing secret's value alone on a single line."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_BYTES:
            raise UserError(f"stdin: more than {MAX_BYTES} bytes of values", EXIT_USAGE)
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("stdin: not UTF-8 text", EXIT_USAGE) from None
    missing = list(missing_secrets)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(missing) == 1 and len(lines) == 1:
        m = _LINE.match(lines[0].strip())
        if not (m and normalise(m.group(1)) == missing[0]):
            return {missing[0]: lines[0].rstrip("\r")}
    return parse_assignments(text, "stdin")
