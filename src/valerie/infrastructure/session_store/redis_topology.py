"""redis-py clients for each topology a Redis URL can name: standalone, Sentinel, Cluster.

Imported only by `RedisSessionStore`, once redis-py is known to be installed.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff

from .errors import ConfigurationError
from .urls import RedisTarget, mask_url

RedisClient = Redis | RedisCluster

_STORE_OWNED_OPTIONS = {
    "decode_responses": "the store reads bytes",
    "protocol": "the store speaks RESP2",
    "max_connections": "pass max_connections= to RedisSessionStore instead",
}
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


def connection_options(target: RedisTarget) -> dict[str, Any]:
    """Return the redis-py connection options in the URL's query string, cast and checked.

    Raises:
        ConfigurationError: redis-py cannot read an option, or it is one the store owns.
    """
    query = [(key, value) for key, value in target.query if key not in _SENTINEL_OPTIONS]
    if target.topology == "standalone":
        url = target.url
    else:
        # redis-py parses options for one-host URLs only: cast them through an equivalent one.
        scheme = "rediss" if target.tls else "redis"
        url = f"{scheme}://localhost/0?" + "&".join(f"{key}={value}" for key, value in query)
    try:
        options: dict[str, Any] = dict(parse_url(url))
    except ValueError:
        raise ConfigurationError(
            f"redis_url={mask_url(target.url)!r} has an option redis-py cannot read; check "
            "its query parameters (e.g. ?socket_timeout=2)"
        ) from None
    for option, reason in _STORE_OWNED_OPTIONS.items():
        if option in options:
            raise ConfigurationError(
                f"redis_url={mask_url(target.url)!r} sets {option}, which this store does not "
                f"allow ({reason}); remove it from the URL"
            )
    if target.topology != "standalone":
        for key in ("host", "port", "db", "path", "username", "password", "connection_class"):
            options.pop(key, None)
    return options


def build_client(
    target: RedisTarget, *, timeout: float, retries: int, max_connections: int
) -> RedisClient:
    """Return a new client for `target` with the store's timeouts, retries and pool size."""
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries),
        "max_connections": max_connections,
        **connection_options(target),
    }
    if target.topology == "standalone":
        return Redis.from_pool(ConnectionPool.from_url(target.url, **common))
    if target.topology == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            ssl=target.tls,
            username=target.username,
            password=target.password,
            **common,
        )
    sentinel_options = dict(target.query)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.nodes),
        sentinel_kwargs={
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "username": sentinel_options.get("sentinel_username"),
            "password": sentinel_options.get("sentinel_password"),
        },
        ssl=target.tls,
        db=target.db,
        username=target.username,
        password=target.password,
        **{key: value for key, value in common.items() if key != "max_connections"},
    )
    assert target.master_name is not None
    client: Redis = sentinel.master_for(
        target.master_name,
        redis_class=Redis,
        max_connections=max_connections,
    )
    return client


async def close_client(client: RedisClient) -> None:
    """Close a client built here, with the Sentinel clients it asked for the primary."""
    await client.aclose()
    pool = getattr(client, "connection_pool", None)
    sentinel = getattr(pool, "sentinel_manager", None)
    if sentinel is not None:
        for sentinel_client in sentinel.sentinels:
            await sentinel_client.aclose()


def describe(client: RedisClient) -> dict[str, Any]:
    """Return facts about the topology for a readiness probe (never a secret)."""
    if isinstance(client, RedisCluster):
        primaries = client.get_primaries()
        return {
            "topology": "cluster",
            "primaries": sorted(f"{node.host}:{node.port}" for node in primaries),
            "nodes": len(client.get_nodes()),
        }
    pool = client.connection_pool
    if hasattr(pool, "service_name"):
        return {"topology": "sentinel", "master_name": pool.service_name}
    kwargs = pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    return {"topology": "standalone", "server": where}
