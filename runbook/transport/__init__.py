"""Where a step's script runs: the executor contract, the local and SSH executors, the SSH pool and config, detached runs, the child environment."""
