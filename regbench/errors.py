"""Errors that reach the user as one line and an exit code, never as a traceback."""

from __future__ import annotations


class RegbenchError(Exception):
    """A problem the user can fix; the CLI prints its message on one line."""

    exit_code = 2


class ConfigError(RegbenchError):
    """A configuration value or override that is not allowed."""


class DataError(RegbenchError):
    """Dataset files that are missing, unreadable or corrupted."""


class RunDirError(RegbenchError):
    """A run directory that cannot be used (missing, not a run, unwritable)."""
