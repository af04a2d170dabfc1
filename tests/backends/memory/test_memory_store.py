"""What only the in-memory store has: exact expiry on a fake clock, memory release, LRU."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from valerie.infrastructure import (
    ConfigurationError,
    InMemorySessionStore,
    LockNotOwnedError,
    SessionLockedError,
)


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> InMemorySessionStore:
    return InMemorySessionStore(clock=clock)


async def test_expiry_is_exact_to_the_clock(store: InMemorySessionStore, clock: FakeClock) -> None:
    """A session is there just before its deadline and gone at it."""
    await store.save("s1", {"n": 1}, ttl=10)
    clock.advance(9.999)
    assert await store.exists("s1")
    assert await store.load("s1") == {"n": 1}
    clock.advance(0.001)
    assert not await store.exists("s1")
    assert await store.load("s1") is None


async def test_expired_sessions_are_released_without_being_read(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """Sessions nobody reads again are dropped by later calls on other sessions."""
    for n in range(100):
        await store.save(f"old-{n}", {"n": n}, ttl=5)
    clock.advance(7)
    for n in range(20):
        await store.save(f"new-{n}", {"n": n}, ttl=60)
    assert len(store.backend._entries) == 20
    assert set(store.backend._entries) == {f"new-{n}" for n in range(20)}


async def test_each_call_releases_a_bounded_number_of_sessions(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """A backlog of expired sessions is paid for a few at a time, not by one call."""
    for n in range(1000):
        await store.save(f"old-{n}", {}, ttl=1)
    clock.advance(5)
    await store.save("new", {})
    assert 1000 - len(store.backend._entries) <= 8


async def test_resaving_moves_a_session_to_its_new_deadline(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """A session saved again with a longer TTL is not released at its old deadline."""
    await store.save("s1", {"v": 1}, ttl=5)
    clock.advance(4)
    await store.save("s1", {"v": 2}, ttl=60)
    clock.advance(10)
    await store.save("other", {})
    assert await store.load("s1") == {"v": 2}


async def test_shortening_a_ttl_takes_effect(store: InMemorySessionStore, clock: FakeClock) -> None:
    """Saving again with a shorter TTL makes the session expire sooner."""
    await store.save("s1", {}, ttl=3600)
    await store.save("s1", {}, ttl=2)
    clock.advance(3)
    assert await store.load("s1") is None
    await store.save("other", {})
    assert "s1" not in store.backend._entries


async def test_deleted_sessions_leave_no_bookkeeping(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """Delete removes a session from its expiry bucket; the emptied bucket goes when its
    second comes up, so nothing accumulates."""
    for n in range(50):
        await store.save(f"s{n}", {}, ttl=30)
        await store.delete(f"s{n}")
    assert store.backend._entries == {}
    assert all(not bucket for bucket in store.backend._expiry.buckets.values())
    clock.advance(31)
    await store.exists("s1")
    assert store.backend._expiry.buckets == {}
    assert store.backend._expiry.heap == []


async def test_memory_is_bounded_by_live_sessions_under_churn(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """Years of traffic with short TTLs keep only the live sessions and their buckets."""
    for step in range(5000):
        await store.save(f"user-{step}", {"step": step}, ttl=10)
        clock.advance(0.5)
    # 20 live sessions, plus those of the one-second bucket that is not over yet.
    assert len(store.backend._entries) <= 20 + 2
    assert len(store.backend._expiry.buckets) <= 11
    assert len(store.backend._expiry.heap) <= 12


async def test_lru_evicts_the_least_recently_used_session(clock: FakeClock) -> None:
    """With max_sessions, a new session evicts the one used least recently (load counts)."""
    store = InMemorySessionStore(max_sessions=3, clock=clock)
    for name in ("a", "b", "c"):
        await store.save(name, {"name": name})
    assert await store.load("a") == {"name": "a"}
    await store.save("d", {"name": "d"})
    assert await store.load("b") is None
    assert {name for name in "acd" if await store.exists(name)} == {"a", "c", "d"}


async def test_lru_does_not_count_exists_as_use(clock: FakeClock) -> None:
    """exists() peeks: it does not protect a session from eviction."""
    store = InMemorySessionStore(max_sessions=2, clock=clock)
    await store.save("a", {})
    await store.save("b", {})
    assert await store.exists("a")
    await store.save("c", {})
    assert not await store.exists("a")
    assert await store.exists("b")


async def test_lru_resaving_does_not_evict(clock: FakeClock) -> None:
    """Replacing a session in a full store evicts nothing."""
    store = InMemorySessionStore(max_sessions=2, clock=clock)
    await store.save("a", {"v": 1})
    await store.save("b", {})
    await store.save("a", {"v": 2})
    assert await store.load("a") == {"v": 2}
    assert await store.exists("b")
    assert sum(map(len, store.backend._expiry.buckets.values())) == 2


@pytest.mark.parametrize("max_sessions", [0, -1, 1.5, "10", True])
def test_invalid_max_sessions_is_a_configuration_error(max_sessions: object) -> None:
    """max_sessions must be a positive int or None."""
    with pytest.raises(ConfigurationError, match=r"max_sessions=10_000"):
        InMemorySessionStore(max_sessions=max_sessions)  # type: ignore[arg-type]


@pytest.mark.parametrize("clock", [None, 1000.0, "monotonic"])
def test_a_clock_that_cannot_be_called_is_a_configuration_error(clock: Any) -> None:
    """clock must be a function, checked when the store is made, not at its first call."""
    with pytest.raises(ConfigurationError, match=r"clock=time\.monotonic"):
        InMemorySessionStore(clock=clock)


async def test_the_store_keeps_bytes_not_the_callers_objects(store: InMemorySessionStore) -> None:
    """What is stored is the JSON, so memory per session tracks the JSON's size."""
    state = {"history": ["x" * 2000]}
    await store.save("s1", state)
    data, _ = store.backend._entries["s1"]
    assert isinstance(data, bytes)
    assert len(data) < 2100


async def test_memory_per_session_is_close_to_the_json_size() -> None:
    """Storing 2,000 sessions of 2 KB, ids included, costs at most 1.15x their JSON."""
    store = InMemorySessionStore()
    state = {"history": [{"role": "user", "content": "y" * 190} for _ in range(10)]}
    size = len(json.dumps(state, separators=(",", ":")))
    ids = [f"user-{n:06d}" for n in range(2000)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for session_id in ids:
        await store.save(session_id, state)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert (after - before) / len(ids) <= 1.15 * size


def test_repr_shows_size_and_settings() -> None:
    """The repr says how many sessions and which settings, nothing else."""
    assert repr(InMemorySessionStore(default_ttl=60, max_sessions=5)) == (
        "InMemorySessionStore(sessions=0, default_ttl=60, max_sessions=5)"
    )


async def test_sessions_that_come_and_go_leave_one_heap_entry_per_second(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """20,000 save/delete pairs over 20 s: the expiry heap holds about one entry per second,
    and once they are due no single call does more than a few steps."""
    for n in range(20_000):
        await store.save(f"tmp{n}", {}, ttl=3600)
        await store.delete(f"tmp{n}")
        clock.advance(0.001)
    assert len(store.backend._expiry.heap) <= 21
    assert len(store.backend._expiry.buckets) <= 21
    clock.advance(4000)
    before = len(store.backend._expiry.heap)
    await store.exists("x")
    assert len(store.backend._expiry.heap) == before - 8  # one call: 8 steps, not the whole backlog
    for _ in range(5):
        await store.exists("x")
    assert store.backend._expiry.heap == []
    assert store.backend._expiry.buckets == {}


async def test_lru_prefers_an_expired_session_to_a_live_one(clock: FakeClock) -> None:
    """A session that expired within the current second makes room before any live one."""
    store = InMemorySessionStore(max_sessions=2, clock=clock)
    clock.now = 1000.0
    await store.save("alice", {"cart": 3})
    clock.now = 1000.1
    await store.save("otp", {"code": "1"}, ttl=1)
    clock.now = 1001.5
    await store.save("bob", {"n": 1})
    assert await store.load("alice") == {"cart": 3}
    assert await store.load("bob") == {"n": 1}


async def test_a_session_expiring_this_very_instant_makes_room_first(clock: FakeClock) -> None:
    """Expiry is exact at the boundary: a session whose deadline is now is expired, so it makes
    room before the least recently used live one."""
    store = InMemorySessionStore(max_sessions=2, clock=clock)
    clock.now = 1000.0
    await store.save("alice", {"cart": 3})  # the least recently used, live
    await store.save("otp", {"code": "1"}, ttl=1)  # expires at 1001.0 exactly
    clock.now = 1001.0
    await store.save("bob", {"n": 1})
    assert await store.load("alice") == {"cart": 3}
    assert await store.load("bob") == {"n": 1}


async def test_evicted_sessions_leave_no_bookkeeping(clock: FakeClock) -> None:
    """A session evicted to make room leaves its expiry bucket, expired or not, so later
    sweeps neither trip over it nor keep it."""
    store = InMemorySessionStore(max_sessions=1, clock=clock)
    await store.save("otp", {}, ttl=1)
    clock.advance(1)
    await store.save("late", {}, ttl=5)  # otp, expired this instant, makes room
    await store.save("next", {}, ttl=5)  # late, the least recently used, makes room
    assert list(store.backend._entries) == ["next"]
    clock.advance(10)
    for _ in range(3):
        assert not await store.exists("next")
    assert store.backend._expiry.buckets == {}
    assert store.backend._expiry.heap == []


async def test_clear_does_not_count_a_session_expiring_this_very_instant(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """clear() counts live sessions; one whose deadline is now is expired, as for load."""
    await store.save("live", {}, ttl=20)
    await store.save("due", {}, ttl=10)
    clock.advance(10)
    assert await store.clear() == 1


async def test_an_extended_lease_lasts_exactly_its_new_duration(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """extend(10) holds the lease until 10 s from now, to the clock: not a moment less."""
    holder = store.lock("s1", timeout=1)
    await holder.acquire()
    await holder.extend(10)
    clock.advance(9.999)
    with pytest.raises(SessionLockedError):
        await store.lock("s1", wait=0).acquire()
    clock.advance(0.001)
    await store.lock("s1", wait=0).acquire()


async def test_expired_leases_nobody_released_are_dropped(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """Leases that expire unreleased do not pile up."""
    for n in range(1000):
        await store.lock(f"s{n}", timeout=1).acquire()
        clock.advance(0.5)
    assert len(store.backend._locks) <= 4


async def test_expired_leases_behind_a_long_one_are_dropped(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """A long lease taken first does not keep the short ones taken after it from being
    dropped once expired."""
    await store.lock("long", timeout=3600).acquire()
    for n in range(1000):
        await store.lock(f"s{n}", timeout=1).acquire()
        clock.advance(0.5)
    assert set(store.backend._locks) <= {"long", "s996", "s997", "s998", "s999"}
    assert "long" in store.backend._locks


async def test_each_lease_call_drops_a_bounded_number_of_expired_leases(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """A backlog of expired leases is paid for a few at a time, not by one call, and is
    gone after a few more calls."""
    for n in range(1000):
        await store.lock(f"s{n}", timeout=1).acquire()
    clock.advance(5)
    lease = store.lock("new", timeout=1)
    await lease.acquire()
    assert 1000 - (len(store.backend._locks) - 1) <= 8
    for _ in range(200):
        await lease.extend()
    assert set(store.backend._locks) == {"new"}
    assert len(store.backend._lock_expiry.heap) <= 2


async def test_released_and_extended_leases_leave_no_bookkeeping(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """Releasing or extending a lease moves it out of its old expiry bucket, so nothing
    accumulates however often leases come and go."""
    for n in range(500):
        lease = store.lock(f"s{n % 7}", timeout=30)
        await lease.acquire()
        await lease.extend(60)
        await lease.release()
        clock.advance(0.1)
    assert store.backend._locks == {}
    assert all(not bucket for bucket in store.backend._lock_expiry.buckets.values())
    clock.advance(61)
    lease = store.lock("x")
    for _ in range(10):  # 8 steps each: emptied buckets are dropped a few at a time too
        await lease.acquire()
    assert set(store.backend._locks) == {"x"}
    assert len(store.backend._lock_expiry.buckets) == 1


async def test_an_expired_lease_is_not_its_holders_any_more(
    store: InMemorySessionStore, clock: FakeClock
) -> None:
    """At its deadline, exactly, the holder can neither release nor extend it, and another
    holder can take it."""
    lease = store.lock("s1", timeout=10)
    await lease.acquire()
    clock.advance(9.999)
    await lease.extend(10)  # still held: renewed to 10 s from now
    clock.advance(10)
    expired = (
        "the session's lock: it expired before this holder was done, so another holder may "
        "have run meanwhile; use a longer timeout, or extend() it"
    )
    with pytest.raises(LockNotOwnedError) as caught:
        await lease.release()
    assert str(caught.value) == f"cannot release {expired}"
    with pytest.raises(LockNotOwnedError) as caught:
        await lease.extend()
    assert str(caught.value) == f"cannot extend {expired}"
    async with store.lock("s1", wait=0):
        pass
