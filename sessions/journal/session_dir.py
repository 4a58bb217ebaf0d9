"""Trusting a session directory before writing to it (like sshd's ``StrictModes``).

A session directory holds the journal, the lock, ``runbook.log`` and the checkpoint
sidecar.  Before runbook writes there it checks, and refuses with the fix in the
message (exit 2):

* the session directory is not a symlink, is a directory, is owned by the user
  runbook runs as and is not writable by group or others;
* the journal is a regular file, not a symlink, owned by that user and not writable
  by group or others.

Every file of a session directory is opened with ``O_NOFOLLOW`` (:func:`open_nofollow`):
a journal, lock, ``runbook.log`` or sidecar replaced by a symlink is refused, never
followed, so a run as root cannot be made to truncate or append to another file.
"""

from __future__ import annotations

import errno
import os
import stat

from runbook.errors import UserError


class UnsafeSessionDir(UserError):
    """A session directory or file that others could have changed: refused for writing."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 2)


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def check_owned_private(path: str | os.PathLike[str], st: os.stat_result, what: str) -> None:
    """Refuse ``path`` (stat ``st``) when it is owned by another user or writable by group/others."""
    me = os.geteuid()
    if st.st_uid != me:
        raise UnsafeSessionDir(
            f"{path}: {what} is owned by {_owner(st.st_uid)}, not by {_owner(me)} who runs runbook; refusing "
            f"to write to it (someone else could change the session). Run as its owner, or "
            f"`chown {_owner(me).split(' ')[0]} {path}` if it is yours")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        fix = "chmod 700" if stat.S_ISDIR(st.st_mode) else "chmod 600"
        who = " and ".join(w for w, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if st.st_mode & bit)
        raise UnsafeSessionDir(
            f"{path}: {what} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}); refusing to write "
            f"to it (anyone who can write there can rewrite the session). Fix: `{fix} {path}`")


def check_session_dir(directory: str | os.PathLike[str]) -> None:
    """Refuse a session directory that is a symlink, not a directory, someone else's, or
    writable by group/others."""
    try:
        st = os.lstat(directory)
    except OSError as exc:
        raise UnsafeSessionDir(f"{directory}: cannot use the session directory: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeSessionDir(
            f"{directory}: the session directory is a symlink (to {os.readlink(directory)}); runbook never "
            "writes through a symlinked session directory. Name the real directory instead")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeSessionDir(f"{directory}: not a directory")
    check_owned_private(directory, st, "the session directory")


def check_journal_file(path: str | os.PathLike[str], fd: int) -> None:
    """Refuse an open journal that is not a regular file, is someone else's or is writable by others."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeSessionDir(f"{path}: the journal is not a regular file")
    check_owned_private(path, st, "the journal")


def open_nofollow(path: str | os.PathLike[str], flags: int, mode: int = 0o600, what: str = "file") -> int:
    """``os.open`` that refuses a symlink as the last component (:class:`UnsafeSessionDir`);
    other ``OSError`` are raised as they are."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EEXIST and os.path.islink(path)):
            target = os.readlink(path) if os.path.islink(path) else "?"
            raise UnsafeSessionDir(
                f"{path}: the session's {what} is a symlink (to {target}); runbook never follows a symlink "
                f"in a session directory. Remove it (`rm {path}`) if nothing needs it") from None
        raise


def same_file(path: str | os.PathLike[str], fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed, renamed or replaced)."""
    try:
        a = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    b = os.fstat(fd)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

