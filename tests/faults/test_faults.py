"""Faults against real servers, and what reaches the server.

Redis going away (stopped, killed, frozen, restarted): every call fails fast with
BackendUnavailableError, then the same store recovers alone. Replies lost on the way back (a
`FaultProxy` between the store and a real server): a write that must not run twice reaches the
server once, where an idempotent one is sent again; a lease whose request was in flight when
its caller was cancelled is given back; a call waiting for a busy pool gives up after `timeout`.
Batches reach the server in a few reads, where single calls take one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.support.cluster import ClusterDeployment
from tests.support.fault_proxy import (
    Fault,
    FaultProxy,
    Matcher,
    Mode,
    command_named,
    script,
    wait_for,
)
from tests.support.redis_server import RedisServer, free_port
from tests.support.resp import ReplyError, call, command_calls, stat
from valerie.infrastructure import BackendUnavailableError, RedisSessionStore, SessionStoreError
from valerie.infrastructure.session_store.backends.redis.keys import LOCK_SUFFIX
from valerie.infrastructure.session_store.backends.redis.scripts import (
    ACQUIRE_LOCK,
    EXTEND_LOCK,
    RELEASE_LOCK,
    REMOVE_IF,
    SWAP,
    WRITE_IF,
)

TIMEOUT = 0.5
RETRIES = 1
# Each attempt may take a connect and a command timeout; backoff adds at most 0.5 s a retry.
BOUND = (RETRIES + 1) * 2 * TIMEOUT + RETRIES * 0.5 + 1.0


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of this test's own, free to be stopped, killed or frozen."""
    with RedisServer() as private:
        yield private


def make_store(url: str) -> RedisSessionStore:
    return RedisSessionStore(url, prefix="faults:", timeout=TIMEOUT, retries=RETRIES)


async def assert_unavailable_within_bound(store: RedisSessionStore) -> None:
    for pending in (store.load("s1"), store.save("s1", {"n": 1}), store.exists("s1")):
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            await pending
        assert time.monotonic() - started < BOUND


@pytest.mark.slow
async def test_an_unreachable_port_raises_unavailable_within_the_bound() -> None:
    """Nothing listens: the error comes within the timeouts, and it is a ConnectionError."""
    async with make_store(f"redis://:hunter2@127.0.0.1:{free_port()}/0") as store:
        await assert_unavailable_within_bound(store)
        with pytest.raises(ConnectionError) as caught:
            await store.load("s1")
        assert isinstance(caught.value, SessionStoreError)
        assert "hunter2" not in str(caught.value)
        assert "VALERIE_SESSION_REDIS_URL" in str(caught.value)


@pytest.mark.redis
@pytest.mark.slow
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


@pytest.mark.redis
@pytest.mark.slow
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


@pytest.mark.redis
@pytest.mark.slow
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


@pytest.mark.redis
@pytest.mark.slow
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


@pytest.mark.redis
@pytest.mark.slow
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


# --- what a caller of a send-once write gets when the server ran it but the reply was lost --------

Attempt = Callable[[], Awaitable[object]]


async def versioned_save(store: RedisSessionStore) -> Attempt:
    await store.save("s1", {"n": 1})
    version = (await store.load_versioned("s1")).version
    return lambda: store.save("s1", {"n": 2}, if_version=version)


async def swap(store: RedisSessionStore) -> Attempt:
    # The store now remembers the bytes, so the next update goes straight to its script.
    await store.update("s1", lambda state: {"n": 1})
    return lambda: store.update("s1", lambda state: {"n": 2})


async def versioned_delete(store: RedisSessionStore) -> Attempt:
    await store.save("s1", {"n": 1})
    version = (await store.load_versioned("s1")).version
    return lambda: store.delete("s1", if_version=version)


async def lease_release(store: RedisSessionStore) -> Attempt:
    lease = store.lock("s1", timeout=30)
    await lease.acquire()
    return lease.release


async def lease_extend(store: RedisSessionStore) -> Attempt:
    lease = store.lock("s1", timeout=30)
    await lease.acquire()
    return lambda: lease.extend(60)


# Each write the README promises is sent once: its Lua script, and how to make one ready to go.
SEND_ONCE: dict[str, tuple[str, Callable[[RedisSessionStore], Awaitable[Attempt]]]] = {
    "save(if_version=)": (WRITE_IF, versioned_save),
    "update": (SWAP, swap),
    "delete(if_version=)": (REMOVE_IF, versioned_delete),
    "Lease.release": (RELEASE_LOCK, lease_release),
    "Lease.extend": (EXTEND_LOCK, lease_extend),
}


@dataclass
class Proxied:
    """Data nodes, each behind a `FaultProxy`; the store's URL names the proxies."""

    url: str
    ports: list[int]  # the servers' own ports, for counting what reached them
    proxies: list[FaultProxy]

    def store(self, max_connections: int = 64) -> RedisSessionStore:
        prefix = f"proxied:{uuid.uuid4().hex[:8]}:"
        return RedisSessionStore(
            self.url, prefix, timeout=TIMEOUT, retries=RETRIES, max_connections=max_connections
        )

    def connections(self) -> int:
        """Connections open through the proxies now."""
        return sum(proxy.connections for proxy in self.proxies)

    def calls(self, command: str) -> int:
        """How many times the servers ran `command`."""
        return sum(command_calls(port, command) for port in self.ports)

    def exists(self, key: str) -> bool:
        """Whether a server holds `key` (asked directly, not through a proxy)."""
        for port in self.ports:
            with contextlib.suppress(ReplyError):  # MOVED: another node's slot
                if call(port, "EXISTS", key):
                    return True
        return False

    @contextlib.contextmanager
    def fault(self, mode: Mode, match: Matcher) -> Iterator[Faults]:
        """The same fault on every proxy, for the `with` block."""
        with contextlib.ExitStack() as stack:
            yield Faults([stack.enter_context(proxy.fault(mode, match)) for proxy in self.proxies])


@dataclass
class Faults:
    """One fault on each proxy of a deployment."""

    each: list[Fault]

    @property
    def hits(self) -> int:
        """Matching commands forwarded to a server while the fault was in force."""
        return sum(fault.hits for fault in self.each)


@pytest.fixture
def proxied_server() -> Iterator[Proxied]:
    """A server of this test's own, behind a proxy."""
    with RedisServer() as server, FaultProxy(server.port) as proxy:
        yield Proxied(proxy.url, [server.port], [proxy])


@pytest.fixture
def proxied_cluster(proxied_cluster_deployment: ClusterDeployment) -> Proxied:
    """Three primaries announcing their proxies' ports: the store reaches each through it."""
    cluster = proxied_cluster_deployment
    ports = [node.port for node in cluster.nodes]
    return Proxied(cluster.url, ports, [cluster.proxies[port] for port in ports])


@pytest.fixture(params=["proxied_server", "proxied_cluster"], ids=["standalone", "cluster"])
def proxied(request: pytest.FixtureRequest) -> Proxied:
    """A proxied server, then a proxied cluster."""
    deployment: Proxied = request.getfixturevalue(request.param)
    return deployment


@pytest.mark.redis
@pytest.mark.parametrize("operation", SEND_ONCE)
async def test_a_write_that_must_not_run_twice_is_sent_once_when_its_reply_is_lost(
    proxied: Proxied, operation: str
) -> None:
    """The server runs the script, then the connection drops before its reply: the caller gets
    BackendUnavailableError, and the server ran the script exactly once."""
    body, prepare = SEND_ONCE[operation]
    async with proxied.store() as store:
        attempt = await prepare(store)
        before = proxied.calls("eval")
        with proxied.fault("drop", script(body)) as fault, pytest.raises(BackendUnavailableError):
            await attempt()
        assert fault.hits == 1
        assert proxied.calls("eval") - before == 1


@pytest.mark.redis
async def test_an_idempotent_write_is_sent_again_when_its_reply_is_lost(proxied: Proxied) -> None:
    """The control for the test above: a plain save under the same fault is retried, so a
    retried script would have been counted twice there."""
    async with proxied.store() as store:
        await store.save("s1", {"n": 1})
        before = proxied.calls("set")
        with (
            proxied.fault("drop", command_named("SET")) as fault,
            pytest.raises(BackendUnavailableError),
        ):
            await store.save("s1", {"n": 2})
        assert fault.hits == RETRIES + 1
        assert proxied.calls("set") - before == RETRIES + 1


@pytest.mark.redis
async def test_closing_a_store_after_a_lost_reply_closes_every_connection(
    proxied: Proxied,
) -> None:
    """A send-once write lost its reply (a Cluster client then means to re-learn the slot
    map): close() still closes every connection the store opened."""
    async with proxied.store() as store:
        await store.load_many([f"s{n}" for n in range(30)])  # connections to every node
        attempt = await versioned_save(store)
        assert proxied.connections() > 0
        with proxied.fault("drop", script(WRITE_IF)), pytest.raises(BackendUnavailableError):
            await attempt()
    await wait_for(lambda: proxied.connections() == 0, what="every connection closed")


@pytest.mark.redis
async def test_a_lock_cancelled_while_its_request_is_in_flight_gives_the_lease_back(
    proxied: Proxied,
) -> None:
    """The server takes the lease but its reply is held; the caller is cancelled meanwhile:
    the lease is given back, so the session is not blocked for the lease's timeout."""
    async with proxied.store() as store:
        await store.ping()  # the pooled connections are open: the request goes out at once
        key = store.prefix + "s1" + LOCK_SUFFIX
        entered = asyncio.Event()

        async def take() -> None:
            async with store.lock("s1", timeout=30, wait=10):
                entered.set()

        with proxied.fault("stall", script(ACQUIRE_LOCK)) as fault:
            task = asyncio.create_task(take())
            await wait_for(lambda: fault.hits == 1 and proxied.exists(key), what="the lease taken")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert not entered.is_set()
        assert not proxied.exists(key)
        async with store.lock("s1", wait=0):
            pass


@pytest.mark.redis
async def test_a_call_waiting_for_a_busy_pool_gives_up_after_its_timeout(
    proxied_server: Proxied,
) -> None:
    """The only connection is held by a call whose reply never comes: a second call waits for
    it at most `timeout`, then raises BackendUnavailableError naming the busy pool."""
    async with proxied_server.store(max_connections=1) as store:
        await store.save("free", {"n": 1})  # opens the one connection
        held = command_named("GET", key=store.prefix + "held")
        with proxied_server.fault("stall", held) as fault:
            holder = asyncio.create_task(store.load("held"))
            await wait_for(lambda: fault.hits == 1, what="the held call sent")
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError) as caught:
                await store.load("free")
            waited = time.monotonic() - started
            assert not holder.done()  # still holding the connection when the waiter gave up
            with pytest.raises(BackendUnavailableError):
                await holder
        assert TIMEOUT * 0.9 <= waited < TIMEOUT + 0.4
        assert "all 1 connections" in str(caught.value)
        assert "max_connections" in str(caught.value)
        assert await store.load("free") == {"n": 1}


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("operation", SEND_ONCE)
async def test_a_frozen_server_fails_a_send_once_write_after_one_timeout(
    server: RedisServer, operation: str
) -> None:
    """Frozen (SIGSTOP) once the write is ready: its script is sent, once, and the caller gets
    BackendUnavailableError after one command timeout, not after the retries' bound."""
    _, prepare = SEND_ONCE[operation]
    # With 3 retries, a retried write would take at least 4 timeouts (each retry reconnects to
    # the frozen server and times out).
    async with RedisSessionStore(server.url, "frozen:", timeout=TIMEOUT, retries=3) as store:
        attempt = await prepare(store)
        before = command_calls(server.port, "eval")
        server.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError):
                await attempt()
            elapsed = time.monotonic() - started
        finally:
            server.thaw()
        assert TIMEOUT * 0.9 <= elapsed < 2 * TIMEOUT
        # The script was in the frozen server's socket: it runs once the server is thawed.
        await wait_for(lambda: command_calls(server.port, "eval") > before, what="the script run")
        assert command_calls(server.port, "eval") - before == 1


# --- batches are pipelines: a few network reads on the server, not one per session -------------

Batch = Callable[[RedisSessionStore, list[str]], Awaitable[object]]


async def loop_of_loads(store: RedisSessionStore, ids: list[str]) -> None:
    for session_id in ids:
        await store.load(session_id)


async def loop_of_saves(store: RedisSessionStore, ids: list[str]) -> None:
    for session_id in ids:
        await store.save(session_id, {"id": session_id})


async def loop_of_deletes(store: RedisSessionStore, ids: list[str]) -> None:
    for session_id in ids:
        await store.delete(session_id)


# Each batch, and the loop of single calls it replaces.
BATCHES: dict[str, tuple[Batch, Batch]] = {
    "load_many": (lambda store, ids: store.load_many(ids), loop_of_loads),
    "save_many": (
        lambda store, ids: store.save_many({session_id: {"id": session_id} for session_id in ids}),
        loop_of_saves,
    ),
    "delete_many": (lambda store, ids: store.delete_many(ids), loop_of_deletes),
}


@pytest.fixture(scope="module")
def quiet_server() -> Iterator[RedisServer]:
    """A server no other client talks to, so its read counter counts this test's reads only."""
    with RedisServer() as private:
        yield private


async def reads_during(ports: list[int], work: Awaitable[object]) -> int:
    """How many network reads from clients the servers made while `work` ran."""
    before = [stat(port, "total_reads_processed") for port in ports]
    await work
    after = [stat(port, "total_reads_processed") for port in ports]
    # Asking costs 2 reads per server: the INFO command, and the end of its connection.
    return sum(after) - sum(before) - 2 * len(ports)


@pytest.mark.redis
@pytest.mark.parametrize("topology", ["standalone", "cluster"])
@pytest.mark.parametrize("batch", BATCHES)
async def test_a_batch_of_100_takes_a_few_reads_where_100_calls_take_100(
    request: pytest.FixtureRequest, topology: str, batch: str
) -> None:
    """A batch reaches each server in one pipeline: a few reads per server for 100 sessions,
    where single calls make the server read 100 times."""
    if topology == "standalone":
        server: RedisServer = request.getfixturevalue("quiet_server")
        url, ports = server.url, [server.port]
    else:
        cluster: ClusterDeployment = request.getfixturevalue("cluster_deployment")
        url, ports = cluster.url, [node.port for node in cluster.nodes]
    ids = [f"s{n}" for n in range(100)]  # spread over every primary of the cluster
    batched, single = BATCHES[batch]
    async with RedisSessionStore(url, prefix=f"batch:{uuid.uuid4().hex[:8]}:") as store:
        await store.save_many({session_id: {} for session_id in ids})  # opens the connections
        batch_reads = await reads_during(ports, batched(store, ids))
        await store.save_many({session_id: {} for session_id in ids})
        single_reads = await reads_during(ports, single(store, ids))
    assert single_reads >= 100
    assert batch_reads <= 2 * len(ports)
