"""How the command line reports a failure: one line on stderr, an exit code, no secret."""

from __future__ import annotations

import click

from valerie.infrastructure import (
    AccessDeniedError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    InvalidArgumentError,
    MissingDependencyError,
    SessionStoreError,
)

from .exit_codes import ExitCode


class Scrubber:
    """Replaces the configuration's secrets (password, user name) by `***` in any text.

    A second line of defence: the store's own messages mask URLs already, but an error from a
    library below (redis-py) is shown too, and must not carry a credential either.
    """

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        # Longest first, so that a secret containing another is replaced whole.
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """Return `text` with every secret replaced by `***`."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


SCRUB = Scrubber()
"""The process's scrubber; `settings.resolve` fills it with the configuration's secrets."""


class CommandFailure(Exception):
    """A failure that ends the command with `code` and a one-line message on stderr."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(SCRUB(message))
        self.code = code

    def show(self) -> None:
        """Print `error: <message>` on stderr."""
        click.echo(f"error: {SCRUB(str(self))}", err=True)


def code_for(error: SessionStoreError) -> ExitCode:
    """The exit code of a store error."""
    if isinstance(error, (ConfigurationError, MissingDependencyError)):
        return ExitCode.CONFIGURATION
    if isinstance(error, AccessDeniedError):
        return ExitCode.ACCESS_DENIED
    if isinstance(error, BackendUnavailableError):
        return ExitCode.UNAVAILABLE
    if isinstance(error, (CorruptedSessionError, InvalidArgumentError)):
        return ExitCode.DATA
    return ExitCode.BACKEND


def failure_from(error: SessionStoreError) -> CommandFailure:
    """The `CommandFailure` that reports a store error."""
    return CommandFailure(str(error), code_for(error))
