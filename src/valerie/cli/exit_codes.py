"""The exit codes scripts can rely on, one meaning each (doctor's 1 and 2 are its verdict)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """How a command ended."""

    OK = 0
    WARNINGS = 1
    """doctor: some check warned; clear without --yes: nothing was deleted."""
    FAILURES = 2
    """doctor: some check failed (Click's usage errors are 2 as well)."""
    NOT_FOUND = 3
    """The session named does not exist (or has expired)."""
    CONFIGURATION = 4
    """The configuration (flags or VALERIE_SESSION_* variables) is not allowed."""
    UNAVAILABLE = 5
    """The server could not be reached or did not answer in time."""
    ACCESS_DENIED = 6
    """The server refused the credentials, a permission or a certificate."""
    DATA = 7
    """Bad data: a stored value that is not a session, or import lines that were refused."""
    BACKEND = 8
    """The server refused a command (out of memory, for one)."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C); what was done so far stays done."""
