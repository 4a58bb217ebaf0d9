"""Widgets of the runbook TUI, grouped by area; modal dialogs live in ``modals/``."""
