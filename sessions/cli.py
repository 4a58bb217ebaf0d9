"""The session layer's commands: ``sessions``, ``journal``, ``exec``, ``export`` and ``verify``.

Registered through the ``runbook.commands`` entry point (``pyproject.toml``); each names its
handler as ``"module:function"``, imported only when the command runs.
"""

from __future__ import annotations

from runbook.cli import CommandAdder, add_approvers, add_format, add_mirror, add_notify, add_session_dir


def register(cmd: CommandAdder) -> None:
    # --- sessions ------------------------------------------------------------
    p = cmd("sessions", "sessions.commands.journal:sessions_cmd", "list sessions")
    add_session_dir(p)
    add_format(p)

    p = cmd("journal", "sessions.commands.journal:journal_cmd", "inspect a session journal")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION")
    jsub.required = True
    jv = jsub.add_parser("verify", help="check the hash chain (exit 0 or 1)")
    jv.add_argument("session", metavar="SESSION", help="session id or journal path")
    jv.add_argument("--allowed-signers", metavar="FILE",
                    help="OpenSSH allowed_signers: every signed checkpoint must be signed by a key it allows "
                         "(namespace runbook-checkpoint); an unsigned or foreign checkpoint fails")
    add_session_dir(jv)
    js = jsub.add_parser("show", help="print the journal")
    js.add_argument("session", metavar="SESSION", help="session id or journal path")
    js.add_argument("--follow", "-f", action="store_true")
    add_session_dir(js)
    add_format(js)

    p = cmd("exec", "sessions.commands.exec:exec_cmd", "run a task's steps without the TUI")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--task", required=True, metavar="ID")
    p.add_argument("--step", type=int, metavar="N")
    p.add_argument("--target", metavar="PATTERN")
    p.add_argument("--inventory", metavar="INV")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                   help="a placeholder value (visible in ps: for secrets use --var-file or stdin)")
    p.add_argument("--var-file", action="append", default=[], metavar="FILE",
                   help="NAME=VALUE lines; the file must not be readable by group or others")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--session-dir", metavar="DIR")
    g.add_argument("--session", metavar="ID", help="append to this existing session")
    p.add_argument("--from", dest="from_mirror", metavar="DEST/ID",
                   help="carry on a session from its mirror (HOST:PATH/<session id>, written by --mirror on "
                        "another jump host): copy the journal here (--session-dir), verify its chain, resume it")
    p.add_argument("--dry-run", action="store_true", help="print what would run where; run nothing")
    p.add_argument("--yes", action="store_true", help="answer yes to confirmations (never overrides a guard)")
    p.add_argument("--override", metavar="REASON",
                   help="override the guards that need a reason (dependencies, phase gate, window, lint), journaled")
    p.add_argument("--detached", action="store_true", help="run remote commands detached (survive a lost connection)")
    p.add_argument("--parallel", type=int, default=10, metavar="N", help="hosts running at once in a parallel step (default 10)")
    p.add_argument("--connect-limit", type=int, default=10, metavar="N",
                   help="SSH handshakes at once (default 10: sshd's MaxStartups drops bigger bursts)")
    p.add_argument("--accept-new-host-keys", action="store_true")
    p.add_argument("--known-hosts", metavar="FILE", help="known_hosts file (default ~/.ssh/known_hosts)")
    add_notify(p)
    add_mirror(p)
    add_approvers(p)
    p.add_argument("--approval", metavar="FILE",
                   help="an approver's signature (runbook approve) of this session's approval request: checked at "
                        "once instead of waiting for REQUEST.sig")

    p = cmd("export", "sessions.commands.export:export_cmd", "write a (signed) session report")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--format", choices=["md", "json", "html"], default="md")
    p.add_argument("--out", metavar="FILE")
    sg = p.add_mutually_exclusive_group()
    sg.add_argument("--sign", metavar="KEYFILE", help="sign with this private key")
    sg.add_argument("--sign-agent", nargs="?", const="", default=None, metavar="KEY",
                    help="sign with a key in ssh-agent: the one whose fingerprint (SHA256:...) or comment "
                         "is KEY, else the first")
    p.add_argument("--lines", type=int, default=200, metavar="N", help="output lines per host in md/html")
    add_session_dir(p)

    p = cmd("approve", "sessions.commands.approve:approve_cmd",
            "sign an approval request (four-eyes approval of a task's plan)")
    p.add_argument("request", metavar="REQUEST", help="the request file (approval-TASK-ID.json) or a copy of it")
    ag = p.add_mutually_exclusive_group(required=True)
    ag.add_argument("--sign", metavar="KEYFILE", help="sign with this private key")
    ag.add_argument("--sign-agent", nargs="?", const="", default=None, metavar="KEY",
                    help="sign with a key in ssh-agent ($SSH_AUTH_SOCK): the one whose fingerprint (SHA256:...) or "
                         "comment is KEY, else the first")
    p.add_argument("-o", "--out", metavar="FILE", help="where the signature goes (default: REQUEST.sig)")
    p.add_argument("--yes", action="store_true", help="sign without asking (the plan is printed all the same)")

    p = cmd("verify", "sessions.commands.export:verify_cmd", "verify an exported report and its signature")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--signature", metavar="FILE.sig")
    p.add_argument("--allowed-signers", metavar="F")
    p.add_argument("--identity", metavar="I")
