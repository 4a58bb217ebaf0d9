"""Signed checkpoints: the journal head, signed every few minutes.

The hash chain shows that records were changed, removed or reordered, but not that the
journal was cut short: drop the last records and what is left is a valid chain.  A
signed checkpoint states "record ``seq`` of session ``S`` has hash ``head``", signed in
namespace ``runbook-checkpoint`` over::

    runbook-checkpoint:<session_id>:<seq>:<head>

Each checkpoint is written twice: first to ``<session dir>/checkpoints.sig.jsonl``
(append-only, fsynced, one JSON object per line), then as a ``Checkpoint`` event in the
journal.  :func:`verify_checkpoints` compares the two: a sidecar entry for seq N when
the journal has fewer than N records (or another hash at N) means the journal was cut
short after that checkpoint; a journal checkpoint missing from the sidecar means the
sidecar was cut.  (Cutting both consistently is only caught by a copy kept elsewhere,
e.g. a signed export.)

Usage (engine or TUI, after records are appended)::

    cp = Checkpointer.from_env(session)          # $RUNBOOK_SIGNING_KEY, None when unset
    ...
    if cp: cp.maybe_checkpoint()                 # signs when every_s has passed
    ...
    if cp: cp.checkpoint()                       # e.g. right before closing
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sessions.journal.events import Checkpoint, Event, SessionOpened
from sessions.journal.format import Record, TamperedJournal
from sessions.journal.journal import Journal, read_records, utc_now
from sessions.journal.session_dir import open_nofollow
from sessions.signing import CHECKPOINT_NAMESPACE, SigningKey, load_key_file, load_public_keys, verify_signature

SIDECAR_NAME = "checkpoints.sig.jsonl"
KEY_ENV = "RUNBOOK_SIGNING_KEY"
DEFAULT_EVERY_S = 300.0


def checkpoint_message(session_id: str, seq: int, head: str) -> bytes:
    return f"runbook-checkpoint:{session_id}:{seq}:{head}".encode()


def _session_id_from(path: Path) -> str:
    for rec in read_records(path):
        if isinstance(rec.event, SessionOpened):
            return rec.event.session_id
        break
    return path.parent.name


class RecordingSession(Protocol):
    """What a checkpointer needs of a session: its id, its journal, and ``record`` (which folds
    the checkpoint event into the session's state as it appends it)."""

    @property
    def id(self) -> str: ...

    @property
    def journal(self) -> Journal: ...

    def record(self, event: Event) -> Record: ...


class Checkpointer:
    """Signs the journal head of ``target`` (a ``Session`` or a ``Journal``) with ``key``
    (a :class:`~sessions.signing.SigningKey` or a private key path) at most every
    ``every_s`` seconds.  With a ``Session`` the event goes through ``session.record``."""

    def __init__(
        self,
        target: Journal | RecordingSession,
        key: SigningKey | str | os.PathLike[str],
        every_s: float = DEFAULT_EVERY_S,
        *,
        session_id: str | None = None,
        sidecar: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session: RecordingSession | None
        if isinstance(target, Journal):
            self._session, self._journal = None, target
        else:
            self._session, self._journal = target, target.journal
        self.key = key if isinstance(key, SigningKey) else load_key_file(key, prompt=False)
        self.every_s = float(every_s)
        path = Path(self._journal.path)
        self.session_id = session_id or (self._session.id if self._session is not None else "") or _session_id_from(path)
        self.sidecar = Path(sidecar) if sidecar is not None else path.parent / SIDECAR_NAME
        self._clock = clock
        self._last_time = clock()
        self._last_seq = 0  # seq of the last Checkpoint record written
        self._busy = False

    @classmethod
    def from_env(cls, target: Journal | RecordingSession, every_s: float = DEFAULT_EVERY_S, **kw: Any) -> Checkpointer | None:
        """A checkpointer when ``$RUNBOOK_SIGNING_KEY`` names a key file, else None.
        An encrypted key needs ``$RUNBOOK_KEY_PASSPHRASE`` (never prompts)."""
        path = os.environ.get(KEY_ENV)
        return cls(target, path, every_s, **kw) if path else None

    def due(self) -> bool:
        return self._clock() - self._last_time >= self.every_s and self._journal.count > self._last_seq

    def maybe_checkpoint(self) -> Record | None:
        """Write a checkpoint when ``every_s`` has passed and the journal grew; else None."""
        return self.checkpoint() if self.due() else None

    def checkpoint(self) -> Record | None:
        """Sign and record the current head now (None when there is nothing new)."""
        if self._busy or self._journal.count == 0 or self._journal.count == self._last_seq:
            return None
        self._busy = True
        try:
            self._journal.sync()  # the head must be durable before it is signed
            seq, head = self._journal.count, self._journal.head
            sig = self.key.sign(checkpoint_message(self.session_id, seq, head), CHECKPOINT_NAMESPACE).decode("ascii")
            self._append_sidecar({
                "session_id": self.session_id, "seq": seq, "head": head, "signature": sig,
                "namespace": CHECKPOINT_NAMESPACE, "key_fingerprint": self.key.fingerprint,
                "public_key": self.key.public_line(""), "ts": utc_now(),
            })
            event = Checkpoint(head=head, seq=seq, signature=sig, namespace=CHECKPOINT_NAMESPACE,
                               key_fingerprint=self.key.fingerprint)
            rec: Record = self._session.record(event) if self._session is not None else self._journal.append(event)
            self._last_seq, self._last_time = rec.seq, self._clock()
            return rec
        finally:
            self._busy = False

    def _append_sidecar(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
        fd = open_nofollow(self.sidecar, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600, "checkpoint sidecar")
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


# --- verification -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    head: str
    signature: str | None
    fingerprint: str | None
    where: str  # "journal record 17" / "checkpoints.sig.jsonl:3"


def _read_sidecar(path: Path) -> tuple[list[_Entry], str | None]:
    entries: list[_Entry] = []
    from runbook.reading.files import read_input

    try:
        data = read_input(path, "checkpoint sidecar")
    except FileNotFoundError:
        return entries, None
    lines = data.split(b"\n")
    torn = lines.pop() if lines else b""  # after the last newline: empty, or a torn write
    for n, raw in enumerate(lines, start=1):
        try:
            obj = json.loads(raw)
            entries.append(_Entry(int(obj["seq"]), str(obj["head"]), obj.get("signature"), obj.get("key_fingerprint"),
                                  f"{path.name}:{n}"))
        except (ValueError, KeyError, TypeError):
            return entries, f"{path}:{n}: not a checkpoint entry"
    del torn
    return entries, None


def _records(source: Any) -> tuple[list[tuple[int, str, Any]], Path | None]:
    """``[(seq, h, event or event JSON)]`` from a journal path or an iterable of records."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return [(r.seq, r.h, r.event) for r in read_records(path)], path
    out = []
    for r in source:
        if isinstance(r, dict):
            out.append((r["seq"], r["h"], r["event"]))
        else:
            out.append((r.seq, r.h, r.event))
    return out, None


def _field(event: Event | dict[str, Any], name: str) -> Any:
    return event.get(name) if isinstance(event, dict) else getattr(event, name, None)


def _kind(event: Event | dict[str, Any]) -> str:
    return event.get("type", "") if isinstance(event, dict) else getattr(event, "TYPE", "")


@dataclass
class _EntryCheck:
    """Checks one checkpoint entry against the journal's record hashes and its signature."""

    heads: dict[int, str]
    session_id: str
    trusted: Any
    allowed_signers: str | os.PathLike[str] | None
    signers: set[str] = field(default_factory=set)  # key labels that signed, as checked

    @property
    def strict(self) -> bool:
        return self.allowed_signers is not None

    def problem(self, e: _Entry) -> str | None:
        """Why ``e`` does not hold; None when it does (or names a record checked elsewhere)."""
        if e.seq < 1:
            return f"checkpoint ({e.where}) names seq {e.seq}"
        if e.seq not in self.heads:
            return None  # compared by the caller (journal cut short)
        if self.heads[e.seq] != e.head:
            return f"journal record seq {e.seq} differs from the signed checkpoint ({e.where})"
        if e.signature is None:
            return f"checkpoint seq {e.seq} ({e.where}) is unsigned: it proves nothing" if self.strict else None
        if type(e.signature) is not str:
            return f"checkpoint seq {e.seq} ({e.where}): the signature is not text"
        res = verify_signature(checkpoint_message(self.session_id, e.seq, e.head),
                               e.signature.encode("ascii", "replace"), CHECKPOINT_NAMESPACE, public_keys=self.trusted,
                               allowed_signers=self.allowed_signers,
                               trust_any=self.trusted is None and not self.strict)
        if not res.ok:
            return f"checkpoint seq {e.seq} ({e.where}): {res.message}"
        self.signers.add(res.key_label)
        if e.fingerprint and res.key_label and not res.key_label.endswith(e.fingerprint):
            return f"checkpoint seq {e.seq} ({e.where}): key fingerprint does not match the signature"
        return None


def _opened_session_id(recs: list[tuple[int, str, Any]]) -> str:
    """The session id the journal's first record (``session_opened``) names; "" without one."""
    first = recs[0][2] if recs else None
    if first is None or _kind(first) != "session_opened":
        return ""
    return str(_field(first, "session_id") or "")


def _journal_checkpoints(recs: list[tuple[int, str, Any]]) -> list[_Entry] | str:
    """The ``checkpoint`` events of the journal as entries, or why one of them is impossible."""
    found: list[_Entry] = []
    for seq, _h, event in recs:
        if _kind(event) == "checkpoint":
            e = _Entry(int(_field(event, "seq")), str(_field(event, "head")), _field(event, "signature"),
                       _field(event, "key_fingerprint"), f"journal record {seq}")
            if e.seq >= seq:
                return f"checkpoint at record {seq} names a later record ({e.seq})"
            found.append(e)
    return found


def _sidecar_gap(sidecar: str | os.PathLike[str], journal_cps: list[_Entry], side: list[_Entry]) -> str | None:
    """A signed checkpoint of the journal that the sidecar lacks (the sidecar was cut or replaced)."""
    side_seqs = {(e.seq, e.head) for e in side}
    for e in journal_cps:
        if e.signature and (e.seq, e.head) not in side_seqs:
            return (f"checkpoint sidecar {Path(sidecar).name} lacks the signed checkpoint seq {e.seq} "
                    "(sidecar cut or replaced)")
    return None


def verify_checkpoints(
    records: Any,
    public_keys: Iterable[Any] | None = None,
    *,
    sidecar: str | os.PathLike[str] | None = None,
    session_id: str | None = None,
    allowed_signers: str | os.PathLike[str] | None = None,
) -> tuple[bool, str]:
    """Check the signed checkpoints of a journal; ``(ok, one-line message)``.

    ``records``: a journal path (the sidecar beside it is used) or the records
    (``Record`` objects or journal-line JSON objects; pass ``sidecar`` then).
    ``public_keys``: trusted keys (``SSHKey``, OpenSSH lines or ``.pub`` paths).
    ``allowed_signers``: an OpenSSH allowed signers file; every checkpoint must then be
    signed by a key it allows in namespace ``runbook-checkpoint`` (an unsigned checkpoint,
    or none at all, fails: nothing would pin the journal).  With neither, any key is
    accepted and the message names the keys that signed.
    """
    try:
        recs, path = _records(records)
    except TamperedJournal as exc:
        return False, str(exc)
    except OSError as exc:
        return False, f"{records}: {exc.strerror or exc}"
    if sidecar is None and path is not None:
        sidecar = path.parent / SIDECAR_NAME
    count = len(recs)
    trusted = load_public_keys(list(public_keys)) if public_keys is not None else None
    checker = _EntryCheck({seq: h for seq, h, _ in recs},
                          (_opened_session_id(recs) if session_id is None else session_id) or "",
                          trusted, allowed_signers)
    journal_cps = _journal_checkpoints(recs)
    if isinstance(journal_cps, str):
        return False, journal_cps
    side: list[_Entry] = []
    if sidecar is not None:
        side, problem = _read_sidecar(Path(sidecar))
        if problem:
            return False, problem
    for e in journal_cps + side:
        if e.seq > count:
            return False, (f"journal cut short after signed checkpoint seq {e.seq} "
                           f"(journal has {count} records; {e.where})")
        why = checker.problem(e)
        if why:
            return False, why
    gap = _sidecar_gap(sidecar, journal_cps, side) if sidecar is not None else None
    if gap:
        return False, gap
    signed = [e for e in journal_cps + side if e.signature]
    if not journal_cps and not side:
        if checker.strict:
            return False, (f"no signed checkpoints to check against {allowed_signers}: nothing pins this "
                           "journal's content (anyone who can write it can rewrite it with a valid chain)")
        return True, "no checkpoints"
    last = max(e.seq for e in journal_cps + side)
    who = ", ".join(sorted(s for s in checker.signers if s))
    trust = ("" if trusted is not None else f", all allowed by {allowed_signers}" if checker.strict
             else " (signer not checked against trusted keys: pass --allowed-signers FILE)")
    return True, (f"checkpoints ok: {len(journal_cps)} in the journal, {len(side)} in the sidecar, "
                  f"last at seq {last}" + (f", signed by {who}{trust}" if signed else ", unsigned"))
