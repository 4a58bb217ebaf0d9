"""Value parsers: durations, risk levels, dependencies, placeholders."""

from __future__ import annotations

import pytest

from runbook.model import Risk
from runbook.parse.durations import format_minutes, parse_duration
from runbook.parse.parser import parse_dependencies, parse_risk
from runbook.parse.placeholders import find_placeholders


@pytest.mark.parametrize(
    "text, minutes, note",
    [
        ("45 minutes", 45, ""),
        ("30 min", 30, ""),
        ("1 hour", 60, ""),
        ("4 hours", 240, ""),
        ("2 hours (4 nodes, parallelizable)", 120, "4 nodes, parallelizable"),
        ("2 days - accelerated", 960, "accelerated"),
        ("2.5 days - accelerated", 1200, "accelerated"),
        ("1.5 days", 720, ""),
        ("1 day", 480, ""),
        ("1h30m", 90, ""),
        ("1 hour 30 minutes", 90, ""),
        ("1-2 hours", 120, ""),
        ("~25 days (accelerated via DEV learnings)", 12000, "accelerated via DEV learnings"),
        ("**45 minutes**", 45, ""),
        ("TBD", None, "TBD"),
    ],
)
def test_durations(text, minutes, note):
    d = parse_duration(text)
    assert (d.minutes, d.note) == (minutes, note)


def test_day_length_is_configurable():
    assert parse_duration("2 days", day_hours=24).minutes == 2 * 24 * 60
    assert parse_duration("1 week").minutes == 5 * 8 * 60


def test_format_minutes():
    assert [format_minutes(m) for m in (None, 45, 60, 150, 960)] == ["?", "45 min", "1 h", "2 h 30 min", "16 h (2 d)"]


def test_day_hours_reaches_the_model():
    from runbook.parse.parser import parse

    rb = parse("## Phase 1: A (1 day)\n### Task A-1: x\n- **Duration**: 2 days\n", "d.md", day_hours=10)
    assert rb.phases[0].duration_minutes == 600 and rb.task("A-1").duration_minutes == 1200


@pytest.mark.parametrize(
    "text, risk",
    [("LOW", Risk.LOW), ("LOW (read-only)", Risk.LOW), ("**CRITICAL**", Risk.CRITICAL), ("CRITICAL+", Risk.CRITICAL),
     ("HIGH (testing in production)", Risk.HIGH), ("medium", Risk.MEDIUM), ("Moderate", Risk.MEDIUM),
     ("LOW to MEDIUM", Risk.MEDIUM), ("spicy", Risk.UNKNOWN), ("", Risk.UNKNOWN)],
)
def test_risk(text, risk):
    assert parse_risk(text) is risk


@pytest.mark.parametrize(
    "text, deps",
    [("None", ()), ("PROD-PRE-001", ("PROD-PRE-001",)), ("PROD-NET-002 (network policies created)", ("PROD-NET-002",)),
     ("PROD-K8S-001, PROD-K8S-002 and X-7", ("PROD-K8S-001", "PROD-K8S-002", "X-7")), ("Phase 2 complete", ())],
)
def test_dependencies(text, deps):
    assert parse_dependencies(text) == deps


def names(code, kind="command", secrets=()):
    return [(p.name, p.secret, p.token, p.line) for p in find_placeholders(code, kind, 10, secrets)]


def test_angle_placeholders_normalised_and_secret():
    assert names("join --token <TOKEN> \\\n --hash sha256:<HASH> --certificate-key <CERT-KEY> <NODE_NAME>") == [
        ("TOKEN", True, "<TOKEN>", 10), ("HASH", True, "<HASH>", 11), ("CERT_KEY", True, "<CERT-KEY>", 11),
        ("NODE_NAME", False, "<NODE_NAME>", 11)]


def test_dollar_placeholders_skip_assigned_loop_env_and_specials():
    code = (
        'FAIL=0\nfor ip in 10.0.0.{1..3}; do\n  echo "$ip $FAIL $HOME $PATH $USER $PWD"\n'
        '  latency=$(ping -c1 $ip | awk \'{print $4}\')\n  echo "${latency}ms $1 $? $$ $#"\ndone\n'
        'echo "$PROD_LDAP_PASS" ${UNSET} ${WITH_DEFAULT:-x} ${#TOKEN_VALUE}\n'
        "echo '$SINGLE_QUOTED' \\$ESCAPED # $IN_COMMENT\n"
        "read -r -p 'name: ' ANSWER\necho $ANSWER\nexport LATER=1\necho $LATER\n"
    )
    assert names(code) == [
        ("PROD_LDAP_PASS", True, "$PROD_LDAP_PASS", 16), ("UNSET", False, "${UNSET}", 16),
        ("TOKEN_VALUE", True, "${#TOKEN_VALUE}", 16)]


def test_use_before_assignment_is_a_placeholder():
    assert [n for n, *_ in names('echo "$LATE"\nLATE=1\n')] == ["LATE"]


def test_heredocs():
    code = "cat <<EOF\nvalue: $EXPANDED\nEOF\ncat <<'EOF'\nvalue: $LITERAL\nEOF\n"
    assert [n for n, *_ in names(code)] == ["EXPANDED"]


def test_file_blocks_only_angle_placeholders_output_none():
    assert [n for n, *_ in names("key: <API_KEY>\nhome: $HOME_DIR\n", kind="file")] == ["API_KEY"]
    assert names("<TOKEN> $X", kind="output") == []


def test_secret_marked_by_runbook():
    assert names("echo $LDAP_BIND", secrets=["LDAP_BIND"]) == [("LDAP_BIND", True, "$LDAP_BIND", 10)]


def test_angle_in_shell_comment_is_not_a_placeholder():
    assert names("# replace <NOTE> later\necho <REAL>\n") == [("REAL", False, "<REAL>", 11)]
