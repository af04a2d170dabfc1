"""Smoke tests of the deployment launchers, with plain redis-py clients (not valerie's store)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from tests.support import tls as tls_support
from tests.support.acl import create_acl_user
from tests.support.cluster import CLUSTER_SLOTS, ClusterDeployment
from tests.support.fault_proxy import FaultProxy, command_named
from tests.support.redis_server import RedisServer
from tests.support.resp import call, command_calls
from tests.support.sentinel import SentinelDeployment
from tests.support.tls import TlsRedisServer, TlsUnsupported

pytestmark = pytest.mark.redis  # every test here starts a redis-server

# Enough attempts to ride out a dead pooled connection and the reconnect to the new primary.
RETRY = Retry(ExponentialBackoff(cap=0.5, base=0.05), 10)


@functools.cache
def keys_in_every_slot() -> dict[str, str]:
    """One key (mapped to a value) in each of the 16384 cluster slots."""
    by_slot: dict[int, str] = {}
    index = 0
    while len(by_slot) < CLUSTER_SLOTS:
        key = f"smoke:{index}"
        by_slot.setdefault(key_slot(key.encode()), key)
        index += 1
    return {key: f"value-{slot}" for slot, key in by_slot.items()}


@pytest.fixture
def sentinel_deployment() -> Iterator[SentinelDeployment]:
    with SentinelDeployment() as deployment:
        yield deployment


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsRedisServer]:
    with TlsRedisServer() as server:
        yield server


@asynccontextmanager
async def primary_through_sentinel(deployment: SentinelDeployment) -> AsyncIterator[Redis]:
    sentinel = Sentinel(deployment.sentinel_addresses, socket_timeout=1.0)  # type: ignore[no-untyped-call]
    primary = sentinel.master_for(
        deployment.master_name, socket_timeout=1.0, decode_responses=True, retry=RETRY
    )
    try:
        yield primary
    finally:
        await primary.aclose()
        await sentinel.aclose()


async def test_sentinel_serves_the_primary(sentinel_deployment: SentinelDeployment) -> None:
    """A Sentinel-discovered client writes to the primary, and the replica receives it."""
    async with primary_through_sentinel(sentinel_deployment) as primary:
        await primary.set("greeting", "hello")
        assert await primary.get("greeting") == "hello"
    assert sentinel_deployment.current_primary() is sentinel_deployment.primary
    sentinel_deployment.wait_until_replicated()
    assert sentinel_deployment.replica.command("GET", "greeting") == b'"hello"\n'


@pytest.mark.slow
async def test_sentinel_promotes_the_replica_when_the_primary_dies(
    sentinel_deployment: SentinelDeployment,
) -> None:
    """Kill the primary: the Sentinels promote the replica, and the same client writes again."""
    async with primary_through_sentinel(sentinel_deployment) as primary:
        await primary.set("before", "1")
        await asyncio.to_thread(sentinel_deployment.wait_until_replicated)
        sentinel_deployment.primary.kill()
        promoted = await asyncio.to_thread(sentinel_deployment.wait_for_failover, 30.0)
        assert promoted == ("127.0.0.1", sentinel_deployment.replica.port)
        await primary.set("after", "2")
        assert await primary.get("before") == "1"
        assert await primary.get("after") == "2"
    assert sentinel_deployment.current_primary() is sentinel_deployment.replica


@pytest.mark.slow
async def test_a_cluster_serves_keys_in_every_slot() -> None:
    """Three primaries, no replicas: a key in each of the 16384 slots is written and read back."""
    values = keys_in_every_slot()
    with ClusterDeployment(primaries=3) as deployment:
        assert len(deployment.primaries) == 3
        assert deployment.replicas == []
        client = RedisCluster.from_url(deployment.seed_url, decode_responses=True)
        try:
            await client.mset_nonatomic(values)
            assert await client.mget_nonatomic(list(values)) == list(values.values())
        finally:
            await client.aclose()


@pytest.mark.slow
async def test_a_cluster_serves_again_after_a_primary_dies() -> None:
    """Kill a primary that has a replica: it takes over, and every key is still served."""
    values = keys_in_every_slot()
    with ClusterDeployment(primaries=3, replicas_per_primary=1) as deployment:
        victim = deployment.primaries[0]
        (replica,) = deployment.replicas_of(victim)
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in deployment.startup_nodes],
            decode_responses=True,
        )
        try:
            await client.mset_nonatomic(values)
            await asyncio.to_thread(deployment.wait_until_replicated)
            victim.kill()
            promoted = await asyncio.to_thread(deployment.wait_for_failover, victim, 30.0)
            assert promoted is replica
            assert await client.mget_nonatomic(list(values)) == list(values.values())
            await client.mset_nonatomic({key: "again" for key in values})
            assert set(await client.mget_nonatomic(list(values))) == {"again"}
        finally:
            await client.aclose()


async def test_tls_with_the_ca_only(tls_server: TlsRedisServer) -> None:
    """The server certificate verifies against the test CA for 127.0.0.1, hostname checked."""
    client = Redis.from_url(
        tls_server.url, ssl_ca_certs=str(tls_server.ca_cert), ssl_check_hostname=True
    )
    try:
        await client.set("tls", "yes")
        assert await client.get("tls") == b"yes"
    finally:
        await client.aclose()


async def test_tls_with_a_client_certificate(tls_server: TlsRedisServer) -> None:
    """The client certificate and key, passed in the URL, are accepted."""
    client = Redis.from_url(tls_server.verified_url(client_cert=True))
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def test_tls_auth_clients_yes_requires_the_client_certificate() -> None:
    """With tls-auth-clients yes, a client without a certificate is refused; one with it works."""
    with TlsRedisServer(auth_clients="yes") as server:
        with_cert = Redis.from_url(server.verified_url(client_cert=True))
        without_cert = Redis.from_url(server.verified_url(), retry=Retry(ExponentialBackoff(), 0))
        try:
            assert await with_cert.ping()
            with pytest.raises(RedisConnectionError):
                await without_cert.ping()
        finally:
            await with_cert.aclose()
            await without_cert.aclose()


def test_a_redis_without_tls_gets_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """If redis-server was built without TLS, the launcher says so instead of failing later."""
    monkeypatch.setattr(tls_support, "redis_supports_tls", lambda executable: False)
    with pytest.raises(TlsUnsupported, match="built without TLS support"):
        TlsRedisServer()


async def test_an_acl_user_is_confined_to_its_prefix(redis_server: RedisServer) -> None:
    """Inside its prefix the user reads and writes; outside it, and for FLUSHDB, it gets NOPERM.

    Glob characters in the prefix are literal: `acl[1]:` does not open `acl1:`.
    """
    unique = uuid.uuid4().hex
    prefix = f"acl[1]:{unique}:"
    user = create_acl_user(redis_server, prefix=prefix)
    client = Redis.from_url(user.url, decode_responses=True)
    try:
        await client.set(f"{prefix}session", "mine")
        assert await client.get(f"{prefix}session") == "mine"
        for key in ("elsewhere", f"acl1:{unique}:session"):
            with pytest.raises(NoPermissionError, match="no permissions"):
                await client.set(key, "not mine")
        with pytest.raises(NoPermissionError, match="no permissions"):
            await client.flushdb()
    finally:
        await client.aclose()


async def test_an_acl_user_on_a_tls_server(tls_server: TlsRedisServer) -> None:
    """The helper works over TLS too, and its URL keeps the rediss scheme."""
    user = create_acl_user(tls_server, prefix="tls-acl:")
    assert user.url.startswith("rediss://")
    client = Redis.from_url(user.url, ssl_ca_certs=str(tls_server.ca_cert))
    try:
        await client.set("tls-acl:k", "v")
        with pytest.raises(NoPermissionError):
            await client.get("k")
    finally:
        await client.aclose()


async def test_a_fault_proxy_forwards_and_loses_only_the_replies_it_is_told_to(
    redis_server: RedisServer,
) -> None:
    """Through the proxy a client works as usual; under a fault the server runs the matching
    command but its reply is dropped (the connection closes) or stalled (the client times
    out), while other commands, and the same command once the fault is over, get theirs."""
    key = f"proxy:{uuid.uuid4().hex}"
    with FaultProxy(redis_server.port) as proxy:
        client = Redis.from_url(proxy.url, socket_timeout=0.5, retry=Retry(ExponentialBackoff(), 0))
        try:
            await client.set(key, "v")
            before = command_calls(redis_server.port, "get")
            with proxy.fault("drop", command_named("GET", key=key)) as dropped:
                with pytest.raises(RedisConnectionError):
                    await client.get(key)
                assert await client.get("another key") is None
            with proxy.fault("stall", command_named("GET", key=key)) as stalled:
                with pytest.raises(RedisTimeoutError):
                    await client.get(key)
                assert await client.set(key, "w")
            assert await client.get(key) == b"w"
        finally:
            await client.aclose()
    assert (dropped.hits, stalled.hits) == (1, 1)
    assert command_calls(redis_server.port, "get") - before == 4  # the lost replies' GETs ran


async def test_a_proxied_cluster_routes_every_node_through_its_proxy(
    proxied_cluster_deployment: ClusterDeployment,
) -> None:
    """Every node announces its proxy's port, so a client given the proxies is only ever sent
    to proxies, and serves every slot through them."""
    deployment = proxied_cluster_deployment
    proxy_ports = {proxy.port for proxy in deployment.proxies.values()}
    for node in deployment.nodes:
        slots = call(node.port, "CLUSTER", "SLOTS")
        assert isinstance(slots, list)
        announced = set()
        for entry in slots:  # [start, end, [host, port, id], replicas...]
            assert isinstance(entry, list)
            assert isinstance(entry[2], list)
            announced.add(int(str(entry[2][1])))
        assert announced == proxy_ports
    values = {f"proxied:{n}": str(n) for n in range(300)}  # in every node's slots
    startup = [ClusterNode("127.0.0.1", port) for port in proxy_ports]
    client = RedisCluster(startup_nodes=startup, decode_responses=True)
    try:
        await client.mset_nonatomic(values)
        assert await client.mget_nonatomic(list(values)) == list(values.values())
        assert {node.port for node in client.get_nodes()} == proxy_ports
    finally:
        await client.delete(*values)
        await client.aclose()


async def test_a_tls_sentinel_deployment_speaks_tls_only() -> None:
    """Sentinels and data nodes answer over TLS with the test CA (and nothing else): a redis-py
    Sentinel client finds the primary and writes through it."""
    with SentinelDeployment(tls=True) as deployment:
        assert deployment.certificates is not None
        tls = {
            "ssl": True,
            "ssl_ca_certs": str(deployment.certificates / "ca.crt"),
            "ssl_certfile": str(deployment.certificates / "client.crt"),
            "ssl_keyfile": str(deployment.certificates / "client.key"),
        }
        sentinel = Sentinel(deployment.sentinel_addresses, sentinel_kwargs=tls, **tls)  # type: ignore[no-untyped-call]
        primary = sentinel.master_for(deployment.master_name, socket_timeout=1.0)
        try:
            await primary.set("tls-sentinel", "yes")
            assert await primary.get("tls-sentinel") == b"yes"
        finally:
            await primary.aclose()
            await sentinel.aclose()
        for server in deployment.servers:
            assert server.ping()
            assert not RedisServer.ping(server)  # plain TCP: no answer


async def test_sentinels_with_a_login_refuse_anyone_else() -> None:
    """With sentinel_login, the Sentinels answer their ACL user and refuse an anonymous client;
    the data nodes stay open."""
    login = ("watcher", "w4tch-w0rd")
    with SentinelDeployment(sentinel_login=login) as deployment:
        username, password = login
        guarded = Sentinel(  # type: ignore[no-untyped-call]
            deployment.sentinel_addresses,
            sentinel_kwargs={"username": username, "password": password},
        )
        anonymous = Sentinel(  # type: ignore[no-untyped-call]
            deployment.sentinel_addresses,
            sentinel_kwargs={"retry": Retry(ExponentialBackoff(), 0)},  # a refusal is final
        )
        try:
            address = await guarded.discover_master(deployment.master_name)
            assert address == ("127.0.0.1", deployment.primary.port)
            with pytest.raises(RedisConnectionError):
                await anonymous.discover_master(deployment.master_name)
        finally:
            await guarded.aclose()
            await anonymous.aclose()
        assert deployment.primary.ping()
