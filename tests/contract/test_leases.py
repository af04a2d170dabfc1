"""Leases, run once per backend: exclusive, self-expiring, released by their holder only."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tests.support.updates import increment
from valerie.infrastructure import (
    EncodedSessionStore,
    InvalidTTLError,
    LockNotOwnedError,
    SessionLockedError,
)


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
