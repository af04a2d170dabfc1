"""redis-py clients for each topology a Redis URL can name: standalone, Sentinel, Cluster.

Everything here depends on how redis-py (7.x, 8.x) behaves: what its errors mean, how its
clients route, retry and close, how a connection sends and reads. Imported only by
`RedisSessionStore`, once redis-py is known to be installed.
"""

from __future__ import annotations

import functools
import inspect
import ssl
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
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
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    ConnectionError,
    MovedError,
    NoPermissionError,
    ResponseError,
    TimeoutError,
)

from ...errors import ConfigurationError
from .urls import RedisTarget, mask_url

T = TypeVar("T")

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


class _Retry(Retry):
    """redis-py's `Retry`, except that a refusal of access (see `access_denial`) is not retried.

    redis-py counts a wrong password or a failed certificate check as a connection error.
    """

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        def retryable(error: Exception) -> bool:
            return access_denial(error) is None and (is_retryable is None or is_retryable(error))

        return await super().call_with_retry(do, fail, retryable, with_failure_count)


def access_denial(error: BaseException) -> str | None:
    """Return why the server refused access: authentication, permission or certificate.

    None for any other error (an outage, a refused command...).

    The cause may sit anywhere in the chain of exceptions (redis-py wraps TLS errors in its
    `ConnectionError`, and a Cluster's first connection errors in `RedisClusterException`);
    a Sentinel lookup only keeps the text of what went wrong with each Sentinel.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (AuthenticationError, AuthenticationWrongNumberOfArgsError)):
            return "authentication"
        if isinstance(seen, AuthorizationError):
            return "permission"
        if isinstance(seen, NoPermissionError):
            return "permission"
        if isinstance(seen, ssl.SSLCertVerificationError) or (
            isinstance(seen, ssl.SSLError) and "CERTIFICATE" in str(seen.reason)
        ):
            return "certificate"
        if isinstance(seen, MasterNotFoundError):
            text = str(seen)
            if "AuthenticationError" in text:
                return "authentication"
            if "CERTIFICATE" in text:
                return "certificate"
        seen = seen.__cause__ or seen.__context__
    return None


def denial_detail(error: BaseException) -> str:
    """A short account of a refusal of access, from the server or the TLS library, or ""."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) and seen.verify_message:
            return f"certificate verify failed: {seen.verify_message}"
        if isinstance(seen, ssl.SSLError) and seen.reason:
            return str(seen.reason).lower().replace("_", " ")
        if isinstance(seen, (AuthenticationError, AuthorizationError, NoPermissionError)):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    # A Sentinel lookup keeps only the names of what went wrong: nothing more to say.
    return "" if isinstance(error, MasterNotFoundError) else str(error)


def missing_master(error: BaseException) -> bool | None:
    """Tell a Sentinel's "no master found" apart: some Sentinel answered, or none did.

    True if some Sentinel answered (none knows a primary of that name that is up), False if
    none did; None for any other error.
    """
    if not isinstance(error, MasterNotFoundError):
        return None
    # redis-py appends " : <what failed with each Sentinel>" when Sentinels could not be asked.
    return " : " not in str(error)


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


def client_address(client: RedisClient) -> str:
    """Where a client points, for messages; never a credential.

    host:port, a socket path, the Sentinel master or the Cluster's seed nodes.
    """
    if isinstance(client, RedisCluster):
        return "the Cluster at " + ",".join(client.nodes_manager.startup_nodes)
    pool = client.connection_pool
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"the Sentinel-managed primary {service!r}"
    kwargs = pool.connection_kwargs
    return str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")


def build_client(
    target: RedisTarget, *, timeout: float, retries: int, max_connections: int
) -> RedisClient:
    """Return a new client for `target` with the store's timeouts, retries and pool size."""
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": _Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries),
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
    _SENTINEL_CLIENTS[client] = list(sentinel.sentinels)
    return client


async def close_client(client: RedisClient) -> None:
    """Close a client built here, with the Sentinel clients it asked for the primary.

    Only for a client no call uses any more: every connection is closed. (Closing idle
    connections under running calls is not safe: redis-py's pools let a call take a connection
    that is being closed.)
    """
    await client.aclose()
    if isinstance(client, RedisCluster):
        # aclose() does nothing while the client is due to re-learn the slot map (after any
        # connection error), which left every node's connections open: close them anyway.
        await client.nodes_manager.aclose()
        await client.nodes_manager.aclose("startup_nodes")
    else:
        for sentinel_client in _SENTINEL_CLIENTS.pop(client, ()):
            await sentinel_client.aclose()


# The Sentinel clients of each client built here. redis-py's own list can lose one: concurrent
# lookups that fall over to another Sentinel swap its entries without a lock.
_SENTINEL_CLIENTS: weakref.WeakKeyDictionary[Redis, list[Redis]] = weakref.WeakKeyDictionary()


def forget_slots(client: RedisCluster) -> None:
    """Make the client's next call read the slot map again (CLUSTER SLOTS) before it routes.

    What redis-py itself does after a connection error of its own routing, for the writes the
    store sends to a slot's primary itself.
    """
    client._initialize = True


async def drop_if_stale(connection: AbstractConnection) -> None:
    """Close a pooled connection that its server closed (or that holds unread bytes).

    The next send then opens a new one. redis-py's pool for one server checks each connection
    it hands out this way; a Cluster node's pool does not, so a write sent once would fail on
    a connection to a node that restarted since its last use.
    """
    if not connection.is_connected:
        return
    check = getattr(connection, "can_read", None) or connection.can_read_destructive
    try:
        stale = bool(await check())
    except (ConnectionError, TimeoutError, OSError):
        stale = True
    if stale:
        await connection.disconnect()


async def learn_moved(client: RedisCluster, moved: MovedError) -> None:
    """Record, from a MOVED reply, which node now serves the slot."""
    await client.nodes_manager.move_slot(moved)


_SLICE = 1 << 20
"""Bytes of a large value handed to the socket at a time: each slice gets the socket timeout to
go out, and the transport never holds more than one slice besides the caller's bytes."""


async def send(connection: AbstractConnection, commands: Sequence[tuple[Any, ...]]) -> None:
    """Send `commands` on `connection` in one go, without copying large values.

    redis-py's own send joins every piece into one `bytes` (a copy of each value), which the
    event loop's transport copies again: a large state would be held three times over. Here
    small commands still go out together, and each value larger than `_SLICE` goes out in
    slices of its memory, each bounded by the socket timeout, so that a large write fails
    only if the server stops taking it.
    """
    if len(commands) == 1:
        chunks = connection.pack_command(*commands[0])
    else:
        chunks = connection.pack_commands(commands)
    if max(map(len, chunks)) <= _SLICE:  # the usual case: no large value
        await connection.send_packed_command(chunks)
        return
    pending: list[bytes] = []
    health_check = True
    for chunk in chunks:
        if len(chunk) <= _SLICE:
            pending.append(chunk)
            continue
        if pending:
            await connection.send_packed_command(pending, check_health=health_check)
            pending, health_check = [], False
        view = memoryview(chunk)
        for start in range(0, len(view), _SLICE):
            piece = view[start : start + _SLICE]
            await connection.send_packed_command([piece], check_health=health_check)  # type: ignore[list-item]
            health_check = False
    if pending:
        await connection.send_packed_command(pending, check_health=health_check)


async def round_trips(
    connection: AbstractConnection,
    commands: Sequence[tuple[Any, ...]],
    wait: tuple[Any, ...] | None,
    wait_timeout: float,
) -> tuple[list[Any], int | Exception | None]:
    """Send `commands`, then `wait` (a WAIT), on one connection; read every reply.

    Every reply is read, even after an error reply, so the connection stays in step for its
    next user. WAIT counts the writes sent before it on its connection, so it confirms these.

    Returns:
        The replies (a `ResponseError` instance for each refused command), and what WAIT
        answered: how many replicas confirmed, or the `ResponseError` it got (None without
        `wait`).

    Raises:
        TimeoutError: WAIT did not answer within `wait_timeout` seconds; the connection was
            closed, since its reply is still due.
    """
    await send(connection, [*commands, wait] if wait is not None else commands)
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except ResponseError as error:
            replies.append(error)
    if wait is None:
        return replies, None
    try:
        acknowledged: int | None = await connection.read_response(timeout=wait_timeout)
    except ResponseError as error:
        return replies, error
    if acknowledged is None:
        # redis-py answers None, instead of raising, when a read given its own timeout times
        # out: the reply is still due, so this connection must not be used again.
        await connection.disconnect()
        raise TimeoutError(f"WAIT did not answer within {wait_timeout:g}s")
    return replies, acknowledged


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
