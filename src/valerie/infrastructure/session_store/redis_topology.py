"""redis-py clients for each topology a Redis URL can name: standalone, Sentinel, Cluster.

Imported only by `RedisSessionStore`, once redis-py is known to be installed.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any
from urllib.parse import urlencode

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff

from .errors import ConfigurationError
from .urls import RedisTarget, mask_url

RedisClient = Redis | RedisCluster

_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


@functools.cache
def _connection_parameters() -> frozenset[str]:
    """The options redis-py's connection classes take, with what `parse_url` itself yields."""
    names = {"connection_class", "path", "host", "port", "db", "username", "password"}
    for cls in (AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection):
        names.update(inspect.signature(cls.__init__).parameters)
    return frozenset(names - {"self", "args", "kwargs"})


def connection_options(target: RedisTarget, name: str = "redis_url") -> dict[str, Any]:
    """Return the redis-py connection options in the URL's query string, as redis-py casts them.

    `parse_redis_url` has checked the options already; this adds what only redis-py knows.

    Raises:
        ConfigurationError: redis-py cannot read an option, or the installed redis-py does not
            take it.
    """
    query = [(key, value) for key, value in target.query if key not in _SENTINEL_OPTIONS]
    if target.topology == "standalone":
        url = target.url
    else:
        # redis-py parses options for one-host URLs only: cast them through an equivalent one.
        scheme = "rediss" if target.tls else "redis"
        url = f"{scheme}://localhost/0?" + urlencode(query)
    try:
        options: dict[str, Any] = dict(parse_url(url))
    except ValueError:
        raise ConfigurationError(
            f"{name}={mask_url(target.url)!r} has an option redis-py cannot read; check "
            "its query parameters (e.g. ?socket_timeout=2)"
        ) from None
    # Only names parse_redis_url allowed get here, so naming them reveals no secret.
    unknown = sorted(set(options) - _connection_parameters())
    if unknown:
        raise ConfigurationError(
            f"{name}={mask_url(target.url)!r} sets {', '.join(unknown)}, which the installed "
            "redis-py does not take; upgrade redis-py, or remove it from the URL"
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
        # The sentinels get the same connection options (TLS included) as the data nodes,
        # with credentials of their own.
        sentinel_kwargs={
            **{key: value for key, value in common.items() if key != "max_connections"},
            "ssl": target.tls,
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
    """Close a client built here, with the Sentinel clients it asked for the primary.

    Only idle connections are closed now: one in use belongs to a call still running, which
    closes it when it is done (see `RedisSessionStore._execute`); closing it under that call
    would break it mid-command.
    """
    if isinstance(client, RedisCluster):
        await client.aclose()
        # aclose() does nothing while the client is due to re-learn the slot map (after any
        # connection error), which left every node's connections open: close them anyway.
        await client.nodes_manager.aclose()
        await client.nodes_manager.aclose("startup_nodes")
        return
    await client.connection_pool.disconnect(inuse_connections=False)
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
