"""Fixtures of the core tests: one store per built-in backend (memory, one Redis server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.redis_server import RedisServer
from valerie.infrastructure import EncodedSessionStore, InMemorySessionStore, RedisSessionStore

MakeStore = Callable[..., EncodedSessionStore]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the Redis runs of these tests `redis` (once the suite registers that marker), so
    that `pytest -m "not redis"` leaves them out; the tests that use the Redis server directly
    get it from its fixture."""
    if not any(line.split(":")[0].strip() == "redis" for line in config.getini("markers")):
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("make_store") == "redis":
            item.add_marker(pytest.mark.redis)


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    """Makes stores of one backend with the given options (codec=, transforms=, observers=);
    each Redis store gets a prefix of its own. Closes them all at the end."""
    made: list[EncodedSessionStore] = []
    server: RedisServer | None = None
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")

    def make(**options: Any) -> EncodedSessionStore:
        store: EncodedSessionStore
        if server is None:
            store = InMemorySessionStore(**options)
        else:
            prefix = options.pop("prefix", f"core:{uuid.uuid4().hex}:")
            store = RedisSessionStore(server.url, prefix=prefix, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


async def raw_bytes(store: EncodedSessionStore, session_id: str) -> bytes | None:
    """The bytes the backend holds for a session, read through the public backend contract."""
    return await store.backend.read(session_id)
