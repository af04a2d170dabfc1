"""Fixtures: a private redis-server for the session, and one store per backend for each test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.redis_server import RedisServer, RedisServerMissing
from valerie.infrastructure import EncodedSessionStore, InMemorySessionStore, RedisSessionStore

BACKENDS = ("memory", "redis")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test session's own; fails the run (never skips) if not installed."""
    try:
        server = RedisServer()
    except RedisServerMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    with server:
        yield server


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisSessionStore]:
    """A Redis store with a prefix of its own, so tests never see each other's keys."""
    async with RedisSessionStore(redis_server.url, prefix=f"test:{uuid.uuid4().hex}:") as store:
        yield store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EncodedSessionStore]:
    """Each backend in turn: the contract suite runs once per backend."""
    if request.param == "memory":
        async with InMemorySessionStore() as memory_store:
            yield memory_store
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"test:{uuid.uuid4().hex}:"
        async with RedisSessionStore(server.url, prefix=prefix) as redis_store:
            yield redis_store
