"""Running a command's coroutine, with store errors and Ctrl-C turned into exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from valerie.infrastructure import SessionStoreError

from .errors import CommandFailure, failure_from
from .exit_codes import ExitCode

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end on a new event loop.

    Raises:
        CommandFailure: A store error (with its exit code), or an interruption.
    """
    try:
        return asyncio.run(coroutine)
    except SessionStoreError as error:
        raise failure_from(error) from None
    except KeyboardInterrupt:
        raise CommandFailure(
            "interrupted; what was done so far stays done", ExitCode.INTERRUPTED
        ) from None
