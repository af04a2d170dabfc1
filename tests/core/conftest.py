"""Fixtures of the core tests: one store per built-in backend (memory, one Redis server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.support.backends import backend_params
from tests.support.redis_server import RedisServer
from valerie.infrastructure import EncodedSessionStore, InMemorySessionStore, RedisSessionStore

MakeStore = Callable[..., EncodedSessionStore]


@pytest.fixture(params=backend_params(("memory", "redis")))  # "redis" marked `redis`
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
