"""Session state, a pure fold over journal events, and the pure views of it (a step's recap, the window's clock)."""
