"""Pooled asyncssh connections: one per host, strict host keys, bounded connects.

* One connection per (host, port, user, key file), shared by every step and channel;
  a dead one is forgotten and the next use reconnects.
* At most ``connect_limit`` handshakes at once (OpenSSH's ``MaxStartups`` drops
  bursts of unauthenticated connections).  A connection the server closes before
  offering its host key (a ``MaxStartups`` drop: nothing was authenticated or run) is
  tried again ``DROP_RETRIES`` times after a growing, jittered pause, outside the limit;
  then the host fails saying so, not with a bare "Connection lost".
* Keepalive every 15 s, 3 missed answers close the connection (a step on it then
  ends with outcome ``unknown``).
* Host keys are checked strictly against known_hosts (asyncssh ignores
  ``StrictHostKeyChecking``): an unknown key is refused with a :class:`HostKeyError`
  naming the host and the offered key's fingerprint, unless
  ``accept_new_host_keys`` is set, in which case it is appended to the known_hosts
  file and reported to ``on_host_key_accepted``.  A *changed* key (the host is
  known with other keys) is never accepted.
* Which known_hosts files: ``known_hosts`` when given (``--known-hosts``), else the
  host's ``UserKnownHostsFile`` and ``GlobalKnownHostsFile`` from the SSH config, as
  ``ssh`` reads them, else ``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``.
  ``UserKnownHostsFile none`` (or ``/dev/null``) leaves fewer keys known; it never
  turns checking off (asyncssh would, given the config alone).
* ``ProxyJump`` hosts are connected by the pool itself (same known_hosts rules,
  pooled, strict) and tunnelled through: asyncssh would check them only against the
  config's files, or not at all (:mod:`runbook.transport.ssh_config`).
* Authentication as OpenSSH: ssh-agent, ``~/.ssh/config`` (``IdentityFile``,
  ``User``, ``Port``, ``ProxyJump``, ``Host`` aliases) and default key files, plus
  the inventory's ``ansible_ssh_private_key_file`` tried first.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import asyncssh

from runbook.errors import UserError
from runbook.transport.ssh_config import SSHConfigView

if TYPE_CHECKING:
    from runbook.targets.inventory import Target

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")
DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_ed25519_sk", "id_ecdsa_sk", "id_rsa")

OnHostKeyAccepted = Callable[[str, str], None]  # (host name, fingerprint)
DROP_RETRIES = 4  # connections closed by the server before its host key (sshd MaxStartups)
DROP_PAUSE = 0.25  # seconds before the first retry, doubled each time, jittered x0.5-1.5


PoolKey = tuple[Any, ...]  # (host, port, user, key file), + ("via", jump key) through an explicit jump
_Stamp = tuple[str, int | None, int | None, int | None]  # a known_hosts file: path, mtime, size, inode

class ConnectError(UserError):
    """A host could not be reached or would not let us in."""

    def __init__(self, message: str, host: str = "") -> None:
        super().__init__(message, exit_code=1)
        self.host = host


class HostKeyError(ConnectError):
    """The host's key is not in known_hosts (``changed`` False) or differs from it (True)."""

    def __init__(self, message: str, host: str, fingerprint: str, changed: bool) -> None:
        super().__init__(message, host)
        self.fingerprint = fingerprint
        self.changed = changed


def known_hosts_pattern(host: str, port: int | None) -> str:
    """How OpenSSH writes a host in known_hosts: ``host`` on port 22, else ``[host]:port``."""
    return host if port in (None, 22) else f"[{host}]:{port}"


def _key_text(key: asyncssh.SSHKey) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


class _Client(asyncssh.SSHClient):
    """Sees the offered host key when it is not trusted, and decides (accept new / refuse)."""

    def __init__(self, pool: SSHPool, name: str, known: asyncssh.SSHKnownHosts, files: list[str]) -> None:
        self.pool = pool
        self.name = name
        self.known = known
        self.files = files
        self.offered: asyncssh.SSHKey | None = None
        self.where = ""
        self.known_keys: list[asyncssh.SSHKey] = []
        self.on_lost: Callable[[], None] | None = None
        self.tcp_up = False

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.tcp_up = True

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.offered = key
        self.where = known_hosts_pattern(host, port)
        matched = self.known.match(host, addr, None if port == 22 else port)
        trusted, cas, revoked = matched[0], matched[1], matched[2]
        if key in revoked:
            return False
        if trusted or cas:  # known with other keys: changed, never accepted
            self.known_keys = list(trusted)
            return False
        if self.pool.accept_new_host_keys and self.files:
            self.pool._record_host_key(self.name, host, port, key, self.files[0])
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.on_lost is not None:
            self.on_lost()


class SSHPool:
    """Connections by target, made on first use and reused.

    :param known_hosts: known_hosts file(s); default: the SSH config's
        ``UserKnownHostsFile`` and ``GlobalKnownHostsFile`` for the host, else
        ``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``.  New keys are
        written to the first one.
    :param accept_new_host_keys: record unknown keys instead of refusing them
    :param on_host_key_accepted: ``fn(host_name, fingerprint)`` for each recorded key
    :param connect_limit: concurrent handshakes
    :param ssh_config: OpenSSH client config files (default ``~/.ssh/config``)
    """

    def __init__(
        self,
        *,
        known_hosts: str | Sequence[str] | None = None,
        accept_new_host_keys: bool = False,
        on_host_key_accepted: OnHostKeyAccepted | None = None,
        connect_limit: int = 10,
        ssh_config: str | Sequence[str] | None = None,
        connect_timeout: float = 20.0,
        keepalive_interval: float = 15,
        keepalive_count_max: int = 3,
        on_connect: Callable[[Any, asyncssh.SSHClientConnection], Awaitable[None]] | None = None,
    ) -> None:
        self.on_connect = on_connect  # awaited after each new connection (best effort)
        paths = [known_hosts] if isinstance(known_hosts, str) else list(known_hosts or DEFAULT_KNOWN_HOSTS)
        self.known_hosts = [os.path.expanduser(p) for p in paths]
        self._known_hosts_given = known_hosts is not None
        self.accept_new_host_keys = accept_new_host_keys
        self.on_host_key_accepted = on_host_key_accepted
        self.accepted: list[tuple[str, str]] = []
        self.ssh_config = [ssh_config] if isinstance(ssh_config, str) else ssh_config
        self.config = SSHConfigView(self.ssh_config, self.known_hosts)
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self._limit = asyncio.Semaphore(connect_limit)
        self._conns: dict[PoolKey, asyncssh.SSHClientConnection] = {}
        self._connecting: dict[PoolKey, asyncio.Future[asyncssh.SSHClientConnection]] = {}
        self.connects = 0  # handshakes made (for tests and benchmarks)
        self._known_cache: dict[tuple[str, ...], tuple[list[_Stamp], asyncssh.SSHKnownHosts]] = {}
        self._keys_cache: dict[str, tuple[Any, str]] = {}

    @staticmethod
    def key(target: Target) -> PoolKey:
        return (target.host, target.port, target.user, target.key_file)

    def _connected(self, key: PoolKey, _future: asyncio.Future[asyncssh.SSHClientConnection]) -> None:
        self._connecting.pop(key, None)

    def _lost(self, key: PoolKey, conn: asyncssh.SSHClientConnection) -> None:
        """A pooled connection closed: forget it (unless a newer one took its place)."""
        if self._conns.get(key) is conn:
            self._conns.pop(key, None)

    # ----------------------------------------------------------------- use

    async def get(
        self, target: Target, *, via: tuple[Target, asyncssh.SSHClientConnection] | None = None, _chain: tuple[PoolKey, ...] = ()
    ) -> asyncssh.SSHClientConnection:
        """The pooled connection to ``target``, connecting if needed (through its
        ``ProxyJump`` hosts, or through ``via``: ``(jump target, its connection)``).

        :raises HostKeyError: unknown or changed host key (of the host or a jump host)
        :raises ConnectError: unreachable, refused, authentication failed, timeout
        """
        key = self.key(target) if via is None else self.key(target) + ("via",) + self.key(via[0])
        if key in _chain:
            hops = " -> ".join(str(k[0]) for k in _chain + (key,))
            raise ConnectError(f"{target.name}: ProxyJump loop in the SSH config: {hops}")
        conn = self._conns.get(key)
        if conn is not None and not conn.is_closed():
            return conn
        self._conns.pop(key, None)
        pending = self._connecting.get(key)
        if pending is None:
            pending = self._connecting[key] = asyncio.ensure_future(self._connect(target, key, via, _chain + (key,)))
            pending.add_done_callback(partial(self._connected, key))
        return await asyncio.shield(pending)

    async def _tunnel(self, target: Target, chain: tuple[PoolKey, ...]) -> asyncssh.SSHClientConnection | None:
        """The connection to the last of ``target``'s jump hosts, each reached through the one before."""
        via: tuple[Target, asyncssh.SSHClientConnection] | None = None
        for hop in self.config.proxy_jump(target):
            via = (hop, await self.get(hop, via=via, _chain=chain))
        return via[1] if via is not None else None

    def forget(self, target: Target, conn: asyncssh.SSHClientConnection | None = None) -> None:
        """Drop the pooled connection to ``target`` (only if it is ``conn``, when given)."""
        key = self.key(target)
        current = self._conns.get(key)
        if current is not None and (conn is None or current is conn):
            del self._conns[key]
            current.close()

    async def close(self) -> None:
        conns = list(self._conns.values())
        self._conns.clear()
        for pending in list(self._connecting.values()):
            pending.cancel()
        for conn in conns:
            conn.close()
        for conn in conns:
            try:
                await asyncio.wait_for(conn.wait_closed(), 5)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    # -------------------------------------------------------------- connect

    def known_hosts_files(self, target: Target) -> list[str]:
        """The known_hosts files for ``target`` (see the module docstring)."""
        return self.known_hosts if self._known_hosts_given else self.config.known_hosts_files(target)

    def _load_known_hosts(self, files: list[str]) -> asyncssh.SSHKnownHosts:
        """The known_hosts files, parsed again only when one of them changed (50 hosts
        used to parse a 50-line file 50 times)."""
        stamp: list[_Stamp] = []
        for path in files:
            try:
                st = os.stat(path)
                stamp.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                stamp.append((path, None, None, None))
        cached = self._known_cache.get(tuple(files))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        known = asyncssh.SSHKnownHosts()
        for path in files:
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    known.load(fh.read())
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                raise ConnectError(f"cannot read known_hosts file {path}: {exc}") from None
        self._known_cache[tuple(files)] = (stamp, known)
        return known

    def _record_host_key(self, name: str, host: str, port: int, key: asyncssh.SSHKey, path: str) -> None:
        algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
        line = f"{known_hosts_pattern(host, port)} {algorithm} {blob}\n"
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size and not self._ends_with_newline(path):
                line = "\n" + line
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        fingerprint = key.get_fingerprint("sha256")
        self.accepted.append((name, fingerprint))
        if self.on_host_key_accepted is not None:
            self.on_host_key_accepted(name, fingerprint)

    @staticmethod
    def _ends_with_newline(path: str) -> bool:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def _client_keys(self, target: Target) -> tuple[Any, str]:
        """Keys to offer after the agent's: the inventory key first, then OpenSSH's defaults
        (loaded once per key file for the pool's life, not once per host)."""
        if not target.key_file:
            return (), ""  # asyncssh: IdentityFile from the config, else the default files
        cached = self._keys_cache.get(target.key_file)
        if cached is None:
            cached = self._keys_cache[target.key_file] = self._load_client_keys(target.key_file)
        return cached

    def _load_client_keys(self, key_file: str) -> tuple[Any, str]:
        keys: list[Any] = []
        problem = ""
        candidates = [key_file] + [os.path.expanduser(f"~/.ssh/{n}") for n in DEFAULT_IDENTITIES]
        for path in dict.fromkeys(candidates):
            if path != key_file and not os.path.exists(path):
                continue
            try:
                keys.extend(asyncssh.load_keypairs([path]))
            except (OSError, asyncssh.KeyImportError, ValueError) as exc:
                if path == key_file:
                    problem = f"key file {path} not usable: {getattr(exc, 'strerror', None) or exc}"
        return keys, problem

    async def _connect(
        self, target: Target, key: PoolKey, via: tuple[Target, asyncssh.SSHClientConnection] | None, chain: tuple[PoolKey, ...]
    ) -> asyncssh.SSHClientConnection:
        name = target.name
        dest = target.destination
        client_keys, key_problem = self._client_keys(target)
        files = self.known_hosts_files(target)
        tunnel = via[1] if via is not None else await self._tunnel(target, chain)
        algs: Any = ()
        drops = 0
        while True:
            known = self._load_known_hosts(files)
            holder: list[_Client] = []

            def factory(holder: list[_Client] = holder, known: Any = known) -> _Client:
                holder.append(_Client(self, name, known, files))
                return holder[-1]

            options: dict[str, Any] = dict(
                known_hosts=known,
                client_factory=factory,
                keepalive_interval=self.keepalive_interval,
                keepalive_count_max=self.keepalive_count_max,
                connect_timeout=self.connect_timeout,
                server_host_key_algs=algs,
                # the config's SendEnv/SetEnv, secret variables left out: never send a secret
                env=self.config.environment(target), send_env=None,
            )
            if self.ssh_config is not None:
                options["config"] = list(self.ssh_config)
            if target.port:
                options["port"] = target.port
            if target.user:
                options["username"] = target.user
            if client_keys:
                options["client_keys"] = client_keys
            if tunnel is not None:
                options["tunnel"] = tunnel
            try:
                async with self._limit:
                    self.connects += 1
                    conn = await asyncssh.connect(target.host, **options)
            except asyncssh.HostKeyNotVerifiable as exc:
                raise self._host_key_error(name, dest, holder[-1] if holder else None, exc, files) from None
            except (asyncssh.KeyExchangeFailed, asyncssh.ConnectionLost, ConnectionResetError) as exc:
                client = holder[-1] if holder else None
                before_key = client is not None and client.tcp_up and client.offered is None
                if before_key and algs == () and self._knows(known, target):
                    # known_hosts has keys for the host but of types it does not offer: asyncssh
                    # asked only for those, so no key was exchanged.  Ask for any type, to
                    # learn the offered key and report a changed key.
                    algs = "default"
                    continue
                reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
                if before_key and not isinstance(exc, asyncssh.KeyExchangeFailed):
                    if drops < DROP_RETRIES:  # dropped unauthenticated (MaxStartups): pause, try again
                        drops += 1
                        await asyncio.sleep(DROP_PAUSE * 2 ** (drops - 1) * (0.5 + random.random()))
                        continue
                    reason = (f"closed by the server before the key exchange, {drops + 1} times "
                              f"(sshd MaxStartups or a connection limit: lower --connect-limit)")
                raise ConnectError(f"{name}: SSH connection to {dest} failed: {reason}", name) from None
            except asyncssh.PermissionDenied as exc:
                extra = f"; {key_problem}" if key_problem else ""
                raise ConnectError(f"{name}: authentication failed for {dest}: {exc.reason}{extra}", name) from None
            except asyncssh.Error as exc:
                raise ConnectError(f"{name}: SSH error from {dest}: {exc.reason}", name) from None
            except TimeoutError:
                raise ConnectError(f"{name}: connecting to {dest} timed out after {self.connect_timeout:g} s", name) from None
            except OSError as exc:
                raise ConnectError(f"{name}: cannot connect to {dest}: {exc.strerror or exc}", name) from None
            except ValueError as exc:  # bad ssh config, bad options
                raise ConnectError(f"{name}: cannot connect to {dest}: {exc}", name) from None
            client = holder[-1]
            self._conns[key] = conn
            client.on_lost = partial(self._lost, key, conn)
            if self.on_connect is not None:
                await self.on_connect(target, conn)
            return conn

    @staticmethod
    def _knows(known: asyncssh.SSHKnownHosts, target: Target) -> bool:
        port = None if target.port in (None, 22) else target.port
        try:
            matched = known.match(target.host, "", port)
        except ValueError:
            return False
        return bool(matched[0] or matched[1])

    def _host_key_error(
        self, name: str, dest: str, client: _Client | None, exc: Exception, paths: list[str]
    ) -> HostKeyError:
        files = " or ".join(paths) or "no known_hosts file (UserKnownHostsFile none)"
        if client is None or client.offered is None:
            return HostKeyError(f"{name}: host key of {dest} not verifiable: {exc}", name, "", False)
        offered = client.offered
        fingerprint = offered.get_fingerprint("sha256")
        if client.known_keys:
            known = ", ".join(_key_text(k) for k in client.known_keys)
            message = (
                f"{name}: HOST KEY CHANGED for {client.where}: it offers {_key_text(offered)} but "
                f"{files} has {known}. This may be a man-in-the-middle attack or a reinstalled host; "
                f"refusing to connect. Verify the new key out of band, then remove the old entry "
                f"(ssh-keygen -R '{client.where}') to accept it."
            )
            return HostKeyError(message, name, fingerprint, True)
        message = (
            f"{name}: unknown host key for {client.where}: it offers {_key_text(offered)}, which is not in "
            f"{files}. Verify the fingerprint out of band, then add it (ssh-keyscan) or run with "
            f"--accept-new-host-keys."
        )
        return HostKeyError(message, name, fingerprint, False)
