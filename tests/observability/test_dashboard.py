"""The Grafana dashboard in monitoring/ queries exactly what the store registers.

A real Redis store moves every instrument of the observer and the sampler; the real
OpenTelemetry Prometheus exporter renders them; every metric and label a panel queries must
be among them, and every instrument must be on a panel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.stores import every_signal, private_server
from tests.support.redis_server import RedisServer
from valerie.infrastructure import RedisSessionStore
from valerie.infrastructure.session_store.telemetry import RedisInfoSampler, names
from valerie.infrastructure.session_store.telemetry.otel import OpenTelemetryObserver

# These tests start redis-server processes of their own.
pytestmark = pytest.mark.redis

DASHBOARD = Path(__file__).parent.parent.parent / "monitoring" / "grafana-dashboard.json"
SUFFIXES = ("_bucket", "_count", "_sum", "_created")


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with private_server("--maxmemory", "64mb") as made:
        yield made


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def queried_metrics(expr: str) -> dict[str, set[str]]:
    """The metrics an expression reads, each with the labels it matches on or groups by."""
    groups = re.findall(r"\bby \(([^)]*)\)", expr)
    grouped = {label.strip() for group in groups for label in group.split(",")} - {"le"}
    body = re.sub(r"\bby \([^)]*\)", "", expr)
    found: dict[str, set[str]] = {}
    for metric, matchers in re.findall(r"\b([a-z_]+)(\{[^}]*\})?", body):
        if metric.startswith(("db_", "valerie_", "redis_")):
            matched = set(re.findall(r"([a-z_]+)\s*=", matchers))
            found.setdefault(metric, set()).update(grouped | matched)
    return found


async def test_every_panel_queries_an_emitted_metric_and_every_instrument_has_a_panel(
    server: RedisServer,
) -> None:
    registry = CollectorRegistry()
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry), memory])
    observer = OpenTelemetryObserver(meter_provider=provider, tracer_provider=TracerProvider())
    async with RedisSessionStore(
        server.url, max_connections=1, timeout=0.3, retries=0, observers=[observer]
    ) as store:
        sampler = RedisInfoSampler.for_store(store, meter_provider=provider)
        await every_signal(store, server)
        await sampler.sample()
        exposition = generate_latest(registry).decode()
        data = memory.get_metrics_data()
    assert data is not None
    registered = {
        metric.name
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert registered == names.INSTRUMENTS

    emitted: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            emitted.setdefault(sample.name, set()).update(sample.labels)
    panels = [queried_metrics(expr) for expr in queries()]
    assert all(panels), "a query names no metric of the store"
    on_panels = set()
    for panel in panels:
        for metric, labels in panel.items():
            assert metric in emitted, f"{metric} is on the dashboard but not emitted"
            assert labels <= emitted[metric], f"{metric} has no label {labels - emitted[metric]}"
            on_panels.add(metric)
    families = {_family(name) for name in emitted if name.startswith(("db_", "valerie_", "redis_"))}
    assert {_family(name) for name in on_panels} == families


def _family(sample: str) -> str:
    for suffix in SUFFIXES:
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample
