"""The bounded YAML loader: ordinary YAML (anchors included) loads as PyYAML loads it;
bombs, recursion, deep nesting, control characters and non-regular files are refused at
their line (the CLI-level attacks are in tests/adversarial/test_yaml_attacks.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from runbook.errors import InputError
from runbook.reading.bounded_yaml import MAX_ALIAS_NODES, YAMLInputError, load_yaml, load_yaml_file, read_yaml_file


@pytest.mark.parametrize("text", [
    "a: &d {user: ops, port: 22}\nb: *d\nc: {<<: *d, port: 2222}\n",
    "- &x [1, 2, 3]\n- *x\n- {k: *x}\n",
    "when: 2026-12-01\nn: 1.5\nflag: yes\nnothing:\n",
    "",
    "just a scalar\n",
])
def test_ordinary_yaml_loads_as_pyyaml_loads_it(text: str) -> None:
    assert load_yaml(text, "f.yaml") == yaml.safe_load(text)


def test_many_aliases_of_a_small_anchor_are_fine() -> None:
    """10,000 hosts sharing one vars mapping (what people do with anchors)."""
    text = "defaults: &d {ansible_user: ops, ansible_port: 22}\nhosts:\n" + "".join(
        f"  h{i}: *d\n" for i in range(10_000))
    assert len(load_yaml(text, "inv.yaml")["hosts"]) == 10_000


def test_the_limit_counts_nodes_aliases_stand_for() -> None:
    n = MAX_ALIAS_NODES // 10
    head = f"a: &a [{', '.join(['x'] * 9)}]\n"  # the anchor stands for 10 nodes
    load_yaml(head + "b: [" + ", ".join(["*a"] * n) + "]\n", "f.yaml")  # at the limit
    with pytest.raises(YAMLInputError, match=r"^f\.yaml:2: aliases expand to more than"):
        load_yaml(head + "b: [" + ", ".join(["*a"] * (n + 1)) + "]\n", "f.yaml")


@pytest.mark.parametrize("text, where, problem", [
    ("a: &a [1, *a]\n", "f.yaml:11", "recursive alias"),
    ("a:\n  b: &a {c: *a}\n", "f.yaml:12", "recursive alias"),
    ("x: " + "[" * 101 + "]" * 101 + "\n", "f.yaml:11", "nested more than 100 levels"),
    ("a: 1\nb: \x1b[31m\n", "f.yaml:12", "unacceptable character #x001b"),
    ("a: !!python/object/apply:os.system [id]\n", "f.yaml:11", "could not determine a constructor"),
    ("a: *nowhere\n", "f.yaml:11", "undefined alias"),
])
def test_refused_at_its_line_counting_from_first_line(text: str, where: str, problem: str) -> None:
    with pytest.raises(YAMLInputError) as info:
        load_yaml(text, "f.yaml", first_line=11)
    assert info.value.where == where and problem in info.value.problem, str(info.value)
    assert "\n" not in str(info.value)


def test_files_must_be_regular_small_and_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        read_yaml_file(str(fifo))
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 2000 + "\n")
    monkeypatch.setenv("RUNBOOK_MAX_INPUT_MB", "0.001")
    with pytest.raises(InputError, match="input limit"):
        read_yaml_file(str(big))
    with pytest.raises(YAMLInputError, match="too large"):
        load_yaml(big.read_text(), "big.yaml")
    monkeypatch.delenv("RUNBOOK_MAX_INPUT_MB")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(YAMLInputError, match=r"latin\.yaml:2: not UTF-8"):
        load_yaml_file(str(latin))
    with pytest.raises(FileNotFoundError):
        read_yaml_file(str(tmp_path / "missing.yaml"))
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_yaml_file(str(bom)) == {"a": 1}
