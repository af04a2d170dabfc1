"""One place that reports every public operation of every store to optional observers.

The store core runs each public call through `Instrumentation.observe` when observers are
attached, and not at all otherwise (one attribute test on the fast path). An event carries
what a metrics or tracing layer needs (OpenTelemetry's database conventions among them): the
operation's name, the backend's name, the outcome, the duration, the bytes moved, and for
`update` the attempts it took. Never a session id, a state or a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from .errors import (
    DecryptionError,
    LockNotOwnedError,
    MigrationError,
    NewerSchemaVersionError,
    SessionLockedError,
    StateValidationError,
    VersionConflictError,
)

if TYPE_CHECKING:
    from .backend import PoolUsage

_Result = TypeVar("_Result")

_logger = logging.getLogger("valerie.session_store")
# The root of the store's loggers (valerie.session_store.redis, .telemetry): a library's
# records go where the application's logging sends them, and nowhere (not to stderr) when it
# configures none.
_logger.addHandler(logging.NullHandler())


class Outcome(StrEnum):
    """How an operation ended."""

    OK = "ok"
    """It did what was asked (a write, a delete, a lease taken...)."""
    HIT = "hit"
    """A read (`load`, `exists`, `load_versioned`, `touch`, `ttl`) found the session."""
    MISS = "miss"
    """A read found no session."""
    CONFLICT = "conflict"
    """A compare-and-set met a concurrent change (`VersionConflictError`)."""
    LOCKED = "locked"
    """A lease stayed taken for longer than the caller waited (`SessionLockedError`)."""
    LOST = "lost"
    """A lease had expired while held (`LockNotOwnedError` on release or extend)."""
    ERROR = "error"
    """Any other error; `error_type` names it."""


class OperationEvent(NamedTuple):
    """One public operation, as observers see it.

    Attributes:
        operation: The store method (`save`, `load`, `update`, `acquire_lease`...).
        backend: The backend's name (`memory`, `redis`, or a third party's).
        outcome: How it ended.
        error_type: The exception's class name when it raised (also for conflicts), else `None`.
        duration: Seconds it took, on a monotonic clock (for `acquire_lease`: the wait).
        bytes: Bytes of stored values read or written (after codec and transforms).
        attempts: Tries `update` took (1 without a conflict); 1 for other operations.
        sessions: Sessions the call concerned (a batch's size; 1 otherwise).
    """

    operation: str
    backend: str
    outcome: Outcome
    error_type: str | None
    duration: float
    bytes: int
    attempts: int = 1
    sessions: int = 1


class ConnectionWaitEvent(NamedTuple):
    """A call waited for a free pooled connection (reported by pooled backends, e.g. Redis).

    Attributes:
        backend: The backend's name.
        duration: Seconds it waited.
        timed_out: Whether it gave up (the call then raised `BackendUnavailableError`).
    """

    backend: str
    duration: float
    timed_out: bool


class StateFailureEvent(NamedTuple):
    """A stored state could not be read: it did not decrypt, or a typed view could not take it.

    Attributes:
        operation: The operation that met it (`load`, `update`...).
        backend: The backend's name.
        error_type: `DecryptionError`, `MigrationError`, `NewerSchemaVersionError` or
            `StateValidationError`.
        reason: A `DecryptionError`'s `reason` (`tampered`, `unknown-key`, `plaintext`,
            `malformed`); `None` for the others.
    """

    operation: str
    backend: str
    error_type: str
    reason: str | None


STATE_FAILURES = (DecryptionError, MigrationError, NewerSchemaVersionError, StateValidationError)
"""The errors that mean a stored state could not be read, each reported as a
`StateFailureEvent` (besides the operation's own event)."""


_REPORTED = "_valerie_reported_as_state_failure"
"""Set on an error once a `StateFailureEvent` reported it."""


class Observer:
    """Receives events from stores it is attached to (`observers=[...]`); subclass it.

    Its methods do nothing by default. They run inline, on the store's event loop, so they
    must be quick and must not block; an exception they raise is logged and ignored.
    """

    def on_operation(self, event: OperationEvent) -> None:
        """Called once per public operation, when it ends (whether it succeeded or not)."""

    def on_connection_wait(self, event: ConnectionWaitEvent) -> None:
        """Called after a call waited for a pooled connection."""

    def on_state_failure(self, event: StateFailureEvent) -> None:
        """Called when a stored state could not be read (see `StateFailureEvent`)."""

    def on_attach(self, backend: str, pool_usage: Callable[[], PoolUsage | None]) -> None:
        """Called once when a store is created with this observer.

        Args:
            backend: The backend's name, as in the events.
            pool_usage: Returns the backend's connection pool state now (`None` without a
                pool); cheap enough to call whenever metrics are collected.
        """


Description = tuple[Outcome, int, int, int]
"""What `observe` learns from a result: outcome, bytes, attempts, sessions."""


class Instrumentation:
    """Times operations and hands their events to observers.

    Args:
        backend: The backend's name, put in every event.
        observers: Who receives the events; at least one (with none, stores skip this class).
    """

    __slots__ = ("backend", "observers")

    def __init__(self, backend: str, observers: Iterable[Observer]) -> None:
        self.backend = backend
        self.observers = tuple(observers)

    async def observe(
        self,
        operation: str,
        call: Awaitable[_Result],
        describe: Callable[[_Result], Description],
    ) -> _Result:
        """Await `call`, then report it as `operation`, described by `describe(result)`."""
        started = time.perf_counter()
        try:
            result = await call
        except BaseException as error:
            self.report(
                OperationEvent(
                    operation,
                    self.backend,
                    _outcome_of(error),
                    type(error).__name__,
                    time.perf_counter() - started,
                    0,
                )
            )
            if isinstance(error, STATE_FAILURES):
                self.state_failure(operation, error)
            raise
        outcome, size, attempts, sessions = describe(result)
        duration = time.perf_counter() - started
        # tuple.__new__ skips NamedTuple's Python-level __new__: half the cost, on every call.
        fields = (operation, self.backend, outcome, None, duration, size, attempts, sessions)
        self.report(tuple.__new__(OperationEvent, fields))
        return result

    def report_walk(
        self,
        operation: str,
        outcome: Outcome,
        error_type: str | None,
        duration: float,
        sessions: int,
    ) -> None:
        """Report a walk of the store (`iter_ids`) when it ends, however it ends."""
        self.report(
            OperationEvent(operation, self.backend, outcome, error_type, duration, 0, 1, sessions)
        )

    def report(self, event: OperationEvent) -> None:
        """Give `event` to every observer."""
        for observer in self.observers:
            try:
                observer.on_operation(event)
            except Exception:
                _logger.exception("observer %r failed on a %s event", observer, event.operation)

    def state_failure(self, operation: str, error: Exception) -> None:
        """Report a stored state that could not be read (one of `STATE_FAILURES`), once.

        An error already reported by the call that met it (a `load` inside an `update`'s
        function) is not reported again by the calls it passes through.
        """
        if getattr(error, _REPORTED, False):
            return
        setattr(error, _REPORTED, True)
        reason = error.reason if isinstance(error, DecryptionError) else None
        event = StateFailureEvent(operation, self.backend, type(error).__name__, reason)
        for observer in self.observers:
            try:
                observer.on_state_failure(event)
            except Exception:
                _logger.exception("observer %r failed on a state failure event", observer)

    def connection_wait(self, seconds: float, timed_out: bool) -> None:
        """Report a wait for a pooled connection; the hook a pooled backend calls."""
        event = ConnectionWaitEvent(self.backend, seconds, timed_out)
        for observer in self.observers:
            try:
                observer.on_connection_wait(event)
            except Exception:
                _logger.exception("observer %r failed on a connection wait event", observer)


def _outcome_of(error: BaseException) -> Outcome:
    if isinstance(error, VersionConflictError):
        return Outcome.CONFLICT
    if isinstance(error, SessionLockedError):
        return Outcome.LOCKED
    if isinstance(error, LockNotOwnedError):
        return Outcome.LOST
    return Outcome.ERROR
