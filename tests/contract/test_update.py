"""update(), run once per backend: a read-modify-write that loses nothing, re-runs `fn` on
conflict and checks its arguments before reading."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.updates import increment, slow_increment
from valerie.infrastructure import (
    DELETE,
    EncodedSessionStore,
    InvalidSessionIdError,
    InvalidTTLError,
    SerializationError,
    SessionState,
    VersionConflictError,
)


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


@pytest.mark.parametrize("attempts", [0, -1, 1.5])
async def test_update_needs_at_least_one_attempt(store: EncodedSessionStore, attempts: Any) -> None:
    """attempts must be a positive int."""
    with pytest.raises(ValueError, match="attempts"):
        await store.update("s1", increment, attempts=attempts)
