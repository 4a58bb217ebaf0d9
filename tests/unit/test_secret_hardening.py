"""Unit tests of the pieces behind tests/adversarial/test_secret_attacks.py and
test_destructive_guard.py: shell-aware destructive detection, literal secrets,
one-pass redaction, the child environment, var files."""

from __future__ import annotations

import os

import pytest

from runbook.errors import UserError
from runbook.sanitize.redaction import secret_value_problem
from runbook.shell.destructive import destructive_patterns, find_destructive
from runbook.transport.child_env import child_environ, ssh_environment
from sessions.commands.var_file import parse_assignments, read_stdin_values, read_var_file
from sessions.planning.secret_literals import find_literals, mask_literals
from sessions.planning.substitution import mask, redact_values


@pytest.mark.parametrize("code", [
    'echo "a #"; rm -rf DIR',
    "r\\m -rf DIR",
    "rm \\\n-rf DIR",
    "rm -r --force DIR",
    "rm --rec --forc DIR",
    "rm -R -v -f DIR",
    "/bin/rm -fr DIR",
    '"r"m -rf DIR',
    "rm${IFS}-rf${IFS}DIR",
    "sudo -u root rm -r -f DIR",
    "find . -print0 | xargs -0 rm -r --force",
    "bash -c 'rm -r --force DIR'",
    "eval rm -r --force DIR",
    "x=`rm -r --force DIR`",
    "cat <<EOF | sh\nrm -r --force DIR\nEOF",
    "echo a#b; rm -rf DIR",
])
def test_rm_rf_is_found_however_it_is_spelled(code):
    assert destructive_patterns(code) == ["rm -rf"], code


@pytest.mark.parametrize("code", [
    "# rm -rf /",
    "echo ok # rm -rf /",
    "rm -r DIR",
    "rm -f FILE",
    "rm -- -rf",
    "cat <<'EOF'\nrm -rf / is only text here\nEOF\necho done",  # not fed to a shell: still reported (safe side)?
])
def test_not_destructive_or_safe_side(code):
    found = destructive_patterns(code)
    if "cat <<'EOF'" in code:
        assert found == ["rm -rf"]  # a here-document is read as commands: the safe side
    else:
        assert found == [], code


def test_finding_keeps_the_lines_exactly_as_written():
    code = "ls\necho x; r\\m \\\n  -rf /data\necho after\nkubectl -n a delete pod b"
    found = find_destructive(code)
    assert [(f.labels, f.text, f.line) for f in found] == [
        (("rm -rf",), "echo x; r\\m \\\n  -rf /data", 1),
        (("kubectl delete",), "kubectl -n a delete pod b", 4),
    ]


def test_other_patterns_survive_quoting_and_continuations():
    assert destructive_patterns("kube\\\nadm reset -f") == ["kubeadm reset"]
    assert destructive_patterns("psql -c 'DROP TABLE users'") == ["DROP"]
    assert destructive_patterns("'kubectl' delete ns x") == ["kubectl delete"]


def test_literal_secrets_are_found_and_masked_in_place():
    code = "export DB_PASSWORD=hunter2\ncurl --token 'abc def' x\nAPI_KEY=$FROM_ENV\nPASSWORD=q\nUSER=bob"
    found = find_literals(code)
    assert [(lit.name, lit.value) for lit in found] == [("DB_PASSWORD", "hunter2"), ("token", "abc def"),
                                                        ("PASSWORD", "q")]
    masked = mask_literals(code, found, mask)
    assert "hunter2" not in masked and "abc def" not in masked and "PASSWORD=<redacted:PASSWORD>" in masked
    assert "API_KEY=$FROM_ENV" in masked and "USER=bob" in masked
    assert find_literals("LDAP_BIND=cn=admin", ["LDAP_BIND"])[0].value == "cn=admin"


def test_redaction_is_one_pass():
    text = "T=<redacted:API_TOKEN> and the value edac in redacted"
    out = redact_values(text, {"API_TOKEN": "edac"})
    assert out == "T=<redacted:API_TOKEN> and the value <redacted:API_TOKEN> in r<redacted:API_TOKEN>ted"
    assert redact_values("abcd abcdef", {}, ["abcd", "abcdef"]) == "*** ***"


def test_short_and_empty_secret_values_are_refused():
    assert secret_value_problem("") and secret_value_problem("abc")
    assert secret_value_problem("abcd") is None


def test_child_environment_loses_secret_names_but_keeps_paths(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    base = {"PATH": "/usr/bin", "DB_PASSWORD": "p", "GITHUB_TOKEN": "t", "SSL_CERT_FILE": str(ca),
            "AWS_SECRET_ACCESS_KEY": "/not/a/real/path", "LDAP_BIND": "cn=x", "HOME": "/root"}
    env = child_environ(["LDAP_BIND"], base, TERM="xterm")
    assert env == {"PATH": "/usr/bin", "SSL_CERT_FILE": str(ca), "HOME": "/root", "TERM": "xterm"}
    sent = ssh_environment(["LC_X=1", "API_TOKEN=zzzz"], ["LANG", "*PASS*"], base={"LANG": "C", "DB_PASSWORD": "p"})
    assert sent == {"LANG": "C", "LC_X": "1"}


def test_var_file_rules(tmp_path):
    assert parse_assignments("# c\n\nexport A=1\nB='two words'\nC=x=y\n", "f") == {"A": "1", "B": "two words", "C": "x=y"}
    with pytest.raises(UserError, match=r"f:2: expected NAME=VALUE"):
        parse_assignments("A=1\nnot an assignment secret-value\n", "f")
    path = tmp_path / "v.env"
    path.write_text("DB_PASSWORD=hunter22\n")
    path.chmod(0o640)
    with pytest.raises(UserError, match="chmod 600"):
        read_var_file(str(path))
    path.chmod(0o600)
    assert read_var_file(str(path)) == {"DB_PASSWORD": "hunter22"}


def test_stdin_values(tmp_path):
    def piped(text: str, missing: list[str]) -> dict[str, str]:
        r, w = os.pipe()
        os.write(w, text.encode())
        os.close(w)
        try:
            return read_stdin_values(r, missing)
        finally:
            os.close(r)

    assert piped("s3cret=with=equals\n", ["DB_PASSWORD"]) == {"DB_PASSWORD": "s3cret=with=equals"}
    assert piped("DB_PASSWORD=abcd\n", ["DB_PASSWORD"]) == {"DB_PASSWORD": "abcd"}
    assert piped("A_TOKEN=abcd\nB_PASS=efgh\n", ["A_TOKEN", "B_PASS"]) == {"A_TOKEN": "abcd", "B_PASS": "efgh"}
