"""The domain layer's CLI handlers: ``runbook lint|show|plan`` and ``runbook probe``."""
