"""redis-py clients for each topology a Redis URL can name: standalone, Sentinel, Cluster.

Builds clients with redis-py's public constructors, and checks a URL's options or a given
client against what the installed redis-py takes. How commands then travel is the
transport's concern (`transport.py`). Imported only once redis-py is known to be installed.
"""

from __future__ import annotations

import functools
import inspect
import logging
import weakref
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
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from ...errors import ConfigurationError
from .urls import RedisTarget, mask_url

RedisClient = Redis | RedisCluster

logger = logging.getLogger("valerie.session_store.redis")

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


def check_client(client: object) -> None:
    """Check that a client given to the store is one it can use.

    Raises:
        ConfigurationError: It is not a `redis.asyncio` `Redis` or `RedisCluster`, or it
            decodes replies to `str` (the store reads bytes).
    """
    if not isinstance(client, (Redis, RedisCluster)):
        raise ConfigurationError(
            f"client must be a redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster, got "
            f"{type(client).__module__}.{type(client).__qualname__}; make one with "
            "redis.asyncio.Redis.from_url(...), or pass redis_url= instead"
        )
    if client.get_encoder().decode_responses:
        raise ConfigurationError(
            "client was made with decode_responses=True, so it would turn the stored bytes into "
            "str, which the store cannot read; make it with decode_responses=False (the default)"
        )


def build_client(
    target: RedisTarget, *, timeout: float, retry: Retry, max_connections: int
) -> RedisClient:
    """Return a new client for `target` with the store's timeouts, retries and pool size."""
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": retry,
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
        connection_pool_class=FailoverLoggingPool,
        max_connections=max_connections,
    )
    _SENTINEL_CLIENTS[client] = list(sentinel.sentinels)
    return client


class FailoverLoggingPool(SentinelConnectionPool):
    """redis-py's Sentinel pool, which also says at INFO when Sentinel names a new primary.

    redis-py asks Sentinel for the primary on every new connection and drops the idle ones
    when the answer changes (a failover, or an operator's switch); this logs that change once.
    """

    async def get_master_address(self) -> Any:
        """Return the primary's address, as redis-py does; log it if it changed."""
        address = await super().get_master_address()  # type: ignore[no-untyped-call]
        # Compared and replaced with no await between: connections that reconnect at once
        # after a failover all ask, and the change is logged by the first answer only.
        known = getattr(self, "_announced", None)
        self._announced = address
        if known is not None and address != known:
            logger.info(
                "Sentinel names a new primary for %r: %s:%s, was %s:%s (a failover)",
                self.service_name,
                *address,
                *known,
            )
        return address


# The Sentinel clients of each client built here. redis-py's own list can lose one: concurrent
# lookups that fall over to another Sentinel swap its entries without a lock.
_SENTINEL_CLIENTS: weakref.WeakKeyDictionary[Redis, list[Redis]] = weakref.WeakKeyDictionary()


def sentinel_clients(client: Redis) -> list[Redis]:
    """Hand over (once) the Sentinel clients that `build_client` made for `client`, to close."""
    return _SENTINEL_CLIENTS.pop(client, [])
