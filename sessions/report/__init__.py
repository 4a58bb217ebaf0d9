"""The session report built from the journal alone: model, defensive redaction, Markdown, JSON and HTML renderings."""
