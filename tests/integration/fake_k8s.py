"""A local fake Kubernetes API server for the probe tests.

``FakeKubeAPI`` is a real HTTP(S) server (``http.server.ThreadingHTTPServer`` on
127.0.0.1, free port, in a thread) that speaks the read-only subset of the
Kubernetes API the probes use, with response bodies shaped like a real API
server's: ``/version``, nodes (conditions, role labels, label selectors), pods
(phases, containerStatuses, restartCount, waiting reasons), namespaces,
deployments / daemonsets / statefulsets (status, observedGeneration), secrets,
networkpolicies.  It checks the bearer token (401 otherwise), can refuse a
resource with a realistic 403, can sleep before answering (timeouts), drip a
response one byte at a time or stream a huge one (hostile servers), and records
every request's path and headers.

Certificates (the server's own for HTTPS, and TLS secrets) are generated with
``cryptography``.  It only ever binds 127.0.0.1.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"
TOKEN = "fake-token-3f9a2c"
USER = "system:serviceaccount:ops:runbook-probe"
CREATED = "2026-11-20T02:00:00Z"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound and closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# --- certificates ------------------------------------------------------------------------


@dataclass(frozen=True)
class CertPair:
    cert_pem: bytes
    key_pem: bytes
    cert: Any = field(repr=False, default=None)
    key: Any = field(repr=False, default=None)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "fake-kubernetes-ca") -> CertPair:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pair(cert, key)


def make_cert(
    cn: str,
    *,
    issuer: CertPair | None = None,
    days: float = 400,
    not_before_days: float = -1,
    ip: str | None = None,
    dns: tuple[str, ...] = (),
) -> CertPair:
    """A leaf certificate valid from now+``not_before_days`` to now+``days``, signed by ``issuer``
    (self-signed without one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=not_before_days))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    if ip:
        names.append(x509.IPAddress(IPv4Address(ip)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return _pair(cert, key)


def _pair(cert: Any, key: Any) -> CertPair:
    return CertPair(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        cert=cert,
        key=key,
    )


# --- realistic objects -------------------------------------------------------------------


def _meta(name: str, namespace: str | None = None, labels: dict | None = None, generation: int | None = None) -> dict:
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"0000-{abs(hash((name, namespace))) % 10**8:08d}",
        "resourceVersion": "4711",
        "creationTimestamp": CREATED,
    }
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if generation is not None:
        meta["generation"] = generation
    return meta


def node(
    name: str,
    *,
    ready: bool | None = True,
    roles: tuple[str, ...] = ("control-plane",),
    labels: dict | None = None,
    unschedulable: bool = False,
    kubelet: str = "v1.28.5",
) -> dict:
    """A Node like ``kubectl get node NAME -o json``; ``ready=None`` is status Unknown."""
    all_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        **{f"node-role.kubernetes.io/{r}": "" for r in roles},
        **(labels or {}),
    }
    ready_cond = {
        True: ("True", "KubeletReady", "kubelet is posting ready status"),
        False: ("False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false"),
        None: ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."),
    }[ready]
    conditions = [
        {"type": t, "status": "False", "reason": f"KubeletHas{r}", "message": m,
         "lastHeartbeatTime": CREATED, "lastTransitionTime": CREATED}
        for t, r, m in [
            ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"),
        ]
    ]
    conditions.append({"type": "Ready", "status": ready_cond[0], "reason": ready_cond[1], "message": ready_cond[2],
                       "lastHeartbeatTime": CREATED, "lastTransitionTime": CREATED})
    spec: dict[str, Any] = {"podCIDR": "10.244.0.0/24"}
    if unschedulable:
        spec["unschedulable"] = True
        spec["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    return {
        "metadata": _meta(name, labels=all_labels),
        "spec": spec,
        "status": {
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": "192.0.2.10"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": kubelet, "containerRuntimeVersion": "containerd://1.7.11",
                         "osImage": "Debian GNU/Linux 12 (bookworm)", "architecture": "amd64"},
        },
    }


def pod(
    name: str,
    namespace: str = "kube-system",
    *,
    phase: str = "Running",
    ready: bool = True,
    restarts: int = 0,
    waiting: str | None = None,
    containers: tuple[str, ...] = ("main",),
    labels: dict | None = None,
    node_name: str = "master-01",
    reason: str | None = None,
) -> dict:
    """A Pod; ``waiting`` puts the first container in that waiting reason (CrashLoopBackOff, ...)."""
    statuses = []
    for i, c in enumerate(containers):
        if waiting and i == 0:
            state = {"waiting": {"reason": waiting, "message": f"back-off restarting failed container {c}"}}
            c_ready = False
        elif phase == "Succeeded":
            state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": CREATED, "finishedAt": CREATED}}
            c_ready = False
        elif phase == "Pending":
            state = {"waiting": {"reason": "ContainerCreating"}}
            c_ready = False
        else:
            state = {"running": {"startedAt": CREATED}}
            c_ready = ready
        statuses.append({
            "name": c, "state": state, "ready": c_ready, "restartCount": restarts if i == 0 else 0,
            "image": f"registry.k8s.io/{c}:v1.28.5", "imageID": f"registry.k8s.io/{c}@sha256:{'0' * 64}",
            "containerID": f"containerd://{'a' * 64}", "started": c_ready,
        })
    pod_ready = ready and phase == "Running" and not waiting
    conditions = [
        {"type": "Initialized", "status": "True", "lastTransitionTime": CREATED},
        {"type": "Ready", "status": "True" if pod_ready else "False", "lastTransitionTime": CREATED,
         **({} if pod_ready else {"reason": "PodCompleted" if phase == "Succeeded" else "ContainersNotReady"})},
        {"type": "ContainersReady", "status": "True" if pod_ready else "False", "lastTransitionTime": CREATED},
        {"type": "PodScheduled", "status": "False" if reason == "Unschedulable" else "True",
         "lastTransitionTime": CREATED, **({"reason": "Unschedulable"} if reason == "Unschedulable" else {})},
    ]
    status: dict[str, Any] = {"phase": phase, "conditions": conditions, "hostIP": "192.0.2.10",
                              "podIP": "10.244.0.12", "startTime": CREATED}
    if reason != "Unschedulable":
        status["containerStatuses"] = statuses
    return {
        "metadata": _meta(name, namespace, labels or {"app": name.rsplit("-", 1)[0]}),
        "spec": {"nodeName": node_name if reason != "Unschedulable" else None,
                 "containers": [{"name": c, "image": f"registry.k8s.io/{c}:v1.28.5"} for c in containers]},
        "status": status,
    }


def namespace(name: str, phase: str = "Active") -> dict:
    return {"metadata": _meta(name, labels={"kubernetes.io/metadata.name": name}),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": phase}}


def deployment(name: str, namespace: str = "default", *, replicas: int = 3, updated: int | None = None,
               available: int | None = None, current: int | None = None, generation: int = 4,
               observed: int | None = None, deadline_exceeded: bool = False) -> dict:
    updated = replicas if updated is None else updated
    available = updated if available is None else available
    progressing = ("False", "ProgressDeadlineExceeded") if deadline_exceeded else ("True", "NewReplicaSetAvailable")
    return {
        "metadata": _meta(name, namespace, {"app": name}, generation),
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}},
        "status": {
            "observedGeneration": generation if observed is None else observed,
            "replicas": replicas if current is None else current,
            "updatedReplicas": updated, "readyReplicas": available, "availableReplicas": available,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": progressing[0], "reason": progressing[1]},
            ],
        },
    }


def daemonset(name: str, namespace: str = "kube-system", *, desired: int = 5, updated: int | None = None,
              available: int | None = None, generation: int = 2, observed: int | None = None) -> dict:
    updated = desired if updated is None else updated
    available = updated if available is None else available
    return {
        "metadata": _meta(name, namespace, {"k8s-app": name}, generation),
        "spec": {"selector": {"matchLabels": {"k8s-app": name}}, "updateStrategy": {"type": "RollingUpdate"}},
        "status": {"observedGeneration": generation if observed is None else observed,
                   "desiredNumberScheduled": desired, "currentNumberScheduled": desired,
                   "updatedNumberScheduled": updated, "numberReady": available, "numberAvailable": available,
                   "numberMisscheduled": 0},
    }


def statefulset(name: str, namespace: str = "default", *, replicas: int = 3, ready: int | None = None,
                updated: int | None = None, current_revision: str = "web-7d9f", update_revision: str | None = None,
                generation: int = 3, observed: int | None = None, partition: int = 0) -> dict:
    ready = replicas if ready is None else ready
    return {
        "metadata": _meta(name, namespace, {"app": name}, generation),
        "spec": {"replicas": replicas, "serviceName": name,
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}},
        "status": {"observedGeneration": generation if observed is None else observed, "replicas": replicas,
                   "readyReplicas": ready, "currentReplicas": replicas,
                   "updatedReplicas": replicas if updated is None else updated,
                   "currentRevision": current_revision, "updateRevision": update_revision or current_revision},
    }


def network_policy(name: str, namespace: str = "default", *, default_deny: bool = False) -> dict:
    spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress"]}
    if not default_deny:
        spec = {"podSelector": {"matchLabels": {"app": name}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
                             "ports": [{"protocol": "TCP", "port": 9090}]}]}
    return {"metadata": _meta(name, namespace, generation=1), "spec": spec}


def tls_secret(name: str, namespace: str, pair: CertPair | None = None, *, crt: bytes | None = None) -> dict:
    crt = pair.cert_pem if pair else crt or b""
    key = pair.key_pem if pair else b""
    return {
        "metadata": _meta(name, namespace),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(crt).decode(), "tls.key": base64.b64encode(key).decode()},
    }


VERSION = {"major": "1", "minor": "28", "gitVersion": "v1.28.5", "gitCommit": "506050d61cf291218dfbd41ac93913945c9aa0da",
           "gitTreeState": "clean", "buildDate": "2023-12-19T13:32:00Z", "goVersion": "go1.20.12",
           "compiler": "gc", "platform": "linux/amd64"}


# --- label selectors ---------------------------------------------------------------------

_REQ = re.compile(r"\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*")


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality (``=``, ``==``, ``!=``), set (``in``, ``notin``) and existence (``k``, ``!k``) selectors."""
    parts = re.findall(r"[^,(]+(?:\([^)]*\))?", selector)
    for part in (p for p in parts if p.strip()):
        m = _REQ.fullmatch(part)
        if not m:
            raise ValueError(f"unable to parse requirement: {part!r}")
        neg, key, op, value, set_op, values = m.groups()
        if op:
            if op == "!=":
                if labels.get(key) == value:
                    return False
            elif labels.get(key) != value:
                return False
        elif set_op:
            wanted = {v.strip() for v in values.split(",")}
            if (set_op == "in") != (labels.get(key) in wanted):
                return False
        elif bool(neg) == (key in labels):
            return False
    return True


# --- the server --------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case


@dataclass
class FakeCluster:
    """What the fake API server serves.  Mutate it freely between requests."""

    nodes: list[dict] = field(default_factory=list)
    pods: list[dict] = field(default_factory=list)
    namespaces: list[dict] = field(default_factory=lambda: [namespace(n) for n in ("default", "kube-system")])
    deployments: list[dict] = field(default_factory=list)
    daemonsets: list[dict] = field(default_factory=list)
    statefulsets: list[dict] = field(default_factory=list)
    networkpolicies: list[dict] = field(default_factory=list)
    secrets: list[dict] = field(default_factory=list)
    version: dict = field(default_factory=lambda: dict(VERSION))
    token: str | None = TOKEN
    forbidden: set[str] = field(default_factory=set)  # resource names answered with 403
    delay: float = 0.0  # seconds to sleep before answering
    drip: float = 0.0  # > 0: send the response one byte at a time, this many seconds apart (headers too)
    huge: int = 0  # > 0: answer every route with a JSON body of this many bytes (streamed, never held)
    huge_declared: bool = True  # with ``huge``: send Content-Length (else close-delimited, length unknown)
    requests: list[Seen] = field(default_factory=list)


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


_ROUTES = [
    (re.compile(r"/version/?"), "version", None),
    (re.compile(r"/api/v1/nodes"), "nodes", "list"),
    (re.compile(r"/api/v1/namespaces/(?P<ns>[^/]+)/pods"), "pods", "list"),
    (re.compile(r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)"), "pods", "get"),
    (re.compile(r"/api/v1/namespaces/(?P<name>[^/]+)"), "namespaces", "get"),
    (re.compile(r"/api/v1/namespaces/(?P<ns>[^/]+)/secrets/(?P<name>[^/]+)"), "secrets", "get"),
    (re.compile(r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(?P<res>deployments|daemonsets|statefulsets)/(?P<name>[^/]+)"),
     None, "get"),
    (re.compile(r"/apis/networking.k8s.io/v1/namespaces/(?P<ns>[^/]+)/networkpolicies"), "networkpolicies", "list"),
]
_LIST_KINDS = {"nodes": "NodeList", "pods": "PodList", "networkpolicies": "NetworkPolicyList"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        if self.server.cluster.drip:
            return self._drip(code, data)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", "6d2c61b8-5b0e-4d0f-9b43-1f2ad0e3c111")
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def _drip(self, code: int, data: bytes) -> None:
        """The whole response, status line and headers included, one byte per ``drip`` seconds:
        every read gets a byte long before any per-read socket timeout."""
        head = (f"HTTP/1.1 {code} {self.responses.get(code, ('',))[0]}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        self.close_connection = True
        whole = head + data
        for i in range(len(whole)):
            byte = whole[i:i + 1]
            try:
                self.wfile.write(byte)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                return
            if self.server.stopping.wait(self.server.cluster.drip):
                return

    def _send_huge(self, size: int) -> None:
        """A valid JSON list of ``size`` bytes, written in 1 MB pieces (the server never holds it)."""
        head, tail = b'{"kind": "NodeList", "apiVersion": "v1", "items": [', b"{}]}"
        item = b'{"metadata": {"name": "padding-node"}}, '
        piece = item * (1024 * 1024 // len(item))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.server.cluster.huge_declared:
            self.send_header("Content-Length", str(size))
        else:
            self.close_connection = True
        self.end_headers()
        left = size - len(head) - len(tail)
        try:
            self.wfile.write(head)
            while left > 0 and not self.server.stopping.is_set():
                chunk = piece if left >= len(piece) else b" " * left
                self.wfile.write(chunk)
                left -= len(chunk)
            self.wfile.write(tail)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    def do_GET(self) -> None:
        cluster = self.server.cluster
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        cluster.requests.append(Seen("GET", path, query, {k.lower(): v for k, v in self.headers.items()}))
        if cluster.delay and self.server.stopping.wait(cluster.delay):
            return
        if cluster.token is not None and self.headers.get("Authorization") != f"Bearer {cluster.token}":
            return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
        if cluster.huge:
            return self._send_huge(cluster.huge)
        for pattern, resource, verb in _ROUTES:
            m = pattern.fullmatch(path)
            if m:
                return self._route(resource or m.group("res"), verb, m.groupdict(), query)
        self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))

    def _route(self, resource: str, verb: str | None, params: dict, query: dict) -> None:
        cluster = self.server.cluster
        ns, name = params.get("ns"), params.get("name")
        if resource == "version":
            return self._send(200, cluster.version)
        if resource in cluster.forbidden:
            group = {"deployments": "apps", "daemonsets": "apps", "statefulsets": "apps",
                     "networkpolicies": "networking.k8s.io"}.get(resource, "")
            scoped = ns or (name if resource == "namespaces" else None)
            scope = f'in the namespace "{scoped}"' if scoped else "at the cluster scope"
            what = f'{resource} "{name}"' if verb == "get" else resource
            message = f'{what} is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API group "{group}" {scope}'

            return self._send(403, _status(403, "Forbidden", message, {"kind": resource}))
        objects: list[dict] = getattr(cluster, resource)
        if ns and resource != "namespaces":
            objects = [o for o in objects if o["metadata"].get("namespace") == ns]
        if verb == "list":
            selector = (query.get("labelSelector") or [""])[0]
            try:
                objects = [o for o in objects if selector_matches(selector, o["metadata"].get("labels") or {})]
            except ValueError as exc:
                return self._send(400, _status(400, "BadRequest", str(exc)))
            kind = _LIST_KINDS[resource]
            group = "networking.k8s.io/v1" if resource == "networkpolicies" else "v1"
            return self._send(200, {"kind": kind, "apiVersion": group, "metadata": {"resourceVersion": "4711"},
                                    "items": objects})
        for obj in objects:
            if obj["metadata"]["name"] == name:
                return self._send(200, obj)
        message = f'{resource} "{name}" not found'
        self._send(404, _status(404, "NotFound", message, {"name": name, "kind": resource}))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cluster: FakeCluster
    stopping: threading.Event


class FakeKubeAPI:
    """The fake API server.  ``with FakeKubeAPI(cluster) as api: api.url`` ...

    :param tls: serve HTTPS with this certificate (its key included).
    """

    def __init__(self, cluster: FakeCluster | None = None, *, tls: CertPair | None = None, workdir: Path | None = None):
        self.cluster = cluster or FakeCluster()
        self.tls = tls
        self.workdir = workdir
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}"

    def start(self) -> FakeKubeAPI:
        server = _Server((LOOPBACK, 0), _Handler)
        server.cluster = self.cluster
        server.stopping = threading.Event()
        if self.tls:
            assert self.workdir is not None, "HTTPS needs a workdir for the key file"
            cert_file, key_file = self.workdir / "server.crt", self.workdir / "server.key"
            cert_file.write_bytes(self.tls.cert_pem)
            key_file.write_bytes(self.tls.key_pem)
            key_file.chmod(0o600)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stopping.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_kubeconfig(
    path: Path,
    server: str,
    *,
    token: str | None = TOKEN,
    ca_pem: bytes | None = None,
    context: str = "fake",
    extra_contexts: dict[str, str] | None = None,
    insecure: bool = False,
) -> Path:
    """A kubeconfig whose current context ``context`` talks to ``server`` with bearer ``token``;
    ``extra_contexts`` maps more context names to server URLs (same user); ``insecure``
    sets ``insecure-skip-tls-verify: true`` on every cluster (no CA then)."""
    servers = {context: server, **(extra_contexts or {})}
    clusters, contexts = [], []
    for name, url in servers.items():
        cluster: dict[str, Any] = {"server": url}
        if insecure:
            cluster["insecure-skip-tls-verify"] = True
        elif ca_pem and url.startswith("https"):
            cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
        clusters.append({"name": name, "cluster": cluster})
        contexts.append({"name": name, "context": {"cluster": name, "user": "probe", "namespace": "default"}})
    user: dict[str, Any] = {"token": token} if token else {}
    config = {"apiVersion": "v1", "kind": "Config", "clusters": clusters, "contexts": contexts,
              "current-context": context, "users": [{"name": "probe", "user": user}], "preferences": {}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
