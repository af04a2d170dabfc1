"""Pins every redis-py internal the Redis backend relies on, so an upgrade that changes one
fails here, by name, rather than somewhere inside a fault test.

The transport (backends/redis/transport.py) is the only module that reaches below redis-py's
documented client API; topology.py reads redis-py's URL parser and connection signatures to
check URL options. Each entry below is one thing they use, and what they need of it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, NodesManager, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import MovedError

from tests.support.redis_server import RedisServer
from valerie.infrastructure.session_store.backends.redis import topology, transport
from valerie.infrastructure.session_store.backends.redis.urls import parse_redis_url


def _coroutine(owner: type, name: str, *parameters: str) -> Callable[[], str | None]:
    """A check: `owner.name` is a coroutine function that takes `parameters` by name."""

    def check() -> str | None:
        function = getattr(owner, name, None)
        if function is None:
            return "it is gone"
        # unwrap: redis-py wraps some methods in a (synchronous) deprecation decorator.
        if not inspect.iscoroutinefunction(inspect.unwrap(function)):
            return "it is no longer a coroutine function"
        return _takes(function, parameters)

    return check


def _function(owner: type, name: str, *parameters: str) -> Callable[[], str | None]:
    """A check: `owner.name` is a plain (not async) method taking `parameters` by name."""

    def check() -> str | None:
        function = getattr(owner, name, None)
        if function is None:
            return "it is gone"
        if inspect.iscoroutinefunction(function):
            return "it became a coroutine function"
        return _takes(function, parameters)

    return check


def _takes(function: Callable[..., Any], parameters: tuple[str, ...]) -> str | None:
    signature = inspect.signature(function).parameters
    missing = [name for name in parameters if name not in signature]
    return f"it no longer takes {', '.join(missing)}" if missing else None


def _attribute(make: Callable[[], object], name: str) -> Callable[[], str | None]:
    """A check: an object made by `make` (without connecting) has the attribute `name`."""

    def check() -> str | None:
        return None if hasattr(make(), name) else "instances no longer have it"

    return check


def _cluster() -> RedisCluster:
    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", 7000)])


def _sentinel_pool() -> object:
    sentinel = Sentinel([("127.0.0.1", 26379)])  # type: ignore[no-untyped-call]
    return sentinel.master_for("primary", redis_class=Redis).connection_pool


INTERNALS: dict[str, Callable[[], str | None]] = {
    # A standalone server: a connection of the pool, our own send and read.
    "ConnectionPool.get_connection()": _coroutine(ConnectionPool, "get_connection"),
    "ConnectionPool.release(connection)": _coroutine(ConnectionPool, "release", "connection"),
    "ConnectionPool.connection_kwargs": _attribute(ConnectionPool, "connection_kwargs"),
    "AbstractConnection.pack_command(*args)": _function(AbstractConnection, "pack_command"),
    "AbstractConnection.pack_commands(commands)": _function(
        AbstractConnection, "pack_commands", "commands"
    ),
    "AbstractConnection.send_packed_command(command, check_health)": _coroutine(
        AbstractConnection, "send_packed_command", "command", "check_health"
    ),
    "AbstractConnection.read_response(timeout=)": _coroutine(
        AbstractConnection, "read_response", "timeout"
    ),
    "AbstractConnection.can_read_destructive()": _coroutine(
        AbstractConnection, "can_read_destructive"
    ),
    "AbstractConnection.disconnect()": _coroutine(AbstractConnection, "disconnect"),
    "AbstractConnection.is_connected": _attribute(Connection, "is_connected"),
    "AbstractConnection.socket_timeout": _attribute(Connection, "socket_timeout"),
    "AbstractConnection.retry": _attribute(Connection, "retry"),
    "Retry.call_with_retry(do, fail, is_retryable, with_failure_count)": _coroutine(
        Retry, "call_with_retry", "do", "fail", "is_retryable", "with_failure_count"
    ),
    # A cluster: sends once to a slot's primary, follows MOVED, forgets the slot map.
    "ClusterNode.acquire_connection()": _function(ClusterNode, "acquire_connection"),
    "ClusterNode.release(connection)": _function(ClusterNode, "release", "connection"),
    "ClusterNode.disconnect_if_needed(connection)": _coroutine(
        ClusterNode, "disconnect_if_needed", "connection"
    ),
    "RedisCluster.initialize()": _coroutine(RedisCluster, "initialize"),
    "RedisCluster.get_node_from_key(key)": _function(RedisCluster, "get_node_from_key", "key"),
    "RedisCluster.get_primaries()": _function(RedisCluster, "get_primaries"),
    "RedisCluster._initialize (set to re-read the slot map)": _attribute(_cluster, "_initialize"),
    "RedisCluster.nodes_manager": _attribute(_cluster, "nodes_manager"),
    "NodesManager.move_slot(moved)": _coroutine(NodesManager, "move_slot"),
    "NodesManager.move_node_to_end_of_cached_nodes(node_name)": _function(
        NodesManager, "move_node_to_end_of_cached_nodes", "node_name"
    ),
    "RedisCluster.get_node(host, port)": _function(RedisCluster, "get_node", "host", "port"),
    "NodesManager.aclose(attr)": _coroutine(NodesManager, "aclose", "attr"),
    "NodesManager.startup_nodes": _attribute(lambda: _cluster().nodes_manager, "startup_nodes"),
    # Sentinel: which primary a client follows, and the Sentinel clients to close.
    "Sentinel.sentinels": _attribute(lambda: Sentinel([("127.0.0.1", 26379)]), "sentinels"),  # type: ignore[no-untyped-call]
    "SentinelConnectionPool.service_name": _attribute(_sentinel_pool, "service_name"),
    "SentinelConnectionPool.master_address": _attribute(_sentinel_pool, "master_address"),
    "SentinelConnectionPool.get_master_address()": _coroutine(
        SentinelConnectionPool, "get_master_address"
    ),
    # topology.py: casting a URL's options the way redis-py does.
    "redis.asyncio.connection.parse_url(url)": lambda: (
        None if callable(getattr(redis.asyncio.connection, "parse_url", None)) else "it is gone"
    ),
}


@pytest.mark.parametrize("internal", INTERNALS)
def test_each_redis_py_internal_the_transport_uses_is_still_there(internal: str) -> None:
    """Each internal used below redis-py's client API exists, with the shape used."""
    problem = INTERNALS[internal]()
    assert problem is None, (
        f"redis-py {redis.__version__} changed {internal}: {problem}. The Redis backend "
        "relies on it (backends/redis/transport.py, or topology.py for parse_url): adapt it "
        "there, or bound redis below this version in pyproject.toml"
    )


def test_the_parsed_url_options_are_what_parse_url_yields() -> None:
    """parse_url still casts query options (topology.connection_options relies on it)."""
    options = redis.asyncio.connection.parse_url("redis://localhost/0?socket_timeout=2")
    assert options.get("socket_timeout") == 2.0, (
        f"redis-py {redis.__version__}'s parse_url no longer casts socket_timeout to a float: "
        "topology.connection_options relies on it"
    )
    target = parse_redis_url("redis+cluster://h1:7000,h2:7001?socket_timeout=2")
    assert topology.connection_options(target) == {"socket_timeout": 2.0}


async def test_a_read_given_its_own_timeout_answers_none_when_it_expires(
    redis_server: RedisServer,
) -> None:
    """read_response(timeout=) answers None when the reply is late (WAIT's bound relies on it),
    and pack_command/send_packed_command put a command on the wire."""
    pool = ConnectionPool.from_url(redis_server.url)
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await connection.send_packed_command(connection.pack_command("BLPOP", "pin:nothing", 1))
        started = asyncio.get_running_loop().time()
        reply = await connection.read_response(timeout=0.05)
        waited = asyncio.get_running_loop().time() - started
        assert reply is None, (
            f"redis-py {redis.__version__}'s read_response(timeout=) no longer answers None "
            f"when the reply is late (got {reply!r}): transport.round_trips relies on it to "
            "bound WAIT"
        )
        assert waited < 0.5
    finally:
        await connection.disconnect()
        await pool.release(connection)
        await pool.aclose()


async def test_the_store_s_retry_refuses_to_retry_a_refusal_of_access() -> None:
    """The transport's Retry subclass still drives redis-py's retry loop (same signature)."""
    from redis.exceptions import AuthenticationError, ConnectionError

    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise AuthenticationError("invalid password")

    async def unreachable() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("refused")

    async def no_op(_: Exception) -> None:
        return None

    retry = transport.AccessAwareRetry(NoBackoff(), 2)
    with pytest.raises(AuthenticationError):
        await retry.call_with_retry(refused, no_op)
    assert calls == 1
    calls = 0
    with pytest.raises(ConnectionError):
        await retry.call_with_retry(unreachable, no_op)
    assert calls == 3


async def test_a_moved_reply_still_carries_the_new_owner() -> None:
    """MovedError still parses its slot and node (learn_moved hands it to move_slot)."""
    moved = MovedError("3999 127.0.0.1:6381")
    assert (moved.slot_id, moved.host, moved.port) == (3999, "127.0.0.1", 6381), (
        f"redis-py {redis.__version__}'s MovedError no longer carries slot_id, host and port"
    )
