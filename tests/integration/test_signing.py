"""Signed exports against the real OpenSSH tools: keys made by ``ssh-keygen``, signing from
key files (one encrypted) and from a real ``ssh-agent``, every signature checked by
``ssh-keygen -Y verify`` and by ``runbook verify`` -- and both must refuse a changed byte, a
wrong namespace and an identity that is not in ``allowed_signers``."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook.cli import main
from sessions.journal.checkpoints import checkpoint_message
from sessions.signing import CHECKPOINT_NAMESPACE, REPORT_NAMESPACE, load_key_file, parse_signature, verify_signature
from tests.tools import require
from tests.unit.export_journals import full_session

KEY_TYPES = {"ed25519": ["-t", "ed25519"], "ecdsa": ["-t", "ecdsa", "-b", "256"], "rsa": ["-t", "rsa", "-b", "3072"]}
PASSPHRASE = "correct horse battery staple"
IDENTITY = "operator@example"
ROOT = Path(__file__).resolve().parents[2]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture(scope="module")
def keygen() -> str:
    return require("ssh-keygen")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory, keygen: str) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name, args in KEY_TYPES.items():
        out[name] = d / f"id_{name}"
        assert run([keygen, "-q", *args, "-N", "", "-C", f"{name}@test", "-f", str(out[name])]).returncode == 0
    out["encrypted"] = d / "id_encrypted"
    assert run([keygen, "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", str(out["encrypted"])]).returncode == 0
    return out


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = full_session(tmp_path_factory.mktemp("session"), output_lines=20)
    return path


def allowed_signers(tmp: Path, key: Path, line_prefix: str = IDENTITY) -> Path:
    f = tmp / "allowed_signers"
    f.write_text(f"{line_prefix} {Path(str(key) + '.pub').read_text()}")
    return f


def keygen_verify(keygen: str, allowed: Path, identity: str, namespace: str, sig: Path, data: Path) -> int:
    with open(data, "rb") as fh:
        return subprocess.run([keygen, "-Y", "verify", "-f", str(allowed), "-I", identity, "-n", namespace,
                               "-s", str(sig)], stdin=fh, capture_output=True, timeout=60).returncode


def runbook_verify(report: Path, allowed: Path, identity: str, sig: Path | None = None) -> int:
    args = ["verify", str(report), "--allowed-signers", str(allowed), "--identity", identity]
    return main(args + (["--signature", str(sig)] if sig else []))


@pytest.fixture
def agent(tmp_path: Path):
    """A real ssh-agent on a socket of its own; killed (by pid) afterwards."""
    binary, add = require("ssh-agent"), require("ssh-add")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen([binary, "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)

        def load(key: Path) -> str:
            env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
            res = run([add, str(key)], env=env)
            assert res.returncode == 0, res.stderr
            return str(sock)

        yield load
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def check_everything(keygen: str, tmp: Path, report: Path, key: Path, expect_rsa: bool) -> None:
    """The signature passes both verifiers; a changed byte, a wrong namespace and a
    stranger's identity fail with both."""
    sig = Path(str(report) + ".sig")
    allowed = allowed_signers(tmp, key)
    assert keygen_verify(keygen, allowed, IDENTITY, REPORT_NAMESPACE, sig, report) == 0
    assert runbook_verify(report, allowed, IDENTITY) == 0
    if expect_rsa:
        assert parse_signature(sig.read_bytes()).sig_algorithm == "rsa-sha2-512"
    # one byte changed
    changed = tmp / ("changed" + report.suffix)
    data = bytearray(report.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    assert keygen_verify(keygen, allowed, IDENTITY, REPORT_NAMESPACE, sig, changed) != 0
    assert runbook_verify(changed, allowed, IDENTITY, sig) == 1
    # wrong namespace: ssh-keygen asked for another one; runbook given a signature made for another one
    assert keygen_verify(keygen, allowed, IDENTITY, CHECKPOINT_NAMESPACE, sig, report) != 0
    other_ns = tmp / "other-namespace.sig"
    other_ns.write_bytes(load_or_agent_sign(key, report.read_bytes(), "file"))
    assert keygen_verify(keygen, allowed, IDENTITY, "file", other_ns, report) == 0  # a good sig, other namespace
    assert runbook_verify(report, allowed, IDENTITY, other_ns) == 1
    # identity not in allowed_signers
    assert keygen_verify(keygen, allowed, "intruder@example", REPORT_NAMESPACE, sig, report) != 0
    assert runbook_verify(report, allowed, "intruder@example") == 1


def load_or_agent_sign(key: Path, data: bytes, namespace: str) -> bytes:
    return load_key_file(key).sign(data, namespace)


@pytest.mark.parametrize("key_type", list(KEY_TYPES))
def test_sign_with_key_file(keygen: str, keys: dict[str, Path], journal: Path, tmp_path: Path, key_type: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.md"
    assert main(["export", str(journal), "--out", str(out), "--sign", str(keys[key_type])]) == 0
    assert f"namespace {REPORT_NAMESPACE}" in capsys.readouterr().out
    check_everything(keygen, tmp_path, out, keys[key_type], key_type == "rsa")


@pytest.mark.parametrize("key_type", list(KEY_TYPES))
def test_sign_with_ssh_agent(keygen: str, keys: dict[str, Path], journal: Path, tmp_path: Path, key_type: str,
                             agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", agent(keys[key_type]))
    out = tmp_path / "report.md"
    assert main(["export", str(journal), "--out", str(out), "--sign-agent"]) == 0
    check_everything(keygen, tmp_path, out, keys[key_type], key_type == "rsa")


def test_sign_agent_picks_the_named_key(keygen: str, keys: dict[str, Path], journal: Path, tmp_path: Path,
                                        agent, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """With several keys in the agent, ``--sign-agent KEY`` (fingerprint or comment) picks one."""
    sock = agent(keys["ed25519"])
    agent(keys["ecdsa"])
    monkeypatch.setenv("SSH_AUTH_SOCK", sock)
    fingerprint = run([keygen, "-l", "-E", "sha256", "-f", str(keys["ecdsa"])]).stdout.split()[1]
    out = tmp_path / "report.md"
    assert main(["export", str(journal), "--out", str(out), "--sign-agent", fingerprint]) == 0
    assert fingerprint in capsys.readouterr().out
    check_everything(keygen, tmp_path, out, keys["ecdsa"], False)
    assert main(["export", str(journal), "--out", str(out), "--sign-agent", "SHA256:nope"]) == 2
    assert "no usable key matching 'SHA256:nope'" in capsys.readouterr().err


@pytest.mark.parametrize(("fmt", "key_type"), [("json", "ed25519"), ("html", "ecdsa"), ("json", "rsa")])
def test_json_and_html_exports(keygen: str, keys: dict[str, Path], journal: Path, tmp_path: Path, fmt: str,
                               key_type: str) -> None:
    out = tmp_path / f"report.{fmt}"
    assert main(["export", str(journal), "--format", fmt, "--out", str(out), "--sign", str(keys[key_type])]) == 0
    check_everything(keygen, tmp_path, out, keys[key_type], key_type == "rsa")


def test_journal_byte_changed(keygen: str, keys: dict[str, Path], journal: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    key = keys["ed25519"]
    # in the session journal: the export refuses it
    bad = tmp_path / "s" / "journal.jsonl"
    bad.parent.mkdir()
    data = bytearray(journal.read_bytes())
    data[data.index(b"migrate --all")] = ord("M")
    bad.write_bytes(bytes(data))
    assert main(["export", str(bad), "--format", "json", "--out", str(tmp_path / "x.json"), "--sign", str(key)]) == 1
    assert "hash mismatch" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
    # in the records of a JSON export, signed again afterwards: ssh-keygen is content, the chain is not
    out = tmp_path / "report.json"
    assert main(["export", str(journal), "--format", "json", "--out", str(out), "--sign", str(key)]) == 0
    data = bytearray(out.read_bytes())
    data[data.index(b"migrate --all", data.index(b'"records":['))] = ord("M")
    out.write_bytes(bytes(data))
    sig = Path(f"{out}.sig")
    sig.unlink()  # ssh-keygen asks before overwriting
    assert run([keygen, "-Y", "sign", "-q", "-f", str(key), "-n", REPORT_NAMESPACE, str(out)]).returncode == 0
    allowed = allowed_signers(tmp_path, key)
    assert keygen_verify(keygen, allowed, IDENTITY, REPORT_NAMESPACE, sig, out) == 0
    capsys.readouterr()
    assert runbook_verify(out, allowed, IDENTITY) == 1
    verdict = capsys.readouterr().out
    assert verdict.startswith("FAILED") and "altered" in verdict and verdict.count("\n") == 1


def test_signature_made_by_ssh_keygen_verifies_with_runbook(keygen: str, keys: dict[str, Path], journal: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    assert main(["export", str(journal), "--out", str(out)]) == 0
    for key_type in KEY_TYPES:
        res = run([keygen, "-Y", "sign", "-q", "-f", str(keys[key_type]), "-n", REPORT_NAMESPACE, str(out)])
        assert res.returncode == 0, res.stderr
        assert runbook_verify(out, allowed_signers(tmp_path, keys[key_type]), IDENTITY) == 0
        Path(f"{out}.sig").unlink()


def test_encrypted_key_from_environment(keygen: str, keys: dict[str, Path], journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    cmd = [sys.executable, "-m", "runbook.cli", "export", str(journal), "--out", str(out), "--sign",
           str(keys["encrypted"])]
    base = {k: v for k, v in os.environ.items() if k != "RUNBOOK_KEY_PASSPHRASE"}
    # no terminal (own session), no passphrase: a clear error, nothing written
    res = run(cmd, env=base, cwd=ROOT, start_new_session=True, stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and "RUNBOOK_KEY_PASSPHRASE" in res.stderr and "Traceback" not in res.stderr
    res = run(cmd, env={**base, "RUNBOOK_KEY_PASSPHRASE": "wrong"}, cwd=ROOT, start_new_session=True)
    assert res.returncode == 2 and "wrong passphrase" in res.stderr and not out.exists()
    res = run(cmd, env={**base, "RUNBOOK_KEY_PASSPHRASE": PASSPHRASE}, cwd=ROOT, start_new_session=True)
    assert res.returncode == 0, res.stderr
    allowed = allowed_signers(tmp_path, keys["encrypted"])
    assert keygen_verify(keygen, allowed, IDENTITY, REPORT_NAMESPACE, Path(f"{out}.sig"), out) == 0


def test_encrypted_key_passphrase_prompt_on_the_tty(keygen: str, keys: dict[str, Path], journal: Path,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_KEY_PASSPHRASE"}
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "runbook.cli", "export", str(journal), "--out", str(out),
                                   "--sign", str(keys["encrypted"])], env)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"passphrase" not in seen.lower():
            assert time.monotonic() < deadline, seen
            seen += os.read(fd, 1024)
        os.write(fd, PASSPHRASE.encode() + b"\n")
        while True:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert PASSPHRASE.encode() not in seen  # not echoed
    allowed = allowed_signers(tmp_path, keys["encrypted"])
    assert keygen_verify(keygen, allowed, IDENTITY, REPORT_NAMESPACE, Path(f"{out}.sig"), out) == 0


def test_checkpoint_signature_verifies_with_ssh_keygen(keygen: str, keys: dict[str, Path], tmp_path: Path) -> None:
    message = checkpoint_message("20261127T043216Z-3f9a", 17, "ab" * 32)
    data = tmp_path / "statement"
    data.write_bytes(message)
    for key_type in KEY_TYPES:
        sig = tmp_path / "statement.sig"
        sig.write_bytes(load_key_file(keys[key_type]).sign(message, CHECKPOINT_NAMESPACE))
        allowed = allowed_signers(tmp_path, keys[key_type])
        assert keygen_verify(keygen, allowed, IDENTITY, CHECKPOINT_NAMESPACE, sig, data) == 0
        assert keygen_verify(keygen, allowed, IDENTITY, REPORT_NAMESPACE, sig, data) != 0


@pytest.mark.parametrize("entry", [
    f"{IDENTITY}",
    f'{IDENTITY} namespaces="{REPORT_NAMESPACE}"',
    f'{IDENTITY} namespaces="file,git"',
    f'{IDENTITY} namespaces="runbook-*",valid-after="20200101"',
    f'{IDENTITY} valid-before="20200101"',
    "*@example",
    f"!{IDENTITY},*@example",
    "other@example,operator@*",
    "someone@else",
    f"{IDENTITY} cert-authority",
])
def test_allowed_signers_semantics_match_ssh_keygen(keygen: str, keys: dict[str, Path], tmp_path: Path,
                                                    entry: str) -> None:
    key = keys["ed25519"]
    data = tmp_path / "report.md"
    data.write_bytes(b"# report\n")
    sig = tmp_path / "report.md.sig"
    sig.write_bytes(load_key_file(key).sign(data.read_bytes(), REPORT_NAMESPACE))
    allowed = allowed_signers(tmp_path, key, entry)
    theirs = keygen_verify(keygen, allowed, IDENTITY, REPORT_NAMESPACE, sig, data) == 0
    ours = verify_signature(data.read_bytes(), sig.read_bytes(), REPORT_NAMESPACE, allowed_signers=allowed,
                            identity=IDENTITY)
    assert ours.ok is theirs, (entry, ours.message)


def test_console_script(keys: dict[str, Path], journal: Path, tmp_path: Path) -> None:
    exe = shutil.which("runbook", path=str(Path(sys.executable).parent)) or pytest.fail("runbook script missing")
    out = tmp_path / "report.json"
    res = run([exe, "export", str(journal), "--format", "json", "--out", str(out), "--sign", str(keys["ed25519"])])
    assert res.returncode == 0, res.stderr
    allowed = allowed_signers(tmp_path, keys["ed25519"])
    res = run([exe, "verify", str(out), "--allowed-signers", str(allowed), "--identity", IDENTITY])
    assert res.returncode == 0 and res.stdout.startswith("OK: ") and res.stdout.count("\n") == 1, res.stdout
    res = run([exe, "verify", str(out), "--allowed-signers", str(allowed), "--identity", "nobody@example"])
    assert res.returncode == 1 and res.stdout.startswith("FAILED: ")
