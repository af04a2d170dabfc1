"""Telemetry overhead: save, load and update with the OpenTelemetry SDK on, against none.

Each valerie store runs twice over the same sessions: plain, and with an
`OpenTelemetryObserver` on the real SDK (every instrument aggregated, one span per operation
through a span processor whose exporter drops them: the cost of telemetry without the cost of
shipping it). Both are interleaved within each round and each ratio is paired with the plain
store's rate in the same round.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from benchmarks import report
from benchmarks.contestants import VALERIE_MEMORY, VALERIE_REDIS
from benchmarks.harness import (
    Cell,
    Context,
    Figure,
    PieceRunner,
    Scenario,
    Section,
    Table,
    measure_rounds,
    summarize,
    timed_calls,
)
from benchmarks.scenarios.valerie_pair import closing, operation, seed, valerie_stores, versus_plain
from benchmarks.workload import session_ids
from valerie.infrastructure.session_store.telemetry.otel import OpenTelemetryObserver

NAME = "telemetry"
CONCURRENCIES = (1, 64)
OPERATIONS = ("save", "load", "update")
WITH_OTEL = " + OpenTelemetry"
STORES = (VALERIE_REDIS, VALERIE_MEMORY)


class DroppingExporter(SpanExporter):
    """Takes spans and does nothing with them."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def observer() -> OpenTelemetryObserver:
    """An observer on the real SDK whose readings are aggregated and never shipped."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(DroppingExporter()))
    return OpenTelemetryObserver(
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        tracer_provider=tracer_provider,
    )


PER_EVENT = "µs per event, metrics only (no span: no caller's span)"
PER_EVENT_WITH_SPAN = "µs per event, metrics and a span (under a caller's span)"
PER_RECORD = "µs per bare SDK histogram record (the floor of a measured operation)"


def per_event_costs(count: int = 20_000) -> dict[str, Figure]:
    """Time the observer alone on one event, and the SDK's own histogram record."""
    from opentelemetry.trace import use_span

    from valerie.infrastructure.session_store.instrumentation import OperationEvent, Outcome

    event = OperationEvent("load", "memory", Outcome.HIT, None, 1e-5, 2000)
    watched = observer()
    costs: dict[str, Figure] = {}
    start = time.perf_counter()
    for _ in range(count):
        watched.on_operation(event)
    costs[PER_EVENT] = Figure((time.perf_counter() - start) / count * 1e6, "µs")
    tracer_provider = TracerProvider()
    parent = tracer_provider.get_tracer("benchmark").start_span("turn")
    with use_span(parent, end_on_exit=True):
        start = time.perf_counter()
        for _ in range(count):
            watched.on_operation(event)
        costs[PER_EVENT_WITH_SPAN] = Figure((time.perf_counter() - start) / count * 1e6, "µs")
    histogram = (
        MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("b").create_histogram("h")
    )
    attributes = {"db.system.name": "memory", "db.operation.name": "load"}
    start = time.perf_counter()
    for _ in range(count):
        histogram.record(1e-5, attributes)
    costs[PER_RECORD] = Figure((time.perf_counter() - start) / count * 1e6, "µs")
    return costs


async def run(context: Context) -> Section:
    """Measure each operation with and without telemetry, interleaved, on both stores."""
    mode, state = context.mode, context.state
    server = context.servers.standalone()
    stores = {
        **valerie_stores(server.url, "bench:otel:"),
        **valerie_stores(server.url, "bench:otel:", WITH_OTEL, observers=lambda: [observer()]),
    }
    ids = session_ids()
    groups: list[dict[Cell, PieceRunner]] = [
        {
            Cell(name, kind, tasks): partial(
                timed_calls, operation(stores[name], kind, state), ids, tasks
            )
            for name in (base, base + WITH_OTEL)
        }
        for base in STORES
        for kind in OPERATIONS
        for tasks in CONCURRENCIES
    ]
    async with closing(stores.values()):
        await seed(stores.values(), ids, state)
        samples = await measure_rounds(groups, mode, mode.update_slice_seconds, NAME)
    figures = per_event_costs()
    cells = summarize(samples, "ops/s", versus_plain(WITH_OTEL, "vs plain"))
    rows: list[tuple[str, ...]] = []
    for base in STORES:
        for kind in OPERATIONS:
            for tasks in CONCURRENCIES:
                plain = cells[Cell(base, kind, tasks)]
                observed = cells[Cell(base + WITH_OTEL, kind, tasks)]
                rows.append(
                    (
                        base,
                        kind,
                        str(tasks),
                        report.rate(plain),
                        report.rate(observed),
                        *report.ratio(observed.ratios.get("vs plain")),
                    )
                )
        rows.append(())
    return Section(
        scenario=NAME,
        title=(
            f"Telemetry overhead: ops/s, median of {mode.rounds} rounds, plain and with the "
            f"OpenTelemetry SDK on (metrics aggregated, spans dropped), interleaved"
        ),
        notes=[
            "ratio = median over rounds of (with OpenTelemetry / plain), same store, same "
            "concurrency, same round, with its (min-max); 0.97 means 3% slower",
            *(f"{name}: {figure.value:.1f} µs" for name, figure in figures.items()),
        ],
        tables=[
            Table(
                ("store", "op", "tasks", "plain", "with otel", "ratio", "(min-max)"),
                rows[:-1],
                2,
            )
        ],
        cells=cells,
        figures=figures,
    )


SCENARIO = Scenario(
    NAME, "save, load and update with the OpenTelemetry SDK on, against the same store without", run
)
