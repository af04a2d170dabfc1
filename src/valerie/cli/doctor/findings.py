"""What a check finds, and the verdict (exit code) of them all."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..exit_codes import ExitCode


class Status(Enum):
    """A check's outcome, in order of gravity."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


GRAVITY = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclass(frozen=True)
class Finding:
    """One check's outcome, with one line that says what was found and how to fix it."""

    check: str
    status: Status
    message: str

    def as_json(self) -> dict[str, Any]:
        """The finding for `--json`."""
        return {"check": self.check, "status": self.status.value, "message": self.message}


def passed(check: str, message: str) -> Finding:
    """A check that passed."""
    return Finding(check, Status.PASS, message)


def warned(check: str, message: str) -> Finding:
    """A check that found something to look at, or could not look."""
    return Finding(check, Status.WARN, message)


def failed(check: str, message: str) -> Finding:
    """A check that found a misconfiguration that loses sessions or breaks the store."""
    return Finding(check, Status.FAIL, message)


def worst(findings: list[Finding]) -> Status:
    """The gravest status among the findings (PASS for none)."""
    return max((f.status for f in findings), key=GRAVITY.__getitem__, default=Status.PASS)


def exit_code(findings: list[Finding]) -> ExitCode:
    """0 when all passed, 1 with warnings, 2 with failures."""
    return {
        Status.PASS: ExitCode.OK,
        Status.WARN: ExitCode.WARNINGS,
        Status.FAIL: ExitCode.FAILURES,
    }[worst(findings)]
