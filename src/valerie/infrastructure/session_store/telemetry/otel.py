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
from ..instrumentation import ConnectionWaitEvent, Observer, OperationEvent, Outcome
from . import names
from .providers import meter_from, tracer_from

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import TracerProvider

_LOADS = frozenset({"load", "load_versioned"})
_SIZED = frozenset({"save", "load", "load_versioned", "update"})
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
    ) -> None:
        """Create the instruments.

        Args:
            meter_provider: Where the metrics go; OpenTelemetry's global provider by default.
            tracer_provider: Where the spans go; OpenTelemetry's global provider by default.
            pool_name: `db.client.connection.pool.name` of the pool metrics; the backend's
                name by default. Give each store its own when one application has several.
            traces: Whether to make a span for each operation.

        Raises:
            MissingDependencyError: `opentelemetry-api` is not installed.
        """
        meter = meter_from(meter_provider)  # first: it says how to install OpenTelemetry
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._span_kind = SpanKind.CLIENT
        self._error_status = Status(StatusCode.ERROR)
        self._pool_name = pool_name
        self._tracer = tracer_from(tracer_provider) if traces else None
        self._duration = meter.create_histogram(
            names.OPERATION_DURATION,
            unit="s",
            description="Duration of the session store's public operations.",
            explicit_bucket_boundaries_advisory=list(names.DURATION_BUCKETS),
        )
        self._loads = meter.create_counter(
            names.LOADS, unit="{load}", description="Loads of one session, by hit or miss."
        )
        self._conflicts = meter.create_counter(
            names.CONFLICTS,
            unit="{conflict}",
            description="Compare-and-set writes that met a concurrent change.",
        )
        self._retries = meter.create_counter(
            names.UPDATE_RETRIES,
            unit="{retry}",
            description="Times update() ran its function again after a conflict.",
        )
        self._lease_wait = meter.create_histogram(
            names.LEASE_WAIT_TIME,
            unit="s",
            description="Time lock() waited for a session's lease (taken or refused).",
            explicit_bucket_boundaries_advisory=list(names.LEASE_WAIT_BUCKETS),
        )
        self._leases = meter.create_counter(
            names.LEASES,
            unit="{lease}",
            description="Leases acquired, refused (wait ran out) and lost (expired while held).",
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
        self._timeouts = meter.create_counter(
            names.CONNECTION_TIMEOUTS,
            unit="{timeout}",
            description="Calls that gave up waiting for a free pooled connection.",
        )
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
        system = {names.DB_SYSTEM_NAME: event.backend}
        attributes = {**system, names.DB_OPERATION_NAME: event.operation}
        if event.error_type is not None:
            attributes[names.ERROR_TYPE] = event.error_type
        self._duration.record(event.duration, attributes)
        operation = {**system, names.DB_OPERATION_NAME: event.operation}
        outcome = event.outcome
        if event.operation in _LOADS and outcome in (Outcome.HIT, Outcome.MISS):
            self._loads.add(1, {**operation, names.LOAD_OUTCOME: outcome.value})
        if event.operation == "update" and event.attempts > 1:
            self._retries.add(event.attempts - 1, system)
            self._conflicts.add(event.attempts - 1, operation)
        if outcome is Outcome.CONFLICT:
            self._conflicts.add(1, operation)
        if event.operation == "acquire_lease":
            self._lease_wait.record(event.duration, system)
            lease_outcome = _LEASE_OUTCOMES.get(outcome)
            if lease_outcome is not None:
                self._leases.add(1, {**system, names.LEASE_OUTCOME: lease_outcome})
        elif outcome is Outcome.LOST:
            self._leases.add(1, {**system, names.LEASE_OUTCOME: "lost"})
        if event.operation in _SIZED and event.bytes:
            self._size.record(event.bytes, operation)
        if self._tracer is not None:
            self._span(event, attributes)

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

    def on_connection_wait(self, event: ConnectionWaitEvent) -> None:
        """Record a wait for a pooled connection, and whether it timed out."""
        attributes = self._pool_attributes(event.backend)
        self._wait_time.record(event.duration, attributes)
        if event.timed_out:
            self._timeouts.add(1, attributes)
