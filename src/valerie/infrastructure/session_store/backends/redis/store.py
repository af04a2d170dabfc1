"""Sessions in Redis: one string key per session holding the state's JSON, with a native TTL.

`redis` (redis-py) is an optional dependency: this module imports it only when a store is
created, so `import valerie.infrastructure` works without it.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeGuard, cast

from ...base import DEFAULT_TTL_SECONDS, EncodedSessionStore
from ...errors import (
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    MissingDependencyError,
    ReplicationError,
)
from ...inspection import SessionInfo
from ...validation import TTL, check_prefix
from .urls import RedisTarget, mask_url, parse_redis_url

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from .topology import RedisClient

DEFAULT_REDIS_URL = "redis://localhost:6379"
DEFAULT_PREFIX = "valerie:session:"

LOCK_SUFFIX = "\x1flock"
"""A session's lock is the key `prefix + session_id + LOCK_SUFFIX`. Ids cannot hold control
characters, so no session key can ever equal a lock key."""

_BATCH = 1000  # keys per SCAN page
_SCAN_MEMORY = 10_000
"""Keys a walk of the store remembers, to drop the repeats SCAN may return (about 2 MB)."""
_LARGE_WRITE = 1 << 20
"""A write carrying more bytes than this (one state, or a batch's states together) is sent
once: re-sending it after a timeout would not help a server too slow to take it."""
_REDIRECTS = 5  # MOVED replies followed by a write sent once on a cluster

# Each script touches one key, so it is atomic on standalone Redis and Cluster alike.
_WRITE_IF = """
local current = redis.call('GET', KEYS[1])
if current then
    if redis.sha1hex(current) ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= 'absent' then
    return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
# update's compare-and-set: compares the bytes themselves (no hashing on either side) and, on a
# conflict, answers with the bytes stored now, so the next attempt needs no extra read.
_SWAP = """
local current = redis.call('GET', KEYS[1])
local expected = ARGV[1] == '1'
if (current and expected and current == ARGV[2]) or (not current and not expected) then
    if ARGV[3] == '1' then
        redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[5])
    else
        redis.call('DEL', KEYS[1])
    end
    return {1}
end
if current then return {0, current} end
return {0}
"""
_REMOVE_IF = """
local current = redis.call('GET', KEYS[1])
if not current then return 1 end
if redis.sha1hex(current) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
_ACQUIRE_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""
_EXTEND_LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""


class RedisSessionStore(EncodedSessionStore):
    """Sessions in Redis, shared by every process that uses the same URL and prefix.

    A session is the string key `prefix + session_id` holding the state as compact UTF-8 JSON,
    written with its expiry in the same command (`SET key value EX ttl`), so a service in any
    language can `GET` and parse it. One connection pool per store, opened on first use and
    closed by `close()`; after a close, the next call opens a new one.

    Every call is bounded: a connection attempt or a command gives up after `timeout` seconds
    and is retried `retries` times with jittered exponential backoff (redis-py's own `Retry`),
    then raises `BackendUnavailableError`. Writes that must not run twice (compare-and-set,
    lease release and extend) and writes of more than 1 MiB are sent once instead. A server
    that restarts, even empty, is used again by the same store without any action. Refused
    credentials, permissions or certificates raise `AccessDeniedError` at once, never retried.

    Args:
        redis_url: `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS),
            `unix:///path/to.sock`, `redis+sentinel://[[user]:password@]host:port[,...]/
            master_name[/db]` or `redis+cluster://[[user]:password@]host:port[,...]`; query
            parameters are passed to redis-py (e.g. `?ssl_ca_certs=/ca.pem`). Default:
            `redis://localhost:6379`, unless `client` is given. Kept
            private: the attribute `redis_url` shows it with its credentials masked (`***`).
        client: A `redis.asyncio` client (`Redis` or `RedisCluster`, made with the default
            `decode_responses=False`) to use instead of one built from a URL; the store never
            closes it. Give `redis_url` or `client`, not both.
        min_replicas: After each write (every command that changes a session or a lease),
            wait (Redis `WAIT`) until this many replicas have it, up to `replica_timeout`
            seconds, else raise `ReplicationError` (the write stays on the primary). Narrows,
            but does not close, the window in which a failover loses acknowledged writes:
            Redis replication stays asynchronous. On a cluster such writes are sent once, per
            slot primary, each group followed by its WAIT.
        replica_timeout: Seconds `min_replicas` waits; below `timeout` (default: half of it).
        update_cache_size: Sessions whose last bytes `update` remembers, so that an update
            of a session this process updated last takes one round trip instead of two. A
            stale guess costs one round trip (the compare-and-set answers with the stored
            bytes) and is not counted among `update`'s attempts. 0 disables it.
        prefix: Starts every key of this store; stores with different prefixes never meet.
        default_ttl: The TTL used when `save` is called without one.
        timeout: Seconds a connection attempt or a command may take.
        retries: Further attempts after a connection error or timeout.
        max_connections: Connections this store opens at most; a call that finds them all
            busy waits up to `timeout` for one.

    Raises:
        MissingDependencyError: redis-py is not installed.
        ConfigurationError: An argument is not allowed; the message says which and why.
    """

    __slots__ = (
        "_connections",
        "_injected",
        "_recent",
        "_target",
        "max_connections",
        "min_replicas",
        "prefix",
        "redis_url",
        "replica_timeout",
        "retries",
        "timeout",
        "update_cache_size",
    )

    def __init__(
        self,
        redis_url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        *,
        default_ttl: TTL = DEFAULT_TTL_SECONDS,
        timeout: float = 1.0,
        retries: int = 2,
        max_connections: int = 64,
        client: RedisClient | None = None,
        update_cache_size: int = 1024,
        min_replicas: int = 0,
        replica_timeout: float | None = None,
    ) -> None:
        _require_redis()
        from . import topology as redis_topology

        super().__init__(default_ttl)
        self._target: RedisTarget | None = None
        self.redis_url: str | None = None
        if client is not None:
            if redis_url is not None:
                raise ConfigurationError(
                    "give redis_url or client, not both: a store given a client uses only it"
                )
            redis_topology.check_client(client)
        else:
            self._target = parse_redis_url(DEFAULT_REDIS_URL if redis_url is None else redis_url)
            redis_topology.connection_options(self._target)  # checks the query now
            self.redis_url = mask_url(self._target.url)
        self.prefix = check_prefix(prefix)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not (timeout > 0 and math.isfinite(timeout))
        ):
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            )
        if type(retries) is not int or retries < 0:
            raise ConfigurationError(f"retries must be an int >= 0, got {retries!r}")
        if type(max_connections) is not int or max_connections < 1:
            raise ConfigurationError(
                f"max_connections must be an int >= 1, got {max_connections!r}"
            )
        self.timeout = float(timeout)
        self.retries = retries
        self.max_connections = max_connections
        if type(update_cache_size) is not int or update_cache_size < 0:
            raise ConfigurationError(
                f"update_cache_size must be an int >= 0, got {update_cache_size!r}"
            )
        self.update_cache_size = update_cache_size
        if type(min_replicas) is not int or min_replicas < 0:
            raise ConfigurationError(f"min_replicas must be an int >= 0, got {min_replicas!r}")
        if replica_timeout is None:
            replica_timeout = self.timeout / 2
        if (
            isinstance(replica_timeout, bool)
            or not isinstance(replica_timeout, (int, float))
            or not 0 < replica_timeout < self.timeout
        ):
            raise ConfigurationError(
                f"replica_timeout must be a number of seconds above 0 and below timeout "
                f"({self.timeout:g}), got {replica_timeout!r}"
            )
        self.min_replicas = min_replicas
        self.replica_timeout = float(replica_timeout)
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._injected = client
        self._connections: _Connections | None = None

    def __repr__(self) -> str:
        if self._injected is not None:
            from .topology import client_address

            where = f"client=<{type(self._injected).__name__} {client_address(self._injected)}>"
        else:
            where = f"redis_url={mask_url(self._url())!r}"
        return (
            f"{type(self).__name__}({where}, prefix={self.prefix!r}, "
            f"default_ttl={self.default_ttl})"
        )

    def _url(self) -> str:
        assert self._target is not None
        return self._target.url

    async def close(self) -> None:
        """Close the connection pool; a later call opens a new one.

        With no call running, every connection is closed now. Calls still running are not
        disturbed: they finish on the pool, and the last of them closes it when it is done.
        """
        if self._injected is not None:
            return
        connections, self._connections = self._connections, None
        # A pool made by another (ended) loop cannot be closed from this one: it is dropped.
        if connections is None or connections.loop is not asyncio.get_running_loop():
            return
        connections.retired = True
        if not connections.calls:
            from .topology import close_client

            await close_client(connections.client)

    async def _ping(self) -> dict[str, Any]:
        from .topology import describe

        await self._execute("PING")
        return describe(self._connection())

    async def _write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        await self._execute("SET", self.prefix + session_id, data, "EX", ttl_seconds, write=True)

    async def _read(self, session_id: str) -> bytes | None:
        data: bytes | None = await self._execute("GET", self.prefix + session_id)
        return data

    async def _remove(self, session_id: str) -> None:
        await self._execute("UNLINK", self.prefix + session_id, write=True)

    async def _contains(self, session_id: str) -> bool:
        return bool(await self._execute("EXISTS", self.prefix + session_id))

    async def _write_if(self, session_id: str, data: bytes, ttl_seconds: int, version: str) -> bool:
        key = self.prefix + session_id
        return bool(await self._script(_WRITE_IF, key, version, data, ttl_seconds))

    async def _remove_if(self, session_id: str, version: str) -> bool:
        return bool(await self._script(_REMOVE_IF, self.prefix + session_id, version))

    def _guess(self, session_id: str) -> bytes | None:
        # What this store's last update of the session left: right whenever this process had
        # the previous turn, and then an update takes one round trip, not two.
        return self._recent.get(session_id)

    async def _swap(
        self, session_id: str, previous: bytes | None, data: bytes | None, ttl_seconds: int
    ) -> tuple[bool, bytes | None]:
        reply = await self._script(
            _SWAP,
            self.prefix + session_id,
            "0" if previous is None else "1",
            previous or b"",
            "0" if data is None else "1",
            data or b"",
            ttl_seconds,
        )
        swapped = reply[0] == 1
        current = data if swapped else (reply[1] if len(reply) > 1 else None)
        self._remember(session_id, current)
        return swapped, None if swapped else current

    def _remember(self, session_id: str, data: bytes | None) -> None:
        recent = self._recent
        recent.pop(session_id, None)
        if data is not None and self.update_cache_size:
            recent[session_id] = data
            if len(recent) > self.update_cache_size:
                recent.popitem(last=False)

    async def _read_and_touch(self, session_id: str, ttl_seconds: int) -> bytes | None:
        data: bytes | None = await self._execute(
            "GETEX", self.prefix + session_id, "EX", ttl_seconds, write=True
        )
        return data

    async def _touch(self, session_id: str, ttl_seconds: int) -> bool:
        return bool(
            await self._execute("EXPIRE", self.prefix + session_id, ttl_seconds, write=True)
        )

    async def _remaining(self, session_id: str) -> int | None:
        milliseconds: int = await self._execute("PTTL", self.prefix + session_id)
        return None if milliseconds < 0 else -(-milliseconds // 1000)

    async def _acquire_lock(self, session_id: str, token: str, milliseconds: int) -> bool:
        # Taking a lock one already holds succeeds, so this script can be retried safely.
        key = self.prefix + session_id + LOCK_SUFFIX
        return bool(
            await self._execute("EVAL", _ACQUIRE_LOCK, 1, key, token, milliseconds, write=True)
        )

    async def _release_lock(self, session_id: str, token: str) -> bool:
        key = self.prefix + session_id + LOCK_SUFFIX
        return bool(await self._script(_RELEASE_LOCK, key, token))

    async def _extend_lock(self, session_id: str, token: str, milliseconds: int) -> bool:
        key = self.prefix + session_id + LOCK_SUFFIX
        return bool(await self._script(_EXTEND_LOCK, key, token, milliseconds))

    async def _read_many(self, session_ids: list[str]) -> list[bytes | None]:
        # GETs in a pipeline rather than MGET: MGET answers nil for a key of another type,
        # where GET (and so load) reports it as corrupted.
        return await self._run([("GET", self.prefix + i) for i in session_ids])

    async def _read_many_with_ttl(self, session_ids: list[str]) -> list[tuple[bytes, int] | None]:
        return _with_ttls(await self._run(_paired("GET", self.prefix, session_ids)))

    async def _describe_many(self, session_ids: list[str]) -> list[SessionInfo | None]:
        replies = _with_ttls(await self._run(_paired("STRLEN", self.prefix, session_ids)))
        return [None if reply is None else SessionInfo(*reply) for reply in replies]

    async def _write_many(self, items: list[tuple[str, bytes]], ttl_seconds: int) -> None:
        commands = [
            ("SET", self.prefix + session_id, data, "EX", ttl_seconds) for session_id, data in items
        ]
        await self._run(commands, write=True)

    async def _remove_many(self, session_ids: list[str]) -> None:
        # One key per UNLINK: keys of a batch may live in different cluster slots.
        await self._run([("UNLINK", self.prefix + i) for i in session_ids], write=True)

    async def _scan_keys(self) -> AsyncIterator[list[bytes]]:
        """Yield pages of this store's keys, sessions and locks, found with SCAN.

        On a cluster every primary is scanned, each holding its own share of the keys. SCAN
        may return a key twice when Redis resizes its table during the walk; such a repeat
        comes soon after the first sight, so the last `_SCAN_MEMORY` keys seen are remembered
        and not yielded again: bounded memory whatever the store's size.
        """
        pattern = _glob_escape(self.prefix) + "*"
        connections = self._connections_now()
        client = connections.client
        cluster = client if _is_cluster(client) else None
        nodes: list[Any] = [None]
        if cluster is not None:
            await cluster.initialize()
            nodes = cluster.get_primaries()
        recent: OrderedDict[bytes, None] = OrderedDict()
        for node in nodes:
            cursor = 0
            while True:
                command = ("SCAN", cursor, "MATCH", pattern, "COUNT", _BATCH)
                if cluster is None:
                    reply = await self._execute(*command)
                else:
                    reply = await self._scan_node(connections, node, command)
                cursor = int(reply[0])
                keys = [key for key in reply[1] if key not in recent]
                for key in keys:
                    recent[key] = None
                while len(recent) > _SCAN_MEMORY:
                    recent.popitem(last=False)
                if keys:
                    yield keys
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
            self._fail(error, command)
        finally:
            if self._leave(connections):
                await self._close_retired(connections)
        # redis-py's cluster callback for SCAN answers ({node name: cursor}, keys).
        cursor, keys = reply
        if isinstance(cursor, dict):
            (cursor,) = cursor.values()
        return cursor, keys

    async def _scan(self) -> AsyncIterator[str]:
        start = len(self.prefix.encode())
        async for keys in self._scan_keys():
            for key in keys:
                session_id = _session_id(key, start)
                if session_id is not None:
                    yield session_id

    async def _clear(self) -> int:
        # Counts what UNLINK deleted: a key SCAN returned twice, or that vanished meanwhile,
        # is not counted twice, or at all.
        start = len(self.prefix.encode())
        count = 0
        async for keys in self._scan_keys():
            deleted = await self._run([("UNLINK", key) for key in keys], write=True)
            count += sum(
                bool(done)
                for key, done in zip(keys, deleted, strict=True)
                if _session_id(key, start) is not None
            )
        return count

    def _connection(self) -> RedisClient:
        """Return the client, built on first use and again on a new event loop."""
        return self._connections_now().client

    def _connections_now(self) -> _Connections:
        loop = asyncio.get_running_loop()
        connections = self._connections
        if connections is None or connections.loop is not loop:
            # A pool's connections and locks belong to the loop that made them; a store used
            # from a new loop (a new asyncio.run) starts afresh instead of failing.
            client = self._injected
            if client is None:
                from .topology import build_client

                assert self._target is not None
                client = build_client(
                    self._target,
                    timeout=self.timeout,
                    retries=self.retries,
                    max_connections=self.max_connections,
                )
            connections = self._connections = _Connections(client, loop, self.max_connections)
        return connections

    @property
    def _slots(self) -> asyncio.Semaphore:
        """The connection budget of this loop's pool (for tests that hold it)."""
        return self._connections_now().budget

    async def _enter(self, connections: _Connections | None = None) -> _Connections:
        """Count a call on this loop's client (or `connections`), and take a connection slot.

        `_leave` gives both back.
        """
        connections = connections or self._connections_now()
        # Counted before it waits for a slot: close() must not close a client under a call
        # about to use it.
        connections.calls += 1
        try:
            await self._take_slot(connections.budget)
        except BaseException:
            if self._uncount(connections):
                await self._close_retired(connections)
            raise
        return connections

    def _leave(self, connections: _Connections) -> bool:
        """Give back what `_enter` took; return whether the client must now be closed."""
        connections.budget.release()
        return self._uncount(connections)

    def _uncount(self, connections: _Connections) -> bool:
        connections.calls -= 1
        # close() ran while calls were in flight, and this was the last of them.
        return connections.retired and not connections.calls

    async def _close_retired(self, connections: _Connections) -> None:
        from .topology import close_client

        await close_client(connections.client)

    async def _execute(self, *command: Any, retry: bool = True, write: bool = False) -> Any:
        """Run one command on a pooled connection; see `_run`."""
        return (await self._run([command], retry=retry, write=write))[0]

    async def _run(
        self, commands: list[tuple[Any, ...]], *, retry: bool = True, write: bool = False
    ) -> list[Any]:
        """Run commands in one round trip (a pipeline, not a transaction); translate errors.

        On one server this is redis-py's `execute_command` without its per-command
        bookkeeping (metrics hooks, response callbacks), about a fifth of a round trip's CPU
        time here, with the same `Retry` for idempotent commands. `retry=False` sends the
        commands once: for writes that must not run twice (a compare-and-set that landed before
        a timeout would meet its own write as a conflict and be applied again); a timeout then
        raises `BackendUnavailableError` and the outcome is unknown, as with any database
        write. Writes of more than `_LARGE_WRITE` bytes are sent once too: re-sending them
        would not help a server too slow to take them. The pool checks each connection it
        hands out, so a server restart between calls is survived either way. `write=True`
        marks commands that change data: `min_replicas` follows them with a WAIT on the same
        connection (on a cluster they are then sent once, to each slot's primary).
        """
        wait = self._wait_command() if write else None
        size = _payload(commands) if write else 0
        connections = await self._enter()
        client = connections.client
        cluster = connections.cluster
        once = not retry or size > _LARGE_WRITE or (wait is not None and cluster)
        try:
            if cluster:
                replies, acknowledged = await self._run_on_cluster(
                    cast("RedisCluster", client), commands, wait, once
                )
            else:
                replies, acknowledged = await self._run_on_pool(
                    cast("Redis", client), commands, wait, once
                )
        except Exception as error:
            self._fail(error, commands[0], once=once, size=size)
        finally:
            if self._leave(connections):
                await self._close_retired(connections)
        for reply in replies:
            if isinstance(reply, Exception):
                self._fail(reply, commands[0], once=once, size=size)
        if isinstance(acknowledged, Exception):
            self._fail(acknowledged, ("WAIT",), once=once, size=size)
        self._check_replicated(acknowledged)
        return replies

    async def _run_on_pool(
        self,
        client: Redis,
        commands: list[tuple[Any, ...]],
        wait: tuple[Any, ...] | None,
        once: bool,
    ) -> tuple[list[Any], int | Exception | None]:
        from .topology import round_trips

        pool = client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        wait_timeout = 0.0 if wait is None else self._wait_timeout(connection)
        try:
            if once:
                return await round_trips(connection, commands, wait, wait_timeout)
            done: tuple[list[Any], int | Exception | None] = await connection.retry.call_with_retry(
                lambda: round_trips(connection, commands, wait, wait_timeout),
                lambda _: connection.disconnect(),
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

    async def _on_slot_primaries(
        self,
        client: RedisCluster,
        commands: list[tuple[Any, ...]],
        wait: tuple[Any, ...] | None,
    ) -> tuple[list[Any], int | Exception | None]:
        """Send single-key commands once, each to its slot's primary, then `wait` there.

        Each primary's commands go on one of its connections, followed by `wait` (WAIT counts
        the writes sent before it on its connection). A command answered with MOVED (its slot
        has moved: a failover, or a resharding) was not run: the new owner is learnt from the
        reply and the command goes there. A connection error makes the next call read the slot
        map again, as redis-py does for the commands it routes. Returns the replies and the
        fewest replicas any WAIT counted.
        """
        from redis.exceptions import ClusterError, ConnectionError, MovedError, TimeoutError

        from .topology import forget_slots, learn_moved

        replies: list[Any] = [None] * len(commands)
        pending = list(range(len(commands)))
        acknowledged: int | Exception | None = None
        for _ in range(_REDIRECTS):
            groups: dict[Any, list[int]] = {}
            for index in pending:
                node = client.get_node_from_key(_key_of(commands[index]))
                groups.setdefault(node, []).append(index)
            pending = []
            for node, indexes in groups.items():
                try:
                    node_replies, node_acknowledged = await _on_node(
                        node, [commands[i] for i in indexes], wait, self._wait_timeout(None)
                    )
                except (ConnectionError, TimeoutError, OSError):
                    forget_slots(client)
                    raise
                moved = 0
                for index, reply in zip(indexes, node_replies, strict=True):
                    if isinstance(reply, MovedError):
                        await learn_moved(client, reply)
                        pending.append(index)
                        moved += 1
                    else:
                        replies[index] = reply
                if moved == len(indexes):
                    continue  # the WAIT, if any, confirmed nothing of ours (or was refused)
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
            if not pending:
                return replies, acknowledged
        forget_slots(client)
        raise ClusterError(f"still redirected (MOVED) after {_REDIRECTS} tries")

    def _wait_command(self) -> tuple[Any, ...] | None:
        if not self.min_replicas:
            return None
        return ("WAIT", self.min_replicas, round(self.replica_timeout * 1000))

    def _wait_timeout(self, connection: Any) -> float:
        """How long to wait for WAIT's reply: a command's timeout, plus the time WAIT waits."""
        socket_timeout = getattr(connection, "socket_timeout", None) or self.timeout
        return float(socket_timeout) + self.replica_timeout

    def _check_replicated(self, acknowledged: int | Exception | None) -> None:
        if isinstance(acknowledged, int) and acknowledged < self.min_replicas:
            raise ReplicationError(
                f"the write reached the primary, but {acknowledged} of the "
                f"{self.min_replicas} replicas required confirmed it within "
                f"{self.replica_timeout:g}s: a failover now could lose it; check the replicas "
                "(INFO replication), or lower min_replicas",
                acknowledged,
            )

    async def _take_slot(self, slots: asyncio.Semaphore) -> None:
        if not slots.locked():
            await slots.acquire()
            return
        # Every connection is busy: wait for one, but no longer than a command may take.
        # (asyncio.timeout, unlike wait_for, never swallows a cancellation.)
        try:
            async with asyncio.timeout(self.timeout):
                await slots.acquire()
        except TimeoutError:
            raise BackendUnavailableError(
                f"all {self.max_connections} connections to {self._where()} stayed busy for "
                f"{self.timeout:g}s; raise max_connections, or check why the server is slow"
            ) from None

    def _fail(
        self, error: Exception, command: tuple[Any, ...], *, once: bool = False, size: int = 0
    ) -> NoReturn:
        translated = self._translate(error, str(command[0]), once=once, size=size)
        if translated is error:
            raise error
        raise translated from error

    async def _script(self, script: str, key: str, *args: Any) -> Any:
        # Sent once (see _run). EVAL rather than EVALSHA: the server caches the compiled
        # script by its hash anyway, and EVAL cannot fail with NOSCRIPT after a restart.
        return await self._execute("EVAL", script, 1, key, *args, retry=False, write=True)

    def _where(self) -> str:
        if self._injected is not None:
            from .topology import client_address

            return f"Redis at {client_address(self._injected)} (the client given to the store)"
        return f"Redis at {mask_url(self._url())}"

    def _check_hint(self) -> str:
        if self._injected is not None:
            return "the client's settings"
        return "the URL (VALERIE_SESSION_REDIS_URL)"

    def _translate(self, error: Exception, command: str, *, once: bool, size: int) -> Exception:
        from redis.exceptions import (
            ClusterError,
            ConnectionError,
            RedisClusterException,
            RedisError,
            ResponseError,
            TimeoutError,
        )

        from .topology import access_denial, missing_master

        cause = access_denial(error)
        if cause is not None:
            return AccessDeniedError(self._denied_message(cause, error, command), cause)
        where = self._where()
        answered = missing_master(error)
        if answered is not None:
            master = getattr(self._target, "master_name", None) or "the master"
            if answered:
                return BackendUnavailableError(
                    f"{where}: no Sentinel knows a primary named {master!r} that is up; check "
                    f"the master name in {self._check_hint()}, or wait for a failover to end"
                )
            return BackendUnavailableError(
                f"{where} is unavailable: no Sentinel answered; check that the Sentinels are "
                f"running and reachable, and {self._check_hint()}"
            )
        unavailable = (ConnectionError, TimeoutError, ClusterError, RedisClusterException, OSError)
        if isinstance(error, unavailable):
            what = f"{type(error).__name__}: {_shorten(str(error))}"
            if size > _LARGE_WRITE:
                return BackendUnavailableError(
                    f"{where} did not confirm a {command} of {size / 2**20:.1f} MiB "
                    f"({what}); it was sent once, not retried, and may have been applied: "
                    f"raise timeout (now {self.timeout:g}s) if the server is merely slow to "
                    "take it, or store a smaller state"
                )
            if once:
                return BackendUnavailableError(
                    f"{where} did not answer {command} ({what}); it was sent once, not retried "
                    "(it must not run twice), so it may or may not have been applied; check "
                    f"that the server is running and reachable, and {self._check_hint()}"
                )
            return BackendUnavailableError(
                f"{where} is unavailable ({what}) after {self.retries + 1} attempt(s) of at "
                f"most {self.timeout:g}s; check that the server is running and reachable, and "
                f"{self._check_hint()}"
            )
        if isinstance(error, ResponseError) and "WRONGTYPE" in str(error):
            return CorruptedSessionError(
                f"a key of this store (prefix {self.prefix!r}) holds a Redis type other than a "
                "string; it was left in place: inspect it, or delete the session to start over"
            )
        if isinstance(error, RedisError):
            return BackendError(f"{where} refused {command}: {_shorten(str(error))}")
        return error

    def _denied_message(self, cause: str, error: Exception, command: str) -> str:
        from .topology import denial_detail, missing_master

        detail = _shorten(denial_detail(error))
        detail = f" ({detail})" if detail else ""
        where = self._where()
        if missing_master(error) is not None:
            where = f"the Sentinels of {where}"
            credentials = "?sentinel_username= and ?sentinel_password= in the URL"
        elif self._injected is not None:
            credentials = "the user name and password of the client"
        else:
            credentials = "the user name and password in the URL (VALERIE_SESSION_REDIS_URL)"
        if cause == "authentication":
            return (
                f"{where} refused the store's credentials{detail}; nothing was retried: "
                f"check {credentials}, and that the ACL user exists and is enabled"
            )
        if cause == "permission":
            return (
                f"{where} refused {command}: the ACL user lacks a permission{detail}; grant "
                "it the commands and the key pattern the store needs (see the README), or use "
                "a prefix it may write"
            )
        return (
            f"{where}: the TLS certificate check failed{detail}; nothing was retried: check "
            "ssl_ca_certs (the CA that signed the server's certificate) and the host name, "
            "and ssl_certfile / ssl_keyfile if the server requires a client certificate"
        )


class _Connections:
    """A store's client on one event loop, with its connection budget and the calls running.

    `close()` retires it: it is closed at once if no call is running, else by the last one.
    """

    __slots__ = ("budget", "calls", "client", "cluster", "loop", "retired")

    def __init__(
        self, client: RedisClient, loop: asyncio.AbstractEventLoop, max_connections: int
    ) -> None:
        self.client = client
        self.cluster = _is_cluster(client)
        self.loop = loop
        self.budget = asyncio.Semaphore(max_connections)
        self.calls = 0
        self.retired = False


async def _on_node(
    node: Any, commands: list[tuple[Any, ...]], wait: tuple[Any, ...] | None, wait_timeout: float
) -> tuple[list[Any], int | Exception | None]:
    """Send `commands` (then `wait`) on one connection of a cluster node; see `round_trips`."""
    from .topology import drop_if_stale, round_trips

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


def _require_redis() -> None:
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "RedisSessionStore needs redis-py, which is not installed: pip install 'valerie[redis]'"
        ) from None


def _paired(command: str, prefix: str, session_ids: list[str]) -> list[tuple[Any, ...]]:
    """`command` then `PTTL` for each session: adjacent in the pipeline, so read together."""
    commands: list[tuple[Any, ...]] = []
    for session_id in session_ids:
        key = prefix + session_id
        commands += [(command, key), ("PTTL", key)]
    return commands


def _with_ttls(replies: list[Any]) -> list[Any]:
    """Pair each value with its PTTL; `None` where the key is missing (or expired in between).

    A key without expiry (not written by a store) gets -1.
    """
    found: list[Any] = []
    for value, milliseconds in zip(replies[::2], replies[1::2], strict=True):
        found.append(None if milliseconds == -2 or value is None else (value, milliseconds))
    return found


def _is_cluster(client: object) -> TypeGuard[RedisCluster]:
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def _key_of(command: tuple[Any, ...]) -> Any:
    """The key of a single-key command: EVAL script numkeys key ..., or COMMAND key ..."""
    return command[3] if command[0] == "EVAL" else command[1]


def _payload(commands: list[tuple[Any, ...]]) -> int:
    """Bytes of the values (states) that `commands` carry."""
    return sum(len(arg) for command in commands for arg in command if type(arg) is bytes)


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _glob_escape(text: str) -> str:
    """Escape the characters that SCAN's MATCH treats as a pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _session_id(key: bytes, start: int) -> str | None:
    """Return the session id in a key of this store, or None for a lock or a foreign key."""
    try:
        session_id = key[start:].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if not session_id or LOCK_SUFFIX[0] in session_id else session_id
