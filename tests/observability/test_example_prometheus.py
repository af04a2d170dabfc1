"""examples/metrics_prometheus.py, run as a user would: simulated turns, then /metrics served."""

from __future__ import annotations

import select
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer, free_port

# These tests start redis-server processes of their own.
pytestmark = pytest.mark.redis

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "metrics_prometheus.py"


def first_line(process: subprocess.Popen[str], deadline: float) -> str:
    """The example's line saying the turns are done (it then serves /metrics)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
    assert ready, "the example printed nothing in time"
    return process.stdout.readline()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text: str = reply.read().decode()
    return text


def test_the_prometheus_example_serves_the_store_metrics(redis_server: RedisServer) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, str(EXAMPLE), "--port", str(port), "--redis", redis_server.url),
            *("--users", "5", "--turns", "4", "--serve", "60"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = first_line(process, time.monotonic() + 60)
        text = scrape(port)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert line == f"40 turns done; metrics on http://127.0.0.1:{port}/metrics\n", err
    assert 'db_client_operation_duration_seconds_count{db_operation_name="update"' in text
    assert 'valerie_session_load_outcome="miss"' in text
    assert 'valerie_session_lease_outcome="acquired"' in text
    assert "db_client_connection_max{" in text
    assert "redis_maxmemory_bytes{" in text
