"""Read what the real OpenTelemetry SDK collected: its in-memory metric reader and span exporter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Telemetry:
    """A meter provider and a tracer provider of their own, read in memory."""

    reader: InMemoryMetricReader
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    tracer_provider: TracerProvider

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """Every data point of instrument `name`: (attributes, point)."""
        return list(self._points(name))

    def _points(self, name: str) -> Iterator[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        if data is None:
            return
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            yield dict(point.attributes or {}), point

    def value(self, name: str, **attributes: Any) -> float:
        """The sum of a counter's or gauge's points whose attributes include `attributes`
        (a histogram's count)."""
        total = 0.0
        for found, point in self.points(name):
            if attributes.items() <= found.items():
                if isinstance(point, HistogramDataPoint):
                    total += point.count
                else:
                    assert isinstance(point, NumberDataPoint)
                    total += point.value
        return total

    def instruments(self) -> set[str]:
        """The names of the instruments that reported anything."""
        data = self.reader.get_metrics_data()
        if data is None:
            return set()
        return {
            metric.name
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }


def make_telemetry() -> Telemetry:
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    return Telemetry(reader, MeterProvider(metric_readers=[reader]), spans, tracer_provider)
