"""The session layer's CLI handlers: ``runbook exec``, ``export``, ``verify``, ``sessions`` and ``journal``."""
