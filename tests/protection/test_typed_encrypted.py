"""A typed view over an encrypted store, on memory and one Redis server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from tests.protection.conftest import KEY_A, KEY_B, Backend, encryption
from tests.support.backends import backend_params, backend_url


class Chat(BaseModel):
    turns: int = 0
    title: str = ""


@pytest.fixture(params=backend_params(("memory", "redis")))
async def typed_backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Memory, then one Redis server."""
    url = None if request.param == "memory" else backend_url(request, request.param)
    opened = Backend(request.param, url)
    yield opened
    for store in opened.opened:
        await store.clear()
        await store.close()


async def test_a_typed_view_reads_what_it_saved_through_an_encrypted_store(
    typed_backend: Backend,
) -> None:
    """The view's loads open the seal; the stored bytes stay ciphertext."""
    store = typed_backend.open(encryption(KEY_A))
    chats = store.typed(Chat)
    await chats.save("s1", Chat(turns=3, title="secret plans"))
    assert await chats.load("s1") == Chat(turns=3, title="secret plans")
    raw = await store.backend.read("s1")
    assert raw is not None
    assert b"secret plans" not in raw
    assert await chats.load("absent") is None


async def test_a_typed_view_reads_a_session_sealed_under_an_old_key_and_reseals_it(
    typed_backend: Backend,
) -> None:
    """Key rotation: a session under the retired key loads, and is sealed under the new one."""
    await typed_backend.open(encryption(KEY_A)).typed(Chat).save("s1", Chat(turns=5), ttl=500)
    store = typed_backend.open(encryption(KEY_B, KEY_A))
    assert await store.typed(Chat).load("s1") == Chat(turns=5)
    assert await store.key_usage() == {"key-b": 1}
    assert 495 <= (await store.ttl("s1") or 0) <= 500
    assert await typed_backend.open(encryption(KEY_B)).typed(Chat).load("s1") == Chat(turns=5)
