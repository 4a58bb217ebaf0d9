"""An embedded SSH fleet on loopback for ``runbook demo``: web-1, web-2 and db-1.

Each host is an asyncssh server listening on its own 127.0.2.x address (one free
port shared by the three).  A session's command runs as the current user through
``bash -c`` (no command: an interactive ``bash``), with stdin, stdout, stderr,
exit status, signals (SIGINT, SIGTERM... forwarded to the process group), a PTY
when the client asks for one, and SFTP for file uploads.  Commands see
``RUNBOOK_DEMO_HOST`` (the host name), run in the host's own directory
``<fleet>/hosts/<name>`` and find a ``hostname`` there that answers the demo
name, so the hosts can be told apart.

Everything the fleet needs lives in one directory (0700): throwaway host keys, a
client key, a pinned ``known_hosts`` and the ``inventory.yaml`` pointing at it,
and ``fleet.json`` (addresses and port).  Starting again from the same directory
reuses the keys and, when it is free, the port, so a session resumed after a crash
talks to the "same" hosts.  A command dies with its SSH connection, as on a real
sshd, unless it detached itself (``setsid -f``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import getpass
import json
import os
import pty
import signal
import socket
import struct
import termios
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

HOSTS = {"web-1": "127.0.2.1", "web-2": "127.0.2.2", "db-1": "127.0.2.3"}
GROUPS = {"web": ("web-1", "web-2"), "db": ("db-1",)}
KILL_GRACE_S = 2.0


@dataclass
class FleetFiles:
    root: Path

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def client_key(self) -> Path:
        return self.root / "client_ed25519"

    @property
    def config(self) -> Path:
        return self.root / "fleet.json"

    def host_key(self, name: str) -> Path:
        return self.root / f"host_{name}_ed25519"

    def home(self, name: str) -> Path:
        return self.root / "hosts" / name


def _free_port(addresses: list[str], preferred: int | None) -> int:
    """A port free on every address (``preferred`` first)."""
    candidates = ([preferred] if preferred else []) + [0] * 20
    for want in candidates:
        socks: list[socket.socket] = []
        try:
            port = want
            for addr in addresses:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(s)
                s.bind((addr, port))
                port = s.getsockname()[1]
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise OSError(errno.EADDRINUSE, "no free port on the demo addresses")


def _key(path: Path) -> asyncssh.SSHKey:
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"runbook-demo {path.name}")
    key.write_private_key(str(path))
    os.chmod(path, 0o600)
    key.write_public_key(str(path) + ".pub")
    return key


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


class _Server(asyncssh.SSHServer):
    """Public-key auth only (the client key); any user name (commands run as us)."""

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False


class DemoFleet:
    """Start with :meth:`start` (inside the running event loop), stop with :meth:`stop`."""

    def __init__(self, directory: str | os.PathLike[str], hosts: dict[str, str] | None = None) -> None:
        self.files = FleetFiles(Path(directory))
        self.hosts = dict(hosts or HOSTS)
        self.port: int | None = None
        self._servers: list[asyncssh.SSHAcceptor] = []
        self._procs: set[asyncio.subprocess.Process] = set()

    # -- files ------------------------------------------------------------------
    def prepare(self) -> None:
        """Keys, port, known_hosts and inventory (idempotent; keys kept between runs)."""
        root = self.files.root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        previous = None
        if self.files.config.exists():
            with contextlib.suppress(ValueError, OSError):
                previous = json.loads(self.files.config.read_text()).get("port")
        self.port = _free_port(list(self.hosts.values()), previous)
        client = _key(self.files.client_key)
        known = []
        for name, addr in self.hosts.items():
            key = _key(self.files.host_key(name))
            known.append(f"[{addr}]:{self.port} {key.export_public_key('openssh').decode().strip()}")
            self._make_home(name)
        _write(self.files.known_hosts, "\n".join(known) + "\n")
        _write(self.files.inventory, self._inventory_text())
        _write(self.files.config, json.dumps({"port": self.port, "hosts": self.hosts}, indent=2) + "\n")
        del client

    def _make_home(self, name: str) -> None:
        """The host's working directory, with a ``hostname`` that answers the demo name."""
        bin_dir = self.files.home(name) / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        _write(bin_dir / "hostname", f"#!/bin/sh\necho {name}\n", 0o700)

    def _inventory_text(self) -> str:
        user = getpass.getuser()
        lines = [
            "# runbook demo fleet (embedded SSH servers on loopback), written by `runbook demo`",
            "all:",
            "  vars:",
            f"    ansible_user: {user}",
            f"    ansible_port: {self.port}",
            f"    ansible_ssh_private_key_file: {self.files.client_key}",
            "  children:",
        ]
        for group, members in GROUPS.items():
            lines.append(f"    {group}:")
            lines.append("      hosts:")
            for name in members:
                if name in self.hosts:
                    lines.append(f"        {name}: {{ansible_host: {self.hosts[name]}}}")
        return "\n".join(lines) + "\n"

    # -- servers ------------------------------------------------------------------
    async def start(self) -> None:
        if self.port is None:
            self.prepare()
        client_pub = asyncssh.import_authorized_keys(
            _key(self.files.client_key).export_public_key("openssh").decode()
        )
        for name, addr in self.hosts.items():
            server = await asyncssh.create_server(
                _Server,
                addr,
                self.port,
                server_host_keys=[str(self.files.host_key(name))],
                authorized_client_keys=client_pub,
                process_factory=lambda process, name=name: self._handle(name, process),
                sftp_factory=True,
                allow_scp=True,
                encoding=None,
                reuse_address=True,
                keepalive_interval=0,
                login_timeout=30,
            )
            self._servers.append(server)

    async def stop(self) -> None:
        for proc in list(self._procs):
            _killpg(proc, signal.SIGKILL)
        for server in self._servers:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    async def __aenter__(self) -> DemoFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- one session ----------------------------------------------------------------
    def _env(self, name: str, process: asyncssh.SSHServerProcess[bytes]) -> dict[str, str]:
        env = dict(os.environ)
        for var in ("TMUX", "TMUX_PANE", "RUNBOOK_SESSION_DIR"):
            env.pop(var, None)
        env.update({k: v for k, v in (process.env or {}).items() if isinstance(k, str) and isinstance(v, str)})
        env["RUNBOOK_DEMO_HOST"] = name
        env["HOSTNAME"] = name
        env["PATH"] = f"{self.files.home(name) / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
        env["PS1"] = f"{name}$ "
        if process.term_type:
            env["TERM"] = process.term_type
        return env

    async def _handle(self, name: str, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command
        argv = ["bash", "-c", command] if command else ["bash", "-i"]
        cwd = str(self.files.home(name))
        try:
            if process.term_type:
                status = await self._run_pty(argv, cwd, self._env(name, process), process)
            else:
                status = await self._run_pipes(argv, cwd, self._env(name, process), process)
        except (OSError, asyncssh.Error) as exc:
            with contextlib.suppress(Exception):
                process.stderr.write(f"demo fleet: {exc}\n".encode())
            status = 127
        _exit(process, status)

    async def _run_pipes(self, argv: list[str], cwd: str, env: dict[str, str], process: Any) -> int:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=cwd, env=env, start_new_session=True,
        )
        self._procs.add(proc)
        try:
            assert proc.stdin and proc.stdout and proc.stderr
            feeder = asyncio.create_task(self._feed_stdin(process, proc))
            watcher = asyncio.create_task(self._watch_channel(process, proc))
            await asyncio.gather(_pump(proc.stdout, process.stdout), _pump(proc.stderr, process.stderr))
            status = await proc.wait()
            for task in (feeder, watcher):
                task.cancel()
            return status
        finally:
            self._procs.discard(proc)

    async def _feed_stdin(self, process: Any, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.SignalReceived as exc:
                _killpg(proc, _signum(exc.signal))
                continue
            except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
                continue
            except (asyncssh.Error, OSError):
                break
            if not data:
                break
            try:
                proc.stdin.write(data)
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                break
        with contextlib.suppress(Exception):
            proc.stdin.close()
        # keep listening for signals after EOF on stdin
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.SignalReceived as exc:
                _killpg(proc, _signum(exc.signal))
                continue
            except Exception:  # noqa: BLE001 - the client went away: end the pump
                return
            if not data:
                await asyncio.sleep(3600)

    async def _watch_channel(self, process: Any, proc: asyncio.subprocess.Process) -> None:
        """The connection went away: the command dies with it (SIGHUP, then SIGKILL)."""
        await process.channel.wait_closed()
        if proc.returncode is None:
            _killpg(proc, signal.SIGHUP)
            await asyncio.sleep(KILL_GRACE_S)
            if proc.returncode is None:
                _killpg(proc, signal.SIGKILL)

    async def _run_pty(self, argv: list[str], cwd: str, env: dict[str, str], process: Any) -> int:
        master, slave = pty.openpty()
        cols, rows = process.term_size[:2]
        if cols and rows:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

        def controlling_tty() -> None:  # runs in the child after setsid
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
            start_new_session=True, preexec_fn=controlling_tty,
        )
        os.close(slave)
        self._procs.add(proc)
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def readable() -> None:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(master)
                if not done.done():
                    done.set_result(None)
                return
            with contextlib.suppress(Exception):
                process.stdout.write(data)

        loop.add_reader(master, readable)
        watcher = asyncio.create_task(self._watch_channel(process, proc))

        async def typed() -> None:
            while True:
                try:
                    data = await process.stdin.read(65536)
                except asyncssh.SignalReceived as exc:
                    _killpg(proc, _signum(exc.signal))
                    continue
                except asyncssh.TerminalSizeChanged as exc:
                    with contextlib.suppress(OSError):
                        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", exc.height, exc.width, 0, 0))
                    continue
                except asyncssh.BreakReceived:
                    continue
                except Exception:  # noqa: BLE001 - the client went away: end the pump
                    return
                if not data:
                    with contextlib.suppress(OSError):
                        os.write(master, b"\x04")
                    await asyncio.sleep(3600)
                with contextlib.suppress(OSError):
                    os.write(master, data)

        feeder = asyncio.create_task(typed())
        try:
            status = await proc.wait()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done, 1.0)
            return status
        finally:
            loop.remove_reader(master)
            os.close(master)
            for task in (feeder, watcher):
                task.cancel()
            self._procs.discard(proc)


async def _pump(reader: asyncio.StreamReader, writer: Any) -> None:
    while True:
        data = await reader.read(65536)
        if not data:
            return
        try:
            writer.write(data)
            await writer.drain()
        except Exception:  # noqa: BLE001 - the client went away: keep draining so the process is not blocked
            continue


def _signum(name: str) -> int:
    try:
        return int(getattr(signal, "SIG" + name.upper()))
    except (AttributeError, ValueError):
        return signal.SIGTERM


def _killpg(proc: asyncio.subprocess.Process, sig: int) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def _exit(process: Any, status: int) -> None:
    with contextlib.suppress(Exception):
        if status < 0:
            name = signal.Signals(-status).name.removeprefix("SIG")
            process.exit_with_signal(name)
        else:
            process.exit(status)
