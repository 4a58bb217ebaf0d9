"""What the OpenSSH client config says about a host, for the settings runbook applies itself.

asyncssh reads ``~/.ssh/config`` for aliases, users, ports, keys and ``ProxyCommand``.
Two settings the pool resolves on its own, so that host keys are always checked against
known_hosts files, strictly:

* ``UserKnownHostsFile`` / ``GlobalKnownHostsFile``: which files hold the known keys.
  asyncssh, given the config alone, turns host key checking *off* for ``none``; here
  ``none`` (or ``/dev/null``) only means fewer keys are known.
* ``SendEnv`` / ``SetEnv``: sent without secret variables (:mod:`runbook.transport.child_env`).
* ``ProxyJump``: asyncssh would open each jump host itself with nothing but the
  config, so a jump host's key would not be checked against ``--known-hosts`` (and
  not at all with ``UserKnownHostsFile none``).  The pool connects jump hosts like
  any other host and tunnels through them.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Sequence
from typing import Any

import asyncssh

from runbook.errors import UserError
from runbook.targets.inventory import Target
from runbook.transport.child_env import ssh_environment


def expand_path(path: str, host: str) -> str:
    """``~``, ``%d`` (home), ``%u`` (local user), ``%h`` (host) and ``%%`` in a config path."""
    if "%" in path:
        table = {"%%": "%", "%d": os.path.expanduser("~"), "%u": getpass.getuser(), "%h": host}
        path = re.sub(r"%[%duh]", lambda m: table[m.group(0)], path)
    return os.path.expanduser(path)


class SSHConfigView:
    """The client config files (default ``~/.ssh/config``), looked up per host and cached.

    :param paths: config files; None for ``~/.ssh/config``
    :param default_known_hosts: user and global known_hosts files when the config names none
    """

    def __init__(self, paths: Sequence[str] | None, default_known_hosts: Sequence[str]) -> None:
        self.paths = list(paths) if paths is not None else [os.path.expanduser("~/.ssh/config")]
        self.default_known_hosts = list(default_known_hosts)
        self._configs: dict[tuple[Any, ...], Any] = {}

    def lookup(self, target: Target) -> Any:
        """The ``asyncssh`` config object for ``target`` (None without a config file)."""
        key = (target.host, target.port, target.user)
        if key not in self._configs:
            paths = [p for p in self.paths if os.path.isfile(p)]
            config = None
            if paths:
                try:
                    config = asyncssh.config.SSHClientConfig.load(
                        None, paths, False, False, False, getpass.getuser(),
                        target.user or (), target.host, target.port or (),
                    )
                except (OSError, ValueError, asyncssh.Error) as exc:
                    raise UserError(f"{target.name}: cannot read the SSH config: {exc}") from None
            self._configs[key] = config
        return self._configs[key]

    def known_hosts_files(self, target: Target) -> list[str]:
        """The known_hosts files ``ssh`` would use for ``target`` (user files first)."""
        config = self.lookup(target)
        user_files = config.get("UserKnownHostsFile", ()) if config is not None else ()
        global_files = config.get("GlobalKnownHostsFile", ()) if config is not None else ()
        if user_files == () and global_files == ():
            return list(self.default_known_hosts)
        user = list(self.default_known_hosts[:1]) if user_files == () else list(user_files)
        glob = list(self.default_known_hosts[1:]) if global_files == () else list(global_files)
        files = [expand_path(f, target.host) for f in user + glob if f.lower() != "none"]
        return [f for f in files if f != os.devnull]

    def environment(self, target: Target) -> dict[str, str]:
        """What the config's ``SetEnv`` and ``SendEnv`` would send to ``target``, without
        secret variables (:func:`runbook.transport.child_env.ssh_environment`)."""
        config = self.lookup(target)
        if config is None:
            return {}
        return ssh_environment(config.get("SetEnv", None), config.get("SendEnv", None))

    def proxy_jump(self, target: Target) -> list[Target]:
        """The jump hosts of ``target``'s ``ProxyJump``, first hop first ([] when none)."""
        config = self.lookup(target)
        spec = config.get("ProxyJump") if config is not None else None
        if not spec or str(spec).lower() == "none":
            return []
        return [parse_hop(hop.strip(), target) for hop in str(spec).split(",") if hop.strip()]


def parse_hop(hop: str, behind: Target) -> Target:
    """``[user@]host[:port]`` or ``ssh://[user@]host[:port]`` as a :class:`Target`."""
    text = hop.removeprefix("ssh://")
    user, _, hostport = text.rpartition("@")
    host, port = hostport, None
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", hostport)
    if match:
        host, port = match.group(1), int(match.group(2)) if match.group(2) else None
    elif hostport.count(":") == 1:
        host, _, number = hostport.partition(":")
        if not number.isdigit():
            raise UserError(f"{behind.name}: bad ProxyJump entry {hop!r} in the SSH config")
        port = int(number)
    if not host:
        raise UserError(f"{behind.name}: bad ProxyJump entry {hop!r} in the SSH config")
    return Target(f"{hop} (jump host)", host, port, user or None, None, in_inventory=False)
