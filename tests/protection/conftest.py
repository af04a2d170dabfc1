"""Stores with encryption on each backend: memory, one Redis server and a Redis Cluster."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.support.backends import backend_params, backend_url
from tests.support.redis_server import RedisServer
from valerie.infrastructure import (
    EncodedSessionStore,
    MemoryBackend,
    RedisSessionStore,
    SessionState,
)
from valerie.infrastructure.session_store.encryption import Encryption, EncryptionKey, Keyring

KEY_A = EncryptionKey("key-a", bytes(range(32)))
KEY_B = EncryptionKey("key-b", bytes(range(64, 96)))
PROTECTED_BACKENDS = ("memory", "redis", "redis-cluster")


def bump(state: SessionState | None) -> SessionState:
    """An update function: add 1 to the state's counter `n` (from 0 for a new session)."""
    state = state or {"n": 0}
    state["n"] += 1
    return state


def encryption(*keys: EncryptionKey, migrate: bool = False) -> Encryption:
    """Encryption with these keys, the first one sealing."""
    return Encryption(Keyring(keys), migrate_plaintext=migrate)


@dataclass
class Backend:
    """Opens stores on one backend; on Redis they share the data when they share the prefix.

    On memory, every store opened is the store core over one shared `MemoryBackend`.
    """

    name: str
    url: str | None
    prefix: str = field(default_factory=lambda: f"test:{uuid.uuid4().hex}:")
    opened: list[EncodedSessionStore] = field(default_factory=list)
    memory: MemoryBackend = field(default_factory=MemoryBackend)

    def open(
        self,
        encryption: Encryption | None,
        *,
        prefix: str | None = None,
        max_state_bytes: int | None = None,
    ) -> EncodedSessionStore:
        if self.url is None:
            # Another store over the same memory: what a process restarted with other
            # settings would see, were the memory to outlive it.
            return EncodedSessionStore(
                self.memory, encryption=encryption, max_state_bytes=max_state_bytes
            )
        store = RedisSessionStore(
            self.url,
            prefix=self.prefix if prefix is None else prefix,
            encryption=encryption,
            max_state_bytes=max_state_bytes,
        )
        self.opened.append(store)
        return store


@pytest.fixture(params=backend_params(PROTECTED_BACKENDS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Each backend in turn."""
    url = None if request.param == "memory" else backend_url(request, request.param)
    opened = Backend(request.param, url)
    yield opened
    for store in opened.opened:
        await store.clear()
        await store.close()


@pytest.fixture
async def redis_backend(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[Backend]:
    """One Redis server (`redis_server`, named so that the test is marked `redis`)."""
    opened = Backend("redis", backend_url(request, "redis"))
    yield opened
    for store in opened.opened:
        await store.clear()
        await store.close()
