"""The Redis store's update cache, counted in round trips on the server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.redis_server import RedisServer
from tests.support.updates import increment
from valerie.infrastructure import (
    RedisSessionStore,
    SessionState,
    VersionConflictError,
)


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
