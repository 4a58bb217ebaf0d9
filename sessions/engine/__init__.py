"""Running planned steps and journaling them: the session (the journal's only writer), the engine, step runs, recovery of detached runs, expectations, stop signals."""
