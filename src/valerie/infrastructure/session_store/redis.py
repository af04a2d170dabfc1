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

from .base import DEFAULT_TTL_SECONDS, EncodedSessionStore
from .errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    MissingDependencyError,
    ReplicationError,
)
from .urls import mask_url, parse_redis_url
from .validation import TTL, check_prefix

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from .redis_topology import RedisClient

DEFAULT_REDIS_URL = "redis://localhost:6379"
DEFAULT_PREFIX = "valerie:session:"

LOCK_SUFFIX = "\x1flock"
"""A session's lock is the key `prefix + session_id + LOCK_SUFFIX`. Ids cannot hold control
characters, so no session key can ever equal a lock key."""

_BATCH = 1000  # keys per SCAN page

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
    then raises `BackendUnavailableError`. A server that restarts, even empty, is used again by
    the same store without any action.

    Args:
        redis_url: `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS),
            `unix:///path/to.sock`, `redis+sentinel://[[user]:password@]host:port[,...]/
            master_name[/db]` or `redis+cluster://[[user]:password@]host:port[,...]`; query
            parameters are passed to redis-py (e.g. `?ssl_ca_certs=/ca.pem`). Kept private:
            the attribute `redis_url` shows it with its credentials masked (`***`).
        client: A redis-py client (`Redis` or `RedisCluster`) to use instead of one built
            from `redis_url`; the store never closes it.
        min_replicas: After each write, wait (Redis `WAIT`) until this many replicas have it,
            up to `replica_timeout` seconds, else raise `ReplicationError` (the write stays on
            the primary). Narrows, but does not close, the window in which a failover loses
            acknowledged writes: Redis replication stays asynchronous. On a cluster, batches are
            then sent per slot primary, each followed by its WAIT.
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
        "_client",
        "_injected",
        "_loop",
        "_recent",
        "_slots",
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
        redis_url: str = DEFAULT_REDIS_URL,
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
        from . import redis_topology

        super().__init__(default_ttl)
        self._target = parse_redis_url(redis_url)
        redis_topology.connection_options(self._target)  # checks the query now, not on first use
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
        self._client: RedisClient | None = client
        self._injected = client is not None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(max_connections)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(redis_url={mask_url(self.redis_url)!r}, "
            f"prefix={self.prefix!r}, default_ttl={self.default_ttl})"
        )

    async def close(self) -> None:
        """Close the connection pool; a later call opens a new one.

        Calls still running finish on their connection, which is then closed too.
        """
        if self._injected:
            return
        client, self._client = self._client, None
        # A pool made by another (ended) loop cannot be closed from this one: it is dropped.
        if client is not None and self._loop is asyncio.get_running_loop():
            from .redis_topology import close_client

            await close_client(client)

    async def _ping(self) -> dict[str, Any]:
        from .redis_topology import describe

        await self._execute("PING")
        return describe(self._connection())

    async def _write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        await self._execute("SET", self.prefix + session_id, data, "EX", ttl_seconds, durable=True)

    async def _read(self, session_id: str) -> bytes | None:
        data: bytes | None = await self._execute("GET", self.prefix + session_id)
        return data

    async def _remove(self, session_id: str) -> None:
        await self._execute("UNLINK", self.prefix + session_id, durable=True)

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
            "GETEX", self.prefix + session_id, "EX", ttl_seconds
        )
        return data

    async def _touch(self, session_id: str, ttl_seconds: int) -> bool:
        return bool(await self._execute("EXPIRE", self.prefix + session_id, ttl_seconds))

    async def _remaining(self, session_id: str) -> int | None:
        milliseconds: int = await self._execute("PTTL", self.prefix + session_id)
        return None if milliseconds < 0 else -(-milliseconds // 1000)

    async def _acquire_lock(self, session_id: str, token: str, milliseconds: int) -> bool:
        # Taking a lock one already holds succeeds, so this script can be retried safely.
        key = self.prefix + session_id + LOCK_SUFFIX
        return bool(await self._execute("EVAL", _ACQUIRE_LOCK, 1, key, token, milliseconds))

    async def _release_lock(self, session_id: str, token: str) -> bool:
        key = self.prefix + session_id + LOCK_SUFFIX
        return bool(await self._script(_RELEASE_LOCK, key, token, durable=False))

    async def _extend_lock(self, session_id: str, token: str, milliseconds: int) -> bool:
        key = self.prefix + session_id + LOCK_SUFFIX
        return bool(await self._script(_EXTEND_LOCK, key, token, milliseconds, durable=False))

    async def _read_many(self, session_ids: list[str]) -> list[bytes | None]:
        # GETs in a pipeline rather than MGET: MGET answers nil for a key of another type,
        # where GET (and so load) reports it as corrupted.
        replies = await self._execute_batch([("GET", self.prefix + i) for i in session_ids])
        return replies

    async def _write_many(self, items: list[tuple[str, bytes]], ttl_seconds: int) -> None:
        await self._execute_batch(
            [
                ("SET", self.prefix + session_id, data, "EX", ttl_seconds)
                for session_id, data in items
            ],
            durable=True,
        )

    async def _remove_many(self, session_ids: list[str]) -> None:
        # One key per UNLINK: keys of a batch may live in different cluster slots.
        await self._execute_batch([("UNLINK", self.prefix + i) for i in session_ids], durable=True)

    async def _scan_keys(self) -> AsyncIterator[list[bytes]]:
        """Yield pages of this store's keys, sessions and locks, found with SCAN.

        On a cluster every primary is scanned, each holding its own share of the keys.
        """
        pattern = _glob_escape(self.prefix) + "*"
        client = self._connection()
        cluster = client if _is_cluster(client) else None
        nodes: list[Any] = [None]
        if cluster is not None:
            await cluster.initialize()
            nodes = cluster.get_primaries()
        for node in nodes:
            cursor = 0
            while True:
                command = ("SCAN", cursor, "MATCH", pattern, "COUNT", _BATCH)
                if cluster is None:
                    reply = await self._execute(*command)
                else:
                    reply = await self._scan_node(cluster, node, command)
                cursor, keys = int(reply[0]), reply[1]
                if keys:
                    yield keys
                if cursor == 0:
                    break

    async def _scan_node(self, client: RedisCluster, node: Any, command: tuple[Any, ...]) -> Any:
        slots = self._slots
        await self._take_slot(slots)
        try:
            reply = await client.execute_command(*command, target_nodes=node)
        except Exception as error:
            self._fail(error, "SCAN")
        finally:
            slots.release()
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
        start = len(self.prefix.encode())
        count = 0
        async for keys in self._scan_keys():
            await self._execute_batch([("UNLINK", key) for key in keys])
            count += sum(_session_id(key, start) is not None for key in keys)
        return count

    def _connection(self) -> RedisClient:
        """Return the client, built on first use and again on a new event loop."""
        loop = asyncio.get_running_loop()
        client = self._client
        if self._injected:
            assert client is not None
            return client
        if client is None or self._loop is not loop:
            # A pool's connections and locks belong to the loop that made them; a store used
            # from a new loop (a new asyncio.run) starts afresh instead of failing.
            from .redis_topology import build_client

            client = self._client = build_client(
                self._target,
                timeout=self.timeout,
                retries=self.retries,
                max_connections=self.max_connections,
            )
            self._loop = loop
            self._slots = asyncio.Semaphore(self.max_connections)
        return client

    async def _execute(self, *command: Any, retry: bool = True, durable: bool = False) -> Any:
        """Run one command on a pooled connection, turning redis-py's errors into ours.

        This is redis-py's `execute_command` without its per-command bookkeeping (metrics
        hooks, response callbacks), about a fifth of a round trip's CPU time here, with the
        same `Retry` for idempotent commands. `retry=False` sends the command once: for writes
        that must not run twice (a compare-and-set that landed before a timeout would meet its
        own write as a conflict and be applied again); a timeout then raises
        `BackendUnavailableError` and the outcome is unknown, as with any database write. The
        pool checks each connection it hands out, so a server restart between calls is
        survived either way. `durable=True` marks a write that `min_replicas` applies to.
        """
        client = self._connection()
        if _is_cluster(client):
            return await self._execute_on_cluster(client, command, retry, durable)
        pool = cast("Redis", client).connection_pool
        wait = self._wait_command() if durable else None
        slots = self._slots
        await self._take_slot(slots)
        try:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                if not retry:
                    reply, acknowledged = await _round_trip(connection, command, wait)
                else:
                    reply, acknowledged = await connection.retry.call_with_retry(
                        lambda: _round_trip(connection, command, wait),
                        lambda _: connection.disconnect(),
                    )
            finally:
                await pool.release(connection)
                if (
                    self._client is None
                    or getattr(self._client, "connection_pool", None) is not pool
                ):
                    await connection.disconnect()  # close() retired this pool meanwhile
        except Exception as error:
            self._fail(error, command[0])
        finally:
            slots.release()
        self._check_replicated(acknowledged)
        return reply

    def _wait_command(self) -> tuple[Any, ...] | None:
        if not self.min_replicas:
            return None
        return ("WAIT", self.min_replicas, round(self.replica_timeout * 1000))

    def _check_replicated(self, acknowledged: int | None) -> None:
        if acknowledged is not None and acknowledged < self.min_replicas:
            raise ReplicationError(
                f"the write reached the primary, but {acknowledged} of the "
                f"{self.min_replicas} replicas required confirmed it within "
                f"{self.replica_timeout:g}s: a failover now could lose it; check the replicas "
                "(INFO replication), or lower min_replicas",
                acknowledged,
            )

    async def _execute_on_cluster(
        self, client: RedisCluster, command: tuple[Any, ...], retry: bool, durable: bool = False
    ) -> Any:
        """Run one command through redis-py's cluster client, which routes it by key slot.

        `retry=False` names the slot's node itself: redis-py then sends the command once.
        """
        slots = self._slots
        await self._take_slot(slots)
        try:
            # Learn the slot map before any command: redis-py lets commands that race a first
            # initialization go to wrong nodes, and after a few MOVED replies it drops every
            # connection, including those other tasks are using. A no-op once initialized.
            await client.initialize()
            if durable and self.min_replicas:
                replies = await self._on_slot_primary(client, [command])
                return replies[0]
            options: dict[str, Any] = {}
            if not retry:
                options["target_nodes"] = client.get_node_from_key(_key_of(command))
            return await client.execute_command(*command, **options)
        except Exception as error:
            self._fail(error, command[0])
        finally:
            slots.release()

    async def _on_slot_primary(
        self, client: RedisCluster, commands: list[tuple[Any, ...]]
    ) -> list[Any]:
        """Send single-key writes to their slots' primaries, each group then a WAIT; sent once.

        WAIT counts the writes sent before it on the same connection, so each primary's group
        goes on one connection of that primary, as `min_replicas` needs.

        Raises:
            ReplicationError: A primary's replicas did not confirm in time.
        """
        from redis.exceptions import AskError

        groups: dict[Any, list[int]] = {}
        for index, command in enumerate(commands):
            groups.setdefault(client.get_node_from_key(_key_of(command)), []).append(index)
        replies: list[Any] = [None] * len(commands)
        for node, indexes in groups.items():
            connection = node.acquire_connection()
            try:
                node_replies, acknowledged = await _round_trips(
                    connection, [commands[i] for i in indexes], self._wait_command()
                )
            except BaseException:
                await connection.disconnect()
                raise
            finally:
                node.release(connection)
            for index, reply in zip(indexes, node_replies, strict=True):
                if isinstance(reply, AskError):  # MOVED after a failover: learn the new owner
                    await client.nodes_manager.move_slot(reply)
                replies[index] = reply
            self._check_replicated(acknowledged)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _execute_batch(
        self, commands: list[tuple[Any, ...]], durable: bool = False
    ) -> list[Any]:
        """Run commands in one round trip (a pipeline, not a transaction)."""
        client = self._connection()
        wait = self._wait_command() if durable else None
        if wait is not None:
            commands = [*commands, wait]
        slots = self._slots
        await self._take_slot(slots)
        try:
            if _is_cluster(client):
                await client.initialize()  # see _execute_on_cluster
                if wait is not None:
                    return await self._on_slot_primary(client, commands[:-1])
            pipeline = client.pipeline(transaction=False)
            for command in commands:
                pipeline.execute_command(*command)
            replies: list[Any] = await pipeline.execute(raise_on_error=False)
        except Exception as error:
            self._fail(error, commands[0][0])
        finally:
            slots.release()
        for reply in replies:
            if isinstance(reply, Exception):
                self._fail(reply, commands[0][0])
        if wait is not None:
            self._check_replicated(replies.pop())
        return replies

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
                f"all {self.max_connections} connections to Redis at "
                f"{mask_url(self.redis_url)} stayed busy for {self.timeout:g}s; raise "
                "max_connections, or check why the server is slow"
            ) from None

    def _fail(self, error: Exception, command: str) -> NoReturn:
        translated = self._translate(error, command)
        if translated is error:
            raise error
        raise translated from error

    async def _script(self, script: str, key: str, *args: Any, durable: bool = True) -> Any:
        # Sent once (see _execute). EVAL rather than EVALSHA: the server caches the compiled
        # script by its hash anyway, and EVAL cannot fail with NOSCRIPT after a restart.
        return await self._execute("EVAL", script, 1, key, *args, retry=False, durable=durable)

    def _translate(self, error: Exception, command: str) -> Exception:
        from redis.exceptions import (
            ClusterError,
            ConnectionError,
            RedisClusterException,
            RedisError,
            ResponseError,
            TimeoutError,
        )

        where = f"Redis at {mask_url(self.redis_url)}"
        unavailable = (ConnectionError, TimeoutError, ClusterError, RedisClusterException, OSError)
        if isinstance(error, unavailable):
            return BackendUnavailableError(
                f"{where} is unavailable ({type(error).__name__}: {error}) after "
                f"{self.retries + 1} attempt(s) of at most {self.timeout:g}s; check that the "
                "server is running and reachable, and the URL (VALERIE_SESSION_REDIS_URL)"
            )
        if isinstance(error, ResponseError) and "WRONGTYPE" in str(error):
            return CorruptedSessionError(
                f"a key of this store (prefix {self.prefix!r}) holds a Redis type other than a "
                "string; it was left in place: inspect it, or delete the session to start over"
            )
        if isinstance(error, RedisError):
            return BackendError(f"{where} refused {command}: {error}")
        return error


def _require_redis() -> None:
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "RedisSessionStore needs redis-py, which is not installed: pip install 'valerie[redis]'"
        ) from None


def _is_cluster(client: object) -> TypeGuard[RedisCluster]:
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def _key_of(command: tuple[Any, ...]) -> Any:
    """The key of a single-key command: EVAL script numkeys key ..., or COMMAND key ..."""
    return command[3] if command[0] == "EVAL" else command[1]


async def _round_trip(
    connection: Any, command: tuple[Any, ...], wait: tuple[Any, ...] | None
) -> tuple[Any, int | None]:
    """Send `command`, and `wait` (a WAIT for its replication) on the same connection.

    Returns the command's reply and how many replicas WAIT counted (None without `wait`).
    """
    replies, acknowledged = await _round_trips(connection, [command], wait)
    if isinstance(replies[0], Exception):
        raise replies[0]
    return replies[0], acknowledged


async def _round_trips(
    connection: Any, commands: list[tuple[Any, ...]], wait: tuple[Any, ...] | None
) -> tuple[list[Any], int | None]:
    """Send `commands` (then `wait`) on one connection; read every reply, errors included.

    Every reply is read even after an error reply, so the connection stays in step for its
    next user. Returns the replies (a `ResponseError` instance for each refused command) and
    how many replicas WAIT counted (None without `wait`).
    """
    from redis.exceptions import ResponseError

    for command in (*commands, wait) if wait is not None else commands:
        await connection.send_command(*command)
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except ResponseError as error:
            replies.append(error)
    if wait is None:
        return replies, None
    acknowledged: int | None = await connection.read_response(
        timeout=connection.socket_timeout + wait[2] / 1000
    )
    if acknowledged is None:
        # redis-py answers None, instead of raising, when a read given its own timeout times
        # out: the reply is still due, so this connection must not be used again.
        from redis.exceptions import TimeoutError

        await connection.disconnect()
        raise TimeoutError("WAIT did not answer in time")
    return replies, acknowledged


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
