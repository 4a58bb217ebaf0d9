"""The append-only, hash-chained journal: events, the record format, reading and writing, the writer lock, signed checkpoints, the session directory's trust checks."""
