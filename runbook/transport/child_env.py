"""The environment a step's command gets: ours, without secrets.

An operator may hand runbook a secret through its environment
(``DB_PASSWORD=... runbook exec ...``, ``RUNBOOK_KEY_PASSPHRASE``).  runbook itself
reads it; the commands it starts must not inherit it (a child's environment is
readable in ``/proc/PID/environ`` by the same user, is copied to every grandchild
and lands in core dumps and crash reports).  Every variable whose name is secret
(PASS, TOKEN, SECRET, KEY, CERT, HASH, or marked secret by the runbook) is removed,
except a value that is the absolute path of an existing file or directory
(``SSL_CERT_FILE=/etc/ssl/ca.pem``, ``RUNBOOK_SIGNING_KEY=/home/op/.ssh/id``): a
path names a secret, it is not one.

Over SSH the same rule filters what the client config would send (``SendEnv``,
``SetEnv``): a secret never leaves the jump host in an environment request.
A step that needs a secret in a child's environment says so in its script
(``export DB_PASSWORD``), where the value is a placeholder supplied in memory.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping

from runbook.model import is_secret_name


def is_secret_variable(name: str, value: str, marked: Iterable[str] = ()) -> bool:
    """Whether environment variable ``name=value`` must not reach a command."""
    if not (is_secret_name(name) or name in set(marked)):
        return False
    return not (value.startswith("/") and os.path.exists(value))


def child_environ(marked: Iterable[str] = (), base: Mapping[str, str] | None = None,
                  **extra: str) -> dict[str, str]:
    """``base`` (default ``os.environ``) without secret variables, plus ``extra``."""
    names = set(marked)
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not is_secret_variable(k, v, names)}
    env.update(extra)
    return env


def ssh_environment(set_env: Iterable[str] | Mapping[str, str] | None, send_env: Iterable[str] | None,
                    marked: Iterable[str] = (), base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What an SSH client config's ``SetEnv`` entries and ``SendEnv`` patterns would send,
    without secret variables."""
    names = set(marked)
    source = os.environ if base is None else base
    out: dict[str, str] = {}
    for pattern in send_env or ():
        for key, value in source.items():
            if fnmatch.fnmatchcase(key, str(pattern)):
                out[key] = value
    if isinstance(set_env, Mapping):
        out.update({str(k): str(v) for k, v in set_env.items()})
    else:
        for item in set_env or ():
            key, sep, value = str(item).partition("=")
            if sep:
                out[key] = value
    return {k: v for k, v in out.items() if not is_secret_variable(k, v, names)}
