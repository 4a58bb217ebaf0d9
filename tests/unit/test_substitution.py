"""Placeholder values into scripts; secrets only in the copy that travels on stdin."""

from __future__ import annotations

import subprocess

from runbook.model import Placeholder
from sessions.planning.substitution import fill, mask, placeholder_names, redact_values, shell_quote


def ph(name: str, secret: bool = False) -> Placeholder:
    return Placeholder(name, secret, 1)


def run_bash(script: str) -> str:
    return subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, check=True).stdout


def test_angle_placeholder_replaced_and_secret_masked_in_redacted_copy():
    code = "kubeadm join api:6443 --token <TOKEN> --discovery-token-ca-cert-hash sha256:<HASH> --node <NODE>"
    f = fill(code, [ph("TOKEN"), ph("HASH"), ph("NODE")], {"TOKEN": "abc.def", "HASH": "ff00", "NODE": "m2"})
    assert "--token abc.def" in f.text and "sha256:ff00" in f.text and "--node m2" in f.text
    assert "abc.def" not in f.redacted and "ff00" not in f.redacted
    assert mask("TOKEN") in f.redacted and mask("HASH") in f.redacted
    assert "--node m2" in f.redacted  # non-secret values are shown
    assert f.missing == ()


def test_dollar_placeholders_go_to_a_quoted_prelude_that_bash_understands():
    value = "it's $(not) `run` \"quoted\" \\ and\nnewline"
    code = 'printf "%s|" "$PROD_LDAP_PASS"\nprintf "%s" "${REGION}"'
    f = fill(code, [ph("PROD_LDAP_PASS", True), ph("REGION")], {"PROD_LDAP_PASS": value, "REGION": "eu 1"})
    assert run_bash(f.text) == value + "|eu 1"
    assert value not in f.redacted and mask("PROD_LDAP_PASS") in f.redacted
    assert "export REGION='eu 1'" in f.redacted
    # a secret is a shell variable, not exported to child processes
    assert "export PROD_LDAP_PASS" not in f.text
    assert run_bash(fill('sh -c \'echo "[$PROD_LDAP_PASS]"\'', [ph("PROD_LDAP_PASS", True)],
                         {"PROD_LDAP_PASS": "s3"}).text) == "[]\n"


def test_missing_values_are_reported_and_left_as_written():
    f = fill("echo <A> $B ${C}", [ph("A"), ph("B"), ph("C")], {"C": "c"})
    assert f.missing == ("A", "B")
    assert "<A>" in f.text and "$B" in f.text
    assert set(f.used) == {"A", "B", "C"}


def test_non_placeholders_are_never_touched():
    code = 'echo $HOME ${PATH} <NOT_A_PH> $(date) \\$ESCAPED'
    f = fill(code, [ph("OTHER")], {"OTHER": "x", "HOME": "evil"})
    assert f.text == code and f.redacted == code


def test_file_blocks_fill_only_angle_placeholders():
    code = "user: <USER-NAME>\npassword: <DB_PASS>\nshell: $USER_NAME\nkeep: $HOME\n"
    f = fill(code, [ph("USER_NAME"), ph("DB_PASS", True)], {"USER_NAME": "bob", "DB_PASS": "pw'1"}, kind="file")
    assert f.text == "user: bob\npassword: pw'1\nshell: $USER_NAME\nkeep: $HOME\n"
    assert "pw'1" not in f.redacted and mask("DB_PASS") in f.redacted


def test_dashed_angle_names_are_normalised_like_the_parser_does():
    f = fill("kubeadm join --certificate-key <CERT-KEY>", [ph("CERT_KEY", True)], {"CERT_KEY": "c0ffee"})
    assert f.text.endswith("--certificate-key c0ffee") and "c0ffee" not in f.redacted


def test_shell_defaults_keep_working_with_the_prelude():
    f = fill('echo "${REGION:-none}/$REGION"', [ph("REGION")], {"REGION": "eu"})
    assert run_bash(f.text) == "eu/eu\n"


def test_secret_by_name_or_by_runbook_marking():
    f = fill("echo <API_TOKEN> <LDAP_BIND>", [ph("API_TOKEN"), ph("LDAP_BIND")],
             {"API_TOKEN": "t0k", "LDAP_BIND": "b1nd"}, secret_names=["LDAP_BIND"])
    assert "t0k" not in f.redacted and "b1nd" not in f.redacted


def test_longer_names_win_over_prefixes():
    f = fill("<NODE> <NODE_IP>", [ph("NODE"), ph("NODE_IP")], {"NODE": "n", "NODE_IP": "127.0.0.1"})
    assert f.text == "n 127.0.0.1"


def test_helpers():
    assert placeholder_names("a <X> $Y ${Z} <W>", [ph("X"), ph("Y"), ph("Z")]) == ["X", "Y", "Z"]
    assert placeholder_names("a <X> $Y", [ph("X"), ph("Y")], "file") == ["X"]
    assert run_bash("printf %s " + shell_quote("a'b\"$c")) == "a'b\"$c"
    assert redact_values("pw=hunter2 again hunter2", {"P_PASS": "hunter2"}) == f"pw={mask('P_PASS')} again {mask('P_PASS')}"
