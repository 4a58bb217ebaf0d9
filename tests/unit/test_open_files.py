"""The open-file limit: raised to the hard limit once, a one-line warning when the hard
limit has no room for the hosts.  Each case runs in a fresh interpreter whose limits
are lowered first (the test process's own limits are never touched)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_with_limits(soft: int, hard: int, body: str) -> dict[str, object]:
    """Run ``body`` (which sets ``out``) in a child whose RLIMIT_NOFILE is (soft, hard)."""
    code = textwrap.dedent(f"""
        import json, resource, socket
        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
        from runbook.transport.open_files import RESERVE, raise_open_files_limit
        out = {{}}
    """) + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_soft_limit_is_raised_to_the_hard_limit_once():
    out = run_with_limits(100, 400, """
        limit = raise_open_files_limit()
        out["soft"], out["hard"], out["before"] = limit.soft, limit.hard, limit.before
        out["now"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
        resource.setrlimit(resource.RLIMIT_NOFILE, (50, 400))
        again = raise_open_files_limit()  # called once: the first answer, nothing set again
        out["same"] = again is limit
        out["after_second"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
    """)
    assert (out["soft"], out["hard"], out["before"]) == (400, 400, 100)
    assert out["now"] == [400, 400]
    assert out["same"] is True
    assert out["after_second"] == [50, 400]


def test_raising_makes_room_for_more_sockets_than_the_soft_limit():
    # 300 sockets (one per host) under a soft limit of 100: possible only once it is raised
    out = run_with_limits(100, 1000, """
        def open_sockets(n):
            socks = []
            try:
                for _ in range(n):
                    socks.append(socket.socket())
                return len(socks)
            except OSError:
                return len(socks)
            finally:
                for s in socks:
                    s.close()
        out["before"] = open_sockets(300)
        raise_open_files_limit()
        out["after"] = open_sockets(300)
    """)
    assert out["before"] < 100
    assert out["after"] == 300


def test_no_warning_when_the_hosts_fit():
    out = run_with_limits(100, 4096, """
        out["warning"] = raise_open_files_limit().shortfall(500)
        out["room"] = raise_open_files_limit().hosts
    """)
    assert out["warning"] is None
    assert out["room"] == 4096 - 64


def test_one_line_warning_names_the_limit_and_the_host_count():
    out = run_with_limits(128, 256, """
        limit = raise_open_files_limit()
        out["fits"] = limit.shortfall(150)
        out["warning"] = limit.shortfall(500)
    """)
    assert out["fits"] is None  # 150 + 64 <= 256
    warning = out["warning"]
    assert isinstance(warning, str) and "\n" not in warning
    assert "500 hosts" in warning
    assert "RLIMIT_NOFILE is 256 (hard limit 256)" in warning
    assert "about 564 needed" in warning
