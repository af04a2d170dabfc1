"""One client span per public operation, a child of the caller's span, read with the real SDK."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from tests.observability.readings import Telemetry
from tests.observability.stores import (
    OPERATIONS,
    Store,
    collide_once,
    every_operation,
    observed_store,
)
from valerie.infrastructure import VersionConflictError
from valerie.infrastructure.session_store.telemetry import names


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, telemetry: Telemetry) -> AsyncIterator[Store]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    async with observed_store(request.param, telemetry, server, f"span-{uuid.uuid4()}:") as made:
        yield made


async def test_each_operation_is_one_client_span_under_the_callers_span(
    store: Store, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("chat turn") as turn:
        await every_operation(store)
    spans = telemetry.spans.get_finished_spans()
    parent = next(span for span in spans if span.name == "chat turn")
    ours = [span for span in spans if span is not parent]
    assert {span.name for span in ours} == OPERATIONS
    for span in ours:
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == turn.get_span_context().span_id
        assert span.context.trace_id == turn.get_span_context().trace_id
        assert span.attributes is not None
        assert span.attributes[names.DB_OPERATION_NAME] == span.name
        assert span.start_time is not None
        assert span.end_time is not None
        assert parent.start_time is not None
        assert parent.end_time is not None
        assert parent.start_time <= span.start_time <= span.end_time <= parent.end_time
        assert span.status.status_code is StatusCode.UNSET


async def test_an_update_span_carries_its_attempts(store: Store, telemetry: Telemetry) -> None:
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("turn"):
        await collide_once(store)
    (update,) = [s for s in telemetry.spans.get_finished_spans() if s.name == "update"]
    assert update.attributes is not None
    assert update.attributes[names.UPDATE_ATTEMPTS] == 2


async def test_an_error_is_recorded_on_its_span(store: Store, telemetry: Telemetry) -> None:
    await store.save("s", {"n": 0})
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("turn"), pytest.raises(VersionConflictError):
        await store.save("s", {"n": 1}, if_version="0" * 40)
    failed = telemetry.spans.get_finished_spans()[-2]
    assert failed.name == "save"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes[names.ERROR_TYPE] == "VersionConflictError"
    (event,) = failed.events
    assert event.name == "exception"
    assert event.attributes == {"exception.type": "VersionConflictError"}


async def test_traces_can_be_turned_off(telemetry: Telemetry) -> None:
    from valerie.infrastructure import InMemorySessionStore
    from valerie.infrastructure.session_store.telemetry.otel import OpenTelemetryObserver

    observer = OpenTelemetryObserver(
        meter_provider=telemetry.meter_provider,
        tracer_provider=telemetry.tracer_provider,
        traces=False,
    )
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("turn"):
        async with InMemorySessionStore(observers=[observer]) as store:
            await store.save("s", {"n": 0})
    assert [span.name for span in telemetry.spans.get_finished_spans()] == ["turn"]
    assert telemetry.value(names.OPERATION_DURATION) == 1


async def test_outside_any_trace_there_are_no_spans_unless_root_spans_is_set(
    telemetry: Telemetry,
) -> None:
    from valerie.infrastructure import InMemorySessionStore
    from valerie.infrastructure.session_store.telemetry.otel import OpenTelemetryObserver

    for root_spans, expected in ((False, []), (True, ["save"])):
        telemetry.spans.clear()
        observer = OpenTelemetryObserver(
            meter_provider=telemetry.meter_provider,
            tracer_provider=telemetry.tracer_provider,
            root_spans=root_spans,
        )
        async with InMemorySessionStore(observers=[observer]) as store:
            await store.save("s", {"n": 0})
        spans = telemetry.spans.get_finished_spans()
        assert [span.name for span in spans] == expected
        assert all(span.parent is None for span in spans)
