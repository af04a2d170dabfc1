"""The Redis store on each topology its URL can name: Sentinel failover, TLS with an ACL user
limited to the store's prefix, readiness probes, an injected client, configuration."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from tests.redis_deployments import (
    ClusterDeployment,
    SentinelDeployment,
    TlsRedisServer,
    create_acl_user,
)
from tests.redis_server import RedisServer
from valerie.infrastructure import (
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    InMemorySessionStore,
    RedisSessionStore,
    get_session_store,
)


@pytest.fixture
def private_sentinel() -> Iterator[SentinelDeployment]:
    """A Sentinel deployment of this test's own, free to lose its primary."""
    with SentinelDeployment() as deployment:
        yield deployment


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill", "freeze"])
async def test_sentinel_failover_is_survived_by_the_same_store(
    private_sentinel: SentinelDeployment, fault: str
) -> None:
    """Kill or freeze (SIGSTOP) the primary: calls fail with the unavailable error or succeed,
    never hang; once Sentinel promotes the replica the same store serves again, with the
    sessions written (and replicated) before the failover."""
    async with RedisSessionStore(private_sentinel.url, prefix="failover:", timeout=0.5) as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(50)})
        private_sentinel.wait_until_replicated()
        old = private_sentinel.current_primary_address()
        getattr(private_sentinel.primary, fault)()
        deadline = time.monotonic() + 30
        while True:
            started = time.monotonic()
            try:
                await store.save("after", {"ok": True})
                break
            except BackendUnavailableError:
                assert time.monotonic() - started < 5  # each call bounded by its timeouts
                assert time.monotonic() < deadline, "no new primary within 30 s"
        assert private_sentinel.current_primary_address() != old
        assert await store.load("after") == {"ok": True}
        assert await store.load_many([f"s{n}" for n in range(50)]) == {
            f"s{n}": {"n": n} for n in range(50)
        }
        assert await store.update("s1", lambda s: {"n": (s or {"n": 0})["n"] + 1}) == {"n": 2}


@pytest.fixture
def private_cluster() -> Iterator[ClusterDeployment]:
    """Three primaries with a replica each, of this test's own."""
    with ClusterDeployment(primaries=3, replicas_per_primary=1) as deployment:
        yield deployment


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill", "freeze"])
async def test_cluster_failover_is_survived_by_the_same_store(
    private_cluster: ClusterDeployment, fault: str
) -> None:
    """Kill or freeze a primary: calls fail fast or succeed; once its replica is promoted the
    same store serves every slot again, with the sessions replicated before the fault."""
    ids = [f"s{n}" for n in range(300)]
    async with RedisSessionStore(private_cluster.url, prefix="cfail:", timeout=0.5) as store:
        await store.save_many({session_id: {"id": session_id} for session_id in ids})
        private_cluster.wait_until_replicated()
        getattr(private_cluster.primaries[0], fault)()
        deadline = time.monotonic() + 30
        while True:
            started = time.monotonic()
            try:
                loaded = await store.load_many(ids)
                await store.update("s1", lambda s: {**(s or {}), "after": True})
                break
            except BackendUnavailableError:
                assert time.monotonic() - started < 5  # each call bounded by its timeouts
                assert time.monotonic() < deadline, "the cluster did not recover within 30 s"
        assert loaded == {session_id: {"id": session_id} for session_id in ids}
        assert await store.count() == 300


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
    outage (tests/test_redis_faults.py checks the cause, the message and that it is not
    retried)."""
    async with RedisSessionStore(tls_server.url, prefix="noca:", retries=0) as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.load("s1")
        assert caught.value.cause == "certificate"


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
