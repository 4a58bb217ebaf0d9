"""Text on its way to a screen, a journal or a report: terminal controls neutralised, secret values redacted."""
