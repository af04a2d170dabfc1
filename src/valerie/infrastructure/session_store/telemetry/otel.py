"""OpenTelemetry metrics and traces for every public operation, as an observer.

`OpenTelemetryObserver` turns the core's operation events (see `instrumentation`) into the
instruments of `names`: `db.client.operation.duration` and the pool's
`db.client.connection.*` after the OpenTelemetry database conventions, and what only a session
store knows under `valerie.session.*`. Each operation also becomes one client span, a child of
the caller's current span. Attributes are low-cardinality names only: never a session id, a
user id, a state or a value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..backend import PoolUsage
from ..instrumentation import (
    ConnectionWaitEvent,
    Observer,
    OperationEvent,
    Outcome,
    StateFailureEvent,
)
from . import names
from .providers import meter_from, tracer_from

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import TracerProvider

_LOADS = frozenset({"load", "load_versioned"})
_WRITES = frozenset({"save", "update"})
_LEASE_OUTCOMES = {Outcome.OK: "acquired", Outcome.LOCKED: "refused"}


class OpenTelemetryObserver(Observer):
    """Reports every operation of the stores it is attached to, to OpenTelemetry.

    `store = RedisSessionStore(..., observers=[OpenTelemetryObserver()])`. Needs the `otel`
    extra (`opentelemetry-api`); what it reports goes wherever the application's
    OpenTelemetry SDK sends it (nothing at all without an SDK: the API alone is a no-op).
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        pool_name: str | None = None,
        traces: bool = True,
        root_spans: bool = False,
    ) -> None:
        """Create the instruments.

        Args:
            meter_provider: Where the metrics go; OpenTelemetry's global provider by default.
            tracer_provider: Where the spans go; OpenTelemetry's global provider by default.
            pool_name: `db.client.connection.pool.name` of the pool metrics; the backend's
                name by default. Give each store its own when one application has several.
            traces: Whether to make a span for each operation.
            root_spans: Whether to make spans outside any trace too. By default an operation
                gets a span only under a caller's recording span (a request, a chat turn):
                a span of its own per session call, tied to nothing, costs more than a memory
                store's call and tells little.

        Raises:
            MissingDependencyError: `opentelemetry-api` is not installed.
        """
        meter = meter_from(meter_provider)  # first: it says how to install OpenTelemetry
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._span_kind = SpanKind.CLIENT
        self._error_status = Status(StatusCode.ERROR)
        self._pool_name = pool_name
        self._tracer = tracer_from(tracer_provider) if traces else None
        self._root_spans = root_spans
        from opentelemetry.trace import get_current_span

        self._current_span = get_current_span
        self._duration = meter.create_histogram(
            names.OPERATION_DURATION,
            unit="s",
            description="Duration of the session store's public operations.",
            explicit_bucket_boundaries_advisory=list(names.DURATION_BUCKETS),
        )
        self._lease_wait = meter.create_histogram(
            names.LEASE_WAIT_TIME,
            unit="s",
            description="Time lock() waited for a session's lease (taken or refused).",
            explicit_bucket_boundaries_advisory=list(names.LEASE_WAIT_BUCKETS),
        )
        self._size = meter.create_histogram(
            names.STATE_SIZE,
            unit="By",
            description="Size of one stored session state, as stored (after codec, transforms).",
            explicit_bucket_boundaries_advisory=list(names.SIZE_BUCKETS),
        )
        self._wait_time = meter.create_histogram(
            names.CONNECTION_WAIT_TIME,
            unit="s",
            description="Time a call waited for a free pooled connection.",
            explicit_bucket_boundaries_advisory=list(names.DURATION_BUCKETS),
        )
        # Counters are tallied here and read by the SDK when it collects: a dict increment
        # per event instead of an SDK measurement (which costs as much as a memory load).
        self._tallies: dict[str, dict[Attributes, int]] = {}
        for name, unit, description in (
            (names.LOADS, "{load}", "Loads of one session, by hit or miss."),
            (
                names.CONFLICTS,
                "{conflict}",
                "Compare-and-set writes that met a concurrent change.",
            ),
            (
                names.UPDATE_RETRIES,
                "{retry}",
                "Times update() ran its function again after a conflict.",
            ),
            (
                names.LEASES,
                "{lease}",
                "Leases acquired, refused (wait ran out) and lost (expired while held).",
            ),
            (
                names.CONNECTION_TIMEOUTS,
                "{timeout}",
                "Calls that gave up waiting for a free pooled connection.",
            ),
            (
                names.STATE_FAILURES,
                "{failure}",
                "Stored states that could not be read: not decrypted, or refused by a typed "
                "view (a failed migration, a newer schema, a state the model refuses).",
            ),
        ):
            tally = self._tallies[name] = {}
            meter.create_observable_counter(
                name, [_observe_tally(tally, _TALLY_KEYS[name])], unit=unit, description=description
            )
        self._attributes: dict[tuple[str, str, str | None], dict[str, str]] = {}
        self._pools: list[tuple[dict[str, str], Callable[[], PoolUsage | None]]] = []
        meter.create_observable_up_down_counter(
            names.CONNECTION_COUNT,
            [self._observe_pools(lambda usage: (("used", usage.used), ("idle", usage.idle)))],
            unit="{connection}",
            description="Pooled connections, by state: used by a call, or open and idle.",
        )
        meter.create_observable_up_down_counter(
            names.CONNECTION_MAX,
            [self._observe_pools(lambda usage: ((None, usage.max),))],
            unit="{connection}",
            description="Connections the pool opens at most (max_connections).",
        )
        meter.create_observable_up_down_counter(
            names.CONNECTION_PENDING_REQUESTS,
            [self._observe_pools(lambda usage: ((None, usage.pending),))],
            unit="{request}",
            description="Calls waiting for a free pooled connection.",
        )

    def on_attach(self, backend: str, pool_usage: Callable[[], PoolUsage | None]) -> None:
        """Watch the pool of a store created with this observer (if its backend has one)."""
        self._pools.append((self._pool_attributes(backend), pool_usage))

    def _pool_attributes(self, backend: str) -> dict[str, str]:
        return {names.DB_SYSTEM_NAME: backend, names.POOL_NAME: self._pool_name or backend}

    def _observe_pools(
        self, values: Callable[[PoolUsage], Iterable[tuple[str | None, int]]]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        from opentelemetry.metrics import Observation

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            observations = []
            for attributes, pool_usage in self._pools:
                usage = pool_usage()
                if usage is None:
                    continue
                for state, value in values(usage):
                    if state is None:
                        observations.append(Observation(value, attributes))
                    else:
                        observations.append(
                            Observation(value, {**attributes, names.CONNECTION_STATE: state})
                        )
            return observations

        return observe

    def on_operation(self, event: OperationEvent) -> None:
        """Record `event` in the instruments, and as a span."""
        backend, operation, outcome = event.backend, event.operation, event.outcome
        key = (backend, operation, event.error_type)
        attributes = self._attributes.get(key)
        if attributes is None:
            attributes = self._attributes[key] = _operation_attributes(*key)
        self._duration.record(event.duration, attributes)
        tallies = self._tallies
        if operation in _LOADS and outcome in (Outcome.HIT, Outcome.MISS):
            _add(tallies[names.LOADS], (backend, operation, outcome.value))
        if operation == "update" and event.attempts > 1:
            _add(tallies[names.UPDATE_RETRIES], (backend,), event.attempts - 1)
            _add(tallies[names.CONFLICTS], (backend, operation), event.attempts - 1)
        if outcome is Outcome.CONFLICT:
            _add(tallies[names.CONFLICTS], (backend, operation))
        if operation == "acquire_lease":
            self._lease_wait.record(event.duration, {names.DB_SYSTEM_NAME: backend})
            lease_outcome = _LEASE_OUTCOMES.get(outcome)
            if lease_outcome is not None:
                _add(tallies[names.LEASES], (backend, lease_outcome))
        elif outcome is Outcome.LOST:
            _add(tallies[names.LEASES], (backend, "lost"))
        if operation in _WRITES and event.bytes:
            self._size.record(event.bytes, self._attributes_without_error(backend, operation))
        if self._tracer is not None and (self._root_spans or self._current_span().is_recording()):
            self._span(event, attributes)

    def _attributes_without_error(self, backend: str, operation: str) -> dict[str, str]:
        key = (backend, operation, None)
        attributes = self._attributes.get(key)
        if attributes is None:
            attributes = self._attributes[key] = _operation_attributes(*key)
        return attributes

    def _span(self, event: OperationEvent, attributes: dict[str, str]) -> None:
        # The event comes when the operation has ended, in the caller's task: its current span
        # is the parent, and the span is dated back to when the operation started.
        assert self._tracer is not None
        end = time.time_ns()
        span = self._tracer.start_span(
            event.operation,
            kind=self._span_kind,
            attributes=attributes,
            start_time=end - int(event.duration * 1e9),
        )
        if event.operation == "update":
            span.set_attribute(names.UPDATE_ATTEMPTS, event.attempts)
        if event.error_type is not None:
            span.add_event("exception", {"exception.type": event.error_type}, timestamp=end)
            span.set_status(self._error_status)
        span.end(end_time=end)

    def on_state_failure(self, event: StateFailureEvent) -> None:
        """Count a stored state that could not be read, by its error (and a decryption's reason)."""
        _add(
            self._tallies[names.STATE_FAILURES],
            (event.backend, event.operation, event.error_type, event.reason),
        )

    def on_connection_wait(self, event: ConnectionWaitEvent) -> None:
        """Record a wait for a pooled connection, and whether it timed out."""
        attributes = self._pool_attributes(event.backend)
        self._wait_time.record(event.duration, attributes)
        if event.timed_out:
            _add(
                self._tallies[names.CONNECTION_TIMEOUTS],
                (event.backend, attributes[names.POOL_NAME]),
            )


Attributes = tuple[str | None, ...]
"""The values of a tally's attributes, in the order `_TALLY_KEYS` names them (`None`: left out)."""

_TALLY_KEYS = {
    names.LOADS: (names.DB_SYSTEM_NAME, names.DB_OPERATION_NAME, names.LOAD_OUTCOME),
    names.CONFLICTS: (names.DB_SYSTEM_NAME, names.DB_OPERATION_NAME),
    names.UPDATE_RETRIES: (names.DB_SYSTEM_NAME,),
    names.LEASES: (names.DB_SYSTEM_NAME, names.LEASE_OUTCOME),
    names.CONNECTION_TIMEOUTS: (names.DB_SYSTEM_NAME, names.POOL_NAME),
    names.STATE_FAILURES: (
        names.DB_SYSTEM_NAME,
        names.DB_OPERATION_NAME,
        names.ERROR_TYPE,
        names.DECRYPTION_REASON,
    ),
}


def _add(tally: dict[Attributes, int], attributes: Attributes, amount: int = 1) -> None:
    tally[attributes] = tally.get(attributes, 0) + amount


def _observe_tally(
    tally: dict[Attributes, int], keys: tuple[str, ...]
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    from opentelemetry.metrics import Observation

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(
                count,
                {key: value for key, value in zip(keys, values, strict=True) if value is not None},
            )
            for values, count in list(tally.items())
        ]

    return observe


def _operation_attributes(backend: str, operation: str, error_type: str | None) -> dict[str, str]:
    attributes = {names.DB_SYSTEM_NAME: backend, names.DB_OPERATION_NAME: operation}
    if error_type is not None:
        attributes[names.ERROR_TYPE] = error_type
    return attributes
