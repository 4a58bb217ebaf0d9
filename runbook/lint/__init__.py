"""Checks on a parsed runbook: structure, content, Kubernetes files, invisible characters."""
