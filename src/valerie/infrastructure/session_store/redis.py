"""Sessions in Redis: one string key per session holding the state's JSON, with a native TTL.

`redis` (redis-py) is an optional dependency: this module imports it only when a store is
created, so `import valerie.infrastructure` works without it.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from .base import DEFAULT_TTL_SECONDS, EncodedSessionStore
from .errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    MissingDependencyError,
)
from .urls import check_redis_url, mask_url
from .validation import TTL, check_prefix

if TYPE_CHECKING:
    from redis.asyncio import Redis

DEFAULT_REDIS_URL = "redis://localhost:6379"
DEFAULT_PREFIX = "valerie:session:"


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
        redis_url: `redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS, or
            `unix:///path/to.sock`; query parameters are passed to redis-py and win over the
            arguments below.
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
        "_slots",
        "max_connections",
        "prefix",
        "redis_url",
        "retries",
        "timeout",
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
    ) -> None:
        _require_redis()
        super().__init__(default_ttl)
        self.redis_url = check_redis_url(redis_url)
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
        self._client: Redis | None = None
        self._slots = asyncio.Semaphore(max_connections)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(redis_url={mask_url(self.redis_url)!r}, "
            f"prefix={self.prefix!r}, default_ttl={self.default_ttl})"
        )

    async def close(self) -> None:
        """Close the connection pool; a later call opens a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        await self._execute("SET", self.prefix + session_id, data, "EX", ttl_seconds)

    async def _read(self, session_id: str) -> bytes | None:
        data: bytes | None = await self._execute("GET", self.prefix + session_id)
        return data

    async def _remove(self, session_id: str) -> None:
        await self._execute("UNLINK", self.prefix + session_id)

    async def _contains(self, session_id: str) -> bool:
        return bool(await self._execute("EXISTS", self.prefix + session_id))

    def _connection(self) -> Redis:
        client = self._client
        if client is None:
            from redis.asyncio import ConnectionPool, Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import ExponentialWithJitterBackoff

            # A plain pool: `_slots` already keeps the connections in use at max_connections,
            # and is cheaper than redis-py's BlockingConnectionPool, which pays for a Condition
            # and a timer on every command.
            pool = ConnectionPool.from_url(
                self.redis_url,
                max_connections=self.max_connections,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), self.retries),
            )
            client = self._client = Redis.from_pool(pool)
        return client

    async def _execute(self, *command: Any) -> Any:
        """Run one command on a free connection, turning redis-py's errors into ours."""
        client = self._connection()
        if self._slots.locked():
            # Every connection is busy: wait for one, but no longer than a command may take.
            try:
                await asyncio.wait_for(self._slots.acquire(), self.timeout)
            except asyncio.TimeoutError:
                raise BackendUnavailableError(
                    f"all {self.max_connections} connections to Redis at "
                    f"{mask_url(self.redis_url)} stayed busy for {self.timeout:g}s; raise "
                    "max_connections, or check why the server is slow"
                ) from None
        else:
            await self._slots.acquire()
        try:
            return await client.execute_command(*command)  # type: ignore[no-untyped-call]
        except Exception as error:
            translated = self._translate(error, command[0])
            if translated is error:
                raise
            raise translated from error
        finally:
            self._slots.release()

    def _translate(self, error: Exception, command: str) -> Exception:
        from redis.exceptions import ConnectionError, RedisError, ResponseError, TimeoutError

        where = f"Redis at {mask_url(self.redis_url)}"
        if isinstance(error, (ConnectionError, TimeoutError, OSError)):
            return BackendUnavailableError(
                f"{where} is unavailable ({type(error).__name__}: {error}) after "
                f"{self.retries + 1} attempt(s) of at most {self.timeout:g}s; check that the "
                "server is running and reachable, and the URL (VALERIE_SESSION_REDIS_URL)"
            )
        if isinstance(error, ResponseError) and str(error).startswith("WRONGTYPE"):
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
