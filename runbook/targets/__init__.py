"""Which machines a step runs on: inventories, the bindings file beside a runbook, and suggestions for untargeted steps."""
