"""Redis going away: every call fails fast with BackendUnavailableError, then recovers alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer, free_port
from valerie.infrastructure import BackendUnavailableError, RedisSessionStore, SessionStoreError

TIMEOUT = 0.5
RETRIES = 1
# Each attempt may take a connect and a command timeout; backoff adds at most 0.5 s a retry.
BOUND = (RETRIES + 1) * 2 * TIMEOUT + RETRIES * 0.5 + 1.0

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of this test's own, free to be stopped, killed or frozen."""
    with RedisServer() as private:
        yield private


def make_store(url: str) -> RedisSessionStore:
    return RedisSessionStore(url, prefix="faults:", timeout=TIMEOUT, retries=RETRIES)


async def assert_unavailable_within_bound(store: RedisSessionStore) -> None:
    for call in (store.load("s1"), store.save("s1", {"n": 1}), store.exists("s1")):
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            await call
        assert time.monotonic() - started < BOUND


async def test_an_unreachable_port_raises_unavailable_within_the_bound() -> None:
    """Nothing listens: the error comes within the timeouts, and it is a ConnectionError."""
    async with make_store(f"redis://:hunter2@127.0.0.1:{free_port()}/0") as store:
        await assert_unavailable_within_bound(store)
        with pytest.raises(ConnectionError) as caught:
            await store.load("s1")
        assert isinstance(caught.value, SessionStoreError)
        assert "hunter2" not in str(caught.value)
        assert "VALERIE_SESSION_REDIS_URL" in str(caught.value)


async def test_a_stopped_server_raises_unavailable_and_the_same_store_recovers(
    server: RedisServer,
) -> None:
    """Stop the server: bounded errors. Start it again (empty): the same store serves."""
    async with make_store(server.url) as store:
        await store.save("s1", {"n": 1})
        server.stop()
        await assert_unavailable_within_bound(store)
        server.start()
        assert await store.load("s1") is None  # no persistence: the restart came back empty
        await store.save("s1", {"n": 2})
        assert await store.load("s1") == {"n": 2}


async def test_a_killed_and_restarted_server_is_used_again_without_errors(
    server: RedisServer,
) -> None:
    """Pooled connections die with the server; the retry reconnects, the caller sees nothing."""
    async with make_store(server.url) as store:
        await asyncio.gather(*(store.save(f"s{n}", {"n": n}) for n in range(20)))
        server.restart()
        await store.save("s1", {"n": 1})
        assert await store.load("s1") == {"n": 1}
        results = await asyncio.gather(*(store.exists(f"s{n}") for n in range(20)))
        assert results.count(True) == 1


async def test_a_frozen_server_times_out_within_the_bound_then_recovers(
    server: RedisServer,
) -> None:
    """SIGSTOP: connections stay open but nothing answers; calls time out, then work again."""
    async with make_store(server.url) as store:
        await store.save("s1", {"n": 1})
        server.freeze()
        try:
            await assert_unavailable_within_bound(store)
        finally:
            server.thaw()
        assert await store.load("s1") == {"n": 1}


async def test_a_server_killed_under_load_fails_every_call_fast_then_all_succeed(
    server: RedisServer,
) -> None:
    """64 tasks in flight when the server dies: each call succeeds or raises unavailable in
    bounded time; after a restart every task succeeds."""
    async with make_store(server.url) as store:

        async def worker(n: int, rounds: int) -> list[str]:
            outcomes = []
            for _ in range(rounds):
                started = time.monotonic()
                try:
                    await store.save(f"w{n}", {"n": n})
                    await store.load(f"w{n}")
                    outcomes.append("ok")
                except BackendUnavailableError:
                    outcomes.append("unavailable")
                assert time.monotonic() - started < 2 * BOUND
            return outcomes

        load = asyncio.gather(*(worker(n, 40) for n in range(64)))
        await asyncio.sleep(0.05)
        server.kill()
        outcomes = [o for task in await load for o in task]
        assert "unavailable" in outcomes
        server.start()
        after = await asyncio.gather(*(worker(n, 2) for n in range(64)))
        assert all(o == "ok" for task in after for o in task)


async def test_compare_and_set_fails_fast_and_recovers_after_a_restart(
    server: RedisServer,
) -> None:
    """update and versioned saves (never retried) raise unavailable in bounded time while the
    server is down, and work on the same store once it is back."""
    async with make_store(server.url) as store:
        await store.update("s1", lambda s: {"n": 1})
        server.kill()
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            await store.update("s1", lambda s: {"n": 2})
        assert time.monotonic() - started < BOUND
        server.start()
        assert await store.update("s1", lambda s: {"n": (s or {"n": 0})["n"] + 1}) == {"n": 1}
        async with store.lock("s1", timeout=5):
            pass


async def test_a_frozen_server_bounds_compare_and_set_too(server: RedisServer) -> None:
    """A compare-and-set against a frozen server times out within one attempt's timeout."""
    async with make_store(server.url) as store:
        await store.save("s1", {"n": 1})
        server.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError):
                await store.update("s1", lambda s: {"n": 2})
            assert time.monotonic() - started < BOUND
        finally:
            server.thaw()
        assert await store.load("s1") in ({"n": 1}, {"n": 2})
