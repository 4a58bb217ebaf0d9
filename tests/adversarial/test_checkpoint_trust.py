"""Signed checkpoints are trusted only when the signer is: forged checkpoints re-signed by a
foreign key, unsigned checkpoints and stripped checkpoints.

Attack: someone who can write the session directory rewrites a record, recomputes the
chain (it is not keyed) and re-signs every checkpoint (journal records and the
``checkpoints.sig.jsonl`` sidecar) with their own SSH key.  ``runbook journal verify
--allowed-signers FILE`` and ``runbook verify`` (a JSON export carrying those records,
even when the operator signed the export) must reject it; signatures are made with the
real ``ssh-keygen -Y sign``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.adversarial.session_kit import book, run, sessions  # noqa: F401
from tests.tools import require

NAMESPACE = "runbook-checkpoint"


def _keygen(path: Path) -> Path:
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True)
    return path


def _sign(key: Path, message: bytes, tmp: Path) -> str:
    msg = tmp / "msg"
    msg.write_bytes(message)
    sig = tmp / "msg.sig"
    sig.unlink(missing_ok=True)
    subprocess.run([require("ssh-keygen"), "-q", "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(msg)], check=True,
                   capture_output=True)
    return sig.read_text()


def _fingerprint(key: Path) -> str:
    out = subprocess.run([require("ssh-keygen"), "-l", "-f", str(key) + ".pub"], check=True, capture_output=True,
                         text=True).stdout
    return out.split()[1]


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    operator = _keygen(tmp_path / "operator")
    attacker = _keygen(tmp_path / "attacker")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("operator@example " + (tmp_path / "operator.pub").read_text())
    return {"operator": operator, "attacker": attacker, "allowed": allowed}


@pytest.fixture
def signed_session(book, sessions, keys) -> Path:
    r = run(["exec", book, "--task", "ADV-001", "--session-dir", sessions],
            env={"RUNBOOK_SIGNING_KEY": str(keys["operator"])})
    assert r.returncode == 0, r.stderr
    session = next(sessions.iterdir())
    kinds = [json.loads(line)["event"]["type"] for line in (session / "journal.jsonl").read_text().splitlines()]
    assert "checkpoint" in kinds and (session / "checkpoints.sig.jsonl").exists()
    return session


def forge(session: Path, key: Path | None, tmp: Path, *, strip: bool = False) -> None:
    """Rewrite the greeting's output, recompute the chain, and re-sign every checkpoint with
    ``key`` (None: leave them unsigned; ``strip``: remove them), sidecar included."""
    from sessions.journal.journal import GENESIS, canonical, record_hash

    journal = session / "journal.jsonl"
    records = [json.loads(line) for line in journal.read_bytes().splitlines()]
    sid = records[0]["event"]["session_id"]
    for rec in records:
        if rec["event"]["type"] == "output":
            rec["event"]["data"] = rec["event"]["data"].replace("hello", "HACKED")
    if strip:
        records = [r for r in records if r["event"]["type"] != "checkpoint"]
    prev, heads, side, out = GENESIS, {}, [], []
    for seq, rec in enumerate(records, start=1):
        event = rec["event"]
        if event["type"] == "checkpoint":
            event["head"] = heads[event["seq"]]
            message = f"runbook-checkpoint:{sid}:{event['seq']}:{event['head']}".encode()
            event["signature"] = _sign(key, message, tmp) if key else None
            event["key_fingerprint"] = _fingerprint(key) if key else None
            side.append({"session_id": sid, "seq": event["seq"], "head": event["head"],
                         "signature": event["signature"], "namespace": NAMESPACE,
                         "key_fingerprint": event["key_fingerprint"], "ts": rec["ts"]})
        rec["seq"], rec["prev"] = seq, prev
        rec["h"] = record_hash(seq, rec["ts"], prev, event)
        heads[seq] = prev = rec["h"]
        out.append(canonical(rec) + b"\n")
    journal.write_bytes(b"".join(out))
    sidecar = session / "checkpoints.sig.jsonl"
    if side and key:
        sidecar.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in side))
    else:
        sidecar.unlink(missing_ok=True)


def test_untouched_checkpoints_pass_with_the_allowed_signers(signed_session, keys):
    r = run(["journal", "verify", signed_session, "--allowed-signers", keys["allowed"]])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"all allowed by {keys['allowed']}" in r.stdout


def test_checkpoints_re_signed_by_a_foreign_key_are_rejected(signed_session, keys, tmp_path):
    forge(signed_session, keys["attacker"], tmp_path)
    trusting = run(["journal", "verify", signed_session])  # without a trust anchor the forgery holds together
    assert trusting.returncode == 0 and "signer not checked" in trusting.stdout, trusting.stdout
    r = run(["journal", "verify", signed_session, "--allowed-signers", keys["allowed"]])
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert "FAILED" in r.stdout and "not allowed" in r.stdout and _fingerprint(keys["attacker"]) in r.stdout, r.stdout


def test_unsigned_checkpoints_are_reported_as_unsigned(signed_session, keys, tmp_path):
    forge(signed_session, None, tmp_path)
    r = run(["journal", "verify", signed_session, "--allowed-signers", keys["allowed"]])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "is unsigned" in r.stdout, r.stdout


def test_stripped_checkpoints_fail_when_trust_is_asked_for(signed_session, keys, tmp_path):
    forge(signed_session, None, tmp_path, strip=True)
    r = run(["journal", "verify", signed_session, "--allowed-signers", keys["allowed"]])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no signed checkpoints" in r.stdout, r.stdout


def test_runbook_verify_rejects_an_export_whose_checkpoints_a_foreign_key_signed(signed_session, keys, tmp_path):
    out = tmp_path / "report.json"
    good = run(["export", signed_session, "--format", "json", "--out", out, "--sign", keys["operator"]])
    assert good.returncode == 0, good.stderr
    ok = run(["verify", out, "--allowed-signers", keys["allowed"]])
    assert ok.returncode == 0 and "signed checkpoints" in ok.stdout, ok.stdout

    forge(signed_session, keys["attacker"], tmp_path)
    # the operator, unaware, exports the forged journal and signs the export with their own key
    forged = run(["export", signed_session, "--format", "json", "--out", out, "--sign", keys["operator"]])
    assert forged.returncode == 0, forged.stderr
    keygen = subprocess.run([require("ssh-keygen"), "-Y", "verify", "-f", str(keys["allowed"]), "-I",
                             "operator@example", "-n", "runbook-report", "-s", str(out) + ".sig"],
                            stdin=out.open("rb"), capture_output=True)
    assert keygen.returncode == 0  # the export signature itself is good
    r = run(["verify", out, "--allowed-signers", keys["allowed"]])
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert r.stdout.startswith("FAILED") and "checkpoints FAILED" in r.stdout, r.stdout
    assert _fingerprint(keys["attacker"]) in r.stdout, r.stdout
