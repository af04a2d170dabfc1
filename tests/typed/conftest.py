"""Fixtures of the typed tests: the memory store and a standalone Redis, and typed views."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support.backends import backend_params
from tests.typed.models import ChatState
from valerie.infrastructure import EncodedSessionStore, InMemorySessionStore, RedisSessionStore
from valerie.infrastructure.session_store.typed import TypedSessionStore

TYPED_BACKENDS = ("memory", "redis")


@pytest.fixture(params=backend_params(TYPED_BACKENDS))  # "redis" marked `redis`
async def base_store(request: pytest.FixtureRequest) -> AsyncIterator[EncodedSessionStore]:
    """The memory store, then a Redis store on the session's redis-server (own prefix)."""
    if request.param == "memory":
        async with InMemorySessionStore() as memory:
            yield memory
    else:
        url = request.getfixturevalue("redis_server").url
        async with RedisSessionStore(url, prefix=f"typed:{uuid.uuid4().hex}:") as redis:
            yield redis


@pytest.fixture
def chats(base_store: EncodedSessionStore) -> TypedSessionStore[ChatState]:
    """A typed view of `ChatState` at schema version 1."""
    return base_store.typed(ChatState)
