"""`RedisSessionStore`: the store core over a `RedisBackend`, with the backend's settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...codec import Codec
from ...contract import DEFAULT_TTL_SECONDS
from ...encryption import Encryption
from ...instrumentation import Observer
from ...store import EncodedSessionStore
from ...transforms import Transform
from ...validation import TTL
from .backend import DEFAULT_PREFIX, RedisBackend

if TYPE_CHECKING:
    from .topology import RedisClient


class RedisSessionStore(EncodedSessionStore):
    """Sessions in Redis, shared by every process that uses the same URL and prefix.

    A session is the string key `prefix + session_id` holding the state as compact UTF-8 JSON
    (with the default codec and no transforms), written with its expiry in the same command
    (`SET key value EX ttl`), so a service in any language can `GET` and parse it. One
    connection pool per store, opened on first use and closed by `close()`; after a close, the
    next call opens a new one. Every call is bounded in time; see `RedisBackend` for the
    connection arguments (`redis_url`, `prefix`, `timeout`, `retries`, `max_connections`,
    `client`, `update_cache_size`, `min_replicas`, `replica_timeout`, `pipelining`) and what
    they promise.

    Args:
        redis_url: Where Redis is; see `RedisBackend`.
        prefix: Starts every key of this store; stores with different prefixes never meet,
            unless one prefix starts the other (its scans then include the other's keys).
        default_ttl: The TTL used when `save` is called without one.
        codec: Turns states into bytes; default: strict JSON (`StateCodec`).
        transforms: Byte transforms between codec and Redis, e.g. `[Compression()]`.
        observers: Receive an event per public call, and per wait for a pooled connection.
        encryption: Seal every value with AES-256-GCM (see `Encryption`); without it a value
            is the plain JSON any client can read.
        max_state_bytes: Refuse, before writing, a state whose encoding is larger.

    Raises:
        MissingDependencyError: redis-py is not installed.
        ConfigurationError: An argument is not allowed; the message says which and why.
    """

    __slots__ = ("_redis",)

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
        pipelining: bool = True,
        codec: Codec | None = None,
        transforms: Sequence[Transform] = (),
        observers: Sequence[Observer] = (),
        encryption: Encryption | None = None,
        max_state_bytes: int | None = None,
    ) -> None:
        self._redis = RedisBackend(
            redis_url,
            prefix,
            timeout=timeout,
            retries=retries,
            max_connections=max_connections,
            client=client,
            update_cache_size=update_cache_size,
            min_replicas=min_replicas,
            replica_timeout=replica_timeout,
            pipelining=pipelining,
        )
        super().__init__(
            self._redis,
            default_ttl=default_ttl,
            codec=codec,
            transforms=transforms,
            observers=observers,
            encryption=encryption,
            max_state_bytes=max_state_bytes,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._redis.describe()}, default_ttl={self.default_ttl})"

    @property
    def backend(self) -> RedisBackend:
        """The Redis backend that keeps this store's bytes."""
        return self._redis

    @property
    def redis_url(self) -> str | None:
        """The URL with its credentials masked (`***`); `None` for a store given a client."""
        return self._redis.redis_url

    @property
    def prefix(self) -> str:
        """The prefix of every key of this store."""
        return self._redis.prefix

    @property
    def timeout(self) -> float:
        """Seconds a connection attempt or a command may take."""
        return self._redis.timeout

    @property
    def retries(self) -> int:
        """Further attempts after a connection error or timeout."""
        return self._redis.retries

    @property
    def max_connections(self) -> int:
        """Connections this store opens at most."""
        return self._redis.max_connections

    @property
    def min_replicas(self) -> int:
        """Replicas each write waits for (Redis `WAIT`)."""
        return self._redis.min_replicas

    @property
    def replica_timeout(self) -> float:
        """Seconds `min_replicas` waits."""
        return self._redis.replica_timeout

    @property
    def pipelining(self) -> bool:
        """Whether concurrent calls share pipelines (automatic pipelining)."""
        return self._redis.pipelining

    @property
    def update_cache_size(self) -> int:
        """Sessions whose last bytes `update` remembers."""
        return self._redis.update_cache_size
