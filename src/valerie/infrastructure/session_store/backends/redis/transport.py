"""How the store's commands reach Redis: pools, sends, replies, retries, WAIT and routing.

The only module that touches redis-py's internals (connections, pools, cluster nodes, slot
maps); each internal it uses is pinned by tests/backends/redis/test_redis_internals.py, so a
redis-py upgrade that changes one fails there by name. What it adds to redis-py's own
`execute_command`:

- Writes that must not run twice (compare-and-set, lease release and extend) and writes of
  more than `LARGE_WRITE` bytes are sent once, never retried.
- `min_replicas`: a WAIT follows each write on the same connection (WAIT counts the writes sent
  before it on its connection); on a cluster such writes go to each slot's primary directly.
- Automatic pipelining (`coalescing.py`): the commands of concurrent calls share pipelines
  on at most `PIPELINE_CONNECTIONS` connections per server (per node on a Cluster).
- A budget of connections per store and event loop, a bounded wait for one, and a close that
  never closes a client under a running call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeGuard, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MaxConnectionsError,
    MovedError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...backend import ConnectionWaitHook, PoolUsage
from ...errors import BackendError, BackendUnavailableError, SessionStoreError
from .coalescing import Coalescer
from .failures import (
    Place,
    access_denial,
    connections_busy,
    not_replicated,
    translate,
)
from .topology import RedisClient, build_client, sentinel_clients
from .urls import RedisTarget

T = TypeVar("T")

logger = logging.getLogger("valerie.session_store.redis")
"""Gave-up calls at WARNING, the server answering again and cluster slot moves at INFO,
retries at DEBUG; never a secret, an id or a state."""

LARGE_WRITE = 1 << 20
"""A write carrying more bytes than this (one state, or a batch's states together) is sent
once: re-sending it after a timeout would not help a server too slow to take it."""
PIPELINE_CONNECTIONS = 8
"""Connections automatic pipelining uses per server at most (fewer if max_connections is)."""
PIPELINE_COMMANDS = 512
"""Commands one pipelined write carries at most."""
_REDIRECTS = 5  # MOVED replies followed by a write sent once on a cluster
_RETRY_BACKOFF = ExponentialWithJitterBackoff(base=0.05, cap=0.5)
"""Between two tries of a pipelined batch's retryable commands on a cluster."""
_SLICE = 1 << 20
"""Bytes of a large value handed to the socket at a time: each slice gets the socket timeout to
go out, and the transport never holds more than one slice besides the caller's bytes."""


class RedisTransport:
    """One store's way to Redis: a client per event loop, its connection budget, its sends.

    Args:
        target: The parsed URL to build clients from, or None with `client`.
        client: A client given to the store (never closed here), or None with `target`.
        place: Where the store points, for error messages.
        max_connections: Connections the store opens at most, per event loop.
        min_replicas: Replicas each write must reach (WAIT), 0 for none.
        replica_timeout: Seconds WAIT waits.
        pipelining: Send the commands of concurrent calls together (`coalescing.py`), on at
            most `PIPELINE_CONNECTIONS` connections per server (per node on a Cluster);
            neither writes followed by WAIT nor large writes, which keep a connection each.

    Attributes:
        wait_hook: Told how long each wait for a free connection took, when set.
    """

    __slots__ = (
        "_connections",
        "_failing",
        "_injected",
        "_target",
        "max_connections",
        "min_replicas",
        "pipelining",
        "place",
        "replica_timeout",
        "wait_hook",
    )

    def __init__(
        self,
        *,
        target: RedisTarget | None,
        client: RedisClient | None,
        place: Place,
        max_connections: int,
        min_replicas: int,
        replica_timeout: float,
        pipelining: bool = True,
    ) -> None:
        self._target = target
        self.pipelining = pipelining
        self._injected = client
        self.place = place
        self.max_connections = max_connections
        self.min_replicas = min_replicas
        self.replica_timeout = replica_timeout
        self._connections: _Connections | None = None
        self.wait_hook: ConnectionWaitHook | None = None
        self._failing = False  # a call gave up on the server: say when it answers again

    def client(self) -> RedisClient:
        """Return the client of the running event loop, built on first use."""
        return self._connections_now().client

    @property
    def budget(self) -> asyncio.Semaphore:
        """The connection budget of this loop's pool (for tests that hold it)."""
        return self._connections_now().budget

    async def close(self) -> None:
        """Close the client built here; see `RedisSessionStore.close`."""
        if self._injected is not None:
            return
        connections, self._connections = self._connections, None
        # A pool made by another (ended) loop cannot be closed from this one: it is dropped.
        if connections is None or connections.loop is not asyncio.get_running_loop():
            return
        connections.retired = True
        if not connections.calls:
            await close_client(connections.client)

    async def describe(self) -> dict[str, Any]:
        """PING the server, then return facts about the topology (never a secret)."""
        await self.execute("PING")
        return describe(self.client())

    async def execute(self, *command: Any, retry: bool = True, write: bool = False) -> Any:
        """Run one command on a pooled connection; see `run`."""
        return (await self.run([command], retry=retry, write=write))[0]

    async def run(
        self, commands: list[tuple[Any, ...]], *, retry: bool = True, write: bool = False
    ) -> list[Any]:
        """Run commands in one round trip (a pipeline, not a transaction); translate errors.

        On one server this is redis-py's `execute_command` without its per-command
        bookkeeping (metrics hooks, response callbacks), about a fifth of a round trip's CPU
        time here, with the same `Retry` for idempotent commands. `retry=False` sends the
        commands once: for writes that must not run twice (a compare-and-set that landed before
        a timeout would meet its own write as a conflict and be applied again); a timeout then
        raises `BackendUnavailableError` and the outcome is unknown, as with any database
        write. Writes of more than `LARGE_WRITE` bytes are sent once too: re-sending them
        would not help a server too slow to take them. The pool checks each connection it
        hands out, so a server restart between calls is survived either way. `write=True`
        marks commands that change data: `min_replicas` follows them with a WAIT on the same
        connection (on a cluster they are then sent once, to each slot's primary).
        """
        wait = self._wait_command() if write else None
        size = _payload(commands) if write else 0
        large = size if size > LARGE_WRITE else 0
        connections = self._connections_now()
        cluster = connections.cluster
        once = not retry or bool(large) or (wait is not None and cluster)
        name = str(commands[0][0])
        acknowledged: int | Exception | None = None
        coalescer = connections.coalescer
        try:
            if coalescer is not None and wait is None and not large:
                # Pipelined: the coalescer bounds the connections, and how long a call
                # waits for one; counted so that close() leaves the client to the last call.
                connections.calls += 1
                try:
                    replies = await coalescer.run(commands, once=once, size=size)
                finally:
                    if connections.uncount():
                        await close_client(connections.client)
            else:
                await self._enter(connections)
                try:
                    if cluster:
                        replies, acknowledged = await self._run_on_cluster(
                            cast("RedisCluster", connections.client), commands, wait, once
                        )
                    else:
                        replies, acknowledged = await self._run_on_pool(
                            cast("Redis", connections.client), commands, wait, once
                        )
                finally:
                    if self._leave(connections):
                        await close_client(connections.client)
        except SessionStoreError as error:  # translated already, by the coalescer
            self._note(error, name)
            raise
        except Exception as error:
            self._give_up(error, name, once=once, large=large)
        for reply in replies:
            if isinstance(reply, Exception):
                self._give_up(reply, name, once=once, large=large)
        if isinstance(acknowledged, Exception):
            self._give_up(acknowledged, "WAIT", once=once, large=large)
        if isinstance(acknowledged, int) and acknowledged < self.min_replicas:
            raise not_replicated(acknowledged, self.min_replicas, self.replica_timeout)
        if self._failing:
            self._failing = False
            logger.info("%s answers again", self.place.where)
        return replies

    async def run_on_each_primary(self, commands: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
        """Run keyless commands (`INFO`) on every primary; their raw replies by node.

        On one server (standalone, or Sentinel's primary) the only key is `""`; on a cluster
        each primary's `host:port`, all asked at once. Errors are translated as `run`'s.
        """
        connections = self._connections_now()
        if not connections.cluster:
            return {"": await self.run(commands)}
        client = cast("RedisCluster", connections.client)
        name = str(commands[0][0])
        await self._enter(connections)
        try:
            await client.initialize()
            nodes = client.get_primaries()
            outcomes = await asyncio.gather(
                *(_on_node(node, commands, None, 0.0) for node in nodes), return_exceptions=True
            )
        except Exception as error:
            self._give_up(error, name, once=False, large=0)
        finally:
            if self._leave(connections):
                await close_client(connections.client)
        replies: dict[str, list[Any]] = {}
        for node, outcome in zip(nodes, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                forget_slots(client, node)
                self._give_up(outcome, name, once=False, large=0)
            for reply in outcome[0]:
                if isinstance(reply, Exception):
                    self._give_up(reply, name, once=False, large=0)
            replies[f"{node.host}:{node.port}"] = outcome[0]
        return replies

    def _give_up(self, error: Exception, name: str, *, once: bool, large: int) -> NoReturn:
        """Raise the store's error for `error`, and log it at WARNING.

        Its message is the error's own: URLs masked, never an id, a state or a secret. The
        sampler's INFO is left to the sampler, which says once that INFO is refused.
        """
        translated = translate(error, name, self.place, once=once, large=large)
        self._note(translated, name)
        if translated is error:
            raise error
        raise translated from error

    def _note(self, error: Exception, name: str) -> None:
        """Log a call that gave up on the server at WARNING; see `_give_up`."""
        if isinstance(error, BackendError) and name != "INFO":
            logger.warning("%s gave up: %s", name, error)
            self._failing = self._failing or isinstance(error, BackendUnavailableError)

    def usage(self) -> PoolUsage | None:
        """This loop's pool now; see `RedisBackend.pool_usage`. None before the first call."""
        connections = self._connections
        if connections is None:
            return None
        coalescer = connections.coalescer
        return PoolUsage(
            max=self.max_connections if coalescer is None else coalescer.connections,
            used=connections.held,
            idle=connections.opened - connections.held,
            pending=connections.waiting + (0 if coalescer is None else coalescer.queued),
        )

    async def scan(self, pattern: str, count: int) -> AsyncIterator[list[bytes]]:
        """Yield the pages of keys that SCAN finds for `pattern`, on every primary.

        On a cluster every primary is scanned, each holding its own share of the keys. A page
        may repeat keys of an earlier one (SCAN's own guarantee); the caller drops them.
        """
        connections = self._connections_now()
        client = connections.client
        cluster = client if is_cluster(client) else None
        nodes: list[Any] = [None]
        if cluster is not None:
            await cluster.initialize()
            nodes = cluster.get_primaries()
        for node in nodes:
            cursor = 0
            while True:
                command = ("SCAN", cursor, "MATCH", pattern, "COUNT", count)
                if cluster is None:
                    reply = await self.execute(*command)
                else:
                    reply = await self._scan_node(connections, node, command)
                cursor = int(reply[0])
                yield reply[1]
                if cursor == 0:
                    break

    async def _scan_node(
        self, connections: _Connections, node: Any, command: tuple[Any, ...]
    ) -> Any:
        # On the client the walk started with, even if close() retired it meanwhile: the
        # node objects belong to it.
        await self._enter(connections)
        try:
            client = cast("RedisCluster", connections.client)
            reply = await client.execute_command(*command, target_nodes=node)
        except Exception as error:
            self._give_up(error, "SCAN", once=False, large=0)
        finally:
            if self._leave(connections):
                await close_client(connections.client)
        # redis-py's cluster callback for SCAN answers ({node name: cursor}, keys).
        cursor, keys = reply
        if isinstance(cursor, dict):
            (cursor,) = cursor.values()
        return cursor, keys

    def _connections_now(self) -> _Connections:
        loop = asyncio.get_running_loop()
        connections = self._connections
        if connections is None or connections.loop is not loop:
            # A pool's connections and locks belong to the loop that made them; a store used
            # from a new loop (a new asyncio.run) starts afresh instead of failing.
            client = self._injected
            if client is None:
                assert self._target is not None
                client = build_client(
                    self._target,
                    timeout=self.place.timeout,
                    retry=AccessAwareRetry(
                        ExponentialWithJitterBackoff(base=0.05, cap=0.5), self.place.retries
                    ),
                    max_connections=self.max_connections,
                )
            connections = self._connections = _Connections(client, loop, self.max_connections)
            if self.pipelining:
                connections.coalescer = self._coalescer(connections)
        return connections

    def _coalescer(self, connections: _Connections) -> Coalescer:
        """Automatic pipelining on this loop's client.

        On one server (standalone or Sentinel) a batch is one pipeline on one connection; on a
        cluster it is split by key slot into one pipeline per node (`_batch_on_cluster`), so
        at most `PIPELINE_CONNECTIONS` connections per node.
        """
        client = connections.client

        async def send(commands: list[tuple[Any, ...]], once: bool) -> list[Any]:
            # A batch is a call: close() must not close the client under a batch whose
            # callers were cancelled, and it takes one of `max_connections` (the calls that
            # are not pipelined take the others), so the pool never runs out.
            await self._enter(connections)
            try:
                if connections.cluster:
                    return await self._send_on_cluster(cast("RedisCluster", client), commands, once)
                replies, _ = await self._run_on_pool(cast("Redis", client), commands, None, once)
                return replies
            finally:
                if self._leave(connections):
                    await close_client(client)

        return Coalescer(
            send,
            connections=min(PIPELINE_CONNECTIONS, self.max_connections),
            max_commands=PIPELINE_COMMANDS,
            max_bytes=LARGE_WRITE,
            wait=self.place.timeout,
            busy=lambda: connections_busy(
                self.place, min(PIPELINE_CONNECTIONS, self.max_connections)
            ),
            waited=self._report_wait,
        )

    def _report_wait(self, seconds: float, timed_out: bool) -> None:
        hook = self.wait_hook
        if hook is not None:
            hook(seconds, timed_out)

    async def _enter(self, connections: _Connections | None = None) -> _Connections:
        """Count a call on this loop's client (or `connections`), and take a connection slot.

        `_leave` gives both back.
        """
        connections = connections or self._connections_now()
        # Counted before it waits for a slot: close() must not close a client under a call
        # about to use it.
        connections.calls += 1
        try:
            await self._take_slot(connections)
        except BaseException:
            if connections.uncount():
                await close_client(connections.client)
            raise
        connections.held += 1
        connections.opened = max(connections.opened, connections.held)
        return connections

    def _leave(self, connections: _Connections) -> bool:
        """Give back what `_enter` took; return whether the client must now be closed."""
        connections.held -= 1
        connections.budget.release()
        return connections.uncount()

    async def _take_slot(self, connections: _Connections) -> None:
        slots = connections.budget
        if not slots.locked():
            await slots.acquire()
            return
        # Every connection is busy: wait for one, but no longer than a command may take.
        # (asyncio.timeout, unlike wait_for, never swallows a cancellation.)
        hook = self.wait_hook  # observers attached: report the wait
        started = time.perf_counter() if hook is not None else 0.0
        connections.waiting += 1
        try:
            async with asyncio.timeout(self.place.timeout):
                await slots.acquire()
        except TimeoutError:
            if hook is not None:
                hook(time.perf_counter() - started, True)
            raise connections_busy(self.place, self.max_connections) from None
        finally:
            connections.waiting -= 1
        if hook is not None:
            hook(time.perf_counter() - started, False)

    def _wait_command(self) -> tuple[Any, ...] | None:
        if not self.min_replicas:
            return None
        return ("WAIT", self.min_replicas, round(self.replica_timeout * 1000))

    def _wait_timeout(self, connection: Any) -> float:
        """How long to wait for WAIT's reply: a command's timeout, plus the time WAIT waits."""
        socket_timeout = getattr(connection, "socket_timeout", None) or self.place.timeout
        return float(socket_timeout) + self.replica_timeout

    async def _run_on_pool(
        self,
        client: Redis,
        commands: list[tuple[Any, ...]],
        wait: tuple[Any, ...] | None,
        once: bool,
    ) -> tuple[list[Any], int | Exception | None]:
        pool = client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        wait_timeout = 0.0 if wait is None else self._wait_timeout(connection)
        try:
            if once:
                return await round_trips(connection, commands, wait, wait_timeout)
            command = str(commands[0][0])

            async def before_retry(error: Exception) -> None:
                logger.debug(
                    "%s to %s failed (%s); retrying on a new connection",
                    command,
                    self.place.where,
                    type(error).__name__,
                )
                await connection.disconnect()

            done: tuple[list[Any], int | Exception | None] = await connection.retry.call_with_retry(
                lambda: round_trips(connection, commands, wait, wait_timeout), before_retry
            )
            return done
        finally:
            await pool.release(connection)

    async def _run_on_cluster(
        self,
        client: RedisCluster,
        commands: list[tuple[Any, ...]],
        wait: tuple[Any, ...] | None,
        once: bool,
    ) -> tuple[list[Any], int | Exception | None]:
        """Run commands on a cluster, routed by key slot.

        redis-py's cluster client routes (and retries) them; to send them once, they go to each
        slot's primary directly (`_on_slot_primaries`).
        """
        # Learn the slot map before any command: redis-py lets commands that race a first
        # initialization go to wrong nodes, and after a few MOVED replies it drops every
        # connection, including those other tasks are using. A no-op once initialized.
        await client.initialize()
        if once:
            return await self._on_slot_primaries(client, commands, wait)
        if len(commands) == 1:
            return [await client.execute_command(*commands[0])], None
        pipeline = client.pipeline(transaction=False)
        for command in commands:
            pipeline.execute_command(*command)
        return await pipeline.execute(raise_on_error=False), None

    async def _send_on_cluster(
        self, client: RedisCluster, commands: list[tuple[Any, ...]], once: bool
    ) -> list[Any]:
        """Send a batch on a cluster, its commands of one key by slot, the others apart.

        The others (`PING`, `INFO`) go through redis-py's routing, at the same time; a failure
        of either part is the reply of its own commands only.
        """
        keyed = [index for index, command in enumerate(commands) if _routable(command)]
        if len(keyed) == len(commands):
            return await self._batch_on_cluster(client, commands, once)
        others = [index for index, command in enumerate(commands) if not _routable(command)]

        async def by_slot() -> list[Any]:
            try:
                return await self._batch_on_cluster(client, [commands[i] for i in keyed], once)
            except Exception as error:
                return [error] * len(keyed)

        async def by_redis_py() -> list[Any]:
            try:
                answers, _ = await self._run_on_cluster(
                    client, [commands[i] for i in others], None, once
                )
            except Exception as error:
                return [error] * len(others)
            return answers

        if not keyed:
            return await by_redis_py()
        replies: list[Any] = [None] * len(commands)
        parts = await asyncio.gather(by_slot(), by_redis_py())
        for indexes, answers in zip((keyed, others), parts, strict=True):
            for index, answer in zip(indexes, answers, strict=True):
                replies[index] = answer
        return replies

    async def _batch_on_cluster(
        self, client: RedisCluster, commands: list[tuple[Any, ...]], once: bool
    ) -> list[Any]:
        """Send a batch of concurrent calls' commands on a cluster: one pipeline per node.

        The nodes are written to at once, and MOVED and ASK replies followed, by
        `_on_slot_primaries`; a node that fails fails its own commands only. Commands that may
        be retried and met a connection error are tried again (only they, the slot map read
        again first, after a backoff), as redis-py retries the commands it routes; those
        answered CLUSTERDOWN or TRYAGAIN (a failover under way) are sent again alone through
        redis-py's routing, which waits and retries them.
        """
        replies: list[Any] = [None] * len(commands)
        pending = list(range(len(commands)))
        retries = 0 if once else client.retry.get_retries()
        for attempt in range(retries + 1):
            await client.initialize()  # a no-op unless the slot map must be read (again)
            answers, _ = await self._on_slot_primaries(
                client, [commands[i] for i in pending], None, isolate=True
            )
            again = []
            for index, answer in zip(pending, answers, strict=True):
                if attempt < retries and _retryable(answer):
                    again.append(index)
                else:
                    replies[index] = answer
            if not again:
                break
            logger.debug(
                "%s commands to a cluster failed (%s); retrying",
                len(again),
                type(answers[pending.index(again[0])]).__name__,
            )
            pending = again
            await asyncio.sleep(_RETRY_BACKOFF.compute(attempt + 1))
        if not once:
            for index, reply in enumerate(replies):
                if isinstance(reply, (ClusterDownError, TryAgainError)):
                    try:
                        replies[index] = await client.execute_command(*commands[index])
                    except Exception as error:
                        replies[index] = error
        return replies

    async def _on_slot_primaries(
        self,
        client: RedisCluster,
        commands: list[tuple[Any, ...]],
        wait: tuple[Any, ...] | None,
        *,
        isolate: bool = False,
    ) -> tuple[list[Any], int | Exception | None]:
        """Send single-key commands once, each to its slot's primary, then `wait` there.

        Each primary's commands go on one of its connections, followed by `wait` (WAIT counts
        the writes sent before it on its connection); every primary at once. A command
        answered with MOVED (its slot has moved: a failover, or a resharding) was not run: the
        new owner is learnt from the reply and the command goes there. One answered with ASK
        (its slot is being migrated and its key is not here) was not run either: it goes to
        the node ASK names, after ASKING on the same connection. A connection error makes the
        next call read the slot map again, as redis-py does for the commands it routes; it is
        raised, or with `isolate` (a batch of several callers) becomes the reply of that
        node's commands only. Returns the replies and the fewest replicas any WAIT counted.
        """
        replies: list[Any] = [None] * len(commands)
        pending = list(range(len(commands)))
        acknowledged: int | Exception | None = None

        def merge(node_acknowledged: int | Exception | None) -> None:
            nonlocal acknowledged
            if isinstance(node_acknowledged, Exception):
                # e.g. "WAIT cannot be used with replica instances": the map is stale.
                forget_slots(client)
                acknowledged = node_acknowledged
            elif node_acknowledged is not None and not isinstance(acknowledged, Exception):
                acknowledged = (
                    node_acknowledged
                    if acknowledged is None
                    else min(acknowledged, node_acknowledged)
                )

        for _ in range(_REDIRECTS):
            groups: dict[Any, list[int]] = {}
            for index in pending:
                node = client.get_node_from_key(_key_of(commands[index]))
                groups.setdefault(node, []).append(index)
            pending = []
            asked: dict[tuple[str, int], list[int]] = {}
            outcomes = await asyncio.gather(
                *(
                    _on_node(node, [commands[i] for i in indexes], wait, self._wait_timeout(None))
                    for node, indexes in groups.items()
                ),
                return_exceptions=True,
            )
            for (node, indexes), outcome in zip(groups.items(), outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    _failed_node(client, node, outcome, isolate)
                    for index in indexes:
                        replies[index] = outcome
                    continue
                node_replies, node_acknowledged = outcome
                moved = 0
                for index, reply in zip(indexes, node_replies, strict=True):
                    if isinstance(reply, MovedError):
                        logger.info(
                            "slot %s moved to %s:%s (a failover or a resharding)",
                            reply.slot_id,
                            reply.host,
                            reply.port,
                        )
                        await learn_moved(client, reply)
                        pending.append(index)
                        moved += 1
                    elif isinstance(reply, AskError):
                        asked.setdefault((reply.host, reply.port), []).append(index)
                        moved += 1
                    else:
                        replies[index] = reply
                if moved < len(indexes):  # else the WAIT confirmed nothing of ours
                    merge(node_acknowledged)
            for (host, port), indexes in asked.items():
                sent = [commands[i] for i in indexes]
                answers, node_acknowledged = await self._asking(
                    client, (host, port), sent, wait, isolate
                )
                for index, answer in zip(indexes, answers, strict=True):
                    replies[index] = answer
                merge(node_acknowledged)
            if not pending:
                return replies, acknowledged
        forget_slots(client)
        error = ClusterError(f"still redirected (MOVED) after {_REDIRECTS} tries")
        if not isolate:
            raise error
        for index in pending:
            replies[index] = error
        return replies, acknowledged

    async def _asking(
        self,
        client: RedisCluster,
        address: tuple[str, int],
        commands: list[tuple[Any, ...]],
        wait: tuple[Any, ...] | None,
        isolate: bool,
    ) -> tuple[list[Any], int | Exception | None]:
        """Send `commands` to the node an ASK reply named, each after ASKING.

        ASKING lets the next command on its connection in, so both go on the same one (redis-py
        sends them on two, which fails once the node's pool holds several). Returns their
        replies and WAIT's.
        """
        host, port = address
        node = client.get_node(host=host, port=port)
        if node is None:  # a node the slot map does not know yet
            forget_slots(client)
            unknown = ClusterError(f"ASK named {host}:{port}, a node not in the slot map")
            return [unknown] * len(commands), None
        sent = [part for command in commands for part in (("ASKING",), command)]
        try:
            answers, node_acknowledged = await _on_node(node, sent, wait, self._wait_timeout(None))
        except Exception as error:
            _failed_node(client, node, error, isolate)
            return [error] * len(commands), None
        return answers[1::2], node_acknowledged


def _failed_node(
    client: RedisCluster, node: ClusterNode, error: BaseException, isolate: bool
) -> None:
    """A node's commands failed with `error`.

    After a connection error the slot map is read again; `error` is raised unless the node's
    commands take it as their reply (`isolate`).
    """
    if isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError)) and not isinstance(
        error,
        MaxConnectionsError,  # this client's pool is full: the node is fine
    ):
        logger.info("%s from a cluster node: the slot map will be read again", type(error).__name__)
        forget_slots(client, node)
    if not isolate or not isinstance(error, Exception):
        raise error


def _retryable(reply: Any) -> bool:
    """Whether a command answered with `reply` may be sent again.

    A connection error or a timeout, not a refusal of access (which redis-py reports as a
    connection error).
    """
    return (
        isinstance(reply, (RedisConnectionError, RedisTimeoutError))
        and not isinstance(reply, MaxConnectionsError)
        and access_denial(reply) is None
    )


class _Connections:
    """A store's client on one event loop, with its connection budget and the calls running.

    `close()` retires it: it is closed at once if no call is running, else by the last one.
    """

    __slots__ = (
        "budget",
        "calls",
        "client",
        "cluster",
        "coalescer",
        "held",
        "loop",
        "opened",
        "retired",
        "waiting",
    )

    def __init__(
        self, client: RedisClient, loop: asyncio.AbstractEventLoop, max_connections: int
    ) -> None:
        self.client = client
        self.cluster = is_cluster(client)
        self.loop = loop
        self.budget = asyncio.Semaphore(max_connections)
        self.calls = 0
        self.retired = False
        self.coalescer: Coalescer | None = None
        # For the pool's metrics: slots held by calls, the most ever held at once (the pool
        # opens a connection only when none is free, and keeps it), calls waiting.
        self.held = 0
        self.opened = 0
        self.waiting = 0

    def uncount(self) -> bool:
        """Count a call out; return whether the client must now be closed."""
        self.calls -= 1
        # close() ran while calls were in flight, and this was the last of them.
        return self.retired and not self.calls


class AccessAwareRetry(Retry):
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
        """Call `do` as redis-py's `Retry` does, never retrying a refusal of access."""

        def retryable(error: Exception) -> bool:
            return access_denial(error) is None and (is_retryable is None or is_retryable(error))

        return await super().call_with_retry(do, fail, retryable, with_failure_count)


def is_cluster(client: object) -> TypeGuard[RedisCluster]:
    """Whether `client` is a Cluster client (routes by key slot)."""
    return isinstance(client, RedisCluster)


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
        for sentinel_client in sentinel_clients(client):
            await sentinel_client.aclose()


def forget_slots(client: RedisCluster, failed: ClusterNode | None = None) -> None:
    """Make the client's next call read the slot map again (CLUSTER SLOTS) before it routes.

    What redis-py itself does after a connection error of its own routing, for the commands
    the store sends to a slot's primary itself. A node that `failed` goes to the end of the
    client's lists, as redis-py puts it, so that the map is read, and the default node (which
    the reading asks for COMMAND) taken, from another: else a primary that is down stops the
    reading, which then closes every connection of the client.
    """
    if failed is not None:
        client.nodes_manager.move_node_to_end_of_cached_nodes(failed.name)
    client._initialize = True


async def learn_moved(client: RedisCluster, moved: MovedError) -> None:
    """Record, from a MOVED reply, which node now serves the slot."""
    await client.nodes_manager.move_slot(moved)


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
    except (RedisConnectionError, RedisTimeoutError, OSError):
        stale = True
    if stale:
        await connection.disconnect()


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
        redis.exceptions.TimeoutError: WAIT did not answer within `wait_timeout` seconds;
            the connection was closed, since its reply is still due.
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
        raise RedisTimeoutError(f"WAIT did not answer within {wait_timeout:g}s")
    return replies, acknowledged


async def _on_node(
    node: Any, commands: list[tuple[Any, ...]], wait: tuple[Any, ...] | None, wait_timeout: float
) -> tuple[list[Any], int | Exception | None]:
    """Send `commands` (then `wait`) on one connection of a cluster node; see `round_trips`."""
    connection = node.acquire_connection()
    try:
        await node.disconnect_if_needed(connection)  # marked by a slot map refresh
        await drop_if_stale(connection)
        return await round_trips(connection, commands, wait, wait_timeout)
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        node.release(connection)


_ONE_KEY = frozenset({"GET", "PTTL", "STRLEN", "EXISTS", "UNLINK", "DEL"})
"""Commands routed by their key when they name exactly one (some take several)."""
_KEY_FIRST = frozenset({"SET", "GETEX", "PEXPIRE", "EXPIRE", "ZADD", "ZRANGE", "ZMSCORE"})
"""Commands of one key, followed by other arguments."""


def _routable(command: tuple[Any, ...]) -> bool:
    """Whether `_key_of` routes `command` on a cluster.

    True for a command of one key, or a script of one slot; others (PING, INFO, several
    keys...) are left to redis-py's routing.
    """
    name = command[0]
    if name == "EVAL":
        return int(command[2]) >= 1
    if name in _ONE_KEY:
        return len(command) == 2
    return name in _KEY_FIRST


def _key_of(command: tuple[Any, ...]) -> Any:
    """The key of a single-key command: EVAL script numkeys key ..., or COMMAND key ..."""
    return command[3] if command[0] == "EVAL" else command[1]


def _payload(commands: list[tuple[Any, ...]]) -> int:
    """Bytes of the values (states) that `commands` carry."""
    return sum(len(arg) for command in commands for arg in command if type(arg) is bytes)
