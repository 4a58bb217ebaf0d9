"""A fleet of real OpenSSH servers on loopback, for tests and benchmarks.

Each "host" is a distinct loopback address (127.0.1.1, 127.0.1.2, ...) on one free
port.  One ``sshd -D -e`` serves up to 16 addresses (its ListenAddress limit); more
hosts start more sshd processes.  Everything is throwaway and lives under ``root``:
an ed25519 host key, an ed25519 client key, ``authorized_keys`` and a strict
``known_hosts`` listing every ``[127.0.1.x]:port``.

sshd runs as the current user (root here, which it logs in as: ``PermitRootLogin
prohibit-password``, ``AuthorizedKeysFile`` in ``root``, ``StrictModes no``); no
system user is created.  The login shell is that user's, so its rc files could run:
a slow ``~/.bashrc`` (pyenv init and the like) would slow every command; the fixture
skips it by making the login shell look nested (``SetEnv SHLVL=1``: bash sources
``~/.bashrc`` for ssh commands only at SHLVL 1).

Importable without pytest (``bench/fanout.py`` uses it)::

    with SSHFleet.start("/tmp/fleet", 50) as fleet:
        fleet.hosts["node-1"]           # runbook.targets.inventory.Target
        fleet.inventory_yaml()          # Ansible-style inventory text

The pytest fixtures are in ``conftest.py`` beside this file.
"""

from __future__ import annotations

import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runbook.targets.inventory import Target

MAX_LISTEN = 16  # sshd: at most 16 ListenAddress lines per process
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def find_tool(name: str) -> str:
    """Absolute path of ``name`` (PATH, then the sbin directories); FileNotFoundError if absent."""
    path = shutil.which(name) or next(
        (os.path.join(d, name) for d in _SBIN if os.access(os.path.join(d, name), os.X_OK)), None
    )
    if path is None:
        raise FileNotFoundError(f"{name} not found (install openssh-server / openssh-client)")
    return os.path.abspath(path)


def loopback_address(index: int, base: int = 1) -> str:
    """The ``index``-th (0-based) fleet address: 127.0.<base>.1 ... 127.0.<base>.254, then the
    next /24 (500 hosts from base 1: 127.0.1.1-254 and 127.0.2.1-246).  Always in 127.0.0.0/8
    (Linux routes all of it to ``lo``); ValueError past 127.0.255.254."""
    third = base + index // 254
    if index < 0 or not 1 <= base <= third <= 255:
        raise ValueError(f"fleet address {index} from 127.0.{base}.1 is outside 127.0.1.0-127.0.255.255")
    return f"127.0.{third}.{1 + index % 254}"


def _free_port(addresses: Sequence[str]) -> int:
    """A port that is free on every address (checked by binding; sshd binds it right after)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 60000)
        sockets = []
        try:
            for addr in addresses:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(s)
                s.bind((addr, port))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port found on the fleet's loopback addresses")


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        [find_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@dataclass
class _Server:
    config: Path
    addresses: list[str]
    proc: subprocess.Popen | None = None
    log: Path | None = None


class SSHFleet:
    """Real sshd processes serving ``len(names)`` hosts on loopback.

    Attributes: ``hosts`` (name -> :class:`~runbook.targets.inventory.Target`), ``addresses``
    (name -> IP), ``port``, ``user``, ``known_hosts``, ``client_key``, ``host_key``,
    ``root``.
    """

    def __init__(self, root: Path, names: Sequence[str], *, base: int = 1, max_startups: str = "100:30:200") -> None:
        self.root = Path(root)
        self.max_startups = max_startups
        self.names = list(names)
        if len(set(self.names)) != len(self.names):
            raise ValueError("host names must be unique")
        self.addresses = {name: loopback_address(i, base) for i, name in enumerate(self.names)}
        self.user = getpass.getuser()
        self.port = 0
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.client_key = self.root / "client_ed25519"
        self.authorized_keys = self.root / "authorized_keys"
        self.known_hosts = self.root / "known_hosts"
        self.hosts: dict[str, Target] = {}
        self._servers: list[_Server] = []

    # ------------------------------------------------------------------ life

    @classmethod
    def start(cls, root: str | os.PathLike[str], hosts: int | Sequence[str] = 3, *, base: int = 1,
              ready_timeout: float = 20.0, max_startups: str = "100:30:200") -> SSHFleet:
        """Create keys and configs under ``root`` and start the servers (``hosts``: a count,
        named node-1..node-N, or the names; ``max_startups``: each sshd's ``MaxStartups``,
        the unauthenticated connections it keeps before dropping new ones)."""
        names = [f"node-{i + 1}" for i in range(hosts)] if isinstance(hosts, int) else list(hosts)
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        fleet = cls(root, names, base=base, max_startups=max_startups)
        try:
            fleet._start(ready_timeout)
        except BaseException:
            fleet.stop()
            raise
        return fleet

    def _start(self, ready_timeout: float) -> None:
        sshd = find_tool("sshd")
        if not self.host_key.exists():
            _keygen(self.host_key, "runbook-test-host")
        if not self.client_key.exists():
            _keygen(self.client_key, "runbook-test-client")
        self.authorized_keys.write_text(Path(str(self.client_key) + ".pub").read_text())
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        addresses = list(self.addresses.values())
        for _attempt in range(5):
            self.port = _free_port(addresses)
            self._servers = [
                _Server(self.root / f"sshd_{i // MAX_LISTEN}.config", addresses[i : i + MAX_LISTEN])
                for i in range(0, len(addresses), MAX_LISTEN)
            ]
            for server in self._servers:
                server.config.write_text(self._config(server.addresses))
                server.log = server.config.with_suffix(".log")
                self._spawn(sshd, server)
            if self._wait_ready(ready_timeout):
                break
            self._stop_servers()  # lost a race for the port: try another
        else:
            logs = "\n".join(s.log.read_text(errors="replace") for s in self._servers if s.log and s.log.exists())
            raise RuntimeError(f"sshd did not start:\n{logs}")
        self._write_known_hosts()
        key = str(self.client_key)
        self.hosts = {
            name: Target(name=name, host=addr, port=self.port, user=self.user, key_file=key, groups=("fleet",))
            for name, addr in self.addresses.items()
        }

    @staticmethod
    def _spawn(sshd: str, server: _Server) -> None:
        assert server.log is not None
        with open(server.log, "ab") as log:
            server.proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(server.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )

    def restart(self, ready_timeout: float = 20.0) -> None:
        """Start the servers again after :meth:`stop`: same addresses, port and keys (a host
        that went away and came back)."""
        sshd = find_tool("sshd")
        for server in self._servers:
            if server.proc is None or server.proc.poll() is not None:
                self._spawn(sshd, server)
        if not self._wait_ready(ready_timeout):
            raise RuntimeError(f"sshd did not start again on port {self.port}")

    def _config(self, addresses: Sequence[str]) -> str:
        listen = "".join(f"ListenAddress {addr}:{self.port}\n" for addr in addresses)
        return (
            f"{listen}"
            f"HostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "PidFile none\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            f"MaxStartups {self.max_startups}\n"
            "MaxSessions 100\n"
            "LogLevel ERROR\n"
            "UseDNS no\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            "AllowTcpForwarding yes\n"
            "X11Forwarding no\n"
            "Subsystem sftp internal-sftp\n"
            # bash sources ~/.bashrc even for `ssh host cmd` when SSH_CLIENT is set and SHLVL
            # says it is the first shell; SHLVL=1 makes the login shell level 2, skipping a
            # slow rc file (pyenv init: ~0.15 s per command here).  Scripts see SHLVL=2.
            "SetEnv SHLVL=1\n"
        )

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        pending = set(self.addresses.values())
        while pending and time.monotonic() < deadline:
            if any(s.proc is not None and s.proc.poll() is not None for s in self._servers):
                return False
            for addr in list(pending):
                try:
                    with socket.create_connection((addr, self.port), timeout=1) as sock:
                        if sock.recv(64).startswith(b"SSH-2.0"):
                            pending.discard(addr)
                except OSError:
                    pass
            if pending:
                time.sleep(0.05)
        return not pending

    def _write_known_hosts(self) -> None:
        algorithm, blob = Path(str(self.host_key) + ".pub").read_text().split()[:2]
        self.known_hosts.write_text(
            "".join(f"[{addr}]:{self.port} {algorithm} {blob}\n" for addr in self.addresses.values())
        )

    def _stop_servers(self) -> None:
        for server in self._servers:
            if server.proc is not None and server.proc.poll() is None:
                server.proc.terminate()
        for server in self._servers:
            if server.proc is not None:
                try:
                    server.proc.wait(5)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait(5)

    def stop(self) -> None:
        """Stop the servers and drop every session they serve."""
        for name in self.names:
            try:
                self.kill_session_processes(name)
            except OSError:
                pass
        self._stop_servers()

    def __enter__(self) -> SSHFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- helpers

    @property
    def host_public_key(self) -> str:
        """``ssh-ed25519 AAAA...`` of the servers' host key."""
        return " ".join(Path(str(self.host_key) + ".pub").read_text().split()[:2])

    def target(self, name: str) -> Target:
        return self.hosts[name]

    def inventory_yaml(self, groups: Mapping[str, Sequence[str]] | None = None) -> str:
        """Ansible-style inventory of the fleet: every host under ``all.hosts`` with its
        ``ansible_host``; user, port and key file as ``all`` vars; ``groups`` as children."""
        lines = [
            "all:",
            "  vars:",
            f"    ansible_user: {self.user}",
            f"    ansible_port: {self.port}",
            f"    ansible_ssh_private_key_file: {self.client_key}",
            "  hosts:",
        ]
        lines += [f"    {name}: {{ansible_host: {addr}}}" for name, addr in self.addresses.items()]
        if groups:
            lines.append("  children:")
            for group, members in groups.items():
                unknown = [m for m in members if m not in self.addresses]
                if unknown:
                    raise ValueError(f"group {group}: not fleet hosts: {unknown}")
                lines += [f"    {group}:", "      hosts:"] + [f"        {m}: {{}}" for m in members]
        return "\n".join(lines) + "\n"

    def write_inventory(self, path: str | os.PathLike[str], groups: Mapping[str, Sequence[str]] | None = None) -> Path:
        path = Path(path)
        path.write_text(self.inventory_yaml(groups))
        return path

    def ssh_config(self, aliases: Mapping[str, str] | None = None) -> str:
        """OpenSSH client config with a ``Host`` alias per fleet host (``aliases``: alias -> host
        name; default the host names themselves)."""
        aliases = dict(aliases or {n: n for n in self.names})
        blocks = []
        for alias, name in aliases.items():
            blocks.append(
                f"Host {alias}\n  HostName {self.addresses[name]}\n  Port {self.port}\n  User {self.user}\n"
                f"  IdentityFile {self.client_key}\n  UserKnownHostsFile {self.known_hosts}\n"
            )
        return "\n".join(blocks)

    def _listener_pids(self) -> set[int]:
        return {s.proc.pid for s in self._servers if s.proc is not None and s.proc.poll() is None}

    def session_pids(self, host: str) -> list[int]:
        """Pids of the sshd processes holding established connections to ``host``."""
        addr = self.addresses[host]
        local = "{:08X}:{:04X}".format(int.from_bytes(socket.inet_aton(addr), "little"), self.port)
        inodes = set()
        with open("/proc/net/tcp") as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                if fields[1] == local and fields[3] == "01":  # ESTABLISHED
                    inodes.add(fields[9])
        if not inodes:
            return []
        listeners = self._listener_pids()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
                holds = any(os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] in inodes
                            for fd in fds if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:["))
            except OSError:
                continue
            if holds and pid not in listeners and self._descends_from(pid, listeners):
                pids.append(pid)
        return pids

    @staticmethod
    def _descends_from(pid: int, ancestors: set[int]) -> bool:
        for _ in range(64):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                return False
            if ppid in ancestors:
                return True
            if ppid <= 1:
                return False
            pid = ppid
        return False

    def kill_session_processes(self, host: str) -> int:
        """SIGKILL the sshd processes serving ``host``'s connections (a dropped connection,
        as when the network or the server's session process dies).  The commands those
        sessions started keep running, orphaned.  Returns how many were killed."""
        killed = 0
        for pid in self.session_pids(host):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        return killed
