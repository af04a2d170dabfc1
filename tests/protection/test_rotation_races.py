"""rotate_id in steps (the Cluster path) against a logout landing between its steps."""

from __future__ import annotations

import pytest

from tests.protection.conftest import Backend
from valerie.infrastructure import EncodedSessionStore, MemoryBackend, RedisBackend
from valerie.infrastructure.session_store.protection import _move_in_steps


class _LogoutAfterCopy:
    """Deletes `old_id` right after the step that creates `new_id`: a user logging out then."""

    victim = "old"

    async def write_if(self, session_id: str, data: bytes, ttl_seconds: int, version: str) -> bool:
        wrote: bool = await super().write_if(session_id, data, ttl_seconds, version)  # type: ignore[misc]
        await self.remove(self.victim)  # type: ignore[attr-defined]
        return wrote


class _MemoryLogout(_LogoutAfterCopy, MemoryBackend):
    pass


class _RedisLogout(_LogoutAfterCopy, RedisBackend):
    pass


@pytest.fixture
async def racing_store(backend: Backend) -> EncodedSessionStore:
    if backend.url is None:
        return EncodedSessionStore(_MemoryLogout())
    store = EncodedSessionStore(_RedisLogout(backend.url, backend.prefix))
    backend.opened.append(store)
    return store


async def test_a_session_deleted_during_a_move_in_steps_stays_deleted(
    racing_store: EncodedSessionStore,
) -> None:
    """The old id deleted after the copy: nothing survives under either id, and the move says
    the session is missing instead of moved."""
    store = racing_store
    await store.save("old", {"token": "t"})
    data = await store.backend.read("old")
    assert data is not None
    outcome = await _move_in_steps(store, "old", "new", data, data)
    assert outcome == "missing"
    assert await store.load("new") is None
    assert await store.load("old") is None
