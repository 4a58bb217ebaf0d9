"""Reading an input file the operator named: regular files only, size bounded.

Every file runbook reads (runbooks, ``NAME.targets.yaml`` bindings, inventories,
kubeconfigs, var files, keys, allowed signers, journals) goes through here, so
that ``runbook lint /dev/zero`` or a FIFO is refused at once instead of reading
without end or hanging:

* the file is opened ``O_NONBLOCK`` (opening a FIFO never waits for a writer) and
  must be a regular file (not a FIFO, socket, device or directory);
* it must not be larger than :func:`max_input_bytes`: 64 MB, or
  ``$RUNBOOK_MAX_INPUT_MB`` megabytes.  At most that many bytes are ever read, even
  from a file that grows while it is read.

Both refusals are :class:`~runbook.errors.InputError` (exit 2) naming the file.
Other ``OSError`` (missing file, permission denied) reach the caller unchanged, so
that it can say what the file was meant to be.
"""

from __future__ import annotations

import os
import stat

from runbook.errors import InputError

MAX_INPUT_ENV = "RUNBOOK_MAX_INPUT_MB"
DEFAULT_MAX_MB = 64

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def max_input_bytes() -> int:
    """The size limit for input files: ``$RUNBOOK_MAX_INPUT_MB`` megabytes, default 64."""
    raw = os.environ.get(MAX_INPUT_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_MB * 1024 * 1024
    try:
        mb = float(raw)
    except ValueError:
        raise InputError(f"${MAX_INPUT_ENV}={raw!r}: not a number of megabytes") from None
    if not mb > 0:
        raise InputError(f"${MAX_INPUT_ENV}={raw!r}: must be more than 0")
    return int(mb * 1024 * 1024)


def _limit_text(limit: int) -> str:
    mb = limit / (1024 * 1024)
    return f"{mb:g} MB" if mb >= 1 else f"{limit} bytes"


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ('' for a regular file)."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "" if stat.S_ISREG(mode) else "not a regular file"


def refuse_non_regular(path: str | os.PathLike[str], st: os.stat_result, what: str = "file") -> None:
    """Raise :class:`InputError` unless ``st`` is a regular file."""
    kind = kind_of(st.st_mode)
    a = "an" if what[:1].lower() in "aeiou" else "a"  # "an approval request", "an inventory"
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{os.fspath(path)}: is a directory, not {a} {what}")
    if kind:
        raise InputError(f"{os.fspath(path)}: is {kind}, not {a} {what}: runbook reads only regular files")


def refuse_oversize(path: str | os.PathLike[str], size: int, limit: int, what: str = "file") -> None:
    if size > limit:
        raise InputError(f"{os.fspath(path)}: over the {_limit_text(limit)} input limit for a {what} "
                         f"(${MAX_INPUT_ENV} raises it)")


def open_regular(path: str | os.PathLike[str], what: str = "file", *, limit: int | None = None) -> int:
    """Open ``path`` read-only and return the fd, or raise :class:`InputError` when it is
    not a regular file (or, with ``limit``, when it is larger).  Never blocks on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        refuse_non_regular(path, st, what)
        if limit is not None:
            refuse_oversize(path, st.st_size, limit, what)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_input(path: str | os.PathLike[str], what: str = "file", *, limit: int | None = None) -> bytes:
    """The bytes of a regular file no larger than ``limit`` (default :func:`max_input_bytes`).

    Raises :class:`InputError` for a FIFO, device, socket or directory, or a file over
    the limit; other ``OSError`` as they are.
    """
    if limit is None:
        limit = max_input_bytes()
    fd = open_regular(path, what, limit=limit)
    try:
        chunks: list[bytes] = []
        total = 0
        while True:
            block = os.read(fd, min(1 << 20, limit + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > limit:  # it grew while being read
                refuse_oversize(path, total, limit, what)
    finally:
        os.close(fd)
    return b"".join(chunks)
