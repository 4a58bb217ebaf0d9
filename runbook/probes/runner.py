"""Running probes: :func:`run_probe`, :class:`ProbeContext` and :class:`ProbeOutcome`.

``await run_probe('k8s.nodes_ready(min=5, role="control-plane")', ctx, key=box.key)``
never raises for anything the cluster, the kubeconfig or the expression can do:
every problem becomes an outcome with status ``error`` (or ``not_configured``)
and a one-line explanation.  Kubernetes calls run in a worker thread under an
overall :func:`asyncio.wait_for`, so the event loop (the TUI's) never blocks.

The journal event is built by the caller, a layer above this one, from
``probe_event_fields(outcome)``: this package never names the layers above it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from runbook.probes.expression import ProbeSyntaxError
from runbook.probes.kubeconfig import (
    KubeConfigError,
    KubeconfigSource,
    KubeNotConfigured,
    build_api_client,
    find_kubeconfig,
)
from runbook.probes.registry import ERROR, NOT_CONFIGURED, PASS, BoundProbe, Verdict, bind

if TYPE_CHECKING:  # pragma: no cover
    from runbook.model import Checkbox
    from runbook.targets.inventory import Target
    from runbook.transport.executor import OnOutput, RunOptions, RunResult

DEFAULT_TIMEOUT = 10.0
MAX_EVIDENCE = 4000


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """The result of one probe, with exactly the fields of the session's probe-result event.

    ``status``: ``pass``, ``fail``, ``error`` or ``not_configured`` (which never passes).
    """

    key: str
    probe: str
    status: str
    evidence: str
    duration_s: float

    @property
    def passed(self) -> bool:
        return self.status == PASS


def probe_event_fields(outcome: ProbeOutcome) -> dict[str, Any]:
    """``ProbeResult(**probe_event_fields(outcome))`` -- key, probe, status, evidence, duration_s."""
    return {
        "key": outcome.key,
        "probe": outcome.probe,
        "status": outcome.status,
        "evidence": outcome.evidence,
        "duration_s": round(outcome.duration_s, 3),
    }


class CommandRunner(Protocol):
    """Where ``cmd`` probes run: an :class:`~runbook.transport.executor.Executor`, or anything
    that runs a script on a target the same way (the TUI's engine-backed runner)."""

    async def run(self, target: Target, script: str, on_output: OnOutput, options: RunOptions) -> RunResult: ...


class ProbeContext:
    """Everything a probe may need; build one per session (or per ``runbook probe`` run).

    :param kubeconfig: ``--kubeconfig`` path; else ``$KUBECONFIG``, else ``~/.kube/config``.
    :param context: kubeconfig context name; ``None`` means the current context.
    :param timeout: seconds per probe unless the expression says ``timeout=``.
    :param executor: a :class:`runbook.transport.executor.Executor` for ``cmd`` probes.
    :param resolve_targets: ``pattern -> [Target, ...]`` (the inventory) for ``cmd`` probes.
    :param redact: applied to every evidence string (pass the session's secret redactor).
    :param env: environment used to find the kubeconfig (default ``os.environ``).

    The Kubernetes client is built on first use and reused; call :meth:`close`
    (or use ``async with``) when done.
    """

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        executor: CommandRunner | None = None,
        resolve_targets: Callable[[str], Sequence[Target]] | None = None,
        redact: Callable[[str], str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.kubeconfig = kubeconfig
        self.context = context
        self.timeout = timeout
        self.executor = executor
        self.resolve_targets = resolve_targets
        self.redact = redact
        self.env = dict(os.environ if env is None else env)
        self._client: Any = None
        self._client_source: KubeconfigSource | None = None
        self._lock: asyncio.Lock | None = None

    def kubeconfig_source(self) -> KubeconfigSource:
        """Where the kubeconfig is; raises :class:`KubeNotConfigured` / :class:`KubeConfigError`."""
        return find_kubeconfig(self.kubeconfig, self.env)

    async def api_client(self, source: KubeconfigSource | None = None) -> Any:
        """The shared ``kubernetes.client.ApiClient`` (built in a thread on first use)."""
        source = source or self.kubeconfig_source()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None or self._client_source != source:
                self.close()
                self._client = await asyncio.to_thread(build_api_client, source, self.context)
                from runbook.probes.k8s import track_connections

                track_connections(self._client)
                self._client_source = source
            return self._client

    @property
    def server(self) -> str:
        """The API server URL once a client exists, else ``""``."""
        return str(getattr(getattr(self._client, "configuration", None), "host", "") or "")

    def close(self) -> None:
        client, self._client, self._client_source = self._client, None, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - pragma: no cover - closing is best effort
                pass

    async def __aenter__(self) -> ProbeContext:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


ABORT_WAIT = 2.0  # seconds to let an aborted request's thread end


T = TypeVar("T")


async def _in_daemon_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a daemon thread, awaited.  Unlike ``asyncio.to_thread`` (whose
    pool threads are joined when the loop and the interpreter end), a thread abandoned at
    a timeout or Ctrl-C never keeps the process alive; :class:`KubeApi`'s deadline ends it
    soon anyway, and a cancelled request's socket is shut down (:func:`abort_request`)."""
    from runbook.probes.k8s import abort_request, request_done

    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def run() -> None:
        result: object
        try:
            result, ok = func(*args), True
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            result, ok = exc, False
        finally:
            request_done()
        try:
            loop.call_soon_threadsafe(settle, ok, result)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    thread = threading.Thread(target=run, name="runbook-probe", daemon=True)
    thread.start()
    try:
        return await future
    except asyncio.CancelledError:  # a timeout or Ctrl-C: end the request, let the thread finish
        abort_request(thread.ident)
        thread.join(ABORT_WAIT)
        raise


async def _run_k8s(bound: BoundProbe, ctx: ProbeContext, timeout: float) -> Verdict:
    from runbook.probes.k8s import TLS_UNVERIFIED_NOTE, KubeApi, call_probe, describe_error, format_seconds, tls_unverified

    try:
        source = ctx.kubeconfig_source()
    except KubeNotConfigured as exc:
        return Verdict(NOT_CONFIGURED, str(exc))
    except KubeConfigError as exc:
        return Verdict(ERROR, str(exc))

    async def go() -> Verdict:
        client = await ctx.api_client(source)
        return await _in_daemon_thread(call_probe, bound.spec.func, KubeApi(client, timeout), dict(bound.args))

    try:
        verdict = await asyncio.wait_for(go(), timeout)
    except TimeoutError:
        verdict = Verdict(ERROR, f"timeout after {format_seconds(timeout)}")
    except KubeConfigError as exc:
        verdict = Verdict(ERROR, str(exc))
    except Exception as exc:  # noqa: BLE001 - every client/network failure becomes one line
        verdict = describe_error(exc, ctx.server, timeout)
    if tls_unverified(ctx._client):
        verdict = Verdict(verdict.status, f"{verdict.evidence} {TLS_UNVERIFIED_NOTE}")
    return verdict


async def run_probe(expr: str, ctx: ProbeContext, *, key: str = "") -> ProbeOutcome:
    """Run one probe expression; never raises except :class:`asyncio.CancelledError`.

    :param expr: e.g. ``k8s.nodes_ready(min=5, role="control-plane")``.
    :param ctx: the :class:`ProbeContext`.
    :param key: the checkbox key, copied into the outcome.
    """
    started = time.monotonic()
    probe_text = (expr or "").strip() if isinstance(expr, str) else str(expr)
    try:
        bound = bind(probe_text)
    except ProbeSyntaxError as exc:
        verdict = Verdict(ERROR, f"invalid probe: {exc}")
    else:
        timeout = bound.timeout or ctx.timeout
        try:
            if bound.spec.kind == "cmd":
                verdict = await bound.spec.func(ctx, timeout=timeout, **bound.args)
            else:
                verdict = await _run_k8s(bound, ctx, timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in a probe must not take the TUI down
            verdict = Verdict(ERROR, f"probe failed unexpectedly: {type(exc).__name__}: {exc}")
    evidence = verdict.evidence
    if ctx.redact is not None:
        evidence = ctx.redact(evidence)
    if len(evidence) > MAX_EVIDENCE:
        evidence = evidence[: MAX_EVIDENCE - 3] + "..."
    return ProbeOutcome(
        key=key,
        probe=probe_text,
        status=verdict.status,
        evidence=evidence,
        duration_s=time.monotonic() - started,
    )


async def run_checkbox(checkbox: Checkbox, ctx: ProbeContext) -> ProbeOutcome | None:
    """Run the probe of a :class:`runbook.model.Checkbox`; ``None`` when it has none."""
    if not checkbox.probe:
        return None
    return await run_probe(checkbox.probe, ctx, key=checkbox.key)


async def run_probes(checkboxes: Iterable[Checkbox], ctx: ProbeContext, *, concurrency: int = 4) -> list[ProbeOutcome]:
    """Run the probes of ``checkboxes`` (those that have one), at most ``concurrency`` at once,
    returning outcomes in the order given."""
    probes = [(b.probe, b.key) for b in checkboxes if b.probe]
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one(probe: str, key: str) -> ProbeOutcome:
        async with limit:
            return await run_probe(probe, ctx, key=key)

    return list(await asyncio.gather(*(one(p, k) for p, k in probes)))
