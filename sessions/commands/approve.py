"""``runbook approve REQUEST --sign KEY | --sign-agent [KEY] [-o FILE] [--yes]``: an approver signs.

Reads an approval request (``approval-TASK-ID.json``, written by the operator's ``runbook run``
or ``runbook exec`` into the session directory, or a copy of it), prints what it approves (the
session, the task, the runbook's SHA-256, each step's hosts and commands as they will run,
secrets masked), asks, and writes the SSHSIG signature (namespace ``runbook-approval``) of the
request's exact bytes to ``REQUEST.sig`` (or ``-o FILE``).  The same file as::

    ssh-keygen -Y sign -f KEY -n runbook-approval REQUEST

Without a terminal, ``--yes`` is needed (the plan is printed all the same).  A key that the
request names as one of the operator's own is refused here already (runbook refuses it too).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runbook.errors import UserError
from runbook.reading.files import read_input
from runbook.sanitize.terminal_text import visible
from sessions.team.approval import NAMESPACE, parse_request, signature_path


def _say(text: str) -> None:
    print(f"runbook: {text}", file=sys.stderr, flush=True)


def approve_cmd(args: argparse.Namespace) -> int:
    from sessions import signing
    from sessions.commands.exec_terminal import Prompter, stdin_is_tty

    path = args.request
    try:
        data = read_input(path, "approval request")
    except FileNotFoundError:
        raise UserError(f"{path}: no such approval request") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the approval request: {exc.strerror or exc}") from None
    request = parse_request(data, path)
    if args.sign:
        key: signing.SigningKey = signing.load_key_file(args.sign)
    elif args.sign_agent is not None:
        key = signing.agent_key(select=args.sign_agent or None)
    else:
        raise UserError("runbook approve: give --sign KEYFILE or --sign-agent [KEY]")
    for line in request.summary():
        print(visible(line), flush=True)
    print(f"  signing key: {key.label} ({key.source})", flush=True)
    if key.fingerprint in request.operator_keys:
        raise UserError(f"{key.label} is one of the operator's own keys (listed in the request): an approval "
                        "needs a second person; nothing signed", 1)
    if not args.yes:
        if not stdin_is_tty():
            raise UserError("no terminal to confirm on: read the plan above and give --yes to sign it; nothing signed")
        if not Prompter().confirm(f"Approve {request.task} as shown, signing with {key.label}?"):
            _say("not approved; nothing signed")
            return 1
    signature = key.sign(data, NAMESPACE)
    out = Path(args.out) if args.out else signature_path(path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(signature)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)  # the operator's runbook never sees half a signature
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UserError(f"{out}: cannot write the signature: {exc.strerror or exc} (give -o FILE)") from None
    _say(f"approval of {request.task} (request {request.request_id}) signed with {key.label}: {out}")
    if args.out:
        _say("give this file to the operator (runbook exec ... --approval FILE, or the TUI's approval dialog)")
    return 0
