"""The stores under test, each used the way its own users use it.

- valerie's `InMemorySessionStore` and `RedisSessionStore`, as an application would: `save` and
  `load` with the store's own codec (orjson when the `fast` extra is installed), every state
  validated and every load a fresh copy; and the Redis store with `pipelining=False`, the
  store as it was before automatic pipelining (issue 13's "today's store").
- A raw `redis.asyncio` client with its default pool: `SET key json.dumps(state) EX ttl` and
  `json.loads(GET key)`, the baseline of the Redis-backed contestants; and the same client with
  orjson, a reference that shows what a bare client gets from the encoder of valerie's `fast`
  extra (not a target).
- Litestar's `MemoryStore` and `RedisStore` (the memory one is the baseline of the memory-backed
  contestants), holding `litestar.serialization.encode_json(state)` and read back with
  `decode_json`: msgspec, which is how Litestar serializes, not the standard `json` module.
- aiocache's `RedisCache` with its default serializer, `JsonSerializer` (the standard `json`
  module, or `ujson` where installed), which is what its users get; and `SimpleMemoryCache` with
  the same `JsonSerializer`, not its default: the default (`NullSerializer`) hands back the stored
  object itself, so a load is no copy and changing the loaded state changes the stored one; no
  session store can work that way.

Peers run with their default settings but one: redis-py's default pool (which the raw client,
Litestar's `RedisStore` and aiocache's `RedisCache` all use) holds at most 100 connections and,
beyond, raises `MaxConnectionsError` ("Too many connections") instead of waiting, so with 256
tasks every call past the 100th in flight would fail. Those peers get the same pool with
`max_connections=256` (`PEER_POOL_SIZE`), which behaves exactly as the default below 100
connections in use. valerie's store runs with its defaults (64 calls at once, pipelined on at
most 8 connections; a call waits for a free slot). A peer whose package is not installed is
skipped, and the run says so; `make .venv-bench/.installed` installs them all.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
from redis.asyncio import Redis

from benchmarks.workload import TTL_SECONDS, State
from valerie.infrastructure.session_store import (
    EncodedSessionStore,
    InMemorySessionStore,
    RedisSessionStore,
)

RAW = "raw redis.asyncio + json"
RAW_ORJSON = "raw redis.asyncio + orjson"
VALERIE_REDIS = "valerie RedisSessionStore"
VALERIE_REDIS_UNPIPELINED = f"{VALERIE_REDIS}, pipelining off"
LITESTAR_REDIS = "litestar RedisStore"
AIOCACHE_REDIS = "aiocache RedisCache"
LITESTAR_MEMORY = "litestar MemoryStore"
VALERIE_MEMORY = "valerie InMemorySessionStore"
AIOCACHE_MEMORY = "aiocache SimpleMemoryCache"

PEER_POOL_SIZE = 256
"""Connections the redis-py pools of the peers may open: one per task at 256 tasks."""

BASELINES = {"redis": RAW, "memory": LITESTAR_MEMORY}
"""Per backend, the contestant every other one is compared with."""


class Contestant(ABC):
    """One store under test, seen through the two calls the benchmark makes.

    Args:
        name: Shown in the tables.
        backend: `"redis"` or `"memory"`: which baseline it is compared with.
    """

    def __init__(self, name: str, backend: str) -> None:
        self.name = name
        self.backend = backend

    @abstractmethod
    async def save(self, session_id: str, state: State) -> None:
        """Store `state` under `session_id` with the benchmark's TTL."""

    @abstractmethod
    async def load(self, session_id: str) -> State | None:
        """Return a fresh copy of the state stored under `session_id`."""

    async def close(self) -> None:  # noqa: B027 - memory stores have nothing to close
        """Release connections."""


class ValerieContestant(Contestant):
    """A valerie store, used exactly as an application would."""

    def __init__(self, name: str, backend: str, store: EncodedSessionStore) -> None:
        super().__init__(name, backend)
        self.store = store

    async def save(self, session_id: str, state: State) -> None:
        await self.store.save(session_id, state)

    async def load(self, session_id: str) -> State | None:
        return await self.store.load(session_id)

    async def close(self) -> None:
        await self.store.close()


class RawRedisContestant(Contestant):
    """A bare `redis.asyncio` client: `SET key dumps(state) EX ttl` and `loads(GET key)`."""

    def __init__(
        self,
        name: str,
        url: str,
        prefix: str,
        dumps: Callable[[State], str | bytes],
        loads: Callable[[bytes | str], Any],
    ) -> None:
        super().__init__(name, "redis")
        self.client = Redis.from_url(url, max_connections=PEER_POOL_SIZE)
        self.prefix = prefix
        self.dumps = dumps
        self.loads = loads

    async def save(self, session_id: str, state: State) -> None:
        await self.client.set(self.prefix + session_id, self.dumps(state), ex=TTL_SECONDS)

    async def load(self, session_id: str) -> State | None:
        data = await self.client.get(self.prefix + session_id)
        return None if data is None else cast(State, self.loads(data))

    async def close(self) -> None:
        await self.client.aclose()


class LitestarContestant(Contestant):
    """A Litestar store (`MemoryStore` or `RedisStore`) holding `encode_json(state)`."""

    def __init__(self, name: str, backend: str, store: Any, client: Redis | None = None) -> None:
        from litestar.serialization import decode_json, encode_json

        super().__init__(name, backend)
        self.store = store
        self.client = client
        self.encode = encode_json
        self.decode = decode_json

    async def save(self, session_id: str, state: State) -> None:
        await self.store.set(session_id, self.encode(state), expires_in=TTL_SECONDS)

    async def load(self, session_id: str) -> State | None:
        data = await self.store.get(session_id)
        return None if data is None else cast(State, self.decode(data))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class AiocacheContestant(Contestant):
    """An aiocache cache (`SimpleMemoryCache` or `RedisCache`) with its `JsonSerializer`."""

    def __init__(self, name: str, backend: str, cache: Any) -> None:
        super().__init__(name, backend)
        self.cache = cache

    async def save(self, session_id: str, state: State) -> None:
        await self.cache.set(session_id, state, ttl=TTL_SECONDS)

    async def load(self, session_id: str) -> State | None:
        return cast("State | None", await self.cache.get(session_id))

    async def close(self) -> None:
        client = getattr(self.cache, "client", None)
        if client is not None:
            # aiocache 0.12's own close() calls the deprecated Redis.close().
            await client.aclose()


# --- How each contestant is made ------------------------------------------------------------


def _valerie_redis(url: str) -> Contestant:
    store = RedisSessionStore(url, prefix="bench:valerie:", default_ttl=TTL_SECONDS)
    return ValerieContestant(VALERIE_REDIS, "redis", store)


def _valerie_redis_unpipelined(url: str) -> Contestant:
    store = RedisSessionStore(
        url, prefix="bench:unpipelined:", default_ttl=TTL_SECONDS, pipelining=False
    )
    return ValerieContestant(VALERIE_REDIS_UNPIPELINED, "redis", store)


def _valerie_memory(url: str) -> Contestant:
    return ValerieContestant(
        VALERIE_MEMORY, "memory", InMemorySessionStore(default_ttl=TTL_SECONDS)
    )


def _raw(url: str) -> Contestant:
    return RawRedisContestant(RAW, url, "bench:raw:", json.dumps, json.loads)


def _raw_orjson(url: str) -> Contestant:
    return RawRedisContestant(RAW_ORJSON, url, "bench:orjson:", orjson.dumps, orjson.loads)


def _litestar_redis(url: str) -> Contestant:
    from litestar.stores.redis import RedisStore

    client = Redis.from_url(url, max_connections=PEER_POOL_SIZE)
    store = RedisStore(client, namespace="bench_litestar")
    return LitestarContestant(LITESTAR_REDIS, "redis", store, client=client)


def _litestar_memory(url: str) -> Contestant:
    from litestar.stores.memory import MemoryStore

    return LitestarContestant(LITESTAR_MEMORY, "memory", MemoryStore())


def _aiocache_redis(url: str) -> Contestant:
    from aiocache import RedisCache

    address = urlsplit(url)
    cache = RedisCache(
        endpoint=address.hostname,
        port=address.port,
        namespace="bench_aiocache:",
        pool_max_size=PEER_POOL_SIZE,
    )
    return AiocacheContestant(AIOCACHE_REDIS, "redis", cache)


def _aiocache_memory(url: str) -> Contestant:
    from aiocache import SimpleMemoryCache
    from aiocache.serializers import JsonSerializer

    cache = SimpleMemoryCache(serializer=JsonSerializer())
    return AiocacheContestant(AIOCACHE_MEMORY, "memory", cache)


@dataclass(frozen=True)
class Spec:
    """How to make one contestant.

    Attributes:
        name: The contestant's name.
        backend: `"redis"` or `"memory"`.
        make: Makes a fresh contestant, given the private server's URL (memory ones ignore it).
        requires: The modules it needs beyond the dev environment's (the peers' packages).
    """

    name: str
    backend: str
    make: Callable[[str], Contestant]
    requires: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """The modules in `requires` that are not installed."""
        return [module for module in self.requires if importlib.util.find_spec(module) is None]


SPECS = (
    Spec(RAW, "redis", _raw),
    Spec(RAW_ORJSON, "redis", _raw_orjson),
    Spec(VALERIE_REDIS, "redis", _valerie_redis),
    Spec(VALERIE_REDIS_UNPIPELINED, "redis", _valerie_redis_unpipelined),
    Spec(LITESTAR_REDIS, "redis", _litestar_redis, ("litestar", "msgspec")),
    Spec(AIOCACHE_REDIS, "redis", _aiocache_redis, ("aiocache",)),
    Spec(LITESTAR_MEMORY, "memory", _litestar_memory, ("litestar", "msgspec")),
    Spec(VALERIE_MEMORY, "memory", _valerie_memory),
    Spec(AIOCACHE_MEMORY, "memory", _aiocache_memory, ("aiocache",)),
)


def installed(specs: Iterable[Spec]) -> tuple[list[Spec], list[str]]:
    """Split `specs` into those that can run here and a note for each one that cannot."""
    runnable, skipped = [], []
    for spec in specs:
        missing = spec.missing()
        if missing:
            skipped.append(
                f"{spec.name}: skipped, {' and '.join(missing)} not installed "
                "(`make .venv-bench/.installed` installs every peer)"
            )
        else:
            runnable.append(spec)
    return runnable, skipped


# --- What the benchmark calls ---------------------------------------------------------------


def operation(
    contestant: Contestant, kind: str, state: State
) -> Callable[[str], Awaitable[object]]:
    """Return the call that one operation of `kind` makes on one session id.

    `save` writes `state`; `load` reads; `turn` is a conversation turn: `load`, add 1 to the
    state's `turn`, `save` under the same id.
    """
    if kind == "save":

        async def save(session_id: str) -> None:
            await contestant.save(session_id, state)

        return save
    if kind == "load":
        return contestant.load
    if kind != "turn":
        raise ValueError(f"unknown operation {kind!r}: expected save, load or turn")

    async def turn(session_id: str) -> None:
        loaded = await contestant.load(session_id)
        assert loaded is not None, f"{contestant.name} lost session {session_id}"
        loaded["turn"] += 1
        await contestant.save(session_id, loaded)

    return turn


async def prepopulate(contestants: Iterable[Contestant], ids: Sequence[str], state: State) -> None:
    """Save `state` under every id in every contestant, so that loads find it."""
    for contestant in contestants:
        for start in range(0, len(ids), 64):
            batch = ids[start : start + 64]
            await asyncio.gather(*(contestant.save(session, state) for session in batch))


async def close_all(contestants: Iterable[Contestant]) -> None:
    """Close every contestant."""
    for contestant in contestants:
        await contestant.close()
