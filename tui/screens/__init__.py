"""Screens: the main runbook screen and the resume prompt."""
