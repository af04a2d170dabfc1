"""examples/typed_sessions.py runs as documented, on the memory default and on Redis."""

from __future__ import annotations

from pathlib import Path

from tests.examples.test_example import run_example
from tests.support.redis_server import RedisServer

EXAMPLE = Path(__file__).parents[2] / "examples" / "typed_sessions.py"


def check(output: str) -> None:
    assert "saved by v1: {'user_id': 'user-123', 'step': 4" in output
    assert "typed state: turns=6, intent=Intent.BOOK_FLIGHT, 4 messages" in output
    assert "schema version 2" in output
    assert "the old code cannot overwrite it" in output


def test_the_typed_example_runs_on_the_memory_default() -> None:
    """A v1 session migrates to v2, two typed turns, and the old code is refused."""
    check(run_example(example=EXAMPLE).stdout)


def test_the_typed_example_runs_on_redis_when_configured(redis_server: RedisServer) -> None:
    """The same on Redis."""
    check(
        run_example(
            example=EXAMPLE,
            VALERIE_SESSION_STORE="redis",
            VALERIE_SESSION_REDIS_URL=redis_server.url,
            VALERIE_SESSION_PREFIX="typed-example:",
        ).stdout
    )
