"""No secret value reaches an export, in any format, even when the journal holds one."""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh
import pytest

from sessions.commands.export import render, verify_report
from sessions.journal import events as ev
from sessions.journal.journal import Journal
from sessions.report.as_json import verify_chain
from sessions.report.build import build_report, read_journal
from sessions.report.redact import MARK, Redactor
from sessions.signing import REPORT_NAMESPACE, FileSigningKey
from tests.unit.export_journals import SECRET_TOKEN, SECRET_VALUE, opened, write_runbook

PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n"
       "-----END OPENSSH PRIVATE KEY-----\n")
PEM_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB"
LITERAL = "Lit3ral-Passw0rd"
FORMATS = ("md", "html", "json")


def _runbook_text() -> str:
    return (
        "# Secrets runbook\n\n## Phase 1: Prepare\n\n### Task T-1: Use secrets\n\n"
        "**Duration**: 5 minutes\n**Dependencies**: None\n**Risk Level**: LOW\n\n#### Steps\n\n"
        "1. **Log in**\n```bash\nmysql -u app -p<DB_PASSWORD> -e 'select 1'\n```\n"
    )


def engine_like_session(tmp_path: Path) -> tuple[Path, str, str]:
    """A session written by the real Session, redacted as the engine does.
    Returns (journal, secret value hash, salt)."""
    from runbook.parse.parser import parse_file
    from sessions.engine.session import Session
    from sessions.planning.substitution import mask

    rb_path = tmp_path / "secrets.md"
    rb_path.write_text(_runbook_text())
    session = Session.create(parse_file(str(rb_path)), root=tmp_path / "sessions")
    try:
        session.supply("DB_PASSWORD", SECRET_VALUE, secret=True)
        assert SECRET_VALUE in session.secrets()
        session.record(ev.StepStarted("r1", "T-1", 1, ("local",),
                                      f"mysql -u app -p'{mask('DB_PASSWORD')}' -e 'select 1'", who="alice"))
        session.record_output(ev.OutputChunk("r1", "local", "stdout", "password=*** accepted\n"))
        session.record(ev.HostFinished("r1", "local", "succeeded", exit_status=0))
        session.record(ev.StepFinished("r1", "succeeded"))
        planted = session.state.placeholders["DB_PASSWORD"]
        path = session.journal.path
    finally:
        session.close("finished", finished=True)
    return Path(path), planted.value_hash, planted.salt


def test_engine_redacted_session_exports_no_secret_and_no_hash(tmp_path: Path) -> None:
    path, value_hash, salt = engine_like_session(tmp_path)
    assert value_hash and salt and SECRET_VALUE.encode() not in path.read_bytes()
    jc = read_journal(path)
    report = build_report(jc)
    assert jc.redacted == []  # nothing for the defensive check to do
    for fmt in FORMATS:
        data = render(report, jc, fmt, 200)
        assert SECRET_VALUE.encode() not in data, fmt
        if fmt != "json":
            assert value_hash.encode() not in data and salt.encode() not in data, fmt
            assert b"DB_PASSWORD" in data and b"secret, not recorded" in data
    doc = json.loads(render(report, jc, "json", 200))
    assert value_hash not in json.dumps(doc["report"]) and salt not in json.dumps(doc["report"])
    placeholder = next(p for p in doc["report"]["placeholders"] if p["name"] == "DB_PASSWORD")
    assert placeholder["secret"] is True and placeholder["value"] is None
    # the verbatim record keeps the salted hash: it is part of the hash chain
    assert any(r["event"].get("value_hash") == value_hash for r in doc["records"])


def leaky_journal(tmp_path: Path) -> Path:
    """A journal written by a buggy engine: secrets in plain sight."""
    runbook, sha = write_runbook(tmp_path)
    path = tmp_path / "leaky" / "journal.jsonl"
    half = len(SECRET_VALUE) // 2
    with Journal.create(path) as j:
        j.append(opened(runbook, sha))
        j.append(ev.PlaceholderSupplied("DB_PASSWORD", secret=True, value=SECRET_VALUE, who="alice"))
        j.append(ev.PlaceholderSupplied("JOIN_TOKEN", secret=False, value=SECRET_TOKEN, who="alice"))
        j.append(ev.StepStarted("r1", "T-1", 1, ("db-1",),
                                f"mysql -p{SECRET_VALUE} && export DB_PASSWORD={LITERAL} && "
                                f"kubeadm join --token {SECRET_TOKEN} --certificate-key=\"{LITERAL}x\" "
                                f"--config /etc/kubeadm.yaml && export API_KEY=$API_KEY", who="alice"))
        j.append_output(ev.OutputChunk("r1", "db-1", "stdout", f"connected with {SECRET_VALUE[:half]}"))
        j.append_output(ev.OutputChunk("r1", "db-1", "stdout", f"{SECRET_VALUE[half:]} ok\n"))
        j.append_output(ev.OutputChunk("r1", "db-1", "stdout", PEM[:50]))
        j.append_output(ev.OutputChunk("r1", "db-1", "stdout", PEM[50:] + "done\n"))
        j.append_output(ev.OutputChunk.from_bytes("r1", "db-1", "stderr", b"\xff" + SECRET_VALUE.encode() + b"\n"))
        j.append(ev.HostFinished("r1", "db-1", "succeeded", exit_status=0, error=f"auth {SECRET_VALUE}"))
        j.append(ev.StepFinished("r1", "succeeded"))
        j.append(ev.Note(f"the password is {SECRET_VALUE}", task="T-1", who="alice"))
        j.append(ev.CheckboxSet("T-1/acceptance/0", text="Logged in", who="alice", evidence=SECRET_TOKEN))
        j.append(ev.SessionClosed("finished", finished=True))
    return path


def test_leaked_secrets_are_removed_from_every_format(tmp_path: Path) -> None:
    path = leaky_journal(tmp_path)
    raw = path.read_bytes()
    assert SECRET_VALUE.encode() in raw and PEM_BODY[:12].encode() in raw  # the plant worked
    jc = read_journal(path)
    report = build_report(jc, use_runbook=False)
    assert jc.redacted and any("secrets" in d.kind for d in report.deviations)
    for fmt in FORMATS:
        data = render(report, jc, fmt, 200)
        for needle in (SECRET_VALUE, SECRET_VALUE[: len(SECRET_VALUE) // 2], SECRET_VALUE[len(SECRET_VALUE) // 2:],
                       SECRET_TOKEN, LITERAL, PEM_BODY):
            assert needle.encode() not in data, (fmt, needle)
        assert MARK.encode() in data
        # what is not a secret stays readable
        assert b"/etc/kubeadm.yaml" in data and b"$API_KEY" in data and b"done" in data
    data = render(report, jc, "json", 200)
    check = verify_chain(data)
    assert check.ok and check.redacted and "redacted at export" in check.message
    # a signed, scrubbed export still verifies end to end
    key = FileSigningKey(asyncssh.generate_private_key("ssh-ed25519"), "test")
    out = tmp_path / "leaky.json"
    out.write_bytes(data)
    Path(f"{out}.sig").write_bytes(key.sign(data, REPORT_NAMESPACE))
    allowed = tmp_path / "allowed"
    allowed.write_text(f"op@example {key.public_line('')}\n")
    ok, verdict = verify_report(str(out), None, str(allowed), "op@example")
    assert ok, verdict


def test_a_redacted_record_must_show_its_redaction(tmp_path: Path) -> None:
    path = leaky_journal(tmp_path)
    jc = read_journal(path)
    data = render(build_report(jc, use_runbook=False), jc, "json", 10)
    seq = jc.redacted[0]
    lines = data.split(b"\n")
    i = next(i for i, ln in enumerate(lines) if f'"seq":{seq},'.encode() in ln)
    lines[i] = lines[i].replace(MARK.encode(), b"harmless").replace(b'"value":null', b'"value":"x"')
    assert not verify_chain(b"\n".join(lines)).ok


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("export DB_PASSWORD=hunter22 && run", f"export DB_PASSWORD={MARK} && run"),
        ("run --token abc123 --verbose", f"run --token {MARK} --verbose"),
        ("run --certificate-key='abc def'", f"run --certificate-key={MARK}"),
        ("run --discovery-token-ca-cert-hash sha256:ab12", f"run --discovery-token-ca-cert-hash {MARK}"),
        ("DB_PASSWORD=$DB_PASSWORD run", "DB_PASSWORD=$DB_PASSWORD run"),
        ("run -p'<redacted:DB_PASSWORD>'", "run -p'<redacted:DB_PASSWORD>'"),
        ("run --token <TOKEN>", "run --token <TOKEN>"),
        ("run --key-file /etc/ssl/key.pem --cert-dir ./pki", "run --key-file /etc/ssl/key.pem --cert-dir ./pki"),
        ("ssh -o StrictHostKeyChecking=yes host", "ssh -o StrictHostKeyChecking=yes host"),
        ("kubectl get nodes", "kubectl get nodes"),
    ],
)
def test_command_scrub(command: str, expected: str) -> None:
    assert Redactor().command(command) == expected


def test_secret_split_across_chunks() -> None:
    red = Redactor(["s3cr3t-value"])
    out = red.scrub_chunks([b"a s3cr", b"3t-va", b"lue b"])
    assert out is not None and b"".join(out).count(MARK.encode()) == 3
    assert b"s3cr" not in b"".join(out) and b"lue b" not in b"".join(out) and b"".join(out).endswith(b" b")
    assert Redactor(["zzz"]).scrub_chunks([b"nothing here"]) is None
