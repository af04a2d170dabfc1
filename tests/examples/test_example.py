"""The example in examples/ runs as documented, on the memory default and on Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO
from tests.support.redis_server import RedisServer

EXAMPLE = REPO / "examples" / "session_store_usage.py"


def run_example(
    check: bool = True, example: Path = EXAMPLE, **environ: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALERIE_SESSION_")}
    return subprocess.run(
        [sys.executable, str(example)],
        env={**env, **environ},
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


def test_the_example_runs_on_the_memory_default() -> None:
    """With no configuration the example uses the in-memory store and completes."""
    output = run_example().stdout
    assert "InMemorySessionStore" in output
    assert "intent=book_flight" in output
    assert "after delete: None" in output


def test_the_example_runs_on_redis_when_configured(redis_server: RedisServer) -> None:
    """VALERIE_SESSION_STORE=redis switches the same example to Redis."""
    output = run_example(
        VALERIE_SESSION_STORE="redis",
        VALERIE_SESSION_REDIS_URL=redis_server.url,
        VALERIE_SESSION_PREFIX="example:",
    ).stdout
    assert "RedisSessionStore" in output
    assert "intent=book_flight" in output


def test_the_example_with_redis_down_ends_with_one_clear_line() -> None:
    """No traceback: one line on stderr naming the unreachable server, and exit status 1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the socket is closed
    result = run_example(
        check=False,
        VALERIE_SESSION_STORE="redis",
        VALERIE_SESSION_REDIS_URL=f"redis://:secret@127.0.0.1:{port}",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"the session store is unreachable: Redis at redis://***@127.0.0.1:{port}"
    )
    assert "secret" not in result.stderr + result.stdout
