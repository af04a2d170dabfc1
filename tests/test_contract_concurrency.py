"""Concurrency and lifetime controls, run once per backend: update, versions, expiry, leases,
batches and scans behave the same on memory and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.redis_server import RedisServer
from valerie.infrastructure import (
    ABSENT,
    DELETE,
    EncodedSessionStore,
    InvalidArgumentError,
    InvalidSessionIdError,
    InvalidTTLError,
    LockNotOwnedError,
    RedisSessionStore,
    SerializationError,
    SessionLockedError,
    SessionState,
    VersionConflictError,
)


def increment(state: SessionState | None) -> SessionState:
    state = state or {"count": 0}
    state["count"] += 1
    return state


async def slow_increment(state: SessionState | None) -> SessionState:
    await asyncio.sleep(0)  # a turn that awaits (an LLM call) between its read and its write
    return increment(state)


# update


async def test_update_creates_changes_and_returns_the_stored_state(
    store: EncodedSessionStore,
) -> None:
    """fn sees None first, then the stored state; update returns what load would."""
    assert await store.update("s1", increment) == {"count": 1}
    assert await store.update("s1", increment) == {"count": 2}
    assert await store.update("s1", lambda s: {**(s or {}), "pair": (1, 2)}) == {
        "count": 2,
        "pair": [1, 2],
    }
    assert await store.load("s1") == {"count": 2, "pair": [1, 2]}


async def test_update_with_an_async_function(store: EncodedSessionStore) -> None:
    """fn may be a coroutine function."""
    assert await store.update("s1", slow_increment) == {"count": 1}


async def test_update_returning_delete_deletes(store: EncodedSessionStore) -> None:
    """fn returning DELETE deletes the session (and is fine when there is none)."""
    await store.save("s1", {"n": 1})
    assert await store.update("s1", lambda s: DELETE) is None
    assert not await store.exists("s1")
    assert await store.update("s1", lambda s: DELETE) is None


async def test_update_with_an_unstorable_result_writes_nothing(store: EncodedSessionStore) -> None:
    """A bad new state raises SerializationError and the old state stays."""
    await store.save("s1", {"n": 1})
    with pytest.raises(SerializationError):
        await store.update("s1", lambda s: {"bad": {1, 2}})
    assert await store.load("s1") == {"n": 1}


async def test_update_checks_its_arguments_before_reading(store: EncodedSessionStore) -> None:
    """Invalid ids and TTLs raise before fn runs."""
    calls: list[Any] = []

    def record(state: Any) -> Any:
        calls.append(state)
        return DELETE

    with pytest.raises(InvalidSessionIdError):
        await store.update("", record)
    with pytest.raises(InvalidTTLError):
        await store.update("s1", record, ttl=0)
    assert calls == []


async def test_update_applies_the_ttl(store: EncodedSessionStore) -> None:
    """The TTL given to update is the session's new TTL."""
    await store.update("s1", increment, ttl=30)
    remaining = await store.ttl("s1")
    assert remaining is not None
    assert 29 <= remaining <= 30


async def test_update_after_this_stores_own_writes_needs_no_extra_attempt(
    store: EncodedSessionStore,
) -> None:
    """update, then save, delete, save_many or a versioned save, then update(attempts=1):
    no conflict, since nobody wrote concurrently. (Redis remembers what its last update left,
    a guess that these writes make stale; a stale guess is not a conflict.)"""
    await store.update("s1", increment)
    await store.save("s1", {"count": 10})
    assert await store.update("s1", increment, attempts=1) == {"count": 11}
    await store.delete("s1")
    assert await store.update("s1", increment, attempts=1) == {"count": 1}
    await store.save_many({"s1": {"count": 20}})
    assert await store.update("s1", increment, attempts=1) == {"count": 21}
    _, version = await store.load_versioned("s1")
    await store.save("s1", {"count": 30}, if_version=version)
    assert await store.update("s1", increment, attempts=1) == {"count": 31}
    await store.delete("s1", if_version=(await store.load_versioned("s1")).version)
    assert await store.update("s1", lambda state: state or DELETE, attempts=1) is None
    assert await store.load("s1") is None


@pytest.mark.parametrize("attempts", [1, 2, 5])
async def test_update_raises_after_attempts_real_conflicts(
    store: EncodedSessionStore, attempts: int
) -> None:
    """A writer that changes the session during every run of fn makes update give up with
    VersionConflictError after exactly `attempts` runs, having written nothing of its own."""
    runs = 0

    async def meddled(state: SessionState | None) -> SessionState:
        nonlocal runs
        runs += 1
        await store.save("s1", {"meddler": runs})  # a concurrent writer, every time
        return {"mine": runs}

    await store.save("s1", {"meddler": 0})
    with pytest.raises(VersionConflictError, match=f"after {attempts} attempts"):
        await store.update("s1", meddled, attempts=attempts)
    assert runs == attempts
    assert await store.load("s1") == {"meddler": attempts}


@pytest.mark.parametrize("attempts", [1, 2, 5])
async def test_update_succeeds_after_one_conflict_fewer_than_attempts(
    store: EncodedSessionStore, attempts: int
) -> None:
    """`attempts - 1` conflicts are survived: fn runs once more, on what the other writer
    stored, and that result is written."""
    runs: list[SessionState | None] = []

    async def meddled_until_the_last(state: SessionState | None) -> SessionState:
        runs.append(state)
        if len(runs) < attempts:
            await store.save("s1", {"meddler": len(runs)})
        return {**(state or {}), "mine": len(runs)}

    await store.save("s1", {"meddler": 0})
    result = await store.update("s1", meddled_until_the_last, attempts=attempts)
    assert result == {"meddler": attempts - 1, "mine": attempts}
    assert runs == [{"meddler": n} for n in range(attempts)]
    assert await store.load("s1") == result


async def test_a_concurrent_write_of_the_same_state_is_no_conflict(
    store: EncodedSessionStore,
) -> None:
    """Compare-and-set compares what is stored, not who wrote it: another writer saving the
    very same state between update's read and its write does not use up an attempt."""
    runs = 0

    async def resaved(state: SessionState | None) -> SessionState:
        nonlocal runs
        runs += 1
        await store.save("s1", {"n": 1})  # the same bytes as stored, written anew
        return {"n": 2}

    await store.save("s1", {"n": 1})
    assert await store.update("s1", resaved, attempts=1) == {"n": 2}
    assert runs == 1
    _, version = await store.load_versioned("s1")
    await store.save("s1", {"n": 2})  # the same bytes again: the version still holds
    await store.save("s1", {"n": 3}, if_version=version)
    assert await store.load("s1") == {"n": 3}


async def test_200_concurrent_updates_lose_nothing(store: EncodedSessionStore) -> None:
    """200 tasks that await between read and write still end at exactly 200."""
    await asyncio.gather(*(store.update("hot", slow_increment) for _ in range(200)))
    assert await store.load("hot") == {"count": 200}


async def test_plain_load_then_save_loses_updates(store: EncodedSessionStore) -> None:
    """The same experiment with load/save loses updates: why update exists (and proof that
    the test above can fail)."""

    async def unsafe_turn() -> None:
        state = await store.load("hot")
        await asyncio.sleep(0)
        await store.save("hot", increment(state))

    await asyncio.gather(*(unsafe_turn() for _ in range(200)))
    final = await store.load("hot")
    assert final is not None
    assert final["count"] < 200


# versions


async def test_load_versioned_of_a_missing_session_is_absent(store: EncodedSessionStore) -> None:
    """No session: state None, version ABSENT."""
    assert await store.load_versioned("s1") == (None, ABSENT)


async def test_load_versioned_returns_the_state_and_its_version(
    store: EncodedSessionStore,
) -> None:
    """load_versioned gives what load gives, with a version that changes with the state and
    only with it."""
    await store.save("s1", {"n": 1, "pair": (1, 2)})
    first = await store.load_versioned("s1")
    assert first.state == {"n": 1, "pair": [1, 2]}
    assert first.state == await store.load("s1")
    await store.save("s1", {"n": 1, "pair": (1, 2)})
    assert (await store.load_versioned("s1")).version == first.version
    await store.save("s1", {"n": 2})
    second = await store.load_versioned("s1")
    assert second.state == {"n": 2}
    assert second.version not in (first.version, ABSENT)


async def test_if_version_absent_creates_only(store: EncodedSessionStore) -> None:
    """ABSENT writes when there is no session and conflicts when there is one."""
    await store.save("s1", {"v": 1}, if_version=ABSENT)
    with pytest.raises(VersionConflictError):
        await store.save("s1", {"v": 2}, if_version=ABSENT)
    assert await store.load("s1") == {"v": 1}


async def test_first_writer_wins_and_the_second_gets_a_conflict(
    store: EncodedSessionStore,
) -> None:
    """Two readers of the same version: the first save wins, the second raises, the winner's
    state is intact."""
    await store.save("s1", {"turn": 0})
    first = await store.load_versioned("s1")
    second = await store.load_versioned("s1")
    assert first.version == second.version != ABSENT
    await store.save("s1", {"turn": 1, "by": "first"}, if_version=first.version)
    with pytest.raises(VersionConflictError, match=r"^the session changed since its version "):
        await store.save("s1", {"turn": 1, "by": "second"}, if_version=second.version)
    assert await store.load("s1") == {"turn": 1, "by": "first"}
    assert (await store.load_versioned("s1")).version != first.version


async def test_a_stale_version_cannot_delete(store: EncodedSessionStore) -> None:
    """delete(if_version=) deletes only the version it names."""
    await store.save("s1", {"v": 1})
    stale = (await store.load_versioned("s1")).version
    await store.save("s1", {"v": 2})
    with pytest.raises(VersionConflictError):
        await store.delete("s1", if_version=stale)
    assert await store.load("s1") == {"v": 2}
    await store.delete("s1", if_version=(await store.load_versioned("s1")).version)
    assert not await store.exists("s1")


async def test_a_version_of_a_deleted_session_conflicts(store: EncodedSessionStore) -> None:
    """A session deleted since it was read cannot be saved over with its old version."""
    await store.save("s1", {"v": 1})
    version = (await store.load_versioned("s1")).version
    await store.delete("s1")
    with pytest.raises(VersionConflictError):
        await store.save("s1", {"v": 2}, if_version=version)
    assert not await store.exists("s1")


async def test_if_version_none_means_no_condition(store: EncodedSessionStore) -> None:
    """if_version=None (the default) saves and deletes unconditionally."""
    await store.save("s1", {"v": 1}, if_version=None)
    await store.save("s1", {"v": 2}, if_version=None)
    assert await store.load("s1") == {"v": 2}
    await store.delete("s1", if_version=None)
    assert not await store.exists("s1")


@pytest.mark.parametrize(
    "version", ["", 7, "abc", "A" * 40, "g" * 40, "0" * 41, b"0" * 40, "Absent"], ids=repr
)
async def test_a_malformed_version_is_refused_by_save_and_delete_and_changes_nothing(
    store: EncodedSessionStore, version: Any
) -> None:
    """if_version takes a token from load_versioned (40 hex digits) or ABSENT; anything else
    is an InvalidArgumentError (also a TypeError) before anything is written or deleted."""
    await store.save("s1", {"v": 1}, ttl=600)
    with pytest.raises(InvalidArgumentError, match="if_version"):
        await store.save("s1", {"v": 2}, ttl=5, if_version=version)
    with pytest.raises(TypeError, match="if_version"):
        await store.delete("s1", if_version=version)
    with pytest.raises(InvalidArgumentError, match="if_version"):
        await store.save("new", {"v": 2}, if_version=version)
    assert await store.load("s1") == {"v": 1}
    assert await store.ttl("s1") == 600
    assert not await store.exists("new")


async def test_a_refused_versioned_save_or_delete_changes_nothing(
    store: EncodedSessionStore,
) -> None:
    """A save or delete refused for its stale version leaves the state and its TTL as the
    winning write left them."""
    await store.save("s1", {"v": 1}, ttl=600)
    stale = (await store.load_versioned("s1")).version
    await store.save("s1", {"v": 2}, ttl=500)
    with pytest.raises(VersionConflictError):
        await store.save("s1", {"v": 3}, ttl=50, if_version=stale)
    with pytest.raises(VersionConflictError):
        await store.save("s1", {"v": 3}, ttl=50, if_version=ABSENT)
    with pytest.raises(VersionConflictError):
        await store.delete("s1", if_version=stale)
    assert await store.load("s1") == {"v": 2}
    assert await store.ttl("s1") == 500


# expiry


async def test_touch_renews_and_reports_existence(store: EncodedSessionStore) -> None:
    """touch is False for a missing session, True for one, and sets the new TTL."""
    assert await store.touch("s1") is False
    await store.save("s1", {"v": 1}, ttl=10)
    assert await store.touch("s1", ttl=500) is True
    remaining = await store.ttl("s1")
    assert remaining is not None
    assert 499 <= remaining <= 500
    assert await store.load("s1") == {"v": 1}


async def test_ttl_reports_whole_seconds_left(store: EncodedSessionStore) -> None:
    """ttl() is None for a missing session and the rounded-up seconds left otherwise."""
    assert await store.ttl("s1") is None
    await store.save("s1", {}, ttl=90)
    assert await store.ttl("s1") == 90


async def test_load_with_refresh_ttl_renews(store: EncodedSessionStore) -> None:
    """load(refresh_ttl=True) renews to the default TTL, a TTL value to that value."""
    await store.save("s1", {"v": 1}, ttl=5)
    assert await store.load("s1", refresh_ttl=True) == {"v": 1}
    assert await store.ttl("s1") == store.default_ttl
    assert await store.load("s1", refresh_ttl=120) == {"v": 1}
    assert await store.ttl("s1") == 120
    assert await store.load("missing", refresh_ttl=True) is None
    with pytest.raises(InvalidTTLError):
        await store.load("s1", refresh_ttl=0)


@pytest.mark.slow
async def test_sliding_expiry_keeps_an_active_session_alive(store: EncodedSessionStore) -> None:
    """Touching within the TTL keeps a session past its original deadline."""
    await store.save("s1", {"v": 1}, ttl=1)
    for _ in range(3):
        await asyncio.sleep(0.5)
        assert await store.touch("s1", ttl=1)
    assert await store.load("s1") == {"v": 1}
    await asyncio.sleep(1.2)
    assert await store.load("s1") is None


# leases


async def test_a_lease_is_exclusive(store: EncodedSessionStore) -> None:
    """While one holder has the lease another cannot take it; after release it can."""
    async with store.lock("s1", timeout=10):
        with pytest.raises(SessionLockedError):
            async with store.lock("s1", wait=0):
                pass
        with pytest.raises(TimeoutError):
            await store.lock("s1", wait=0.05).acquire()
    async with store.lock("s1", wait=0):
        pass


async def test_leases_of_different_sessions_are_independent(store: EncodedSessionStore) -> None:
    """Locking one session does not lock another."""
    async with store.lock("a", timeout=10), store.lock("b", timeout=10, wait=0):
        pass


async def test_a_lease_expires_by_itself(store: EncodedSessionStore) -> None:
    """An unreleased lease frees itself after its timeout; its late release raises."""
    lease = store.lock("s1", timeout=0.2)
    await lease.acquire()
    async with store.lock("s1", wait=2):
        with pytest.raises(LockNotOwnedError):
            await lease.release()


async def test_a_non_holder_cannot_release(store: EncodedSessionStore) -> None:
    """Another lease object (another token) cannot release the holder's lease."""
    holder = store.lock("s1", timeout=10)
    await holder.acquire()
    intruder = store.lock("s1")
    with pytest.raises(LockNotOwnedError):
        await intruder.release()
    with pytest.raises(SessionLockedError):
        await store.lock("s1", wait=0).acquire()
    await holder.release()


async def test_a_lease_can_be_extended_by_its_holder_only(store: EncodedSessionStore) -> None:
    """extend() keeps the lease past its first timeout; a non-holder's extend raises."""
    lease = store.lock("s1", timeout=0.3)
    await lease.acquire()
    await lease.extend(10)
    await asyncio.sleep(0.4)
    with pytest.raises(SessionLockedError):
        await store.lock("s1", wait=0).acquire()
    with pytest.raises(LockNotOwnedError):
        await store.lock("s1").extend()
    await lease.release()


@pytest.mark.slow
async def test_a_holder_cannot_release_or_extend_its_expired_lease(
    store: EncodedSessionStore,
) -> None:
    """Once its lease has expired, even with nobody else holding it, the holder's release
    and extend raise LockNotOwnedError, and the lease is free for anyone."""
    releaser = store.lock("r", timeout=0.05)
    extender = store.lock("e", timeout=0.05)
    await releaser.acquire()
    await extender.acquire()
    await asyncio.sleep(0.15)
    expired = (
        "the session's lock: it expired before this holder was done, so another holder may "
        "have run meanwhile; use a longer timeout, or extend() it"
    )
    with pytest.raises(LockNotOwnedError) as caught:
        await releaser.release()
    assert str(caught.value) == f"cannot release {expired}"
    with pytest.raises(LockNotOwnedError) as caught:
        await extender.extend(10)
    assert str(caught.value) == f"cannot extend {expired}"
    async with store.lock("r", wait=0), store.lock("e", wait=0):
        pass


async def test_a_lease_is_given_back_when_its_holder_is_cancelled_while_leaving(
    store: EncodedSessionStore,
) -> None:
    """Cancelling a task while it leaves `async with lock()` (its release in flight) still
    releases the lease, wherever the cancellation lands."""
    cancelled_in_release = 0
    for steps in range(12):
        session_id = f"s{steps}"
        inside = asyncio.Event()

        async def turn(session_id: str = session_id, inside: asyncio.Event = inside) -> None:
            async with store.lock(session_id, timeout=30):
                inside.set()  # the block ends here: what is left to await is the release

        task = asyncio.create_task(turn())
        await inside.wait()
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        cancelled_in_release += task.cancelled()
        async with store.lock(session_id, wait=2):  # free now, or once the release lands
            pass
    assert cancelled_in_release > 0


async def test_tasks_under_the_lease_never_interleave(store: EncodedSessionStore) -> None:
    """Plain load/save turns that await in the middle lose nothing when each holds the lease."""

    async def turn() -> None:
        async with store.lock("s1", timeout=5, wait=10):
            state = await store.load("s1")
            await asyncio.sleep(0.001)
            await store.save("s1", increment(state))

    await asyncio.gather(*(turn() for _ in range(30)))
    assert await store.load("s1") == {"count": 30}


@pytest.mark.parametrize(("timeout", "wait"), [(0, 1), (-1, 1), (1, -1), (True, 1), ("1", 1)])
def test_bad_lease_durations_raise(store: EncodedSessionStore, timeout: Any, wait: Any) -> None:
    """Lease timeout must be positive, wait non-negative, both numbers."""
    with pytest.raises(InvalidTTLError):
        store.lock("s1", timeout=timeout, wait=wait)


async def test_locks_are_not_sessions(store: EncodedSessionStore) -> None:
    """A held lease does not show up as a session in exists, count or iter_ids."""
    async with store.lock("s1"):
        assert not await store.exists("s1")
        assert await store.count() == 0
        assert [session_id async for session_id in store.iter_ids()] == []


# batches


async def test_save_many_then_load_many(store: EncodedSessionStore) -> None:
    """A batch round-trips; load_many gives None for missing ids, in the order asked."""
    await store.save_many({f"s{n}": {"n": n} for n in range(150)}, ttl=60)
    loaded = await store.load_many(["s3", "missing", "s149", "s0"])
    assert list(loaded) == ["s3", "missing", "s149", "s0"]
    assert loaded == {"s3": {"n": 3}, "missing": None, "s149": {"n": 149}, "s0": {"n": 0}}
    assert await store.ttl("s42") == 60


async def test_delete_many(store: EncodedSessionStore) -> None:
    """delete_many removes the ids given (missing ones are fine) and no others."""
    await store.save_many({f"s{n}": {"n": n} for n in range(10)})
    await store.delete_many(["s0", "s3", "s4", "missing", "s9", "s3"])
    assert sorted([i async for i in store.iter_ids()]) == ["s1", "s2", "s5", "s6", "s7", "s8"]
    assert await store.load("s5") == {"n": 5}
    await store.delete_many(iter({"s1", "s2"}))  # any iterable of ids
    assert sorted([i async for i in store.iter_ids()]) == ["s5", "s6", "s7", "s8"]


async def test_delete_many_checks_every_id_before_deleting_any(store: EncodedSessionStore) -> None:
    """One invalid id: InvalidSessionIdError, and none of the batch is deleted."""
    await store.save_many({"a": {}, "b": {}})
    bad_ids: list[Any] = ["", "x\n", None, "x" * 513]
    for bad in bad_ids:
        with pytest.raises(InvalidSessionIdError):
            await store.delete_many(["a", "b", bad])
    assert sorted([i async for i in store.iter_ids()]) == ["a", "b"]


async def test_empty_batches_are_no_ops(store: EncodedSessionStore) -> None:
    """Empty inputs return empty results and leave every session, and its TTL, alone."""
    await store.save("keep", {"v": 1}, ttl=600)
    await store.save_many({})
    await store.save_many({}, ttl=5)
    await store.delete_many([])
    await store.delete_many(iter([]))
    assert await store.load_many([]) == {}
    assert await store.load_many(iter(())) == {}
    assert [i async for i in store.iter_ids()] == ["keep"]
    assert await store.load("keep") == {"v": 1}
    assert await store.ttl("keep") == 600


async def test_a_bad_item_fails_the_whole_batch_before_writing(
    store: EncodedSessionStore,
) -> None:
    """One invalid id or state: nothing of the batch is written."""
    with pytest.raises(SerializationError):
        await store.save_many({"ok": {"v": 1}, "bad": {"v": {1}}})
    with pytest.raises(InvalidSessionIdError):
        await store.save_many({"ok": {"v": 1}, "": {"v": 2}})
    assert await store.count() == 0
    with pytest.raises(InvalidSessionIdError):
        await store.load_many(["ok", "bad\n"])


# scans


async def test_count_iter_ids_and_clear_with_10000_sessions(store: EncodedSessionStore) -> None:
    """All sessions are counted and listed once, and clear removes them all."""
    ids = {f"user-{n:05d}" for n in range(10_000)}
    await store.save_many({key: {"v": 1} for key in ids})
    assert await store.count() == 10_000
    assert {session_id async for session_id in store.iter_ids()} == ids
    assert await store.clear() == 10_000
    assert await store.count() == 0
    assert await store.load("user-00001") is None


async def test_iter_ids_filters_with_a_glob_pattern(store: EncodedSessionStore) -> None:
    """match is an fnmatch pattern over ids, the same on every backend."""
    await store.save_many({key: {} for key in ["user-1", "user-2", "bot-1", "user-*", "u[x]"]})
    assert {i async for i in store.iter_ids(match="user-?")} == {"user-1", "user-2", "user-*"}
    assert {i async for i in store.iter_ids(match="*-1")} == {"user-1", "bot-1"}
    assert {i async for i in store.iter_ids(match="u[[]x]")} == {"u[x]"}


@pytest.mark.slow
async def test_expired_sessions_are_not_counted(store: EncodedSessionStore) -> None:
    """count and iter_ids see live sessions only."""
    await store.save("short", {}, ttl=1)
    await store.save("long", {}, ttl=60)
    await asyncio.sleep(1.2)
    assert await store.count() == 1
    assert [i async for i in store.iter_ids()] == ["long"]


async def test_a_holder_taking_its_own_lease_again_succeeds(store: EncodedSessionStore) -> None:
    """Acquiring a lease one already holds succeeds at once; it stays exclusive, and one
    release frees it (takes are not counted)."""
    lease = store.lock("s1", timeout=5, wait=0)
    await lease.acquire()
    await lease.acquire()
    with pytest.raises(SessionLockedError):
        await store.lock("s1", wait=0).acquire()
    await lease.release()
    async with store.lock("s1", wait=0):
        pass
    with pytest.raises(LockNotOwnedError):
        await lease.release()


@pytest.mark.slow
async def test_retaking_a_held_lease_renews_it(store: EncodedSessionStore) -> None:
    """Taking again a lease one holds restarts its timeout: it outlives its first deadline."""
    lease = store.lock("s1", timeout=0.5, wait=0)
    await lease.acquire()
    await asyncio.sleep(0.3)
    await lease.acquire()
    await asyncio.sleep(0.3)  # 0.6 s after the first take: only the renewal still holds it
    with pytest.raises(SessionLockedError):
        await store.lock("s1", wait=0).acquire()
    await lease.release()


@pytest.mark.parametrize("call", ["load_many", "delete_many"])
async def test_a_single_str_is_not_a_batch_of_ids(store: EncodedSessionStore, call: str) -> None:
    """Passing 'abc' where a list of ids is expected raises instead of using 'a', 'b', 'c'."""
    await store.save("a", {})
    with pytest.raises(TypeError, match="single str"):
        await getattr(store, call)("abc")
    assert await store.exists("a")


@pytest.mark.parametrize("attempts", [0, -1, 1.5])
async def test_update_needs_at_least_one_attempt(store: EncodedSessionStore, attempts: Any) -> None:
    """attempts must be a positive int."""
    with pytest.raises(ValueError, match="attempts"):
        await store.update("s1", increment, attempts=attempts)


# Redis: what update's cache saves, counted in round trips on the server


async def round_trips(server: Redis) -> int:
    """Reads the server has processed so far (one per request or pipeline of a client)."""
    stats = await server.info("stats")
    return int(stats["total_reads_processed"])


async def counted(server: Redis, call: Any) -> int:
    """Run `call` (a coroutine) and return how many round trips it made."""
    before = await round_trips(server)
    await call
    return await round_trips(server) - before - 1  # the second INFO is a read too


@pytest.mark.parametrize("cache_size", [0, 1, 1024])
async def test_update_round_trips_with_and_without_the_cache(
    redis_server: RedisServer, cache_size: int
) -> None:
    """Without the cache (update_cache_size=0) every update is correct and takes two round
    trips (GET, then the compare-and-set); with it, an update of a session this store
    updated last takes one, and a stale guess costs one more, never an attempt."""
    prefix = f"rt:{uuid.uuid4().hex}:"
    async with (
        Redis.from_url(redis_server.url) as server,
        RedisSessionStore(redis_server.url, prefix, update_cache_size=cache_size) as store,
    ):
        await store.ping()  # opens the pooled connection
        assert await counted(server, store.update("s1", increment)) == 2  # nothing to guess
        follow_up = await counted(server, store.update("s1", increment, attempts=1))
        assert follow_up == (2 if cache_size == 0 else 1)
        await store.save("s1", {"count": 10})
        assert await counted(server, store.update("s1", increment, attempts=1)) == 2
        assert await store.load("s1") == {"count": 11}


async def test_the_update_cache_keeps_the_sessions_updated_last(redis_server: RedisServer) -> None:
    """update_cache_size=2 remembers the two sessions updated last: updating either again
    takes one round trip, the one updated before them two."""
    prefix = f"rt:{uuid.uuid4().hex}:"
    async with (
        Redis.from_url(redis_server.url) as server,
        RedisSessionStore(redis_server.url, prefix, update_cache_size=2) as store,
    ):
        for session_id in ("a", "b", "c"):
            await store.update(session_id, increment)
        assert await counted(server, store.update("c", increment)) == 1
        assert await counted(server, store.update("b", increment)) == 1
        assert await counted(server, store.update("a", increment)) == 2


async def test_a_stale_guess_from_another_process_costs_no_attempt(
    redis_server: RedisServer,
) -> None:
    """Store A updates, store B (another process) saves, A updates with attempts=1: no
    conflict, since B's save came before A's update started."""
    prefix = f"two:{uuid.uuid4().hex}:"
    async with (
        RedisSessionStore(redis_server.url, prefix) as first,
        RedisSessionStore(redis_server.url, prefix) as second,
    ):
        await first.update("s1", increment)
        await second.save("s1", {"count": 10})
        assert await first.update("s1", increment, attempts=1) == {"count": 11}
        await second.delete("s1")
        assert await first.update("s1", increment, attempts=1) == {"count": 1}


async def test_after_a_stale_guess_every_conflict_counts(redis_server: RedisServer) -> None:
    """Only the stale guess is free: conflicts after it use up attempts as usual, so update
    still gives up after `attempts` of them."""
    prefix = f"two:{uuid.uuid4().hex}:"
    async with (
        RedisSessionStore(redis_server.url, prefix) as first,
        RedisSessionStore(redis_server.url, prefix) as second,
    ):
        await first.update("s1", increment)
        await second.save("s1", {"count": 10})  # first's remembered copy is now stale
        runs = 0

        async def meddled(state: SessionState | None) -> SessionState:
            nonlocal runs
            runs += 1
            assert runs <= 3, "update went on after the stale guess and its two attempts"
            await second.save("s1", {"count": 100 + runs})
            return increment(state)

        with pytest.raises(VersionConflictError):
            await first.update("s1", meddled, attempts=2)
        assert runs == 3  # the stale guess, then two real conflicts
