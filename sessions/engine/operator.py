"""Who is running runbook, and from where.

The operator is the person behind the keyboard: ``SUDO_USER`` when runbook runs
under sudo, else ``USER`` (``LOGNAME``, then the password database).  The origin
is the client address from ``SSH_CLIENT`` (or ``SSH_CONNECTION``) when the
operator came in over SSH; the jump host is this machine's host name.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    origin: str = ""  # SSH client address, "" when local
    host: str = ""  # the jump host runbook runs on
    login: str = ""  # the account runbook runs as (root under sudo)

    def describe(self) -> str:
        """``alice`` / ``alice (as root)`` + `` from 192.0.2.7`` + `` on jump-1``."""
        text = self.name
        if self.login and self.login != self.name:
            text += f" (as {self.login})"
        if self.origin:
            text += f" from {self.origin}"
        if self.host:
            text += f" on {self.host}"
        return text


def _account() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def current_operator(env: Mapping[str, str] | None = None) -> Operator:
    """The operator from the environment (``os.environ`` unless ``env`` is given)."""
    env = os.environ if env is None else env
    login = env.get("USER") or env.get("LOGNAME") or _account()
    name = env.get("SUDO_USER") or login
    origin = ""
    for var in ("SSH_CLIENT", "SSH_CONNECTION"):
        parts = env.get(var, "").split()
        if parts:
            origin = parts[0]
            break
    return Operator(name=name, origin=origin, host=socket.gethostname(), login=login)
