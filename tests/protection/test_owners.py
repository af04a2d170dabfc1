"""Owners and erasure on memory, one Redis server and a Cluster."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
import redis.asyncio as redis_py

from tests.protection.conftest import KEY_A, Backend, bump, encryption
from tests.support.dict_store import DictStore
from valerie.infrastructure import (
    DELETE,
    EncodedSessionStore,
    InMemorySessionStore,
    InvalidArgumentError,
    Observer,
    OperationEvent,
    RedisBackend,
    UnsupportedCapabilityError,
)
from valerie.infrastructure.session_store.backends.redis.keys import OWNER_INFIX
from valerie.infrastructure.session_store.backends.redis.owners import GRACE_MS


async def test_sessions_of_lists_an_owners_live_sessions_and_erase_deletes_exactly_them(
    backend: Backend,
) -> None:
    """Each writing call records the owner; erasure deletes that owner's sessions only."""
    store = backend.open(encryption(KEY_A))
    await store.save("a1", {"x": 1}, owner="alice")
    await store.update("a2", bump, owner="alice")
    await store.save_many({"a3": {"x": 3}, "a4": {"x": 4}}, owner="alice")
    await store.save("b1", {"x": 1}, owner="bob")
    await store.save("anon", {"x": 1})
    assert sorted(await store.sessions_of("alice")) == ["a1", "a2", "a3", "a4"]
    assert await store.sessions_of("bob") == ["b1"]
    assert await store.sessions_of("carol") == []
    await store.delete("a4")
    assert sorted(await store.sessions_of("alice")) == ["a1", "a2", "a3"]
    assert sorted(await store.erase_owner("alice")) == ["a1", "a2", "a3"]
    assert await store.load_many(["a1", "a2", "a3", "b1", "anon"]) == {
        "a1": None,
        "a2": None,
        "a3": None,
        "b1": {"x": 1},
        "anon": {"x": 1},
    }
    assert await store.sessions_of("alice") == []
    assert await store.erase_owner("alice") == []
    assert await store.sessions_of("bob") == ["b1"]


async def test_rotate_id_with_owner_indexes_the_new_id(backend: Backend) -> None:
    """After login: the new id is the owner's; the old id's entry is gone with its session."""
    store = backend.open(None)
    await store.save("anonymous", {"cart": 1}, owner="alice")
    assert await store.rotate_id("anonymous", "logged-in", owner="alice")
    assert await store.sessions_of("alice") == ["logged-in"]


async def test_an_updater_that_deletes_leaves_nothing_to_erase(backend: Backend) -> None:
    """update(owner=) returning DELETE: the session is gone, and so from the listing."""
    store = backend.open(None)
    await store.save("a1", {"x": 1}, owner="alice")
    await store.update("a1", lambda state: DELETE, owner="alice")
    assert await store.sessions_of("alice") == []


@pytest.mark.parametrize("bad", ["", "a\x00b", "\ud800", 5, None.__class__, "x" * 513])
async def test_a_bad_owner_is_refused_before_anything_is_written(
    backend: Backend, bad: object
) -> None:
    """The same rules as a session id; the owner is never quoted."""
    store = backend.open(None)
    with pytest.raises(InvalidArgumentError, match="owner must be") as caught:
        await store.save("s1", {"x": 1}, owner=bad)  # type: ignore[arg-type]
    assert not await store.exists("s1")
    if isinstance(bad, str) and bad:
        assert bad not in str(caught.value)
    for call in (store.sessions_of(bad), store.erase_owner(bad)):  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            await call


async def test_expired_sessions_leave_the_memory_index_without_a_scan() -> None:
    """On the memory store, an owner's expired sessions are dropped by the owner's next call."""
    now = [1000.0]
    store = InMemorySessionStore(clock=lambda: now[0])
    await store.save("old", {"x": 1}, ttl=10, owner="alice")
    await store.save("young", {"x": 1}, ttl=100, owner="alice")
    now[0] += 11
    assert await store.sessions_of("alice") == ["young"]
    assert list(store.backend._owners["alice"]) == ["young"]
    now[0] += 100
    await store.save("new", {"x": 1}, ttl=100, owner="alice")
    assert list(store.backend._owners["alice"]) == ["new"]


async def test_expired_and_deleted_sessions_leave_the_redis_index_once_long_expired(
    redis_backend: Backend,
) -> None:
    """An entry whose deadline passed over GRACE_MS ago and whose session is gone is pruned
    by the owner's next call; an entry of a live session is never pruned, whatever its score."""
    store = redis_backend.open(None)
    await store.save("live", {"x": 1}, owner="alice")
    assert redis_backend.url is not None
    client = redis_py.Redis.from_url(redis_backend.url)
    key = redis_backend.prefix + OWNER_INFIX + "alice"
    old = int(time.time() * 1000) - GRACE_MS - 1000
    try:
        await client.zadd(key, {"gone": old, "live": old, "fresh-gone": old + 2 * GRACE_MS})
        assert await store.sessions_of("alice") == ["live"]
        assert sorted(await client.zrange(key, 0, -1)) == [b"fresh-gone", b"live"]
        await client.zadd(key, {"gone-again": old})
        await store.save("other", {"x": 1}, owner="alice")
        assert sorted(await client.zrange(key, 0, -1)) == [b"fresh-gone", b"live", b"other"]
        await store.erase_owner("alice")
        assert await client.exists(key) == 0
    finally:
        await client.aclose()


async def test_no_live_session_is_ever_missing_from_its_owners_index(backend: Backend) -> None:
    """Random concurrent saves, updates, deletes, expiries and erasures: afterwards every live
    session of each owner is listed, and only live ones are (a seeded property test)."""
    store = backend.open(None)
    owners = [f"user{k}" for k in range(4)]
    rng = random.Random(20261129)

    async def worker(seed: int) -> None:
        local = random.Random(seed)
        for _ in range(60):
            owner = local.choice(owners)
            session_id = f"{owner}-s{local.randrange(8)}"
            action = local.random()
            if action < 0.35:
                await store.save(session_id, {"n": 0}, owner=owner)
            elif action < 0.5:
                await store.save(session_id, {"n": 0}, ttl=1, owner=owner)
            elif action < 0.7:
                await store.update(session_id, bump, owner=owner)
            elif action < 0.85:
                await store.delete(session_id)
            else:
                await store.erase_owner(owner)
            await asyncio.sleep(0)

    async def check() -> None:
        for owner in owners:
            listed = set(await store.sessions_of(owner))
            ids = [f"{owner}-s{j}" for j in range(8)]
            live = {sid for sid in ids if await store.exists(sid)}
            assert listed == live, owner

    await asyncio.gather(*(worker(rng.randrange(1 << 30)) for _ in range(6)))
    await check()
    await asyncio.sleep(1.1)  # the 1-second sessions expire
    await check()


async def test_erase_owner_removes_10000_sessions_among_100000_exactly(
    redis_backend: Backend,
) -> None:
    """On one Redis server: exactly the user's 10,000 sessions go, the 100,000 others stay
    (how fast is the benchmark's `erasure` scenario)."""
    store = redis_backend.open(None)
    for other in range(100):
        await store.save_many(
            {f"u{other}-{j}": {"j": j} for j in range(1000)}, owner=f"user{other}"
        )
    await store.save_many({f"target-{j}": {"j": j} for j in range(10_000)}, owner="target")
    erased = await store.erase_owner("target")
    assert sorted(erased) == sorted(f"target-{j}" for j in range(10_000))
    assert await store.count() == 100_000
    assert await store.sessions_of("target") == []
    assert len(await store.sessions_of("user7")) == 1000


async def test_observers_see_the_protection_operations() -> None:
    """rotate_id, sessions_of, erase_owner, rotate_keys and key_usage each report one event."""
    events: list[OperationEvent] = []

    class Recorder(Observer):
        def on_operation(self, event: OperationEvent) -> None:
            events.append(event)

    store = InMemorySessionStore(encryption=encryption(KEY_A), observers=[Recorder()])
    await store.save_many({"a": {"x": 1}, "b": {"x": 2}}, owner="alice")
    await store.rotate_id("a", "c", owner="alice")
    await store.sessions_of("alice")
    await store.rotate_keys()
    await store.key_usage()
    await store.erase_owner("alice")
    assert [(e.operation, e.outcome, e.sessions) for e in events[1:]] == [
        ("rotate_id", "hit", 1),
        ("sessions_of", "ok", 2),
        ("rotate_keys", "ok", 2),
        ("key_usage", "ok", 2),
        ("erase_owner", "ok", 2),
    ]


async def test_a_store_written_from_scratch_says_what_it_lacks() -> None:
    """The SessionStore contract declares the protection methods; a store that only has the
    four abstract ones raises UnsupportedCapabilityError naming each, before any I/O."""

    store = DictStore()
    for call, capability in (
        (store.sessions_of("u"), "owners"),
        (store.erase_owner("u"), "owners"),
        (store.rotate_id("a", "b"), "relocation"),
        (store.rotate_keys(), "encryption"),
        (store.key_usage(), "scans"),
    ):
        with pytest.raises(UnsupportedCapabilityError) as caught:
            await call
        assert caught.value.capability == capability


async def test_an_erasure_between_indexing_and_writing_leaves_the_session_listed(
    redis_backend: Backend,
) -> None:
    """The race the order of steps covers, forced: erase_owner runs after save(owner=) indexed
    the id and before it wrote the session; the session written then is listed."""

    class ErasingFirst(RedisBackend):
        async def write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
            assert await self.erase_owned("alice") == []  # the entry is there, no session yet
            await super().write(session_id, data, ttl_seconds)

    assert redis_backend.url is not None
    backend = ErasingFirst(redis_backend.url, redis_backend.prefix)
    store = EncodedSessionStore(backend)
    try:
        await store.save("a1", {"x": 1}, owner="alice")
        assert await store.exists("a1")
        assert await store.sessions_of("alice") == ["a1"]
    finally:
        await store.clear()
        await store.close()
