"""Stores with encryption on each backend: memory, one Redis server and a Redis Cluster."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.conftest import backend_url
from valerie.infrastructure import EncodedSessionStore, InMemorySessionStore, RedisSessionStore
from valerie.infrastructure.session_store.encryption import Encryption, EncryptionKey, Keyring

KEY_A = EncryptionKey("key-a", bytes(range(32)))
KEY_B = EncryptionKey("key-b", bytes(range(64, 96)))
PROTECTED_BACKENDS = ("memory", "redis", "redis-cluster")


def encryption(*keys: EncryptionKey, migrate: bool = False) -> Encryption:
    """Encryption with these keys, the first one sealing."""
    return Encryption(Keyring(keys), migrate_plaintext=migrate)


@dataclass
class Backend:
    """Opens stores on one backend; on Redis they share the data when they share the prefix.

    A memory store lives in one object, so "opening it again with other keys" hands back that
    object with its `encryption` changed, which is what a restarted process with new keys sees.
    """

    name: str
    url: str | None
    prefix: str = field(default_factory=lambda: f"test:{uuid.uuid4().hex}:")
    opened: list[EncodedSessionStore] = field(default_factory=list)
    memory: InMemorySessionStore | None = None

    def open(
        self,
        encryption: Encryption | None,
        *,
        prefix: str | None = None,
        max_state_bytes: int | None = None,
    ) -> EncodedSessionStore:
        if self.url is None:
            if self.memory is None:
                self.memory = InMemorySessionStore(
                    encryption=encryption, max_state_bytes=max_state_bytes
                )
            self.memory.encryption = encryption
            self.memory.max_state_bytes = max_state_bytes
            return self.memory
        store = RedisSessionStore(
            self.url,
            prefix=self.prefix if prefix is None else prefix,
            encryption=encryption,
            max_state_bytes=max_state_bytes,
        )
        self.opened.append(store)
        return store


@pytest.fixture(params=PROTECTED_BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Each backend in turn."""
    url = None if request.param == "memory" else backend_url(request, request.param)
    opened = Backend(request.param, url)
    yield opened
    for store in opened.opened:
        await store.clear()
        await store.close()


@pytest.fixture
async def redis_backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """One Redis server."""
    opened = Backend("redis", backend_url(request, "redis"))
    yield opened
    for store in opened.opened:
        await store.clear()
        await store.close()
