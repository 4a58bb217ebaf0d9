"""SSH signatures (OpenSSH ``SSHSIG``) for exported reports and journal checkpoints.

A signature made here verifies with stock OpenSSH::

    ssh-keygen -Y verify -f allowed_signers -I operator@example -n runbook-report \\
        -s report.md.sig < report.md

Namespaces: :data:`REPORT_NAMESPACE` (``runbook-report``) for exported reports,
:data:`CHECKPOINT_NAMESPACE` (``runbook-checkpoint``) for signed journal heads.  A
signature made for one namespace never verifies for the other.

Keys come from a private key file (:func:`load_key_file`; an encrypted key asks for its
passphrase on the terminal, or takes ``$RUNBOOK_KEY_PASSPHRASE``) or from a running
``ssh-agent`` (:func:`agent_key`, ``$SSH_AUTH_SOCK``).  File keys sign with
:func:`asyncssh.create_sshsig`.  Agent keys never leave the agent, so the ``SSHSIG``
blob is built here (PROTOCOL.sshsig) around a signature the agent makes; the agent is
spoken to synchronously over its socket, so signing works the same from the CLI and
from inside the engine's running event loop.  RSA keys sign with ``rsa-sha2-512``.

:func:`verify_signature` follows ``ssh-keygen -Y verify``: the namespace must match,
the signing key must be listed in ``allowed_signers`` for the identity (principal
patterns, ``namespaces=``, ``valid-after``/``valid-before`` options honoured), and RSA
signatures made with SHA-1 (``ssh-rsa``) are refused.  It needs no ``ssh-keygen``.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import os
import socket
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import asyncssh
from asyncssh.pattern import WildcardPatternList
from asyncssh.public_key import decode_ssh_public_key
from asyncssh.sshsig import SSHAllowedSignersEntry

from runbook.errors import UserError
from runbook.reading.files import read_input

REPORT_NAMESPACE = "runbook-report"
CHECKPOINT_NAMESPACE = "runbook-checkpoint"
PASSPHRASE_ENV = "RUNBOOK_KEY_PASSPHRASE"
HASH_NAME = "sha512"

_MAGIC = b"SSHSIG"
_VERSION = 1
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"

# ssh-agent protocol (draft-miller-ssh-agent)
_AGENT_FAILURE = 5
_AGENTC_REQUEST_IDENTITIES = 11
_AGENT_IDENTITIES_ANSWER = 12
_AGENTC_SIGN_REQUEST = 13
_AGENT_SIGN_RESPONSE = 14
_AGENT_RSA_SHA2_512 = 4
_AGENT_MAX_REPLY = 256 * 1024


class SigningError(UserError):
    """A key cannot be loaded or used for signing."""


class SignatureFormatError(ValueError):
    """Bytes that are not an armored (or raw) ``SSHSIG`` signature."""


# --- wire helpers ----------------------------------------------------------------


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise SignatureFormatError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def end(self) -> None:
        if self.pos != len(self.data):
            raise SignatureFormatError("trailing bytes")


def armor(blob: bytes) -> bytes:
    """Armor a raw ``SSHSIG`` blob the way ``ssh-keygen -Y sign`` does (70 columns)."""
    b64 = base64.b64encode(blob).decode("ascii")
    lines = [_BEGIN] + [b64[i : i + 70] for i in range(0, len(b64), 70)] + [_END]
    return ("\n".join(lines) + "\n").encode("ascii")


def signed_data(message: bytes, namespace: str, hash_name: str = HASH_NAME) -> bytes:
    """The bytes a key actually signs: PROTOCOL.sshsig's preamble over ``H(message)``."""
    if not namespace:
        raise ValueError("namespace must not be empty")
    digest = _HASHES[hash_name](message).digest()
    return _MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_name.encode()) + _string(digest)


def sshsig_blob(public_data: bytes, namespace: str, signature: bytes, hash_name: str = HASH_NAME) -> bytes:
    """Assemble a raw ``SSHSIG`` blob around an SSH signature (``string alg, string sig``)."""
    return (
        _MAGIC
        + struct.pack(">I", _VERSION)
        + _string(public_data)
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_name.encode())
        + _string(signature)
    )


# --- keys -----------------------------------------------------------------------


def key_label(key: asyncssh.SSHKey) -> str:
    """``ED25519 SHA256:...``, as ``ssh-keygen -l`` names a key."""
    alg = key.get_algorithm()
    kind = {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA", "ssh-ed448": "ED448"}.get(alg)
    if kind is None:
        kind = "ECDSA" if alg.startswith("ecdsa-") else alg
    return f"{kind} {key.get_fingerprint('sha256')}"


class SigningKey:
    """A key that can make ``SSHSIG`` signatures.  ``public_key`` is an ``SSHKey``."""

    public_key: asyncssh.SSHKey
    source: str

    @property
    def fingerprint(self) -> str:
        return self.public_key.get_fingerprint("sha256")

    @property
    def label(self) -> str:
        return key_label(self.public_key)

    def public_line(self, comment: str | None = None) -> str:
        """The OpenSSH public key line (``ssh-ed25519 AAAA... comment``)."""
        key = self.public_key
        line = key.export_public_key("openssh").decode("ascii").strip()
        if comment is not None:
            line = " ".join(line.split()[:2] + ([comment] if comment else []))
        return line

    def sign(self, message: bytes, namespace: str) -> bytes:
        """Return the armored ``SSHSIG`` signature of ``message`` in ``namespace``."""
        raise NotImplementedError


class FileSigningKey(SigningKey):
    """A private key read from a file."""

    def __init__(self, key: asyncssh.SSHKey, source: str) -> None:
        self._key = key
        self.public_key = key.convert_to_public()
        self.source = source

    def sign(self, message: bytes, namespace: str) -> bytes:
        return asyncssh.create_sshsig(self._key, message, namespace=namespace, hash_name=HASH_NAME)


def _passphrases(path: str, passphrase: str | None, prompt: bool) -> Iterator[str | None]:
    """Passphrases to try, in order; raises :class:`SigningError` when they run out."""
    if passphrase is not None:
        yield passphrase
        raise SigningError(f"{path}: wrong passphrase")
    yield None
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        yield env
        raise SigningError(f"{path}: wrong passphrase (from ${PASSPHRASE_ENV})")
    if not prompt:
        raise SigningError(f"{path}: key is encrypted; set ${PASSPHRASE_ENV}")
    try:
        with open("/dev/tty"):
            pass
    except OSError:
        raise SigningError(
            f"{path}: key is encrypted and there is no terminal to ask for its passphrase; set ${PASSPHRASE_ENV}"
        ) from None
    for _ in range(3):
        try:
            yield getpass.getpass(f"Enter passphrase for {path}: ")
        except (EOFError, OSError):
            raise SigningError(f"{path}: no passphrase given") from None
    raise SigningError(f"{path}: wrong passphrase (3 tries)")


def load_key_file(
    path: str | os.PathLike[str], passphrase: str | None = None, *, prompt: bool = True
) -> FileSigningKey:
    """Read a private key.  An encrypted key takes ``passphrase``, else
    ``$RUNBOOK_KEY_PASSPHRASE``, else asks on the terminal (three tries) when ``prompt``."""
    p = str(path)
    try:
        data = read_input(p, "private key")
    except FileNotFoundError:
        raise SigningError(f"{p}: no such key file") from None
    except IsADirectoryError:
        raise SigningError(f"{p}: is a directory, not a private key") from None
    except OSError as exc:
        raise SigningError(f"{p}: cannot read key: {exc.strerror or exc}") from None
    for pw in _passphrases(p, passphrase, prompt):
        try:
            return FileSigningKey(asyncssh.import_private_key(data, pw), f"file:{p}")
        except asyncssh.KeyEncryptionError as exc:  # wrong passphrase: try the next one
            if "passphrase" not in str(exc).lower():
                raise SigningError(f"{p}: cannot decrypt key: {exc}") from None
        except asyncssh.KeyImportError as exc:  # encrypted and no passphrase yet
            if "passphrase" not in str(exc).lower():
                public = data.lstrip().startswith((b"ssh-", b"ecdsa-", b"sk-"))
                why = " (it is a public key)" if public else f": {exc}"
                raise SigningError(f"{p}: not a private key{why}") from None
    raise AssertionError("unreachable")  # pragma: no cover


# --- ssh-agent ------------------------------------------------------------------


def _agent_call(sock_path: str, message: bytes, timeout: float) -> tuple[int, bytes]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(_string(message))
            header = _recv_exact(s, 4)
            (length,) = struct.unpack(">I", header)
            if not 1 <= length <= _AGENT_MAX_REPLY:
                raise SigningError(f"ssh-agent at {sock_path}: bad reply length {length}")
            body = _recv_exact(s, length)
    except SigningError:
        raise
    except (TimeoutError, OSError) as exc:
        raise SigningError(f"ssh-agent at {sock_path}: {getattr(exc, 'strerror', None) or exc}") from None
    return body[0], body[1:]


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("agent closed the connection")
        buf += chunk
    return buf


def _agent_socket(sock_path: str | None) -> str:
    path = sock_path or os.environ.get("SSH_AUTH_SOCK", "")
    if not path:
        raise SigningError("no ssh-agent: SSH_AUTH_SOCK is not set")
    return path


def agent_identities(sock_path: str | None = None, timeout: float = 10.0) -> list[tuple[bytes, str]]:
    """``(public key blob, comment)`` of every key the agent holds."""
    path = _agent_socket(sock_path)
    kind, payload = _agent_call(path, bytes([_AGENTC_REQUEST_IDENTITIES]), timeout)
    if kind != _AGENT_IDENTITIES_ANSWER:
        raise SigningError(f"ssh-agent at {path}: refused to list keys")
    try:
        r = _Reader(payload)
        out = [(r.string(), r.string().decode("utf-8", "replace")) for _ in range(r.uint32())]
    except SignatureFormatError:
        raise SigningError(f"ssh-agent at {path}: malformed key list") from None
    return out


class AgentSigningKey(SigningKey):
    """A key held by ``ssh-agent``; signing asks the agent."""

    def __init__(self, sock_path: str, blob: bytes, comment: str = "", timeout: float = 60.0) -> None:
        self.sock_path = sock_path
        self.blob = blob
        self.comment = comment
        self.timeout = timeout
        self.public_key = decode_ssh_public_key(blob)
        self.source = f"agent:{sock_path}"

    def sign(self, message: bytes, namespace: str) -> bytes:
        rsa = self.public_key.get_algorithm() == "ssh-rsa"
        flags = _AGENT_RSA_SHA2_512 if rsa else 0
        request = (
            bytes([_AGENTC_SIGN_REQUEST])
            + _string(self.blob)
            + _string(signed_data(message, namespace))
            + struct.pack(">I", flags)
        )
        kind, payload = _agent_call(self.sock_path, request, self.timeout)
        if kind != _AGENT_SIGN_RESPONSE:
            raise SigningError(f"ssh-agent at {self.sock_path}: refused to sign with {self.label}")
        try:
            r = _Reader(payload)
            signature = r.string()
            alg = _Reader(signature).string().decode("ascii", "replace")
        except SignatureFormatError:
            raise SigningError(f"ssh-agent at {self.sock_path}: malformed signature") from None
        if rsa and alg != "rsa-sha2-512":
            raise SigningError(f"ssh-agent at {self.sock_path}: signed with {alg}, not rsa-sha2-512")
        return armor(sshsig_blob(self.blob, namespace, signature))


def agent_key(sock_path: str | None = None, select: str | None = None) -> AgentSigningKey:
    """The first plain (non-certificate) key in the agent, or the one whose fingerprint
    (``SHA256:...``) or comment equals ``select``."""
    path = _agent_socket(sock_path)
    ids = agent_identities(path)
    for blob, comment in ids:
        try:
            key = AgentSigningKey(path, blob, comment)
        except (asyncssh.KeyImportError, ValueError):
            continue  # certificates and unknown key types
        if select is None or select in (key.fingerprint, comment):
            return key
    if not ids:
        raise SigningError(f"ssh-agent at {path} holds no keys (ssh-add one)")
    raise SigningError(f"ssh-agent at {path}: no usable key" + (f" matching {select!r}" if select else ""))


# --- parsing and verifying ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SSHSignature:
    """A decoded ``SSHSIG`` blob."""

    public_key: asyncssh.SSHKey
    public_data: bytes
    namespace: str
    hash_name: str
    signature: bytes  # SSH signature: string algorithm, string signature bytes
    sig_algorithm: str


def dearmor(data: bytes) -> bytes:
    text = data.decode("ascii", "replace").strip()
    lines = [ln.strip() for ln in text.splitlines()]
    if not lines or lines[0] != _BEGIN:
        raise SignatureFormatError(f"does not start with {_BEGIN}")
    if lines[-1] != _END:
        raise SignatureFormatError(f"does not end with {_END}")
    try:
        return binascii.a2b_base64("".join(lines[1:-1]).encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError("bad base64") from None


def parse_signature(data: bytes) -> SSHSignature:
    """Decode an armored (or raw) ``SSHSIG``; raise :class:`SignatureFormatError`."""
    blob = dearmor(data) if data.lstrip()[:1] == b"-" else data
    r = _Reader(blob)
    if r.take(6) != _MAGIC:
        raise SignatureFormatError("not an SSHSIG blob")
    version = r.uint32()
    if version != _VERSION:
        raise SignatureFormatError(f"unsupported SSHSIG version {version}")
    public_data = r.string()
    try:
        namespace = r.string().decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureFormatError("namespace is not UTF-8") from None
    r.string()  # reserved
    hash_name = r.string().decode("ascii", "replace")
    signature = r.string()
    r.end()
    try:
        key = decode_ssh_public_key(public_data)
    except (asyncssh.KeyImportError, ValueError):
        raise SignatureFormatError("unsupported or certificate signing key") from None
    try:
        sig_alg = _Reader(signature).string().decode("ascii", "replace")
    except SignatureFormatError:
        raise SignatureFormatError("malformed signature field") from None
    return SSHSignature(key, public_data, namespace, hash_name, signature, sig_alg)


@dataclass(frozen=True, slots=True)
class AllowedSigner:
    line: int
    text: str
    entry: SSHAllowedSignersEntry


def read_allowed_signers(path: str | os.PathLike[str]) -> tuple[list[AllowedSigner], list[str]]:
    """Entries of an OpenSSH ``allowed_signers`` file and problems (``file:line: ...``)."""
    p = str(path)
    try:
        text = read_input(p, "allowed signers file").decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{p}: no such allowed signers file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read allowed signers: {getattr(exc, 'strerror', None) or exc}") from None
    entries, problems = [], []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entries.append(AllowedSigner(n, line, SSHAllowedSignersEntry(line)))
        except (asyncssh.KeyImportError, ValueError) as exc:
            problems.append(f"{p}:{n}: ignored: {exc}")
    return entries, problems


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    ok: bool
    message: str
    key_label: str = ""
    principals: tuple[str, ...] = ()
    namespace: str = ""


def _keys_equal(a: asyncssh.SSHKey, b: asyncssh.SSHKey) -> bool:
    return a.public_data == b.public_data


def verify_signature(
    message: bytes,
    signature: bytes,
    namespace: str,
    *,
    allowed_signers: str | os.PathLike[str] | None = None,
    identity: str | None = None,
    public_keys: Iterable[asyncssh.SSHKey] | None = None,
    trust_any: bool = False,
) -> SignatureCheck:
    """Check an ``SSHSIG`` over ``message`` the way ``ssh-keygen -Y verify`` does.

    The signer must be trusted through ``allowed_signers`` (an OpenSSH allowed signers
    file: with ``identity`` the entry's principals must match it, else every matching
    principal is reported) or through ``public_keys``.  ``trust_any`` accepts any key
    whose signature is good (the caller reports the key; used for checkpoints when no
    trusted keys are given).
    """
    try:
        sig = parse_signature(signature)
    except SignatureFormatError as exc:
        return SignatureCheck(False, f"not a valid SSH signature ({exc})")
    label = key_label(sig.public_key)
    if sig.namespace != namespace:
        return SignatureCheck(
            False, f"signature namespace is {sig.namespace!r}, expected {namespace!r}", label, namespace=sig.namespace
        )
    if sig.hash_name not in _HASHES:
        return SignatureCheck(False, f"unsupported signature hash {sig.hash_name!r}", label, namespace=namespace)
    if sig.public_key.get_algorithm() == "ssh-rsa" and sig.sig_algorithm not in ("rsa-sha2-256", "rsa-sha2-512"):
        return SignatureCheck(False, f"RSA signature uses {sig.sig_algorithm} (SHA-1), refused", label,
                              namespace=namespace)
    if not sig.public_key.verify(signed_data(message, namespace, sig.hash_name), sig.signature):
        return SignatureCheck(False, f"BAD signature by {label}: the file was changed after signing", label,
                              namespace=namespace)
    if trust_any and public_keys is None and allowed_signers is None:
        return SignatureCheck(True, f"good signature by {label} (signer not checked)", label, namespace=namespace)
    if public_keys is not None:
        if any(_keys_equal(sig.public_key, k) for k in public_keys):
            return SignatureCheck(True, f"good signature by {label}", label, namespace=namespace)
        return SignatureCheck(False, f"signature by {label}, a key that is not trusted", label, namespace=namespace)
    if allowed_signers is None:
        return SignatureCheck(False, f"signature by {label} made, but no allowed signers to trust it", label,
                              namespace=namespace)
    entries, problems = read_allowed_signers(allowed_signers)
    same_key = [e for e in entries
                if _keys_equal(e.entry.key, sig.public_key) and "cert-authority" not in e.entry.options]
    if identity is not None:
        for e in same_key:
            if e.entry.match_options(identity, namespace):
                return SignatureCheck(True, f"good signature for {identity} with {label}", label, (identity,),
                                      namespace)
        why = "not listed" if not same_key else f"not allowed for identity {identity!r} in namespace {namespace!r}"
        extra = f" ({'; '.join(problems)})" if problems else ""
        return SignatureCheck(False, f"signature by {label}, {why} in {allowed_signers}{extra}", label,
                              namespace=namespace)
    principals: list[str] = []
    for e in same_key:
        pats = e.text.split(None, 1)[0]
        if _namespace_ok(e.entry, namespace):
            principals.append(pats)
    if principals:
        return SignatureCheck(True, f"good signature for {', '.join(principals)} with {label}", label,
                              tuple(principals), namespace)
    extra = f" ({'; '.join(problems)})" if problems else ""
    return SignatureCheck(False, f"signature by {label}, not allowed in {allowed_signers} for namespace "
                          f"{namespace!r}{extra}", label, namespace=namespace)


def _namespace_ok(entry: SSHAllowedSignersEntry, namespace: str) -> bool:
    """Options of an entry other than the principal (namespaces, validity) allow it."""

    # asyncssh's parser stores a WildcardPatternList for namespaces and a time for the validity options
    ns = cast("WildcardPatternList | None", entry.options.get("namespaces"))
    if ns is not None and not ns.matches(namespace):
        return False
    now = time.time()
    after = cast("float | None", entry.options.get("valid-after"))
    before = cast("float | None", entry.options.get("valid-before"))
    return (after is None or now >= after) and (before is None or now < before)


def load_public_keys(items: Sequence[object]) -> list[asyncssh.SSHKey]:
    """Public keys from ``SSHKey`` or :class:`SigningKey` objects, OpenSSH public key
    lines, or paths of ``.pub`` files."""
    keys: list[asyncssh.SSHKey] = []
    for item in items:
        if isinstance(item, asyncssh.SSHKey):
            keys.append(item)
            continue
        if isinstance(item, SigningKey):
            keys.append(item.public_key)
            continue
        text = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
        try:
            if text.startswith(("ssh-", "ecdsa-", "sk-")):
                keys.append(asyncssh.import_public_key(text))
            else:
                keys.extend(asyncssh.read_public_key_list(text))
        except (OSError, asyncssh.KeyImportError, ValueError) as exc:
            raise UserError(f"{text[:60]}: cannot read public key: {getattr(exc, 'strerror', None) or exc}") from None
    return keys
