"""The built-in Kubernetes probes and the thin API layer they use.

Each probe is a plain synchronous function ``probe(api, **args) -> Verdict``;
the runner (:mod:`runbook.probes.runner`) calls it in a worker thread under an
overall timeout, so the event loop never blocks on the synchronous client.

Requests go through the official client's typed APIs (``CoreV1Api``,
``AppsV1Api``, ``NetworkingV1Api``, ``VersionApi``) with
``_preload_content=False``: the client handles URLs, auth and TLS; the probes
read the JSON themselves (``runbook.probes.k8s_checks``), which keeps them
robust to fields the generated models do not know.

:func:`describe_error` turns whatever the client raised into one line for the
operator: ``403 Forbidden: nodes is forbidden: ...``, ``timeout after 5s``,
``unreachable: connection refused to https://127.0.0.1:6443``, ``TLS error: ...``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from runbook.probes import k8s_checks as checks
from runbook.probes.registry import ERROR, Param, Verdict, register

WORKLOAD_KINDS = ("deployment", "daemonset", "statefulset")


MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Largest API response read (bytes): a bigger one is an error, never read into memory."""
READ_SIZE = 64 * 1024


class BadResponse(Exception):
    """The API server answered 2xx with something that is not the expected JSON."""


class DeadlineExceeded(TimeoutError):
    """The whole request (connect, headers, body) took longer than the probe's timeout."""


class KubeApi:
    """The few reads the probes need.  Each request has one deadline for everything
    (connect, headers and the whole body; a server that drips a byte every half second
    never resets it) and a size limit: the body is read in small pieces, at most
    :data:`MAX_RESPONSE_BYTES`, checking the deadline between pieces."""

    def __init__(self, api_client: Any, timeout: float, *, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.deadline = time.monotonic() + timeout

    @property
    def server(self) -> str:
        return str(getattr(self.api_client.configuration, "host", "") or "")

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"timeout after {format_seconds(self.timeout)}")
        return left

    def _json(self, call: Callable[..., Any], *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        left = self._remaining()
        try:
            response = call(*args, _preload_content=False, _request_timeout=(left, left), **kwargs)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise
        try:
            data = self._read_body(response)
        finally:
            try:
                response.release_conn()
            except Exception:  # noqa: BLE001 - pragma: no cover - best effort
                pass
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadResponse(f"bad response from {self.server}: not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise BadResponse(f"bad response from {self.server}: expected an object")
        return body

    def _read_body(self, response: Any) -> bytes:
        limit = self.max_bytes
        declared = (response.headers or {}).get("Content-Length")
        if declared and declared.strip().isdigit() and int(declared) > limit:
            self._drop(response)
            raise BadResponse(f"response from {self.server} too large ({int(declared)} bytes, limit {limit})")
        chunks: list[bytes] = []
        size = 0
        while True:
            self._remaining_or_drop(response)
            chunk = response.read1(READ_SIZE)  # whatever one read brings: the deadline is checked between reads
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                self._drop(response)
                raise BadResponse(f"response from {self.server} too large (more than {limit} bytes)")
            chunks.append(chunk)

    def _remaining_or_drop(self, response: Any) -> None:
        try:
            self._remaining()
        except DeadlineExceeded:
            self._drop(response)
            raise

    @staticmethod
    def _drop(response: Any) -> None:
        """Close the connection: an unread body must not go back to the pool."""
        try:
            response.close()
        except Exception:  # noqa: BLE001 - pragma: no cover - best effort
            pass

    def _core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    def _apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    def version(self) -> dict[str, Any]:
        from kubernetes import client

        return self._json(client.VersionApi(self.api_client).get_code)

    def list_nodes(self, selector: str | None = None) -> dict[str, Any]:
        return self._json(self._core().list_node, label_selector=selector)

    def list_pods(self, namespace: str, selector: str | None = None) -> dict[str, Any]:
        return self._json(self._core().list_namespaced_pod, namespace, label_selector=selector)

    def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._json(self._core().read_namespaced_pod, name, namespace, missing_ok=True)

    def read_namespace(self, name: str) -> dict[str, Any] | None:
        return self._json(self._core().read_namespace, name, missing_ok=True)

    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._json(self._core().read_namespaced_secret, name, namespace, missing_ok=True)

    def read_workload(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        apps = self._apps()
        read = {
            "deployment": apps.read_namespaced_deployment,
            "daemonset": apps.read_namespaced_daemon_set,
            "statefulset": apps.read_namespaced_stateful_set,
        }[kind]
        return self._json(read, name, namespace, missing_ok=True)

    def list_network_policies(self, namespace: str) -> dict[str, Any]:
        from kubernetes import client

        return self._json(client.NetworkingV1Api(self.api_client).list_namespaced_network_policy, namespace)


# --- errors -------------------------------------------------------------------------------


def format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def _status_message(body: Any) -> str:
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        parsed = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return ""


def _tls_message(text: str) -> str:
    text = text.replace("SSLError\n", "").strip()
    match = re.search(r"\[SSL: [A-Z_]+\] ([^(]+?)(?: \(_ssl\.c:\d+\))?(?:'|\)|$)", text)
    return match.group(1).strip() if match else " ".join(text.split())[:200]


def _connect_message(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    reason = match.group(1).strip() if match else text.rsplit(":", 1)[-1].strip()
    return reason[:1].lower() + reason[1:] if reason else "cannot connect"


def describe_error(exc: BaseException, server: str, timeout: float) -> Verdict:
    """One line for the operator about an exception from a Kubernetes request."""
    import urllib3.exceptions as ue
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ue.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, ApiException):
        if not exc.status:
            reason = str(exc.reason or "")
            if "SSL" in reason:
                return Verdict(ERROR, f"TLS error talking to {server}: {_tls_message(reason)}")
            return Verdict(ERROR, f"error talking to {server}: {' '.join(reason.split())[:200]}")
        message = _status_message(exc.body)
        head = f"{exc.status} {exc.reason or ''}".strip()
        if not message or message == exc.reason:
            hints = {401: "the API server rejected the credentials", 403: "access denied"}
            message = hints.get(exc.status, message)
        return Verdict(ERROR, f"{head}: {message}" if message else head)
    if isinstance(exc, (ue.SSLError, ssl.SSLError)):
        return Verdict(ERROR, f"TLS error talking to {server}: {_tls_message(str(exc))}")
    if isinstance(exc, ue.NameResolutionError):
        return Verdict(ERROR, f"unreachable: cannot resolve the host of {server}")
    if isinstance(exc, ue.NewConnectionError):
        return Verdict(ERROR, f"unreachable: {_connect_message(exc)} to {server}")
    if isinstance(exc, (ue.TimeoutError, socket.timeout, TimeoutError, asyncio.TimeoutError, DeadlineExceeded)):
        return Verdict(ERROR, f"timeout after {format_seconds(timeout)}")
    if isinstance(exc, ue.ProtocolError):
        return Verdict(ERROR, f"unreachable: connection to {server} broken ({_connect_message(exc)})")
    if isinstance(exc, ConnectionError):
        return Verdict(ERROR, f"unreachable: {_connect_message(exc)} to {server}")
    if isinstance(exc, BadResponse):
        return Verdict(ERROR, str(exc))
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return Verdict(ERROR, f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


# --- aborting a request stuck in a worker thread ------------------------------------------

_CURRENT: dict[int, Any] = {}  # worker thread ident -> the urllib3 connection of its current request


def track_connections(api_client: Any) -> None:
    """Make the client's connection pools remember which thread uses which connection, so
    that :func:`abort_request` can end a request stuck on a server that drips bytes (a
    thread blocked in ``recv`` cannot be stopped otherwise, and one that wakes while the
    interpreter exits aborts the process)."""
    from urllib3 import connectionpool
    from urllib3.connection import HTTPConnection, HTTPSConnection

    class TrackedHTTPConnection(HTTPConnection):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            _CURRENT[threading.get_ident()] = self
            return super().request(*args, **kwargs)

    class TrackedHTTPSConnection(HTTPSConnection):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            _CURRENT[threading.get_ident()] = self
            return super().request(*args, **kwargs)

    class TrackedHTTPPool(connectionpool.HTTPConnectionPool):
        ConnectionCls = TrackedHTTPConnection

    class TrackedHTTPSPool(connectionpool.HTTPSConnectionPool):
        ConnectionCls = TrackedHTTPSConnection

    manager = getattr(getattr(api_client, "rest_client", None), "pool_manager", None)
    if manager is not None and hasattr(manager, "pool_classes_by_scheme"):
        manager.pool_classes_by_scheme = {"http": TrackedHTTPPool, "https": TrackedHTTPSPool}


def abort_request(thread_ident: int | None) -> None:
    """Shut down the socket of the request ``thread_ident`` is making (if any): its blocked
    read returns at once and the thread ends with an error nobody waits for."""
    conn = _CURRENT.pop(thread_ident, None) if thread_ident is not None else None
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def request_done() -> None:
    _CURRENT.pop(threading.get_ident(), None)


# --- running a probe function -------------------------------------------------------------

_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)


def call_probe(func: Callable[..., Verdict], api: KubeApi, args: dict[str, Any]) -> Verdict:
    """``func(api, **args)``; a response of the wrong shape (a list where an object belongs,
    ``restartCount: "x"``) is an ERROR in plain words, never a Python exception's text."""
    import urllib3.exceptions as ue

    try:
        return func(api, **args)
    except _SHAPE_ERRORS as exc:
        if isinstance(exc, ue.HTTPError):
            raise
        return Verdict(ERROR, f"malformed response from {api.server}: fields of the wrong type or shape, "
                              "nothing can be judged")


def tls_unverified(api_client: Any) -> bool:
    """The kubeconfig says ``insecure-skip-tls-verify: true`` for an HTTPS server."""
    configuration = getattr(api_client, "configuration", None)
    host = str(getattr(configuration, "host", "") or "")
    return host.startswith("https") and getattr(configuration, "verify_ssl", True) is False


TLS_UNVERIFIED_NOTE = "[TLS NOT VERIFIED: insecure-skip-tls-verify in the kubeconfig]"


# --- the probes ---------------------------------------------------------------------------

NAMESPACE = Param("namespace", "str", default="default", help="namespace")
NAME = Param("name", "str", required=True, help="object name")


@register("k8s.api_reachable", "k8s", "the API server answers /version", Param("min_version", "str", help="e.g. 1.28"))
def api_reachable(api: KubeApi, min_version: str | None = None) -> Verdict:
    return checks.judge_version(api.version(), server=api.server, min_version=min_version)


@register(
    "k8s.nodes_ready",
    "k8s",
    "nodes Ready, by count, role and label selector",
    Param("min", "int", minimum=0, help="at least this many Ready (default: all matching, and at least one)"),
    Param("role", "str", help="node role label, e.g. control-plane (also matches master)"),
    Param("selector", "str", help="label selector, e.g. topology.kubernetes.io/zone=az-a"),
)
def nodes_ready(api: KubeApi, min: int | None = None, role: str | None = None, selector: str | None = None) -> Verdict:
    return checks.judge_nodes(api.list_nodes(selector), min=min, role=role, selector=selector)


@register(
    "k8s.pods_healthy",
    "k8s",
    "pods Running or Succeeded, none crash-looping or failing to pull, restarts below N",
    NAMESPACE,
    Param("selector", "str", help="label selector"),
    Param("restarts_below", "int", minimum=1, help="each pod has fewer restarts than this"),
    Param("min", "int", default=1, minimum=0, help="at least this many pods"),
)
def pods_healthy(
    api: KubeApi, namespace: str = "default", selector: str | None = None, restarts_below: int | None = None, min: int = 1
) -> Verdict:
    listing = api.list_pods(namespace, selector)
    return checks.judge_pods(listing, namespace=namespace, selector=selector, restarts_below=restarts_below, min=min)


@register("k8s.pod_ready", "k8s", "the pod exists and is Ready", NAME, NAMESPACE)
def pod_ready(api: KubeApi, name: str, namespace: str = "default") -> Verdict:
    return checks.judge_pod_ready(api.read_pod(namespace, name), name=name, namespace=namespace)


@register("k8s.namespace_exists", "k8s", "the namespace exists and is Active", NAME)
def namespace_exists(api: KubeApi, name: str) -> Verdict:
    return checks.judge_namespace(api.read_namespace(name), name=name, present=True)


@register("k8s.namespace_absent", "k8s", "the namespace does not exist", NAME)
def namespace_absent(api: KubeApi, name: str) -> Verdict:
    return checks.judge_namespace(api.read_namespace(name), name=name, present=False)


@register(
    "k8s.rolled_out",
    "k8s",
    "a deployment, daemonset or statefulset is fully rolled out",
    Param("kind", "str", required=True, choices=WORKLOAD_KINDS),
    NAME,
    NAMESPACE,
)
def rolled_out(api: KubeApi, kind: str, name: str, namespace: str = "default") -> Verdict:
    return checks.judge_rollout(api.read_workload(kind, namespace, name), kind=kind, name=name, namespace=namespace)


def _rollout_probe(kind: str) -> None:
    def probe(api: KubeApi, name: str, namespace: str = "default") -> Verdict:
        return rolled_out(api, kind, name, namespace)

    probe.__name__ = f"{kind}_rolled_out"
    register(f"k8s.{kind}_rolled_out", "k8s", f"the {kind} is fully rolled out", NAME, NAMESPACE)(probe)


for _kind in WORKLOAD_KINDS:
    _rollout_probe(_kind)


@register(
    "k8s.network_policies",
    "k8s",
    "NetworkPolicies present in a namespace",
    NAMESPACE,
    Param("min", "int", default=1, minimum=0, help="at least this many"),
    Param("names", "strings", help="these policies must be among them"),
    Param("default_deny", "bool", default=False, help="one policy selects all pods and allows no ingress"),
)
def network_policies(
    api: KubeApi, namespace: str = "default", min: int = 1, names: tuple[str, ...] | None = None, default_deny: bool = False
) -> Verdict:
    listing = api.list_network_policies(namespace)
    return checks.judge_network_policies(listing, namespace=namespace, min=min, names=names, default_deny=default_deny)


@register(
    "k8s.tls_cert_days",
    "k8s",
    "the certificate in a TLS secret is valid for more than N days",
    NAME,
    NAMESPACE,
    Param("min", "float", default=30, minimum=0, help="days the certificate must still be valid"),
)
def tls_cert_days(api: KubeApi, name: str, namespace: str = "default", min: float = 30) -> Verdict:
    return checks.judge_tls_secret(api.read_secret(namespace, name), name=name, namespace=namespace, min_days=min)
