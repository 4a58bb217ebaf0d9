"""``runbook export`` and ``runbook verify``.

``runbook export SESSION [--format md|json|html] [--out FILE] [--sign KEYFILE | --sign-agent [KEY]]
[--lines N]`` writes the report (default ``<session-id>.<format>`` in the current
directory) and, when signing, ``FILE.sig`` in namespace ``runbook-report``.

``runbook verify FILE [--signature FILE.sig] --allowed-signers F [--identity I]`` prints
one verdict line and exits 0 (verified) or 1 (not).  A JSON export gets its hash chain
recomputed as well; a Markdown or HTML report can only have its signature checked.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runbook.errors import UserError
from runbook.sanitize.terminal_text import visible

if TYPE_CHECKING:
    from sessions.report.build import JournalCopy
    from sessions.report.model import Report
    from sessions.signing import AgentSigningKey, FileSigningKey

JOURNAL_NAME = "journal.jsonl"


def _default_root(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("RUNBOOK_SESSION_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "runbook" / "sessions"


def resolve_journal(ref: str, session_dir: str | None = None) -> Path:
    """A journal path from a journal file, a session directory, a session id or a unique
    id prefix (through ``sessions.store.find_session`` when it exists)."""
    p = Path(ref)
    if p.is_file():
        return p
    if p.is_dir():
        if (p / JOURNAL_NAME).is_file():
            return p / JOURNAL_NAME
        raise UserError(f"{ref}: directory holds no {JOURNAL_NAME}")
    try:
        from sessions import store  # written concurrently; fall back when absent
    except ImportError:
        store = None  # type: ignore[assignment]
    if store is not None and hasattr(store, "find_session"):
        root = store.session_root(session_dir) if hasattr(store, "session_root") else _default_root(session_dir)
        found = Path(store.find_session(ref, root))
        return found / JOURNAL_NAME if found.is_dir() else found
    root = _default_root(session_dir)
    if (root / ref / JOURNAL_NAME).is_file():
        return root / ref / JOURNAL_NAME
    matches = sorted(Path(d) for d in glob.glob(os.path.join(glob.escape(str(root)), glob.escape(ref) + "*"))
                     if (Path(d) / JOURNAL_NAME).is_file())
    if len(matches) == 1:
        return matches[0] / JOURNAL_NAME
    if len(matches) > 1:
        raise UserError(f"{ref}: ambiguous, matches " + ", ".join(m.name for m in matches[:5]))
    raise UserError(f"{ref}: no such session in {root} (nor a journal file)")


def _write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename), mode 0600.

    Never over a session's own files (``--out SESSION/journal.jsonl``)."""
    from sessions.store import refuse_session_file

    refuse_session_file(path)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise UserError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _signer(args: argparse.Namespace) -> FileSigningKey | AgentSigningKey | None:
    from sessions import signing

    if getattr(args, "sign", None):
        return signing.load_key_file(args.sign)
    select = getattr(args, "sign_agent", None)
    if select is not None:
        return signing.agent_key(select=select or None)
    return None


def render(report: Report, journal: JournalCopy, fmt: str, lines: int) -> bytes:
    if fmt == "json":
        from sessions.report.as_json import render_json

        return render_json(report, journal)
    if fmt == "html":
        from sessions.report.as_html import render_html

        return render_html(report, lines=lines).encode("utf-8")
    from sessions.report.as_markdown import render_md

    return render_md(report, lines=lines).encode("utf-8")


def export_cmd(args: argparse.Namespace) -> int:
    from sessions.report.build import build_report, read_journal
    from sessions.signing import REPORT_NAMESPACE

    fmt = getattr(args, "format", "md") or "md"
    lines = getattr(args, "lines", 200)
    if lines is None or lines < 0:
        raise UserError("--lines must be 0 or more")
    journal_path = resolve_journal(args.session, getattr(args, "session_dir", None))
    signer = _signer(args)  # before the work: a wrong passphrase fails fast
    journal = read_journal(journal_path)
    report = build_report(journal)
    data = render(report, journal, fmt, lines)
    out = args.out or f"{re.sub(r'[^A-Za-z0-9._-]', '_', report.session_id or 'session')}.{fmt}"
    if out != "-" and signer is not None:
        from sessions.store import refuse_session_file

        refuse_session_file(out + ".sig", "the signature")
    if out == "-":
        if signer is not None:
            raise UserError("--out - (stdout) cannot be signed; name a file")
        if sys.stdout.isatty():  # a report read on the terminal: shown, never obeyed (runbook.sanitize.terminal_text)
            sys.stdout.write(visible(data.decode("utf-8", "backslashreplace")))
        else:  # a pipe or a file: the report's exact bytes
            sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        _write(out, data)
    for w in report.warnings:
        print(f"runbook: warning: {w}", file=sys.stderr)
    if out != "-":
        print(f"wrote {out} ({len(data)} bytes, {len(report.deviations)} deviations, "
              f"journal head {report.journal_head[:16]}, {report.record_count} records)")
    if signer is not None:
        sig = signer.sign(data, REPORT_NAMESPACE)
        _write(out + ".sig", sig)
        print(f"signed {out}.sig with {signer.label} (namespace {REPORT_NAMESPACE})")
    return 0


def verify_report(
    path: str, signature: str | None, allowed_signers: str | None, identity: str | None
) -> tuple[bool, str]:
    """``(ok, verdict)`` for an exported report and its signature."""
    from runbook.reading.files import read_input
    from sessions.report.as_json import FORMAT, looks_like_export, verify_chain
    from sessions.signing import REPORT_NAMESPACE, verify_signature

    try:
        data = read_input(path, "report")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    sig_path = signature or path + ".sig"
    try:
        sig = read_input(sig_path, "signature")
    except FileNotFoundError:
        sig = None
    except OSError as exc:
        raise UserError(f"{sig_path}: cannot read: {exc.strerror or exc}") from None
    if sig is not None and not allowed_signers:
        raise UserError("--allowed-signers FILE is needed to check the signature (OpenSSH allowed_signers format)")

    parts: list[str] = []
    ok = True
    if looks_like_export(data):
        chain = verify_chain(data)
        ok = chain.ok
        parts.append(chain.message)
        if chain.ok and allowed_signers:
            cp_ok, cp_message = _export_checkpoints(data, allowed_signers)
            ok = ok and cp_ok
            if cp_message:
                parts.append(cp_message)
        if chain.ok and b'"type":"approval_granted"' in data:  # four-eyes approvals: each signature again
            ap_ok, ap_message = _export_approvals(data)
            ok = ok and ap_ok
            parts.append(ap_message)
    else:
        chain = None
    if sig is None:
        ok = False
        parts.append(f"no signature ({sig_path} not found)")
    else:
        check = verify_signature(data, sig, REPORT_NAMESPACE, allowed_signers=allowed_signers, identity=identity)
        ok = ok and check.ok
        parts.append(check.message + (f" (namespace {REPORT_NAMESPACE})" if check.ok else ""))
    if chain is None and (path.endswith(".json") or data.lstrip()[:1] in (b"{", b"[")):
        parts.append(f'hash chain not checked: not a runbook JSON export (no "format": "{FORMAT}" at its start)')
    elif chain is None:
        parts.append("hash chain not checked: a Markdown/HTML report does not carry the journal records "
                     "(verify the JSON export for that)")
    return ok, f"{'OK' if ok else 'FAILED'}: {path}: " + "; ".join(parts)


def _export_approvals(data: bytes) -> tuple[bool, str]:
    """Every approval among a JSON export's records, checked again with ``ssh-keygen`` against
    the approvers file journaled before it."""
    from types import SimpleNamespace

    from sessions.journal.format import decode_event
    from sessions.report.as_json import export_records
    from sessions.team.approval import verify_journaled

    kinds = ("approvers_set", "approval_requested", "approval_granted")
    try:
        records = [SimpleNamespace(seq=r.get("seq"), event=decode_event(r["event"])) for r in export_records(data)
                   if type(r.get("event")) is dict and r["event"].get("type") in kinds]
    except (TypeError, ValueError) as exc:
        return False, f"approvals: a record does not decode ({exc})"
    ok, message = verify_journaled(records)
    return ok, f"approvals: {message}" if ok else f"approval at {message}"


def _export_checkpoints(data: bytes, allowed_signers: str) -> tuple[bool, str]:
    """Every checkpoint among a JSON export's records must be signed by a key that
    ``allowed_signers`` allows in namespace ``runbook-checkpoint`` ('' when there are none)."""
    from sessions.journal.checkpoints import verify_checkpoints
    from sessions.report.as_json import export_records

    records = export_records(data)
    if not any(type(r.get("event")) is dict and r["event"].get("type") == "checkpoint" for r in records):
        return True, ""
    ok, message = verify_checkpoints(records, allowed_signers=allowed_signers)
    return ok, ("signed checkpoints: " if ok else "checkpoints FAILED: ") + message


def verify_cmd(args: argparse.Namespace) -> int:
    ok, verdict = verify_report(args.file, getattr(args, "signature", None), getattr(args, "allowed_signers", None),
                                getattr(args, "identity", None))
    print(verdict)
    return 0 if ok else 1
