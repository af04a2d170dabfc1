"""examples/metrics_prometheus.py, run as a user would: simulated turns, then /metrics served."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.redis_server import RedisServer, free_port

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "metrics_prometheus.py"


def scrape(port: int, process: subprocess.Popen[str], deadline: float) -> str:
    """GET /metrics once the example serves it (the simulated turns done)."""
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                text: str = reply.read().decode()
        except OSError:
            time.sleep(0.2)
            continue
        if "redis_memory_used_bytes" in text:
            return text
        time.sleep(0.2)
    raise AssertionError("the example never served the store's metrics")


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
        text = scrape(port, process, time.monotonic() + 60)
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert f"40 turns done; metrics on http://127.0.0.1:{port}/metrics" in out, err
    assert 'db_client_operation_duration_seconds_count{db_operation_name="update"' in text
    assert 'valerie_session_load_outcome="miss"' in text
    assert 'valerie_session_lease_outcome="acquired"' in text
    assert "db_client_connection_max{" in text
    assert "redis_maxmemory_bytes{" in text
