"""Inventory: Ansible-style YAML, host patterns, SSH destinations."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.targets.inventory import Inventory, Target, expand_host_range

PROD = textwrap.dedent(
    """\
    all:
      vars:
        ansible_user: ops
        env_name: prod
      hosts:
        bastion:
          ansible_host: 127.0.0.10
      children:
        k8s:
          vars:
            ansible_port: 2200
            role: node
          children:
            masters:
              vars:
                role: master
                ansible_ssh_private_key_file: keys/master_ed25519
              hosts:
                prod-k8s-master-0[1:5]:
            workers:
              hosts:
                prod-k8s-worker-01: {ansible_host: 127.0.2.1, ansible_port: 2222, ansible_user: root}
                prod-k8s-worker-02: {ansible_host: 127.0.2.2}
        etcd:
          hosts:
            prod-k8s-master-01:
            prod-k8s-master-02:
            prod-k8s-master-03:
    """
)


@pytest.fixture
def inv(tmp_path: Path) -> Inventory:
    path = tmp_path / "hosts.yaml"
    path.write_text(PROD)
    return Inventory.load(path)


def names(targets: list[Target]) -> list[str]:
    return [t.name for t in targets]


MASTERS = [f"prod-k8s-master-0{i}" for i in range(1, 6)]
WORKERS = ["prod-k8s-worker-01", "prod-k8s-worker-02"]


def test_load_hosts_groups_vars_and_digest(inv: Inventory, tmp_path: Path) -> None:
    assert list(inv.hosts) == ["bastion"] + MASTERS + WORKERS
    assert inv.digest == hashlib.sha256(PROD.encode()).hexdigest()
    assert inv.path == str(tmp_path / "hosts.yaml")
    assert inv.groups["k8s"] == tuple(MASTERS + WORKERS)
    m1 = inv.hosts["prod-k8s-master-01"]
    assert (m1.host, m1.port, m1.user) == ("prod-k8s-master-01", 2200, "ops")
    assert m1.key_file == str(tmp_path / "keys" / "master_ed25519")  # relative to the inventory
    assert m1.vars["role"] == "master" and m1.vars["env_name"] == "prod"  # child group beats parent
    assert set(m1.groups) == {"k8s", "masters", "etcd"}
    w1 = inv.hosts["prod-k8s-worker-01"]
    assert (w1.host, w1.port, w1.user, w1.key_file) == ("127.0.2.1", 2222, "root", None)  # host vars win
    assert w1.vars["role"] == "node"
    bastion = inv.hosts["bastion"]
    assert (bastion.host, bastion.port, bastion.local, bastion.in_inventory) == ("127.0.0.10", None, False, True)


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("masters", MASTERS),
        ("masters[0]", MASTERS[:1]),
        ("masters[-1]", MASTERS[-1:]),
        ("masters[1:]", MASTERS[1:]),
        ("masters[:1]", MASTERS[:2]),  # Ansible: the end is inclusive
        ("masters[1:2]", MASTERS[1:3]),
        ("prod-k8s-master-0*", MASTERS),
        ("prod-k8s-*-01", ["prod-k8s-master-01", "prod-k8s-worker-01"]),
        ("~prod-k8s-master-0[12]", MASTERS[:2]),
        ("workers,masters[0]", WORKERS + MASTERS[:1]),  # union keeps the written order
        ("masters, workers", MASTERS + WORKERS),
        ("masters,!etcd", MASTERS[3:]),
        ("masters:!etcd", MASTERS[3:]),
        ("k8s,&etcd", MASTERS[:3]),
        ("!k8s", ["bastion"]),
        ("all", ["bastion"] + MASTERS + WORKERS),
        ("*", ["bastion"] + MASTERS + WORKERS),
        ("etcd,masters", MASTERS[:3] + MASTERS[3:]),  # no duplicates
        ("bastion", ["bastion"]),
    ],
)
def test_patterns(inv: Inventory, pattern: str, expected: list[str]) -> None:
    assert names(inv.resolve(pattern)) == expected


def test_local_and_ssh_destinations(inv: Inventory) -> None:
    (local,) = inv.resolve("local")
    assert local.local and local.name == "local" and not local.in_inventory
    assert inv.resolve("localhost")[0].local
    (dest,) = inv.resolve("db-backup")  # not in the inventory: an ssh(1) destination
    assert (dest.name, dest.host, dest.port, dest.user, dest.in_inventory) == ("db-backup", "db-backup", None, None, False)
    (dest,) = inv.resolve("admin@db.example:2222")
    assert (dest.host, dest.port, dest.user) == ("db.example", 2222, "admin")
    (dest,) = inv.resolve("ssh://u@[::1]:22")
    assert (dest.host, dest.port, dest.user) == ("::1", 22, "u")
    assert dest.destination == "u@[::1]:22"
    assert names(inv.resolve("masters[0],local,db-backup")) == ["prod-k8s-master-01", "local", "db-backup"]


@pytest.mark.parametrize(
    "pattern, words",
    [
        ("masters[9]", ["masters[9]", "no index 9", "hosts.yaml"]),
        ("prod-db-*", ["prod-db-*", "matches no host", "hosts.yaml", "masters"]),
        ("mastres[0]", ["mastres", "not a group", "hosts.yaml"]),
        ("masters,!k8s", ["masters,!k8s", "matches no host", "hosts.yaml"]),
        ("", ["empty host pattern"]),
        ("bad host!", ["bad host!", "nor an SSH destination"]),
        ("~[", ["bad regular expression"]),
    ],
)
def test_pattern_errors_name_the_pattern_and_file(inv: Inventory, pattern: str, words: list[str]) -> None:
    with pytest.raises(UserError) as err:
        inv.resolve(pattern)
    for word in words:
        assert word in str(err.value)


def test_no_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    inv = Inventory.load(None)
    assert inv.digest == "" and inv.path is None and not inv.hosts
    assert inv.resolve("local")[0].local
    assert inv.resolve("jump-alias")[0].host == "jump-alias"
    with pytest.raises(UserError, match="none loaded"):
        inv.resolve("prod-*")


def test_inventory_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  hosts:\n    a: {ansible_host: 127.0.0.5}\n")
    monkeypatch.setenv("RUNBOOK_INVENTORY", str(path))
    assert names(Inventory.load(None).resolve("all")) == ["a"]


def test_top_level_groups_without_all_and_local_connection() -> None:
    inv = Inventory.from_text(
        "masters:\n  hosts:\n    m1:\n    m2:\ncontrol:\n  hosts:\n    here: {ansible_connection: local}\n"
    )
    assert names(inv.resolve("all")) == ["m1", "m2", "here"]
    assert inv.hosts["here"].local and inv.hosts["here"].host == "localhost"
    assert inv.groups["all"] == ("m1", "m2", "here")


def test_host_ranges() -> None:
    assert expand_host_range("web[01:03]") == ["web01", "web02", "web03"]
    assert expand_host_range("db-[a:c]") == ["db-a", "db-b", "db-c"]
    assert expand_host_range("n[0:10:5]") == ["n0", "n5", "n10"]
    assert expand_host_range("r[1:2]-[a:b]") == ["r1-a", "r1-b", "r2-a", "r2-b"]
    assert expand_host_range("plain") == ["plain"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("all:\n  hosts:\n    a: b: c\n", ["inv.yaml:3", "invalid inventory YAML"]),
        ("[masters:bogus]\nm1\nm2\n", ["inv.yaml:1", "unknown section type 'bogus'"]),
        ("[masters]\nm1 ansible_port\n", ["inv.yaml:2", "expected key=value"]),
        ("[masters]\nm1\n[masters:vars]\njust-a-word\n", ["inv.yaml:4", "expected key=value"]),
        ("[web]\nw1\n[web:children]\nweb\n", ["inv.yaml:4", "own child"]),
        ("[web]\nx[3:1]\n", ["inv.yaml:2", "empty host range"]),
        ("[web\nm1\n", ["inv.yaml:1", "bad section header"]),
        ("all:\n  host:\n    a:\n", ["inv.yaml:2", "unexpected key 'host'"]),
        ("all:\n  hosts:\n    a: {ansible_port: http}\n", ["inv.yaml:3", "'a'", "ansible_port 'http'"]),
        ("all:\n  hosts:\n    a: {ansible_port: 70000}\n", ["out of range"]),
        ("all:\n  hosts:\n    a: {ansible_host: '{{ ip }}'}\n", ["Jinja"]),
        ("all:\n  hosts:\n    a: {ansible_connection: winrm}\n", ["winrm", "not supported"]),
        ("all:\n  hosts: [a, b]\n", ["inv.yaml:2", "must be a mapping"]),
        ("all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n", ["cycle"]),
        ("all:\n  hosts:\n    web:\n  children:\n    web:\n", ["both a group and a host"]),
        ("all:\n  hosts:\n    x[3:1]:\n", ["empty host range"]),
    ],
)
def test_bad_inventories_name_file_and_line(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        Inventory.load(path)
    for word in words:
        assert word in str(err.value)


def test_unreadable_inventory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such inventory file"):
        Inventory.load(tmp_path / "missing.yaml")
    with pytest.raises(UserError, match="ansible-inventory"):  # a directory is for ansible-inventory
        Inventory.load(tmp_path)


def test_empty_inventory_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    inv = Inventory.load(path)
    assert not inv.hosts and inv.digest
    with pytest.raises(UserError, match=r"empty\.yaml"):
        inv.resolve("all")


def test_targets_are_hashable_and_compare_by_connection() -> None:
    a = Target("a", "127.0.0.1", 22, "u", None, {"x": 1})
    b = Target("a", "127.0.0.1", 22, "u", None, {"x": 2})
    assert a == b and len({a, b}) == 1
    assert str(a) == "a" and a.destination == "u@127.0.0.1:22"
