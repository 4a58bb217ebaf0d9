"""``runbook verify``: the hash chain of a JSON export and the report signature, offline
(the real ``ssh-keygen`` cross-checks live in tests/integration/test_signing.py)."""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh
import pytest

from runbook.cli import main
from runbook.errors import UserError
from sessions.commands.export import render, verify_report
from sessions.report.as_json import verify_chain
from sessions.report.build import build_report, read_journal
from sessions.signing import (
    CHECKPOINT_NAMESPACE,
    REPORT_NAMESPACE,
    FileSigningKey,
    parse_signature,
    verify_signature,
)
from tests.unit.export_journals import full_session


@pytest.fixture(scope="module")
def key() -> FileSigningKey:
    return FileSigningKey(asyncssh.generate_private_key("ssh-ed25519"), "test")


@pytest.fixture
def exported(tmp_path: Path, key: FileSigningKey) -> tuple[Path, Path]:
    path, _ = full_session(tmp_path, output_lines=5)
    jc = read_journal(path)
    out = tmp_path / "report.json"
    data = render(build_report(jc), jc, "json", 200)
    out.write_bytes(data)
    Path(f"{out}.sig").write_bytes(key.sign(data, REPORT_NAMESPACE))
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'# team\nop@example,ops-*@example namespaces="{REPORT_NAMESPACE}" {key.public_line("")}\n')
    return out, allowed


def test_json_export_verifies(exported: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out, allowed = exported
    assert main(["verify", str(out), "--allowed-signers", str(allowed), "--identity", "op@example"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("OK: ") and "hash chain intact" in line and "op@example" in line
    assert line.count("\n") == 1
    ok, verdict = verify_report(str(out), None, str(allowed), "ops-night@example")  # wildcard principal
    assert ok, verdict
    ok, verdict = verify_report(str(out), None, str(allowed), None)  # no identity: names the principals
    assert ok and "op@example,ops-*@example" in verdict


def test_changed_record_fails_even_when_resigned(exported: tuple[Path, Path], key: FileSigningKey) -> None:
    out, allowed = exported
    data = out.read_bytes()
    at = data.index(b"systemctl restart db", data.index(b'"records":['))
    forged = data[:at] + b"S" + data[at + 1:]
    out.write_bytes(forged)
    Path(f"{out}.sig").write_bytes(key.sign(forged, REPORT_NAMESPACE))  # signature good, chain not
    ok, verdict = verify_report(str(out), None, str(allowed), "op@example")
    assert not ok and verdict.startswith("FAILED") and "altered (hash mismatch)" in verdict
    assert "good signature" in verdict


@pytest.mark.parametrize("where", ["report", "record"])
def test_changed_byte_breaks_the_signature(exported: tuple[Path, Path], where: str) -> None:
    out, allowed = exported
    data = bytearray(out.read_bytes())
    at = data.index(b"Demo runbook") if where == "report" else data.rindex(b"finished")
    data[at] ^= 0x20
    out.write_bytes(bytes(data))
    ok, verdict = verify_report(str(out), None, str(allowed), "op@example")
    assert not ok and "BAD signature" in verdict


def test_chain_checks(exported: tuple[Path, Path]) -> None:
    out, _ = exported
    data = out.read_bytes()
    assert verify_chain(data).ok
    lines = data.split(b"\n")
    # a record removed from the middle, or the last one dropped
    assert "a record is missing" in verify_chain(b"\n".join(lines[:3] + lines[4:])).message
    cut = lines[:-4] + [lines[-4].rstrip(b",")] + lines[-2:]
    assert "does not match the records" in verify_chain(b"\n".join(cut)).message
    # another layout (re-indented by some tool) is still checked, record by record
    doc = json.loads(data)
    pretty = json.dumps(doc, indent=2).encode()
    assert verify_chain(pretty).ok
    doc["records"][5]["event"]["who"] = "mallory"
    assert "altered" in verify_chain(json.dumps(doc, indent=2).encode()).message
    assert not verify_chain(b"{}").ok and not verify_chain(b"not json").ok


def test_unsigned_or_wrongly_signed(exported: tuple[Path, Path], key: FileSigningKey, tmp_path: Path) -> None:
    out, allowed = exported
    data = out.read_bytes()
    Path(f"{out}.sig").unlink()
    ok, verdict = verify_report(str(out), None, str(allowed), "op@example")
    assert not ok and "no signature" in verdict and "hash chain intact" in verdict
    other = tmp_path / "other.sig"
    other.write_bytes(key.sign(data, CHECKPOINT_NAMESPACE))
    ok, verdict = verify_report(str(out), str(other), str(allowed), "op@example")
    assert not ok and "namespace" in verdict
    other.write_bytes(key.sign(data, REPORT_NAMESPACE))
    ok, verdict = verify_report(str(out), str(other), str(allowed), "intruder@example")
    assert not ok and "intruder@example" in verdict
    with pytest.raises(UserError):
        verify_report(str(out), str(other), None, "op@example")


def test_markdown_verdict_says_the_chain_is_not_checked(tmp_path: Path, key: FileSigningKey) -> None:
    path, _ = full_session(tmp_path)
    jc = read_journal(path)
    out = tmp_path / "r.md"
    data = render(build_report(jc), jc, "md", 200)
    out.write_bytes(data)
    Path(f"{out}.sig").write_bytes(key.sign(data, REPORT_NAMESPACE))
    allowed = tmp_path / "allowed"
    allowed.write_text(f"op@example {key.public_line('')}\n")
    ok, verdict = verify_report(str(out), None, str(allowed), "op@example")
    assert ok and "hash chain not checked" in verdict and "Markdown/HTML" in verdict

    other = tmp_path / "r.json"  # signed JSON that is not an export: the verdict does not call it Markdown
    other.write_bytes(b'{"hello": "world"}\n')
    Path(f"{other}.sig").write_bytes(key.sign(other.read_bytes(), REPORT_NAMESPACE))
    ok, verdict = verify_report(str(other), None, str(allowed), "op@example")
    assert ok and "not a runbook JSON export" in verdict and "Markdown" not in verdict


def test_allowed_signers_options(key: FileSigningKey, tmp_path: Path) -> None:
    msg = b"report body\n"
    sig = key.sign(msg, REPORT_NAMESPACE)
    f = tmp_path / "allowed"
    cases = {
        f'op@example namespaces="file,git" {key.public_line("")}': False,  # namespace not allowed
        f'op@example valid-before="20000101" {key.public_line("")}': False,  # expired
        f'op@example cert-authority {key.public_line("")}': False,  # a CA line does not trust the key itself
        f'other@example {key.public_line("")}': False,
        f'!op@example,*@example {key.public_line("")}': False,  # negated principal
        f'op@example namespaces="runbook-*",valid-after="20000101" {key.public_line("")}': True,
    }
    for line, want in cases.items():
        f.write_text(line + "\n")
        res = verify_signature(msg, sig, REPORT_NAMESPACE, allowed_signers=f, identity="op@example")
        assert res.ok is want, (line, res.message)
    other = FileSigningKey(asyncssh.generate_private_key("ssh-ed25519"), "other")
    f.write_text(f"op@example {other.public_line('')}\n")
    assert not verify_signature(msg, sig, REPORT_NAMESPACE, allowed_signers=f, identity="op@example").ok
    parsed = parse_signature(sig)
    assert parsed.namespace == REPORT_NAMESPACE and parsed.hash_name == "sha512"
    assert not verify_signature(msg, b"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n",
                                REPORT_NAMESPACE, allowed_signers=f, identity="op@example").ok
