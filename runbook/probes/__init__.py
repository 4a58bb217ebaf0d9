"""Acceptance probes: checks that an acceptance criterion holds, against Kubernetes or a host.

A checkbox may carry a probe expression (``<!-- probe: k8s.nodes_ready(min=5) -->``
after it in the runbook, or ``TASK.acceptance.N: {probe: ...}`` in the bindings
file).  :func:`run_probe` runs one and returns a :class:`ProbeOutcome` with status
``pass``, ``fail``, ``error`` or ``not_configured`` and the evidence found.

Importing this package is cheap: the ``kubernetes`` client is imported only when
a Kubernetes probe actually runs.

Modules: ``expression`` (parsing, no eval), ``registry`` (which probes exist and
their arguments), ``k8s`` / ``k8s_checks`` (Kubernetes probes), ``cmd`` (shell
command probes through an Executor), ``kubeconfig``, ``runner`` (run_probe),
``suggest`` (probes proposed for lint), ``command`` (``runbook probe``).
"""

from runbook.probes.expression import ProbeCall, ProbeSyntaxError, format_probe, parse_probe
from runbook.probes.registry import (
    ERROR,
    FAIL,
    NOT_CONFIGURED,
    PASS,
    STATUSES,
    BoundProbe,
    ProbeSpec,
    Verdict,
    bind,
    check_probe,
    probes,
)
from runbook.probes.runner import (
    ProbeContext,
    ProbeOutcome,
    probe_event_fields,
    run_checkbox,
    run_probe,
    run_probes,
)

__all__ = [
    "ERROR",
    "FAIL",
    "NOT_CONFIGURED",
    "PASS",
    "STATUSES",
    "BoundProbe",
    "ProbeCall",
    "ProbeContext",
    "ProbeOutcome",
    "ProbeSpec",
    "ProbeSyntaxError",
    "Verdict",
    "bind",
    "check_probe",
    "format_probe",
    "parse_probe",
    "probe_event_fields",
    "probes",
    "run_checkbox",
    "run_probe",
    "run_probes",
]
