"""Planning a step without I/O: targets, substitution of values, secret literals, and the guards to resolve before it runs."""
