"""runbook: a terminal runbook executor for production maintenance windows.

This package is the domain core: model, Markdown parser, lint, inventory,
executors and probes.  It knows nothing of journals (``sessions``) or screens
(``tui``).
"""

__version__ = "0.1.0"
