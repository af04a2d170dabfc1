"""Stores with an OpenTelemetryObserver attached, and a scenario that moves every instrument."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from tests.observability.readings import Telemetry
from tests.support.redis_server import RedisServer, RedisServerMissing
from valerie.infrastructure import (
    ABSENT,
    BackendUnavailableError,
    InMemorySessionStore,
    LockNotOwnedError,
    RedisSessionStore,
    SessionLockedError,
    StateValidationError,
    VersionConflictError,
)
from valerie.infrastructure.session_store.telemetry import RedisInfoSampler
from valerie.infrastructure.session_store.telemetry.otel import OpenTelemetryObserver

Store = InMemorySessionStore | RedisSessionStore

# Every public operation, as the core names it in its events.
OPERATIONS = {
    "save",
    "load",
    "delete",
    "exists",
    "load_versioned",
    "update",
    "touch",
    "ttl",
    "load_many",
    "save_many",
    "delete_many",
    "iter_ids",
    "count",
    "clear",
    "ping",
    "acquire_lease",
    "release_lease",
    "extend_lease",
}


def observer_for(telemetry: Telemetry, **options: object) -> OpenTelemetryObserver:
    return OpenTelemetryObserver(
        meter_provider=telemetry.meter_provider,
        tracer_provider=telemetry.tracer_provider,
        **options,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def observed_store(
    backend: str, telemetry: Telemetry, redis_server: RedisServer | None, prefix: str
) -> AsyncIterator[Store]:
    store: Store
    if backend == "memory":
        store = InMemorySessionStore(observers=[observer_for(telemetry)])
    else:
        assert redis_server is not None
        store = RedisSessionStore(
            redis_server.url, prefix=prefix, observers=[observer_for(telemetry)]
        )
    async with store:
        yield store
        await store.clear()


async def every_operation(store: Store) -> None:
    """Call each public operation once (leases: acquire, extend, release)."""
    await store.save("a", {"n": 1})
    await store.load("a")
    await store.exists("a")
    await store.load_versioned("a")
    await store.update("a", lambda state: {"n": 2})
    await store.touch("a", ttl=60)
    await store.ttl("a")
    await store.save_many({"b": {"n": 1}, "c": {"n": 1}})
    await store.load_many(["a", "b", "c"])
    await store.delete_many(["b", "c"])
    _ = [session_id async for session_id in store.iter_ids()]
    await store.count()
    async with store.lock("a", timeout=5) as lease:
        await lease.extend()
    await store.ping()
    await store.delete("a")
    await store.clear()


async def every_signal(store: RedisSessionStore, server: RedisServer) -> None:
    """Move every instrument of the observer on a Redis store of `max_connections=1`."""
    await store.load("miss")
    await store.save("s", {"n": 0})
    await store.load("s")
    _, version = await store.load_versioned("s")
    await store.save("s", {"n": 1})
    with pytest.raises(VersionConflictError):
        await store.save("s", {"n": 2}, if_version=version)
    with pytest.raises(VersionConflictError):
        await store.save("s", {"n": 2}, if_version=ABSENT)
    collided = False

    async def collide(state: object) -> dict[str, int]:
        nonlocal collided
        if not collided:
            collided = True
            await store.save("s", {"n": 10})
        return {"n": 3}

    await store.update("s", collide)
    async with store.lock("s", timeout=5):
        with pytest.raises(SessionLockedError):
            await store.lock("s", wait=0.05).acquire()
    lease = store.lock("s", timeout=0.05)
    await lease.acquire()
    await asyncio.sleep(0.1)
    with pytest.raises(LockNotOwnedError):
        await lease.release()
    await store.save("typed", {"n": "not a number"})
    with pytest.raises(StateValidationError):
        await store.typed(Turn).load("typed")
    await pool_timeout(store, server)


class Turn(BaseModel):
    """A typed view's model, to which `{"n": "not a number"}` is a StateValidationError."""

    n: int


async def pool_timeout(store: RedisSessionStore, server: RedisServer) -> int:
    """With the server frozen, one call holds the only connection and three wait for it: at
    least two of them give up waiting (the first may get it when the holder times out).
    Return how many gave up waiting for a connection."""
    server.freeze()
    try:
        results = await asyncio.gather(*(store.load("s") for _ in range(4)), return_exceptions=True)
    finally:
        server.thaw()
    assert all(isinstance(result, BackendUnavailableError) for result in results), results
    gave_up = sum("stayed busy" in str(result) for result in results)
    assert gave_up >= 2
    return gave_up


def private_server(*args: str) -> RedisServer:
    try:
        return RedisServer(None, *args)
    except RedisServerMissing as missing:
        pytest.fail(str(missing), pytrace=False)


def sampler_for(store: RedisSessionStore, telemetry: Telemetry) -> RedisInfoSampler:
    return RedisInfoSampler.for_store(store, meter_provider=telemetry.meter_provider)


async def collide_once(store: Store) -> int:
    """Update session `s` while a concurrent save collides with its first attempt.

    Returns:
        How many times the update function ran (2: the collision makes it retry once).
    """
    await store.save("s", {"n": 0})
    calls = 0

    async def collide(state: object) -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await store.save("s", {"n": 10})
        return {"n": calls}

    await store.update("s", collide)
    return calls
