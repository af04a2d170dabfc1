"""The doctor's own connections: one plain client per data node it checks.

Built with the library's URL parsing and redis-py options (the store's internals, read only);
on a Cluster each primary gets a client of its own, so a cluster with uncovered slots (which
redis-py's cluster client refuses to start on) can still be examined.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from valerie.infrastructure.session_store.backends.redis.topology import (
    build_client,
    connection_options,
    sentinel_clients,
)
from valerie.infrastructure.session_store.backends.redis.urls import (
    RedisTarget,
    parse_redis_url,
)

TIMEOUT = 1.0
"""Seconds a connection attempt or a command may take: the doctor should answer in ~2 s."""


@dataclass
class Node:
    """A data node the doctor talks to: a name to show (never a secret) and its client."""

    name: str
    client: Redis

    async def command(self, *args: Any) -> Any:
        """Send one command, not retried."""
        return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]


def target_of(url: str) -> RedisTarget:
    """The parsed URL (already checked by the settings)."""
    return parse_redis_url(url)


def _node_client(target: RedisTarget, host: str, port: int) -> Redis:
    return Redis(
        host=host,
        port=port,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        **connection_options(target),
    )


@asynccontextmanager
async def entry_node(target: RedisTarget) -> AsyncIterator[Node]:
    """The node a standalone or Sentinel URL leads to, or a Cluster's first seed node."""
    if target.topology == "cluster":
        host, port = target.nodes[0]
        client = _node_client(target, host, port)
        name = f"{host}:{port}"
    else:
        never = Retry(NoBackoff(), 0)
        built = build_client(target, timeout=TIMEOUT, retry=never, max_connections=4)
        assert isinstance(built, Redis)
        client = built
        name = _standalone_name(target, client)
    try:
        yield Node(name, client)
    finally:
        await client.aclose()
        if target.topology == "sentinel":
            for sentinel in sentinel_clients(client):
                await sentinel.aclose()


def _standalone_name(target: RedisTarget, client: Redis) -> str:
    if target.topology == "sentinel":
        return f"the Sentinel primary {target.master_name!r}"
    kwargs = client.connection_pool.connection_kwargs
    return str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")


def slot_ranges(reply: Any, seed: str) -> list[tuple[int, int, str, int]]:
    """`CLUSTER SLOTS` (the raw reply) as (first, last, primary host, primary port) ranges.

    An empty host means the node the question went to (`seed`), as Redis documents.
    """
    ranges = []
    for first, last, primary, *_ in reply:
        host = _text(primary[0]) or seed
        ranges.append((int(first), int(last), host, int(primary[1])))
    return ranges


@asynccontextmanager
async def cluster_primaries(
    target: RedisTarget, ranges: list[tuple[int, int, str, int]]
) -> AsyncIterator[list[Node]]:
    """A node for each primary that holds slots."""
    addresses = {(host, port) for _, _, host, port in ranges}
    nodes = [Node(f"{h}:{p}", _node_client(target, h, p)) for h, p in sorted(addresses)]
    try:
        yield nodes
    finally:
        for node in nodes:
            await node.client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
