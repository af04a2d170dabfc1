"""describe_many() and load_many_with_ttl(): what the CLI reads, on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.redis_server import RedisServer
from valerie.infrastructure import EncodedSessionStore, InvalidSessionIdError, RedisSessionStore
from valerie.infrastructure.session_store import (
    Observer,
    OperationEvent,
    Outcome,
    SessionInfo,
    TimedState,
    UnsupportedCapabilityError,
)
from valerie.infrastructure.session_store.backend import Backend, ExpiryControl


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


class _Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[OperationEvent] = []

    def on_operation(self, event: OperationEvent) -> None:
        self.events.append(event)


class _PlainBackend(Backend):
    """Only the required primitives: no expiry control."""

    def __init__(self) -> None:
        self.calls = 0

    async def read(self, session_id: str) -> bytes | None:
        self.calls += 1
        return None

    async def write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        self.calls += 1

    async def remove(self, session_id: str) -> None:
        self.calls += 1

    async def contains(self, session_id: str) -> bool:
        self.calls += 1
        return False

    async def ping(self) -> dict[str, Any]:
        return {"topology": "plain"}


class _SecondsBackend(_PlainBackend, ExpiryControl):
    """Expiry control without the batch primitives: the defaults read one id at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, bytes] = {}

    async def read(self, session_id: str) -> bytes | None:
        return self.values.get(session_id)

    async def write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        self.values[session_id] = data

    async def read_and_touch(self, session_id: str, ttl_seconds: int) -> bytes | None:
        return self.values.get(session_id)

    async def touch(self, session_id: str, ttl_seconds: int) -> bool:
        return session_id in self.values

    async def remaining(self, session_id: str) -> int | None:
        return 42 if session_id in self.values else None


async def test_without_expiry_control_both_are_refused_before_any_io() -> None:
    """A backend without ExpiryControl: UnsupportedCapabilityError naming it, nothing read."""
    backend = _PlainBackend()
    store = EncodedSessionStore(backend)
    for method in (store.describe_many, store.load_many_with_ttl):
        with pytest.raises(UnsupportedCapabilityError, match="expiry control"):
            await method(["a"])
    assert backend.calls == 0


async def test_the_defaults_read_each_id_and_its_ttl_in_whole_seconds() -> None:
    """ExpiryControl's default read_many_with_ttl and describe_many: read, then remaining."""
    store = EncodedSessionStore(_SecondsBackend())
    await store.save("a", {"x": 1})
    assert await store.describe_many(["a", "b"]) == {"a": SessionInfo(7, 42_000), "b": None}
    assert await store.load_many_with_ttl(["a"]) == {"a": TimedState({"x": 1}, 42_000)}


async def test_observers_see_both(redis_server: RedisServer) -> None:
    """Each call is one event of its own name, with the batch's size and bytes read."""
    recorder = _Recorder()
    async with RedisSessionStore(redis_server.url, prefix="seen:", observers=[recorder]) as store:
        await store.save("a", {"x": 1})
        recorder.events.clear()
        await store.describe_many(["a", "b"])
        await store.load_many_with_ttl(["a", "b"])
    seen = [(e.operation, e.outcome, e.bytes, e.sessions) for e in recorder.events]
    assert seen == [
        ("describe_many", Outcome.OK, 0, 2),
        ("load_many_with_ttl", Outcome.OK, 7, 2),
    ]
