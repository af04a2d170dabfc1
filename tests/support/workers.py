"""Functions that run in child processes for the multi-process tests (spawned, so importable)."""

from __future__ import annotations

import asyncio
from multiprocessing.synchronize import Barrier, Event

from valerie.infrastructure import RedisSessionStore, SessionState


def _increment(state: SessionState | None) -> SessionState:
    state = state or {"count": 0, "writers": []}
    state["count"] += 1
    return state


def update_increments(url: str, prefix: str, count: int, start: Barrier) -> None:
    """Increment the counter `count` times with update()."""

    async def run() -> None:
        async with RedisSessionStore(url, prefix) as store:
            start.wait()
            for _ in range(count):
                await store.update("counter", _increment)

    asyncio.run(run())


def unsafe_increments(url: str, prefix: str, count: int, start: Barrier) -> None:
    """Increment the counter `count` times with plain load then save (loses updates)."""

    async def run() -> None:
        async with RedisSessionStore(url, prefix) as store:
            start.wait()
            for _ in range(count):
                state = await store.load("counter")
                await asyncio.sleep(0.0005)  # the turn's work between read and write
                await store.save("counter", _increment(state))

    asyncio.run(run())


def leased_increments(url: str, prefix: str, count: int, start: Barrier) -> None:
    """Increment with plain load/save, each turn under the session's lease."""

    async def run() -> None:
        async with RedisSessionStore(url, prefix) as store:
            start.wait()
            for _ in range(count):
                async with store.lock("counter", timeout=10, wait=30):
                    state = await store.load("counter")
                    await asyncio.sleep(0.0005)
                    await store.save("counter", _increment(state))

    asyncio.run(run())


def hold_lease_until_killed(url: str, prefix: str, timeout: float, held: Event) -> None:
    """Take the lease, say so, then hang: the parent kills this process."""

    async def run() -> None:
        store = RedisSessionStore(url, prefix)
        await store.lock("counter", timeout=timeout).acquire()
        held.set()
        await asyncio.sleep(3600)

    asyncio.run(run())
