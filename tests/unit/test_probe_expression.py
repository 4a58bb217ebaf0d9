"""Probe expressions are parsed with ast, never evaluated."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.probes.expression import ProbeCall, ProbeSyntaxError, format_probe, format_value, parse_probe


def test_parses_the_issue_example():
    call = parse_probe('k8s.nodes_ready(min=5, role="control-plane")')
    assert call == ProbeCall("k8s.nodes_ready", (), (("min", 5), ("role", "control-plane")), call.text)
    assert call.kw == {"min": 5, "role": "control-plane"}


def test_cmd_probe_and_positional_args():
    call = parse_probe('  cmd(target="masters", run="systemctl is-active kubelet")  ')
    assert call.name == "cmd"
    assert call.kw == {"target": "masters", "run": "systemctl is-active kubelet"}
    assert call.text == 'cmd(target="masters", run="systemctl is-active kubelet")'
    assert parse_probe('k8s.namespace_exists("monitoring")').args == ("monitoring",)


def test_literals():
    call = parse_probe("p(a=true, b=False, c=None, d=-3, e=2.5, f=['x', 'y'], g=null, h=+1)")
    assert call.kw == {"a": True, "b": False, "c": None, "d": -3, "e": 2.5, "f": ("x", "y"), "g": None, "h": 1}


def test_bare_name_is_a_call_without_arguments():
    assert parse_probe("k8s.api_reachable") == ProbeCall("k8s.api_reachable", text="k8s.api_reachable")


def test_newlines_are_folded():
    assert parse_probe('k8s.nodes_ready(\n  min=5,\n  role="control-plane")').kw == {"min": 5, "role": "control-plane"}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("k8s.nodes_ready(min=5", "not a probe expression"),
        ("__import__('os').system('id')", "dotted name"),
        ("k8s.nodes_ready(min=__import__('os'))", "nested calls"),
        ("k8s.nodes_ready(min=five)", 'quote strings, e.g. "five"'),
        ("k8s.nodes_ready(min=os.environ)", "unsupported value"),
        ("k8s.nodes_ready(*args)", "*args"),
        ("k8s.nodes_ready(**kw)", "**kwargs"),
        ("k8s.nodes_ready(role=f'{x}')", "f-strings"),
        ("k8s.nodes_ready(min=1+1)", "unsupported value"),
        ("k8s.nodes_ready(min=5, min=6)", "min given twice"),
        ("1 + 2", "a probe is a call"),
        ("k8s.nodes_ready(min=b'x')", "unsupported value"),
        ("k8s.nodes_ready(min=[[1]])", "unsupported value"),
        ("x" * 5000, "longer than"),
        ("k8s.nodes_ready(\x00)", "not a probe expression"),
        ("lambda: 0", "a probe is a call"),
    ],
)
def test_rejects_with_a_reason(text, fragment):
    with pytest.raises(ProbeSyntaxError) as info:
        parse_probe(text)
    assert fragment in str(info.value)


def test_column_of_an_error():
    with pytest.raises(ProbeSyntaxError) as info:
        parse_probe("k8s.nodes_ready(min=1, role=master)")
    assert info.value.column == 29
    assert str(info.value).endswith("(column 29)")


def test_format_round_trips_and_prefers_double_quotes():
    text = format_probe("k8s.nodes_ready", min=5, role="control-plane")
    assert text == 'k8s.nodes_ready(min=5, role="control-plane")'
    assert format_value('say "hi"') == "'say \"hi\"'"
    assert format_value(["a", 1, True, None]) == '["a", 1, true, null]'
    assert parse_probe(text).format() == text


_values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-10**6, max_value=10**6),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=8), max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8})?", fullmatch=True),
    kwargs=st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,6}", fullmatch=True), _values, max_size=4),
)
def test_format_then_parse_gives_the_same_call(name, kwargs):
    import keyword

    if any(keyword.iskeyword(k) for k in kwargs) or any(keyword.iskeyword(p) for p in name.split(".")):
        return
    call = parse_probe(format_probe(name, **kwargs))
    assert call.name == name
    assert call.kw == kwargs


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_only_ever_raises_probe_syntax_error(text):
    try:
        call = parse_probe(text)
    except ProbeSyntaxError:
        return
    assert isinstance(call, ProbeCall)
