"""The session store's metrics for Prometheus: a few simulated chat turns, then `/metrics`.

Needs the OpenTelemetry SDK and its Prometheus exporter beside the `otel` extra:

    pip install -e '.[otel,redis]' opentelemetry-sdk opentelemetry-exporter-prometheus
    python examples/metrics_prometheus.py              # memory store, serves :9464/metrics
    python examples/metrics_prometheus.py --redis redis://localhost:6379

Then point Prometheus at it (`scrape_configs: [{job_name: valerie, static_configs:
[{targets: ["localhost:9464"]}]}]`) and import `monitoring/grafana-dashboard.json` in Grafana.
"""

from __future__ import annotations

import argparse
import asyncio
import random

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import start_http_server

from valerie.infrastructure import (
    InMemorySessionStore,
    RedisSessionStore,
    SessionLockedError,
    SessionState,
)
from valerie.infrastructure.session_store.telemetry import RedisInfoSampler
from valerie.infrastructure.session_store.telemetry.otel import OpenTelemetryObserver


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9464, help="where /metrics is served")
    parser.add_argument("--redis", metavar="URL", help="a Redis URL (default: memory store)")
    parser.add_argument("--users", type=int, default=20, help="simulated conversations")
    parser.add_argument("--turns", type=int, default=10, help="turns per conversation")
    parser.add_argument(
        "--serve", type=float, default=0.0, help="seconds to serve after the turns (0: forever)"
    )
    return parser.parse_args()


async def chat(store: InMemorySessionStore | RedisSessionStore, user: int, turns: int) -> None:
    """One user's conversation: bursts of messages that collide, and a locked turn."""

    def add_message(state: SessionState | None) -> SessionState:
        state = state or {"step": 0, "history": []}
        state["step"] += 1
        state["history"].append({"role": "user", "content": "x" * random.randint(10, 400)})
        return state

    session_id = f"user-{user}"
    await store.load(session_id)  # a miss: a new conversation
    for _ in range(turns):
        # Two messages of one user at once: update() absorbs the conflict.
        await asyncio.gather(*(store.update(session_id, add_message) for _ in range(2)))
        await store.load(session_id)
    try:
        async with store.lock(session_id, timeout=5, wait=1):
            await store.load(session_id)
    except SessionLockedError:
        pass


async def main() -> None:
    args = arguments()
    reader = PrometheusMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    observer = OpenTelemetryObserver(
        meter_provider=meter_provider, tracer_provider=TracerProvider()
    )
    start_http_server(args.port, addr="127.0.0.1")
    store: InMemorySessionStore | RedisSessionStore
    if args.redis:
        store = RedisSessionStore(args.redis, prefix="metrics-demo:", observers=[observer])
    else:
        store = InMemorySessionStore(observers=[observer])
    async with store:
        sampler = (
            RedisInfoSampler.for_store(store, interval=5, meter_provider=meter_provider)
            if isinstance(store, RedisSessionStore)
            else None
        )
        if sampler is not None:
            sampler.start()
        await asyncio.gather(*(chat(store, user, args.turns) for user in range(args.users)))
        url = f"http://127.0.0.1:{args.port}/metrics"
        print(f"{args.users * args.turns * 2} turns done; metrics on {url}", flush=True)
        if sampler is not None:
            await sampler.sample()
        await asyncio.sleep(args.serve or float("inf"))
        if sampler is not None:
            await sampler.stop()


if __name__ == "__main__":
    asyncio.run(main())
