"""runbook.transport.ssh_config: the settings the SSH pool resolves itself (known_hosts files, ProxyJump)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.targets.inventory import Target
from runbook.transport.ssh_config import SSHConfigView, parse_hop

DEFAULTS = ["~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"]


@pytest.mark.parametrize(("hop", "expected"), [
    ("jump", ("jump", None, None)),
    ("ops@jump:2222", ("jump", 2222, "ops")),
    ("ssh://ops@jump.example:2200", ("jump.example", 2200, "ops")),
    ("[fe80::1]:2022", ("fe80::1", 2022, None)),
    ("me@[2001:db8::7]", ("2001:db8::7", None, "me")),
])
def test_parse_hop(hop: str, expected: tuple) -> None:
    t = parse_hop(hop, Target("db", "db"))
    assert (t.host, t.port, t.user) == expected and t.key_file is None and "jump host" in t.name


@pytest.mark.parametrize("hop", ["jump:ssh", "ops@", ":22"])
def test_bad_hops_name_the_host(hop: str) -> None:
    with pytest.raises(UserError, match="db: bad ProxyJump entry"):
        parse_hop(hop, Target("db", "db"))


def test_known_hosts_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "config"
    config.write_text(
        "Host prod-*\n  UserKnownHostsFile %d/kh/%u ~/.ssh/prod_hosts\n"
        "Host lab\n  UserKnownHostsFile none\n  GlobalKnownHostsFile /dev/null\n"
        "Host edge\n  GlobalKnownHostsFile /etc/ssh/edge_hosts\n"
        "Host via\n  ProxyJump ops@bastion:2222,inner\n"
    )
    view = SSHConfigView([str(config)], DEFAULTS)
    assert view.known_hosts_files(Target("p", "prod-db")) == [
        f"{tmp_path}/kh/{getpass.getuser()}", f"{tmp_path}/.ssh/prod_hosts", "/etc/ssh/ssh_known_hosts"]
    assert view.known_hosts_files(Target("l", "lab")) == []  # nothing known: every key is refused
    assert view.known_hosts_files(Target("e", "edge")) == [f"{tmp_path}/.ssh/known_hosts", "/etc/ssh/edge_hosts"]
    assert view.known_hosts_files(Target("o", "other")) == DEFAULTS
    assert [(h.host, h.port, h.user) for h in view.proxy_jump(Target("v", "via"))] == [
        ("bastion", 2222, "ops"), ("inner", None, None)]
    assert view.proxy_jump(Target("o", "other")) == []
    assert SSHConfigView([str(tmp_path / "missing")], DEFAULTS).known_hosts_files(Target("o", "x")) == DEFAULTS
    assert os.devnull not in view.known_hosts_files(Target("l", "lab"))
