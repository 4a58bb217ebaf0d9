"""Sessions: events, the append-only journal, replay to state, the engine, export and signing.

Depends on ``runbook`` (the domain core); never on ``tui`` or Textual.
"""
