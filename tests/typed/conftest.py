"""Fixtures of the typed tests: the memory store and a standalone Redis, and typed views."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.backends import backend_params, open_store
from tests.typed.models import ChatState
from valerie.infrastructure import EncodedSessionStore
from valerie.infrastructure.session_store.typed import TypedSessionStore

TYPED_BACKENDS = ("memory", "redis")


@pytest.fixture(params=backend_params(TYPED_BACKENDS))
async def base_store(request: pytest.FixtureRequest) -> AsyncIterator[EncodedSessionStore]:
    """The memory store, then a Redis store on the session's redis-server (own prefix)."""
    async with open_store(request, request.param) as store:
        yield store


@pytest.fixture
def chats(base_store: EncodedSessionStore) -> TypedSessionStore[ChatState]:
    """A typed view of `ChatState` at schema version 1."""
    return base_store.typed(ChatState)
