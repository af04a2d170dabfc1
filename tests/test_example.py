"""The example in examples/ runs as documented, on the memory default and on Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.redis_server import RedisServer

EXAMPLE = Path(__file__).parent.parent / "examples" / "session_store_usage.py"


def run_example(example: Path = EXAMPLE, **environ: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALERIE_SESSION_")}
    result = subprocess.run(
        [sys.executable, str(example)],
        env={**env, **environ},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def test_the_example_runs_on_the_memory_default() -> None:
    """With no configuration the example uses the in-memory store and completes."""
    output = run_example()
    assert "InMemorySessionStore" in output
    assert "intent=book_flight" in output
    assert "after delete: None" in output


def test_the_example_runs_on_redis_when_configured(redis_server: RedisServer) -> None:
    """VALERIE_SESSION_STORE=redis switches the same example to Redis."""
    output = run_example(
        VALERIE_SESSION_STORE="redis",
        VALERIE_SESSION_REDIS_URL=redis_server.url,
        VALERIE_SESSION_PREFIX="example:",
    )
    assert "RedisSessionStore" in output
    assert "intent=book_flight" in output
