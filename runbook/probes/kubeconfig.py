"""Finding the kubeconfig and building a Kubernetes API client from it.

The kubeconfig comes from ``--kubeconfig``, else ``$KUBECONFIG`` (a
``:``-separated list, merged like kubectl does), else ``~/.kube/config``.
Without any, Kubernetes probes report *not configured* and never pass.

The client is the official ``kubernetes`` package, imported only here and only
when a client is built (``runbook lint`` never pays for it).  Its urllib3
retries are disabled, so an unreachable API server fails at once instead of
after three silent retries, and every request carries a timeout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runbook.errors import InputError


class KubeNotConfigured(Exception):
    """No kubeconfig to use: the probe is *not configured*."""


class KubeConfigError(Exception):
    """A kubeconfig exists but cannot be used (unreadable, bad YAML, unknown context)."""


@dataclass(frozen=True, slots=True)
class KubeconfigSource:
    """Where the kubeconfig came from: ``paths`` (``os.pathsep``-joined, as the client wants them)
    and ``origin`` (``--kubeconfig``, ``$KUBECONFIG`` or ``~/.kube/config``)."""

    paths: str
    origin: str

    def describe(self) -> str:
        return f"{self.paths} (from {self.origin})"


def find_kubeconfig(explicit: str | None = None, env: Mapping[str, str] | None = None) -> KubeconfigSource:
    """Locate the kubeconfig; raise :class:`KubeNotConfigured` when there is none.

    An explicit path that does not exist is a :class:`KubeConfigError` (the
    operator asked for that file); missing files in ``$KUBECONFIG`` are ignored
    as kubectl does, and when none exists the probes are not configured.
    """
    env = os.environ if env is None else env
    if explicit:
        path = os.path.expanduser(explicit)
        if not os.path.exists(path):
            raise KubeConfigError(f"kubeconfig {explicit}: no such file")
        if os.path.isdir(path):
            raise KubeConfigError(f"kubeconfig {explicit}: is a directory")
        return KubeconfigSource(path, "--kubeconfig")
    listed = env.get("KUBECONFIG", "")
    if listed.strip():
        paths = [os.path.expanduser(p) for p in listed.split(os.pathsep) if p.strip()]
        existing = [p for p in paths if os.path.isfile(p)]
        if not existing:
            raise KubeNotConfigured(f"Kubernetes not configured: $KUBECONFIG names no existing file ({listed})")
        return KubeconfigSource(os.pathsep.join(existing), "$KUBECONFIG")
    home = env.get("HOME") or os.path.expanduser("~")
    default = os.path.join(home, ".kube", "config")
    if os.path.isfile(default):
        return KubeconfigSource(default, "~/.kube/config")
    raise KubeNotConfigured("Kubernetes not configured: no --kubeconfig, $KUBECONFIG or ~/.kube/config")


def build_api_client(source: KubeconfigSource, context: str | None = None) -> Any:
    """Build a ``kubernetes.client.ApiClient`` for ``source`` and ``context`` (synchronous).

    Raises :class:`KubeConfigError` with one clear line when the file cannot be
    used.  Call it from a thread: loading may run an exec credential plugin.
    """
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise KubeConfigError(f"the kubernetes package is not installed ({exc})") from None

    for path in source.paths.split(os.pathsep):
        _check_shape(path)
    configuration = type.__call__(client.Configuration)
    # No urllib3 retries: an unreachable server must fail now, not after 3 quiet retries.
    configuration.retries = False
    configuration.client_go_retries = False
    try:
        return config.new_client_from_config(
            config_file=source.paths,
            context=context,
            persist_config=False,
            client_configuration=configuration,
        )
    except ConfigException as exc:
        raise KubeConfigError(f"kubeconfig {source.paths}: {_config_message(str(exc), context)}") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # Bad YAML, a missing certificate file, a malformed entry: one line, no traceback.
        raise KubeConfigError(f"kubeconfig {source.paths}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - yaml.YAMLError, exec plugin failures, ...
        mark = getattr(exc, "problem_mark", None)  # yaml.MarkedYAMLError, without importing yaml here
        problem = getattr(exc, "problem", None)
        if mark is not None and problem:  # bad YAML: name the file and line
            name = mark.name if mark.name and not mark.name.startswith("<") else source.paths
            raise KubeConfigError(f"kubeconfig {name}:{mark.line + 1}: invalid YAML: {problem}") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KubeConfigError(f"kubeconfig {source.paths}: {first}") from None


def _check_shape(path: str) -> None:
    """A kubeconfig file must be a YAML mapping; say so (file:line for bad YAML) before
    the client library fails on it with a ``TypeError`` about list indices.  Read with the
    bounded loader first, so an alias bomb or a FIFO is refused before the library's own
    unbounded ``yaml.safe_load`` sees the file."""
    from runbook.reading.bounded_yaml import YAMLInputError, load_yaml_file

    try:
        data = load_yaml_file(path, "kubeconfig")
    except YAMLInputError as exc:
        raise KubeConfigError(f"kubeconfig {exc.where}: invalid YAML: {exc.problem}") from None
    except InputError as exc:
        raise KubeConfigError(f"kubeconfig {exc}") from None
    except OSError as exc:
        raise KubeConfigError(f"kubeconfig {path}: {exc.strerror or exc}") from None
    if data is None:
        return  # empty: kubectl treats it as no configuration; the library says what is missing
    if not isinstance(data, dict):
        raise KubeConfigError(
            f"kubeconfig {path}: the top level is a {type(data).__name__}, not a mapping "
            "with clusters, contexts and users"
        )


def _config_message(message: str, context: str | None) -> str:
    if context and context in message:
        return f"context {context!r} not found"
    if "current-context" in message:
        return "no current-context set (pass --context NAME)"
    return message.strip().splitlines()[0] if message.strip() else "invalid kubeconfig"


def list_contexts(source: KubeconfigSource) -> tuple[list[str], str | None]:
    """Context names in the kubeconfig and the current one (for the TUI's context picker)."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, current = config.list_kube_config_contexts(config_file=source.paths)
    except (ConfigException, OSError, ValueError) as exc:
        raise KubeConfigError(f"kubeconfig {source.paths}: {exc}") from None
    names = [c.get("name", "") for c in contexts or []]
    return names, (current or {}).get("name")

