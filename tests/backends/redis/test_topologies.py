"""The Redis store on each topology its URL can name: Sentinel and Cluster failovers, TLS with
an ACL user limited to the store's prefix, Sentinel over TLS and Sentinels with their own ACL
user, readiness probes, an injected client, configuration."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import pytest
from redis.asyncio import Redis

from tests.support.acl import create_acl_user
from tests.support.cluster import ClusterDeployment
from tests.support.redis_server import RedisServer
from tests.support.sentinel import SentinelDeployment
from tests.support.tls import TlsRedisServer
from valerie.infrastructure import (
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    InMemorySessionStore,
    RedisSessionStore,
    get_session_store,
)

T = TypeVar("T")
CALL_BOUND = 5.0  # seconds any call may take during a failover (timeout=0.5, 2 retries)


async def timed(call: Awaitable[T]) -> T:
    """Await a store call; fail the test if it took CALL_BOUND or longer, success or error."""
    started = time.monotonic()
    try:
        return await call
    finally:
        elapsed = time.monotonic() - started
        assert elapsed < CALL_BOUND, f"a call took {elapsed:.1f} s"


@pytest.fixture
def private_sentinel() -> Iterator[SentinelDeployment]:
    """A Sentinel deployment of this test's own, free to lose its primary."""
    with SentinelDeployment() as deployment:
        yield deployment


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill", "freeze"])
async def test_sentinel_failover_is_survived_by_the_same_store(
    private_sentinel: SentinelDeployment, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Kill or freeze (SIGSTOP) the primary: calls fail with the unavailable error or succeed,
    each within its bound; once Sentinel promotes the replica the same store serves again,
    with the sessions written (and replicated) before the failover, and says so once at INFO."""
    caplog.set_level(logging.INFO, logger="valerie.session_store")
    async with RedisSessionStore(private_sentinel.url, prefix="failover:", timeout=0.5) as store:
        await timed(store.save_many({f"s{n}": {"n": n} for n in range(50)}))
        private_sentinel.wait_until_replicated()
        old = private_sentinel.current_primary_address()
        getattr(private_sentinel.primary, fault)()
        deadline = time.monotonic() + 30
        failures = 0
        while True:
            try:
                await timed(store.save("after", {"ok": True}))
                break
            except BackendUnavailableError:
                failures += 1
                assert time.monotonic() < deadline, "no new primary within 30 s"
        assert failures > 0, "the fault was never felt"
        new = private_sentinel.current_primary_address()
        assert new != old
        (failover,) = [
            record.getMessage()
            for record in caplog.records
            if record.levelno == logging.INFO and "new primary" in record.getMessage()
        ]
        assert f"{new[0]}:{new[1]}, was {old[0]}:{old[1]}" in failover
        assert await timed(store.load("after")) == {"ok": True}
        assert await timed(store.load_many([f"s{n}" for n in range(50)])) == {
            f"s{n}": {"n": n} for n in range(50)
        }
        assert await timed(store.update("s1", lambda s: {"n": (s or {"n": 0})["n"] + 1})) == {
            "n": 2
        }


@pytest.mark.redis
@pytest.mark.slow
async def test_a_sentinel_failover_is_logged_once_however_many_connections_reconnect(
    private_sentinel: SentinelDeployment, caplog: pytest.LogCaptureFixture
) -> None:
    """Twenty connections open (no pipelining), the primary killed: after the failover they
    all reconnect at once, each asking Sentinel for the primary; the change is logged once."""
    caplog.set_level(logging.INFO, logger="valerie.session_store")
    ids = [f"s{n}" for n in range(20)]
    async with RedisSessionStore(
        private_sentinel.url, prefix="once:", timeout=0.5, pipelining=False
    ) as store:
        await store.save_many({session_id: {"id": session_id} for session_id in ids})
        await asyncio.gather(*(store.load(session_id) for session_id in ids))
        private_sentinel.wait_until_replicated()
        private_sentinel.primary.kill()
        deadline = time.monotonic() + 30
        while True:
            loaded = await asyncio.gather(
                *(store.load(session_id) for session_id in ids), return_exceptions=True
            )
            if loaded == [{"id": session_id} for session_id in ids]:
                break
            assert time.monotonic() < deadline, "no new primary within 30 s"
    failovers = [r for r in caplog.records if "new primary" in r.getMessage()]
    assert len(failovers) == 1, [r.getMessage() for r in failovers]


@pytest.fixture
def private_cluster() -> Iterator[ClusterDeployment]:
    """Three primaries with a replica each, of this test's own."""
    with ClusterDeployment(primaries=3, replicas_per_primary=1) as deployment:
        yield deployment


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill", "freeze"])
async def test_cluster_failover_is_survived_by_the_same_store(
    private_cluster: ClusterDeployment, fault: str
) -> None:
    """Kill or freeze a primary: calls fail fast or succeed, each within its bound; once its
    replica is promoted the same store serves every slot again, with the sessions replicated
    before the fault."""
    ids = [f"s{n}" for n in range(300)]  # in every primary's slots
    victim = private_cluster.primaries[0]
    (replica,) = private_cluster.replicas_of(victim)
    async with RedisSessionStore(private_cluster.url, prefix="cfail:", timeout=0.5) as store:
        await timed(store.save_many({session_id: {"id": session_id} for session_id in ids}))
        private_cluster.wait_until_replicated()
        getattr(victim, fault)()
        deadline = time.monotonic() + 30
        failures = 0
        while True:
            try:
                loaded = await timed(store.load_many(ids))
                await timed(store.update("s1", lambda s: {**(s or {}), "after": True}))
                break
            except BackendUnavailableError:
                failures += 1
                assert time.monotonic() < deadline, "the cluster did not recover within 30 s"
        assert failures > 0, "the fault was never felt"
        promoted = await asyncio.to_thread(private_cluster.wait_for_failover, victim, 10.0)
        assert promoted is replica  # the primary changed
        assert loaded == {session_id: {"id": session_id} for session_id in ids}
        assert await timed(store.count()) == 300
        assert await timed(store.load("s1")) == {"id": "s1", "after": True}


async def test_tls_with_an_acl_user_limited_to_the_prefix(tls_server: TlsRedisServer) -> None:
    """Over TLS, a user allowed only keys under the store's prefix can do everything the store
    needs, and a store with another prefix is refused by the server."""
    prefix = f"tenant-{uuid.uuid4().hex[:8]}:"
    user = create_acl_user(tls_server, prefix=prefix)
    verified = tls_server.verified_url(client_cert=True)
    url = verified.replace("rediss://", f"rediss://{user.username}:{user.password}@")
    async with RedisSessionStore(url, prefix=prefix) as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(20)})
        assert await store.update("s1", lambda s: {"n": 100}) == {"n": 100}
        async with store.lock("s1", timeout=5):
            assert await store.count() == 20
        assert await store.touch("s2")
        assert await store.load("s2", refresh_ttl=True) == {"n": 2}
        assert (await store.ping())["topology"] == "standalone"
        assert await store.clear() == 20
    async with RedisSessionStore(url, prefix="elsewhere:") as outsider:
        with pytest.raises(BackendError, match="no permissions") as caught:
            await outsider.save("s1", {})
        assert user.password not in str(caught.value)


async def test_tls_without_the_ca_is_refused_as_access_denied(tls_server: TlsRedisServer) -> None:
    """A TLS server whose certificate the client cannot verify is a refusal of access, not an
    outage (tests/faults/test_redis_faults.py checks the cause, the message and that it is not
    retried)."""
    async with RedisSessionStore(tls_server.url, prefix="noca:", retries=0) as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.load("s1")
        assert caught.value.cause == "certificate"


@pytest.fixture(scope="module")
def tls_sentinel() -> Iterator[SentinelDeployment]:
    """Primary, replica and three Sentinels, every one speaking TLS only (one test CA)."""
    with SentinelDeployment(tls=True) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def guarded_sentinel() -> Iterator[SentinelDeployment]:
    """Sentinels that answer only their own ACL user (their default user is off)."""
    login = ("watcher", secrets.token_urlsafe(16))
    with SentinelDeployment(sentinel_login=login) as deployment:
        yield deployment


async def serve_through(url: str) -> None:
    """Use a store on `url` for everything it does, and check that it did it."""
    async with RedisSessionStore(url, prefix=f"through:{uuid.uuid4().hex[:8]}:") as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(20)})
        assert await store.update("s1", lambda s: {"n": 100}) == {"n": 100}
        async with store.lock("s1", timeout=5):
            assert await store.load("s1") == {"n": 100}
        assert await store.count() == 20
        assert (await store.ping())["topology"] == "sentinel"
        assert await store.clear() == 20


@pytest.mark.redis
async def test_rediss_sentinel_talks_tls_to_the_sentinels_and_the_data_nodes(
    tls_sentinel: SentinelDeployment,
) -> None:
    """rediss+sentinel:// with the CA and a client certificate: the store asks the Sentinels
    over TLS, and serves from the primary over TLS; nothing there listens without TLS."""
    assert tls_sentinel.url.startswith("rediss+sentinel://")
    await serve_through(tls_sentinel.url)
    plain = tls_sentinel.url.replace("rediss+sentinel://", "redis+sentinel://").partition("?")[0]
    async with RedisSessionStore(plain, prefix="plain:", retries=0) as store:
        with pytest.raises(BackendUnavailableError):
            await store.load("s1")


@pytest.mark.redis
async def test_sentinel_username_and_password_log_in_to_the_sentinels(
    guarded_sentinel: SentinelDeployment,
) -> None:
    """?sentinel_username=&sentinel_password= are what the Sentinels are asked with; without
    them, or with a wrong password, the store fails with AccessDeniedError (authentication),
    not as an outage, and shows no password."""
    assert guarded_sentinel.sentinel_login is not None
    username, password = guarded_sentinel.sentinel_login
    await serve_through(guarded_sentinel.url)
    without = guarded_sentinel.url.partition("?")[0]
    wrong = without + f"?sentinel_username={username}&sentinel_password=not-{password}"
    for url in (without, wrong):
        async with RedisSessionStore(url, prefix="guarded:", retries=0) as store:
            with pytest.raises(AccessDeniedError) as caught:
                await store.load("s1")
        assert caught.value.cause == "authentication"
        message = str(caught.value)
        assert re.search("sentinel_password", message), message
        assert password not in message


async def test_ping_reports_latency_and_topology(
    redis_server: RedisServer, sentinel_deployment: SentinelDeployment
) -> None:
    """ping() gives latency and topology facts on every kind of store."""
    memory = await InMemorySessionStore().ping()
    assert memory["topology"] == "memory"
    async with RedisSessionStore(redis_server.url) as standalone:
        facts = await standalone.ping()
        assert facts["topology"] == "standalone"
        assert facts["server"] == f"127.0.0.1:{redis_server.port}"
        assert facts["latency_ms"] >= 0
    async with RedisSessionStore(sentinel_deployment.url) as sentinel:
        facts = await sentinel.ping()
        assert facts == {**facts, "topology": "sentinel", "master_name": "valerie"}


async def test_ping_raises_unavailable_when_the_server_is_down() -> None:
    """A readiness probe against nothing fails with the unavailable error."""
    async with RedisSessionStore("redis://127.0.0.1:1/0", retries=0) as store:
        with pytest.raises(BackendUnavailableError):
            await store.ping()


async def test_an_injected_client_is_used_and_never_closed(redis_server: RedisServer) -> None:
    """client= gives the store a ready redis-py client; closing the store leaves it open."""
    client = Redis.from_url(redis_server.url)
    try:
        async with RedisSessionStore(prefix="injected:", client=client) as store:
            await store.save("s1", {"n": 1})
        assert await client.get("injected:s1") == b'{"n":1}'
    finally:
        await client.delete("injected:s1")
        await client.aclose()


async def test_the_factory_builds_a_sentinel_store_from_the_environment(
    sentinel_deployment: SentinelDeployment,
) -> None:
    """Switching to Sentinel is a change of URL, not of code."""
    environ = {
        "VALERIE_SESSION_STORE": "redis",
        "VALERIE_SESSION_REDIS_URL": sentinel_deployment.url,
    }
    async with get_session_store(environ) as store:
        await store.save("s1", {"via": "sentinel"})
        assert await store.load("s1") == {"via": "sentinel"}
        await store.delete("s1")
