"""Sessions in Redis: one string key per session holding the state's JSON, with a native TTL.

`redis` (redis-py) is an optional dependency: this module imports it only when a store is
created, so `import valerie.infrastructure` works without it. The key layout is in `keys.py`,
the atomic operations in `scripts.py`, and how commands reach Redis in `transport.py`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ...backend import (
    Batches,
    CompareAndSet,
    ConnectionWaitHook,
    ExpiryControl,
    Leases,
    Owners,
    PoolUsage,
    Relocation,
    Scans,
)
from ...errors import ConfigurationError, MissingDependencyError
from ...inspection import SessionInfo
from ...validation import check_prefix
from . import scripts
from .keys import DEFAULT_PREFIX, LOCK_SUFFIX, lock_key, scan_pattern, session_id_of, session_key
from .owners import RedisOwnerIndex
from .urls import RedisTarget, mask_url, parse_redis_url

if TYPE_CHECKING:
    import asyncio

    from .topology import RedisClient
    from .transport import RedisTransport

__all__ = ["DEFAULT_PREFIX", "DEFAULT_REDIS_URL", "LOCK_SUFFIX", "RedisBackend"]

DEFAULT_REDIS_URL = "redis://localhost:6379"

_BATCH = 1000  # keys per SCAN page
_SCAN_MEMORY = 10_000
"""Keys a walk of the store remembers, to drop the repeats SCAN may return (about 2 MB)."""


class RedisBackend(CompareAndSet, ExpiryControl, Leases, Scans, Batches, Relocation, Owners):
    """The Redis backend: sessions shared by every process that uses the same URL and prefix.

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
        prefix: Starts every key of this store; stores with different prefixes never meet,
            unless one prefix starts the other (its scans then include the other's keys).
        timeout: Seconds a connection attempt or a command may take.
        retries: Further attempts after a connection error or timeout.
        max_connections: Connections this store opens at most (pipelined calls share at
            most 8 of them); a call that finds them all busy waits up to `timeout` for one.
        pipelining: Send the commands that concurrent calls issue in one step of the event
            loop together, as one pipeline, on at most 8 connections per server (standalone
            and Sentinel; a Cluster routes as before). Each call still gets its own reply or
            error, and what is sent once stays sent once. False: one connection per call.

    Raises:
        MissingDependencyError: redis-py is not installed.
        ConfigurationError: An argument is not allowed; the message says which and why.
    """

    name = "redis"

    __slots__ = (
        "_injected",
        "_recent",
        "_target",
        "_transport",
        "max_connections",
        "min_replicas",
        "pipelining",
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
        timeout: float = 1.0,
        retries: int = 2,
        max_connections: int = 64,
        client: RedisClient | None = None,
        update_cache_size: int = 1024,
        min_replicas: int = 0,
        replica_timeout: float | None = None,
        pipelining: bool = True,
    ) -> None:
        _require_redis()
        from . import topology as redis_topology

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
        if type(pipelining) is not bool:
            raise ConfigurationError(f"pipelining must be True or False, got {pipelining!r}")
        self.pipelining = pipelining
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._injected = client
        self._transport = self._make_transport()

    def _make_transport(self) -> RedisTransport:
        from .failures import Place
        from .transport import RedisTransport, client_address

        if self._injected is not None:
            where = f"Redis at {client_address(self._injected)} (the client given to the store)"
        else:
            where = f"Redis at {mask_url(self._url())}"
        place = Place(
            where=where,
            injected=self._injected is not None,
            master_name=getattr(self._target, "master_name", None),
            prefix=self.prefix,
            timeout=self.timeout,
            retries=self.retries,
        )
        return RedisTransport(
            target=self._target,
            client=self._injected,
            place=place,
            max_connections=self.max_connections,
            min_replicas=self.min_replicas,
            replica_timeout=self.replica_timeout,
            pipelining=self.pipelining,
        )

    @property
    def connection_wait_hook(self) -> ConnectionWaitHook | None:
        """Told how long each wait for a free pooled connection took (set by observers)."""
        return self._transport.wait_hook

    @connection_wait_hook.setter
    def connection_wait_hook(self, hook: ConnectionWaitHook | None) -> None:
        self._transport.wait_hook = hook

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        """Where this backend's sessions live, credentials masked: for reprs."""
        if self._injected is not None:
            from .transport import client_address

            where = f"client=<{type(self._injected).__name__} {client_address(self._injected)}>"
        else:
            where = f"redis_url={mask_url(self._url())!r}"
        return f"{where}, prefix={self.prefix!r}"

    def _url(self) -> str:
        assert self._target is not None
        return self._target.url

    async def close(self) -> None:
        """Close the connection pool; a later call opens a new one.

        With no call running, every connection is closed now. Calls still running are not
        disturbed: they finish on the pool, and the last of them closes it when it is done.
        """
        await self._transport.close()

    async def ping(self) -> dict[str, Any]:
        return await self._transport.describe()

    def pool_usage(self) -> PoolUsage | None:
        """This event loop's pool: connections held by calls, open and free, calls waiting.

        Open connections are counted as the most ever held at once (the pool opens one only
        when none is free, and keeps it); `None` before the first call.
        """
        return self._transport.usage()

    async def server_info(self) -> dict[str, dict[str, str]]:
        """The fields of `INFO memory` and `INFO stats`, by server, for the telemetry sampler.

        One server (standalone, or Sentinel's primary) under the key `""`; on a cluster every
        primary, under its `host:port`.

        Raises:
            AccessDeniedError: the server refuses `INFO` (an ACL without `+info`).
            BackendUnavailableError: the server cannot be reached.
        """
        from ...telemetry.redis_info import parse_info

        by_node = await self._transport.run_on_each_primary([("INFO", "memory"), ("INFO", "stats")])
        infos: dict[str, dict[str, str]] = {}
        for node, replies in by_node.items():
            fields = infos[node] = {}
            for reply in replies:
                fields.update(parse_info(reply.decode() if isinstance(reply, bytes) else reply))
        return infos

    async def write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        await self._execute(
            "SET", session_key(self.prefix, session_id), data, "EX", ttl_seconds, write=True
        )

    async def read(self, session_id: str) -> bytes | None:
        data: bytes | None = await self._execute("GET", session_key(self.prefix, session_id))
        return data

    async def remove(self, session_id: str) -> None:
        await self._execute("UNLINK", session_key(self.prefix, session_id), write=True)

    async def contains(self, session_id: str) -> bool:
        return bool(await self._execute("EXISTS", session_key(self.prefix, session_id)))

    async def write_if(self, session_id: str, data: bytes, ttl_seconds: int, version: str) -> bool:
        key = session_key(self.prefix, session_id)
        return bool(await self._script(scripts.WRITE_IF, key, version, data, ttl_seconds))

    async def remove_if(self, session_id: str, version: str) -> bool:
        return bool(
            await self._script(scripts.REMOVE_IF, session_key(self.prefix, session_id), version)
        )

    def last_seen(self, session_id: str) -> bytes | None:
        # What this store's last update of the session left: right whenever this process had
        # the previous turn, and then an update takes one round trip, not two.
        return self._recent.get(session_id)

    async def swap(
        self, session_id: str, previous: bytes | None, data: bytes | None, ttl_seconds: int
    ) -> tuple[bool, bytes | None]:
        reply = await self._script(
            scripts.SWAP,
            session_key(self.prefix, session_id),
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

    async def replace(self, session_id: str, data: bytes, version: str) -> bool:
        self._recent.pop(session_id, None)
        key = session_key(self.prefix, session_id)
        return bool(await self._script(scripts.REPLACE, key, version, data))

    async def move(self, old_id: str, new_id: str, data: bytes, version: str) -> str:
        self._recent.pop(old_id, None)
        if self._on_cluster():
            return "unsupported"
        keys = (session_key(self.prefix, old_id), session_key(self.prefix, new_id))
        reply = await self._execute(
            "EVAL", scripts.MOVE, 2, *keys, version, data, retry=False, write=True
        )
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    async def index_owner(self, owner: str, session_ids: list[str], ttl_seconds: int) -> None:
        await RedisOwnerIndex(self).index(owner, session_ids, ttl_seconds)

    async def confirm_owner(self, owner: str, session_ids: list[str], ttl_seconds: int) -> None:
        await RedisOwnerIndex(self).confirm(owner, session_ids, ttl_seconds)

    async def owned(self, owner: str) -> list[str]:
        return await RedisOwnerIndex(self).owned(owner)

    async def erase_owned(self, owner: str) -> list[str]:
        return await RedisOwnerIndex(self).erase(owner)

    def _on_cluster(self) -> bool:
        """Whether the store talks to a Redis Cluster (keys of one call may be on two nodes)."""
        from .transport import is_cluster

        return is_cluster(self._connection())

    async def read_and_touch(self, session_id: str, ttl_seconds: int) -> bytes | None:
        data: bytes | None = await self._execute(
            "GETEX", session_key(self.prefix, session_id), "EX", ttl_seconds, write=True
        )
        return data

    async def touch(self, session_id: str, ttl_seconds: int) -> bool:
        return bool(
            await self._execute(
                "EXPIRE", session_key(self.prefix, session_id), ttl_seconds, write=True
            )
        )

    async def remaining(self, session_id: str) -> int | None:
        milliseconds: int = await self._execute("PTTL", session_key(self.prefix, session_id))
        return None if milliseconds < 0 else -(-milliseconds // 1000)

    async def acquire_lease(self, session_id: str, token: str, milliseconds: int) -> bool:
        # Taking a lock one already holds succeeds, so this script can be retried safely.
        key = lock_key(self.prefix, session_id)
        return bool(
            await self._execute(
                "EVAL", scripts.ACQUIRE_LOCK, 1, key, token, milliseconds, write=True
            )
        )

    async def release_lease(self, session_id: str, token: str) -> bool:
        key = lock_key(self.prefix, session_id)
        return bool(await self._script(scripts.RELEASE_LOCK, key, token))

    async def extend_lease(self, session_id: str, token: str, milliseconds: int) -> bool:
        key = lock_key(self.prefix, session_id)
        return bool(await self._script(scripts.EXTEND_LOCK, key, token, milliseconds))

    async def read_many(self, session_ids: list[str]) -> list[bytes | None]:
        # GETs in a pipeline rather than MGET: MGET answers nil for a key of another type,
        # where GET (and so load) reports it as corrupted.
        return await self._run([("GET", session_key(self.prefix, i)) for i in session_ids])

    async def read_many_with_ttl(self, session_ids: list[str]) -> list[tuple[bytes, int] | None]:
        return _with_ttls(await self._run(_paired("GET", self.prefix, session_ids)))

    async def describe_many(self, session_ids: list[str]) -> list[SessionInfo | None]:
        replies = _with_ttls(await self._run(_paired("STRLEN", self.prefix, session_ids)))
        return [None if reply is None else SessionInfo(*reply) for reply in replies]

    async def write_many(self, items: list[tuple[str, bytes]], ttl_seconds: int) -> None:
        commands = [
            ("SET", session_key(self.prefix, session_id), data, "EX", ttl_seconds)
            for session_id, data in items
        ]
        await self._run(commands, write=True)

    async def remove_many(self, session_ids: list[str]) -> None:
        # One key per UNLINK: keys of a batch may live in different cluster slots.
        await self._run([("UNLINK", session_key(self.prefix, i)) for i in session_ids], write=True)

    async def _scan_keys(self) -> AsyncIterator[list[bytes]]:
        """Yield pages of this store's keys, sessions and locks, found with SCAN.

        SCAN may return a key twice when Redis resizes its table during the walk; such a repeat
        comes soon after the first sight, so the last `_SCAN_MEMORY` keys seen are remembered
        and not yielded again: bounded memory whatever the store's size.
        """
        recent: OrderedDict[bytes, None] = OrderedDict()
        async for page in self._transport.scan(scan_pattern(self.prefix), _BATCH):
            keys = [key for key in page if key not in recent]
            for key in keys:
                recent[key] = None
            while len(recent) > _SCAN_MEMORY:
                recent.popitem(last=False)
            if keys:
                yield keys

    async def scan(self) -> AsyncIterator[str]:
        start = len(self.prefix.encode())
        async for keys in self._scan_keys():
            for key in keys:
                session_id = session_id_of(key, start)
                if session_id is not None:
                    yield session_id

    async def clear(self) -> int:
        # Counts what UNLINK deleted: a key SCAN returned twice, or that vanished meanwhile,
        # is not counted twice, or at all.
        start = len(self.prefix.encode())
        count = 0
        async for keys in self._scan_keys():
            deleted = await self._run([("UNLINK", key) for key in keys], write=True)
            count += sum(
                bool(done)
                for key, done in zip(keys, deleted, strict=True)
                if session_id_of(key, start) is not None
            )
        return count

    def _connection(self) -> RedisClient:
        """Return the client, built on first use and again on a new event loop."""
        return self._transport.client()

    @property
    def _slots(self) -> asyncio.Semaphore:
        """The connection budget of this loop's pool (for tests that hold it)."""
        return self._transport.budget

    async def _execute(self, *command: Any, retry: bool = True, write: bool = False) -> Any:
        """Run one command; see `RedisTransport.run`."""
        return await self._transport.execute(*command, retry=retry, write=write)

    async def _run(
        self, commands: list[tuple[Any, ...]], *, retry: bool = True, write: bool = False
    ) -> list[Any]:
        """Run commands in one round trip; see `RedisTransport.run`."""
        return await self._transport.run(commands, retry=retry, write=write)

    async def _script(self, script: str, key: str, *args: Any) -> Any:
        # Sent once (see RedisTransport.run): a compare-and-set must not run twice.
        return await self._execute("EVAL", script, 1, key, *args, retry=False, write=True)


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
        key = session_key(prefix, session_id)
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
