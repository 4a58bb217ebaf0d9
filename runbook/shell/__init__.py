"""Reading shell text without running it: what is shell, which commands destroy, where errexit stopped a script."""
