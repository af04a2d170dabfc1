"""describe_many() and load_many_with_ttl(): what the CLI reads, on every backend."""

from __future__ import annotations

import pytest

from valerie.infrastructure import EncodedSessionStore, InvalidSessionIdError
from valerie.infrastructure.session_store import SessionInfo, TimedState


async def test_describe_many_gives_size_and_ttl_and_none_for_missing(
    store: EncodedSessionStore,
) -> None:
    """Each session's stored size (its compact JSON) and milliseconds left; None if missing."""
    await store.save("a", {"x": 1}, ttl=100)
    await store.save("b", {"text": "é" * 10}, ttl=5000)
    found = await store.describe_many(["a", "missing", "b"])
    assert list(found) == ["a", "missing", "b"]
    assert found["missing"] is None
    a, b = found["a"], found["b"]
    assert isinstance(a, SessionInfo)
    assert isinstance(b, SessionInfo)
    assert a.size == len(b'{"x":1}')
    assert b.size == len(b'{"text":"' + ("é" * 10).encode() + b'"}')
    assert 90_000 < a.ttl_ms <= 100_000
    assert 4_990_000 < b.ttl_ms <= 5_000_000


async def test_load_many_with_ttl_gives_states_with_their_ttl_and_renews_nothing(
    store: EncodedSessionStore,
) -> None:
    """The state as load() gives it and the milliseconds left; the TTL is left as it was."""
    await store.save("a", {"step": 3, "history": ["hi"]}, ttl=60)
    found = await store.load_many_with_ttl(["a", "gone"])
    assert found["gone"] is None
    item = found["a"]
    assert isinstance(item, TimedState)
    assert item.state == {"step": 3, "history": ["hi"]}
    assert 50_000 < item.ttl_ms <= 60_000
    assert await store.ttl("a") == 60


async def test_both_check_every_id_first(store: EncodedSessionStore) -> None:
    """An invalid id is refused before anything is read; an empty batch reads nothing."""
    with pytest.raises(InvalidSessionIdError):
        await store.describe_many(["ok", ""])
    with pytest.raises(InvalidSessionIdError):
        await store.load_many_with_ttl(["ok", "bad\n"])
    assert await store.describe_many([]) == {}
    assert await store.load_many_with_ttl([]) == {}
