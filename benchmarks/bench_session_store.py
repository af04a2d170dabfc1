"""Throughput, scaling and memory of valerie's session stores, against raw redis-py and peers.

Run with `make bench` (or `python benchmarks/bench_session_store.py [--quick] [--json PATH]`).
It starts its own `redis-server` on a free loopback port (never 6379) and measures, in one run:

1. Throughput in ops/s of `save`, `load` and a conversation turn (`load`, then `save` of the
   same id) at concurrency 1 and 64 (asyncio tasks, each looping over its own session ids), for
   valerie's `InMemorySessionStore` and `RedisSessionStore`, a raw `redis.asyncio` client
   (`SET key json.dumps(state) EX ttl` / `json.loads(GET key)`), Litestar's `MemoryStore` and
   `RedisStore`, and aiocache's `SimpleMemoryCache` and `RedisCache`. Every peer serializes
   with the standard library's `json`, so that, like valerie, it returns a fresh copy on load.
   Peers run with their default settings.
2. Scaling of `InMemorySessionStore`: microseconds per `save` of a new session when 1k, 10k
   and 100k sessions are already stored.
3. Memory that `InMemorySessionStore` holds per session (tracemalloc: the JSON bytes, the id
   string, the dict and expiry-bucket entries, everything), against the state's JSON size.
4. `update` of valerie's two stores against their own plain `save`, at 1 and 64 tasks, with a
   function that adds 1 to the state's `turn`: on each task's own sessions ("distinct"), and
   with every task on one shared session ("hot", where the optimistic retries show). After
   the rounds, the counters held by the sessions are checked against the updates done.
5. Batches: `load_many` and `save_many` of 100 sessions against 100 single `load` or `save`
   calls awaited one after the other, by one task, on valerie's two stores.
6. Cluster: valerie's `RedisSessionStore` through a 3-primary Redis Cluster (started by the
   script, on loopback, no replicas) against the same store on the private standalone server:
   `save`, `load` and a turn at 1 and 64 tasks, with the same state and the same UUID ids,
   whose keys spread over every slot and so over every primary.

The machine is assumed noisy (a 2-core VM whose speed swings by tens of percent): every round
gives each contestant the same time per (operation, concurrency) cell, cut into short pieces
that the contestants take in turns, in an order rotated every piece. How to read the table:

- `ops/s` is the median over rounds; `spread` is (max - min) / median over rounds: it shows
  the machine's noise more than the contestant's.
- `ratio` is the median over rounds of the ratio to the baseline measured in the same round
  (paired, so a slow round slows both sides). Redis-backed contestants are compared with the
  raw `redis.asyncio` client using `json`; memory-backed ones with Litestar's `MemoryStore`.
- The `+ orjson` raw client is a reference, not a target: it shows what a bare client gets
  from the faster encoder that valerie's `fast` extra uses.
- In the update and batch sections, the ratio is paired the same way, with the same store's
  `save` (updates) or its 100 single calls (batches) as the baseline; in the cluster section,
  with the store on the standalone server. Those sections run their own rounds, after the
  throughput section.

The run ends with the targets, each marked PASS or MISS with its figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import itertools
import json
import linecache
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
from redis.asyncio import Redis

from valerie.infrastructure.session_store import (
    EncodedSessionStore,
    InMemorySessionStore,
    RedisSessionStore,
    SessionState,
    SessionStore,
    StateCodec,
    VersionConflictError,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# E402: importable once ROOT is on sys.path.
from tests.redis_deployments import ClusterDeployment  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

TTL_SECONDS = 3600
SESSION_COUNT = 1024
CONCURRENCIES = (1, 64)
OPERATIONS = ("save", "load", "turn")
SCALING_SIZES = (1_000, 10_000, 100_000)
UPDATE_OPERATIONS = ("save", "update distinct", "update hot")
BATCH_SIZE = 100
LOADS = f"{BATCH_SIZE} loads"
SAVES = f"{BATCH_SIZE} saves"
BATCH_PAIRS = (("load_many", LOADS), ("save_many", SAVES))  # (one batch call, its single calls)

RAW = "raw redis.asyncio + json"
RAW_ORJSON = "raw redis.asyncio + orjson"
LITESTAR_MEMORY = "litestar MemoryStore"
VALERIE_MEMORY = "valerie InMemorySessionStore"
VALERIE_REDIS = "valerie RedisSessionStore"
LITESTAR_REDIS = "litestar RedisStore"
STANDALONE = "valerie RedisSessionStore, standalone"
CLUSTER = "valerie RedisSessionStore, cluster"
CLUSTER_PRIMARIES = 3

State = dict[str, Any]
Operation = Callable[[str], Awaitable[object]]
Cell = tuple[str, str, int]  # (contestant, operation, concurrency)
Batch = dict[str, State]  # session id -> the state that save_many or the single saves write
Item = TypeVar("Item")  # what a timed call receives: a session id, or a batch
Key = TypeVar("Key")
PieceRunner = Callable[[float], Awaitable[tuple[int, float]]]
"""Calls something for the given seconds; returns the number of calls and the seconds taken."""
RoundRunner = Callable[[float, int, int], Awaitable[dict[Cell, float]]]
"""Runs one round with (slice seconds, pieces, round number); returns ops/s per cell."""


@dataclass(frozen=True)
class Mode:
    """How long each part of the benchmark runs."""

    rounds: int
    slice_seconds: float
    pieces: int
    warmup_seconds: float
    scaling_repetitions: int
    scaling_batch: int
    memory_sessions: int
    update_slice_seconds: float
    batch_slice_seconds: float


FULL = Mode(
    rounds=9,
    slice_seconds=0.4,
    pieces=4,
    warmup_seconds=0.05,
    scaling_repetitions=5,
    scaling_batch=2_000,
    memory_sessions=20_000,
    update_slice_seconds=0.6,
    batch_slice_seconds=0.4,
)
QUICK = Mode(
    rounds=2,
    slice_seconds=0.05,
    pieces=1,
    warmup_seconds=0.01,
    scaling_repetitions=1,
    scaling_batch=500,
    memory_sessions=20_000,
    update_slice_seconds=0.05,
    batch_slice_seconds=0.05,
)


# --- The state and the ids ------------------------------------------------------------------


def make_state() -> State:
    """Return a realistic chatbot state of about 2 KB of JSON.

    A delivery-rescheduling conversation: ids, the dialogue step and intent, twelve messages
    with role, content and timestamp, and a context holding a float, bools, None and a list.
    """
    lines = [
        ("user", "Hi, my parcel was supposed to arrive today but nobody came."),
        ("assistant", "Sorry to hear that. Could you give me your order number?"),
        ("user", "Sure, it's A-10293847."),
        ("assistant", "Thanks. I can see the courier tried at 10:42 and left a card."),
        ("user", "I was home all morning and the doorbell never rang, this is the second time."),
        ("assistant", "I'm sorry about that. Would you like to book a new delivery slot?"),
        ("user", "Yes please, ideally Thursday or Friday, I work from home on those days."),
        ("assistant", "Thursday 10:00-12:00 or Friday 14:00-16:00 are free. Which one suits you?"),
        ("user", "Friday afternoon works."),
        ("assistant", "Done: Friday 14:00-16:00. Shall I text you a reminder the day before?"),
        ("user", "Yes, same number as on the order."),
        ("assistant", "Great, you'll get a text on Thursday evening. Anything else I can do?"),
    ]
    messages = [
        {"role": role, "content": content, "timestamp": f"2024-05-14T09:{31 + i:02d}:0{i % 10}Z"}
        for i, (role, content) in enumerate(lines)
    ]
    return {
        "user_id": "u-5f3a9c2e-8b1d-4e7a-9c3f-2d6b8a1e4f70",
        "step": "confirm_reminder",
        "intent": "reschedule_delivery",
        "turn": 12,
        "locale": "en-GB",
        "timezone": "Europe/London",
        "messages": messages,
        "context": {
            "order_id": "A-10293847",
            "address": "Flat 3, 27 Harbour Street, Leith, Edinburgh EH6 6QW",
            "channel": "whatsapp",
            "confidence": 0.8731,
            "sentiment": -0.42,
            "reason": "missed_delivery_attempt",
            "authenticated": True,
            "escalated": False,
            "agent_id": None,
            "slots_offered": ["2024-05-16T10:00", "2024-05-17T14:00"],
            "slot_chosen": "2024-05-17T14:00",
            "reminder": {"channel": "sms", "opt_in": True},
        },
    }


def session_id(number: int) -> str:
    """Return the `number`th session id: a UUID, as many bots use."""
    return str(uuid.UUID(int=number, version=4))


# --- Contestants ----------------------------------------------------------------------------


class Contestant(ABC):
    """One store under test, seen through the two calls the benchmark makes.

    Args:
        name: Shown in the table.
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

    def __init__(self, name: str, backend: str, store: SessionStore) -> None:
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
        self.client = Redis.from_url(url)
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
    """A Litestar store (`MemoryStore` or `RedisStore`) holding `json.dumps` of the state."""

    def __init__(self, name: str, backend: str, store: Any, client: Redis | None = None) -> None:
        super().__init__(name, backend)
        self.store = store
        self.client = client

    async def save(self, session_id: str, state: State) -> None:
        await self.store.set(session_id, json.dumps(state), expires_in=TTL_SECONDS)

    async def load(self, session_id: str) -> State | None:
        data = await self.store.get(session_id)
        return None if data is None else cast(State, json.loads(data))

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


def open_contestants(redis_url: str, redis_port: int) -> list[Contestant]:
    """Create every contestant; Redis-backed ones each get their own key prefix.

    Args:
        redis_url: The private server's URL.
        redis_port: Its port, for aiocache, which takes an endpoint and a port.
    """
    from aiocache import RedisCache, SimpleMemoryCache
    from aiocache.serializers import JsonSerializer
    from litestar.stores.memory import MemoryStore
    from litestar.stores.redis import RedisStore

    litestar_client = Redis.from_url(redis_url)
    return [
        RawRedisContestant(RAW, redis_url, "bench:raw:", json.dumps, json.loads),
        RawRedisContestant(RAW_ORJSON, redis_url, "bench:orjson:", orjson.dumps, orjson.loads),
        ValerieContestant(
            VALERIE_REDIS,
            "redis",
            RedisSessionStore(redis_url, prefix="bench:valerie:", default_ttl=TTL_SECONDS),
        ),
        LitestarContestant(
            LITESTAR_REDIS,
            "redis",
            RedisStore(litestar_client, namespace="bench_litestar"),
            client=litestar_client,
        ),
        AiocacheContestant(
            "aiocache RedisCache",
            "redis",
            RedisCache(
                endpoint="127.0.0.1",
                port=redis_port,
                namespace="bench_aiocache:",
                serializer=JsonSerializer(),
            ),
        ),
        LitestarContestant(LITESTAR_MEMORY, "memory", MemoryStore()),
        ValerieContestant(VALERIE_MEMORY, "memory", InMemorySessionStore(default_ttl=TTL_SECONDS)),
        AiocacheContestant(
            "aiocache SimpleMemoryCache", "memory", SimpleMemoryCache(serializer=JsonSerializer())
        ),
    ]


# --- Throughput -----------------------------------------------------------------------------


def operation(contestant: Contestant, kind: str, state: State) -> Operation:
    """Return the call that one benchmark operation of `kind` makes on one session id."""
    if kind == "save":

        async def save(session_id: str) -> None:
            await contestant.save(session_id, state)

        return save
    if kind == "load":
        return contestant.load

    async def turn(session_id: str) -> None:
        loaded = await contestant.load(session_id)
        assert loaded is not None, f"{contestant.name} lost session {session_id}"
        loaded["turn"] += 1
        await contestant.save(session_id, loaded)

    return turn


async def worker(
    call: Callable[[Item], Awaitable[object]], items: Sequence[Item], deadline: float
) -> int:
    """Call `call` on `items`, cycling, until `deadline`; return the number of calls."""
    for done, item in enumerate(itertools.cycle(items), start=1):
        await call(item)
        # Checked after every call: with 64 tasks, a task waits for all the others between two
        # of its calls, and a coarser check would leave a long tail with fewer tasks running.
        if time.perf_counter() >= deadline:
            return done
    raise AssertionError("unreachable: itertools.cycle never ends")


async def timed_calls(
    call: Callable[[Item], Awaitable[object]], items: Sequence[Item], tasks: int, seconds: float
) -> tuple[int, float]:
    """Run `tasks` workers for `seconds`, worker `i` on `items[i::tasks]`.

    Args:
        call: What each worker calls, on one item at a time.
        items: Session ids (or batches of them); each worker cycles over its own share.
        tasks: How many workers run concurrently.
        seconds: How long they run; a call under way at the deadline is finished and counted.

    Returns:
        The number of calls made and the seconds they took.
    """
    start = time.perf_counter()
    deadline = start + seconds
    counts = await asyncio.gather(
        *(worker(call, items[task::tasks], deadline) for task in range(tasks))
    )
    return sum(counts), time.perf_counter() - start


async def interleaved_rates(
    runners: Mapping[Key, PieceRunner], slice_seconds: float, pieces: int, number: int
) -> dict[Key, float]:
    """Give every runner `slice_seconds` cut into `pieces`, taken in turns; return calls/s.

    The order of the turns is rotated every piece (and every round, by the round `number`), so
    that noise on the machine, slow or sudden, hits all of them alike.
    """
    keys = list(runners)
    calls = dict.fromkeys(keys, 0)
    seconds = dict.fromkeys(keys, 0.0)
    gc.collect()
    for piece in range(pieces):
        shift = (number + piece) % len(keys)
        for key in [*keys[shift:], *keys[:shift]]:
            count, elapsed = await runners[key](slice_seconds / pieces)
            calls[key] += count
            seconds[key] += elapsed
    return {key: calls[key] / seconds[key] for key in keys}


async def prepopulate(contestants: Iterable[Contestant], ids: Sequence[str], state: State) -> None:
    """Save `state` under every id in every contestant, so that loads find it."""
    for contestant in contestants:
        for start in range(0, len(ids), 64):
            batch = ids[start : start + 64]
            await asyncio.gather(*(contestant.save(session, state) for session in batch))


async def run_round(
    contestants: Sequence[Contestant],
    ids: Sequence[str],
    state: State,
    slice_seconds: float,
    pieces: int,
    number: int,
) -> dict[Cell, float]:
    """Measure every contestant for `slice_seconds` per operation and concurrency.

    For each (operation, concurrency), the slice is cut into `pieces` pieces and the
    contestants take turns piece by piece (`interleaved_rates`).
    """
    results: dict[Cell, float] = {}
    for kind in OPERATIONS:
        for tasks in CONCURRENCIES:
            runners = {
                contestant.name: partial(
                    timed_calls, operation(contestant, kind, state), ids, tasks
                )
                for contestant in contestants
            }
            rates = await interleaved_rates(runners, slice_seconds, pieces, number)
            results.update({(name, kind, tasks): rate for name, rate in rates.items()})
    return results


async def measure_throughput(
    contestants: Sequence[Contestant], redis_url: str, mode: Mode, state: State
) -> dict[Cell, list[float]]:
    """Run a warm-up round and `mode.rounds` measured rounds; return ops/s per cell per round.

    Between rounds the private server at `redis_url` is flushed and every store filled again.
    """
    admin = Redis.from_url(redis_url)
    ids = [session_id(number) for number in range(SESSION_COUNT)]
    samples: dict[Cell, list[float]] = {}
    try:
        # Warm-up: opens every connection pool to its full size and fills the stores.
        await prepopulate(contestants, ids, state)
        await run_round(contestants, ids, state, mode.warmup_seconds, 1, 0)
        for number in range(mode.rounds):
            await admin.flushall()
            await prepopulate(contestants, ids, state)
            started = time.perf_counter()
            results = await run_round(
                contestants, ids, state, mode.slice_seconds, mode.pieces, number
            )
            for cell, rate in results.items():
                samples.setdefault(cell, []).append(rate)
            print(
                f"  round {number + 1}/{mode.rounds} done in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
    finally:
        await admin.aclose()
    return samples


@dataclass
class Row:
    """One line of the throughput table."""

    contestant: str
    backend: str
    operation: str
    concurrency: int
    median_ops: float
    spread_percent: float
    baseline: str
    ratio: float
    ratio_low: float
    ratio_high: float
    rounds: list[float]


def paired_ratios(samples: dict[Cell, list[float]], cell: Cell, baseline: Cell) -> list[float]:
    """Return, round by round, the ops/s of `cell` divided by those of `baseline`."""
    pairs = zip(samples[cell], samples[baseline], strict=True)
    return [mine / theirs for mine, theirs in pairs]


def round_ratios(
    samples: dict[Cell, list[float]], name: str, other: str, kind: str, tasks: int
) -> list[float]:
    """Return, round by round, `name`'s ops/s divided by `other`'s."""
    return paired_ratios(samples, (name, kind, tasks), (other, kind, tasks))


def spread_percent(rates: Sequence[float]) -> float:
    """Return (max - min) / median of `rates`, in percent."""
    return 100 * (max(rates) - min(rates)) / statistics.median(rates)


def summarize(samples: dict[Cell, list[float]], backends: dict[str, str]) -> list[Row]:
    """Turn per-round samples into table rows with medians, spreads and paired ratios."""
    baselines = {"redis": RAW, "memory": LITESTAR_MEMORY}
    rows = []
    for (name, kind, tasks), rates in samples.items():
        backend = backends[name]
        ratios = round_ratios(samples, name, baselines[backend], kind, tasks)
        median = statistics.median(rates)
        rows.append(
            Row(
                contestant=name,
                backend=backend,
                operation=kind,
                concurrency=tasks,
                median_ops=median,
                spread_percent=spread_percent(rates),
                baseline=baselines[backend],
                ratio=statistics.median(ratios),
                ratio_low=min(ratios),
                ratio_high=max(ratios),
                rounds=rates,
            )
        )
    return rows


def print_throughput(rows: Sequence[Row], mode: Mode) -> None:
    """Print the throughput table, Redis-backed contestants first, then memory-backed ones."""
    print(
        f"\n== Throughput: ops/s, median of {mode.rounds} rounds; each round gives every "
        f"contestant {mode.slice_seconds:g} s per cell in {mode.pieces} interleaved pieces"
    )
    print(
        "   spread = (max-min)/median of ops/s over rounds; ratio = median over rounds of the "
        "ratio to the baseline measured in the same round, with its (min-max)"
    )
    titles = {
        "redis": f"Redis-backed: ratio vs {RAW}",
        "memory": f"Memory-backed: ratio vs {LITESTAR_MEMORY}",
    }
    for backend, title in titles.items():
        print(f"\n{title}")
        print(
            f"  {'contestant':<30} {'op':<5} {'tasks':>5} {'ops/s':>10} {'spread':>7} "
            f"{'ratio':>7} {'(min-max)':>12}"
        )
        for kind in OPERATIONS:
            for tasks in CONCURRENCIES:
                for row in rows:
                    if (row.backend, row.operation, row.concurrency) == (backend, kind, tasks):
                        print(
                            f"  {row.contestant:<30} {kind:<5} {tasks:>5} {row.median_ops:>10,.0f}"
                            f" {row.spread_percent:>6.0f}% {row.ratio:>6.2f}x"
                            f"  ({row.ratio_low:.2f}-{row.ratio_high:.2f})"
                        )
                print()


# --- Update, against plain save -------------------------------------------------------------


def open_valerie_stores(redis_url: str) -> dict[str, EncodedSessionStore]:
    """Create the valerie stores that the update and batch sections measure, by name."""
    return {
        VALERIE_MEMORY: InMemorySessionStore(default_ttl=TTL_SECONDS),
        VALERIE_REDIS: RedisSessionStore(redis_url, prefix="bench:calls:", default_ttl=TTL_SECONDS),
    }


def lane_ids(kind: str, tasks: int) -> list[str]:
    """Return the ids that the tasks of an update-section operation cycle over.

    `save` and `update distinct` have `SESSION_COUNT` ids each, split between the tasks as in
    the throughput section; `update hot` repeats one id, so that every task gets that one.
    """
    if kind == "update hot":
        return [session_id(2 * SESSION_COUNT)] * tasks
    first = SESSION_COUNT if kind == "update distinct" else 0
    return [session_id(number) for number in range(first, first + SESSION_COUNT)]


@dataclass
class Tally:
    """How many updates of one operation returned, and how many gave up on conflicts."""

    done: int = 0
    gave_up: int = 0


def next_turn(state: SessionState | None) -> SessionState:
    """The update under test: add 1 to the state's `turn` counter."""
    assert state is not None, "an updated session has disappeared"
    state["turn"] += 1
    return state


def update_operation(
    store: EncodedSessionStore, kind: str, state: State, tally: Tally
) -> Operation:
    """Return the call that one update-section operation of `kind` makes on one session id."""
    if kind == "save":

        async def save(session_id: str) -> None:
            await store.save(session_id, state)

        return save

    async def update(session_id: str) -> None:
        try:
            await store.update(session_id, next_turn)
        except VersionConflictError:
            tally.gave_up += 1
        else:
            tally.done += 1

    return update


async def prepare_updates(store: EncodedSessionStore, state: State) -> None:
    """Save every session of the update section with its `turn` counter at 0."""
    ids = {session for kind in UPDATE_OPERATIONS for session in lane_ids(kind, 1)}
    await store.save_many({session: {**state, "turn": 0} for session in ids})


async def run_update_round(
    stores: Mapping[str, EncodedSessionStore],
    tallies: Mapping[Cell, Tally],
    state: State,
    slice_seconds: float,
    pieces: int,
    number: int,
) -> dict[Cell, float]:
    """Measure `save` and both shapes of `update`, interleaved, per store and concurrency."""
    results: dict[Cell, float] = {}
    for name, store in stores.items():
        for tasks in CONCURRENCIES:
            runners = {
                kind: partial(
                    timed_calls,
                    update_operation(store, kind, state, tallies[name, kind, tasks]),
                    lane_ids(kind, tasks),
                    tasks,
                )
                for kind in UPDATE_OPERATIONS
            }
            rates = await interleaved_rates(runners, slice_seconds, pieces, number)
            results.update({(name, kind, tasks): rate for kind, rate in rates.items()})
    return results


@dataclass
class CounterCheck:
    """The increments that an update operation's sessions hold, against the updates done."""

    store: str
    operation: str
    counted: int
    done: int
    gave_up: int

    @property
    def exact(self) -> bool:
        """Whether every update that returned is in the counters, and nothing else is."""
        return self.counted == self.done


async def check_counters(
    stores: Mapping[str, EncodedSessionStore], tallies: Mapping[Cell, Tally]
) -> list[CounterCheck]:
    """Compare the `turn` counters of each update operation's sessions with its tallies."""
    checks = []
    for name, store in stores.items():
        for kind in UPDATE_OPERATIONS[1:]:
            states = await store.load_many(set(lane_ids(kind, 1)))
            counted = sum(state["turn"] for state in states.values() if state is not None)
            cells = [tallies[name, kind, tasks] for tasks in CONCURRENCIES]
            done = sum(tally.done for tally in cells)
            gave_up = sum(tally.gave_up for tally in cells)
            checks.append(CounterCheck(name, kind, counted, done, gave_up))
    return checks


def print_updates(
    samples: dict[Cell, list[float]], checks: Sequence[CounterCheck], mode: Mode
) -> None:
    """Print update throughput with its ratio to the same store's `save`, then the counters."""
    print(
        f"\n== Update: ops/s, median of {mode.rounds} rounds; each round gives every operation "
        f"{mode.update_slice_seconds:g} s per cell in {mode.pieces} interleaved pieces"
    )
    print(
        "   ratio = median over rounds of the ratio to the same store's save at the same "
        "concurrency, measured in the same round, with its (min-max)"
    )
    print(
        f"  {'store':<30} {'op':<16} {'tasks':>5} {'ops/s':>10} {'spread':>7} "
        f"{'ratio':>7} {'(min-max)':>12}"
    )
    for name in (VALERIE_REDIS, VALERIE_MEMORY):
        for tasks in CONCURRENCIES:
            for kind in UPDATE_OPERATIONS:
                rates = samples[name, kind, tasks]
                ratios = paired_ratios(samples, (name, kind, tasks), (name, "save", tasks))
                print(
                    f"  {name:<30} {kind:<16} {tasks:>5} {statistics.median(rates):>10,.0f}"
                    f" {spread_percent(rates):>6.0f}% {statistics.median(ratios):>6.2f}x"
                    f"  ({min(ratios):.2f}-{max(ratios):.2f})"
                )
            print()
    print("  Counters: the sum of the sessions' `turn` (each update adds 1) against the updates")
    print("  that returned, over the warm-up and every round")
    for check in checks:
        verdict = "match" if check.exact else "MISMATCH"
        print(
            f"  {check.store:<30} {check.operation:<16} {check.counted:>10,} counted, "
            f"{check.done:>10,} updates done: {verdict}"
            f"{f' ({check.gave_up:,} gave up after conflicts)' if check.gave_up else ''}"
        )


# --- Batches, against single calls ---------------------------------------------------------


def make_batches(state: State) -> list[Batch]:
    """Return the batches of `BATCH_SIZE` sessions that the batch section cycles over."""
    count = SESSION_COUNT // BATCH_SIZE
    return [
        {session_id(number): state for number in range(first, first + BATCH_SIZE)}
        for first in range(0, count * BATCH_SIZE, BATCH_SIZE)
    ]


def batch_operation(store: EncodedSessionStore, kind: str) -> Callable[[Batch], Awaitable[object]]:
    """Return the call that one batch operation of `kind` makes on one batch of sessions."""
    if kind == "load_many":
        return store.load_many
    if kind == "save_many":
        return store.save_many
    if kind == LOADS:

        async def loads(batch: Batch) -> None:
            for session in batch:
                await store.load(session)

        return loads

    async def saves(batch: Batch) -> None:
        for session, state in batch.items():
            await store.save(session, state)

    return saves


async def prepare_batches(stores: Iterable[EncodedSessionStore], batches: Sequence[Batch]) -> None:
    """Save every session of the batches, and check that `load_many` finds them all."""
    for store in stores:
        for batch in batches:
            await store.save_many(batch)
            found = await store.load_many(batch)
            assert found == batch, f"{store!r}: load_many did not return what save_many wrote"


async def run_batch_round(
    stores: Mapping[str, EncodedSessionStore],
    batches: Sequence[Batch],
    slice_seconds: float,
    pieces: int,
    number: int,
) -> dict[Cell, float]:
    """Measure each batch call and its single calls, interleaved, in batches per second."""
    results: dict[Cell, float] = {}
    for name, store in stores.items():
        for pair in BATCH_PAIRS:
            runners = {
                kind: partial(timed_calls, batch_operation(store, kind), batches, 1)
                for kind in pair
            }
            rates = await interleaved_rates(runners, slice_seconds, pieces, number)
            results.update({(name, kind, 1): rate for kind, rate in rates.items()})
    return results


def print_batches(samples: dict[Cell, list[float]], mode: Mode) -> None:
    """Print the time per batch of each batch call and of its single calls, and the speedup."""
    print(
        f"\n== Batches of {BATCH_SIZE}: µs per batch, one task, median of {mode.rounds} rounds; "
        f"each round gives every call {mode.batch_slice_seconds:g} s in {mode.pieces} "
        "interleaved pieces"
    )
    print(
        f"   speedup = median over rounds of the time of {BATCH_SIZE} single calls (awaited one "
        "after the other) over one batch call's, measured in the same round, with its (min-max)"
    )
    print(
        f"  {'store':<30} {'batch call':<12} {'µs':>8} {'spread':>7}   {'single calls':<12}"
        f" {'µs':>8} {'spread':>7} {'speedup':>8} {'(min-max)':>12}"
    )
    for name in (VALERIE_REDIS, VALERIE_MEMORY):
        for batch, singles in BATCH_PAIRS:
            speedups = paired_ratios(samples, (name, batch, 1), (name, singles, 1))
            cells = []
            for kind in (batch, singles):
                rates = samples[name, kind, 1]
                cells.append(
                    f"{kind:<12} {1e6 / statistics.median(rates):>8,.0f}"
                    f" {spread_percent(rates):>6.0f}%"
                )
            print(
                f"  {name:<30} {'   '.join(cells)} {statistics.median(speedups):>7.1f}x"
                f"  ({min(speedups):.1f}-{max(speedups):.1f})"
            )


# --- Rounds of the update and batch sections ------------------------------------------------


async def measure_rounds(
    run_one: RoundRunner, mode: Mode, slice_seconds: float, section: str
) -> dict[Cell, list[float]]:
    """Run a warm-up round and `mode.rounds` measured rounds; return ops/s per cell per round."""
    await run_one(mode.warmup_seconds, 1, 0)
    samples: dict[Cell, list[float]] = {}
    for number in range(mode.rounds):
        started = time.perf_counter()
        for cell, rate in (await run_one(slice_seconds, mode.pieces, number)).items():
            samples.setdefault(cell, []).append(rate)
        print(
            f"  {section} round {number + 1}/{mode.rounds} done in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return samples


@dataclass
class CallFigures:
    """What the update and batch sections measured."""

    updates: dict[Cell, list[float]]
    counters: list[CounterCheck]
    batches: dict[Cell, list[float]]


async def measure_calls(redis_url: str, mode: Mode, state: State) -> CallFigures:
    """Measure `update` against `save`, then batches against single calls, on valerie's stores."""
    stores = open_valerie_stores(redis_url)
    tallies = {
        (name, kind, tasks): Tally()
        for name in stores
        for kind in UPDATE_OPERATIONS
        for tasks in CONCURRENCIES
    }
    batches = make_batches(state)
    try:
        for store in stores.values():
            await prepare_updates(store, state)
        updates = await measure_rounds(
            partial(run_update_round, stores, tallies, state),
            mode,
            mode.update_slice_seconds,
            "update",
        )
        counters = await check_counters(stores, tallies)
        await prepare_batches(stores.values(), batches)
        batch_samples = await measure_rounds(
            partial(run_batch_round, stores, batches), mode, mode.batch_slice_seconds, "batch"
        )
    finally:
        for store in stores.values():
            await store.close()
    return CallFigures(updates, counters, batch_samples)


# --- Cluster, against standalone ------------------------------------------------------------


@dataclass
class ClusterFigures:
    """What the cluster section measured."""

    samples: dict[Cell, list[float]]
    keys_per_primary: list[int]


async def count_keys(cluster: ClusterDeployment) -> list[int]:
    """Return how many keys each primary of `cluster` holds, in port order."""
    counts = []
    for node in sorted(cluster.primaries, key=lambda node: node.port):
        client = Redis.from_url(node.url)
        try:
            counts.append(await client.dbsize())
        finally:
            await client.aclose()
    return counts


async def measure_cluster(
    server_url: str, cluster: ClusterDeployment, mode: Mode, state: State
) -> ClusterFigures:
    """Measure valerie's Redis store through `cluster` and on the server at `server_url`.

    Both stores use the same prefix and the same `SESSION_COUNT` UUID ids, filled once before
    the warm-up; the operations only overwrite them, so nothing is flushed between rounds.
    """
    contestants = [
        ValerieContestant(
            name,
            "redis",
            RedisSessionStore(url, prefix="bench:topology:", default_ttl=TTL_SECONDS),
        )
        for name, url in ((STANDALONE, server_url), (CLUSTER, cluster.url))
    ]
    ids = [session_id(number) for number in range(SESSION_COUNT)]
    try:
        await prepopulate(contestants, ids, state)
        keys = await count_keys(cluster)
        samples = await measure_rounds(
            partial(run_round, contestants, ids, state), mode, mode.slice_seconds, "cluster"
        )
    finally:
        for contestant in contestants:
            await contestant.close()
    return ClusterFigures(samples, keys)


def print_cluster(figures: ClusterFigures, mode: Mode) -> None:
    """Print the store's ops/s on the standalone server and through the cluster, and the ratio."""
    print(
        f"\n== Cluster: {VALERIE_REDIS} through a {CLUSTER_PRIMARIES}-primary Redis Cluster "
        f"against the standalone server, ops/s, median of {mode.rounds} rounds; each round "
        f"gives each store {mode.slice_seconds:g} s per cell in {mode.pieces} interleaved pieces"
    )
    print(
        "   ratio = median over rounds of cluster / standalone measured in the same round, "
        "with its (min-max)"
    )
    print(
        f"   keys per primary: {', '.join(f'{count:,}' for count in figures.keys_per_primary)}"
        f" (of {SESSION_COUNT:,} ids)"
    )
    print(
        f"  {'op':<5} {'tasks':>5} {'standalone':>11} {'spread':>7} {'cluster':>11} {'spread':>7}"
        f" {'ratio':>7} {'(min-max)':>12}"
    )
    samples = figures.samples
    for kind in OPERATIONS:
        for tasks in CONCURRENCIES:
            cells = []
            for name in (STANDALONE, CLUSTER):
                rates = samples[name, kind, tasks]
                cells.append(f"{statistics.median(rates):>11,.0f} {spread_percent(rates):>6.0f}%")
            ratios = round_ratios(samples, CLUSTER, STANDALONE, kind, tasks)
            print(
                f"  {kind:<5} {tasks:>5} {' '.join(cells)} {statistics.median(ratios):>6.2f}x"
                f"  ({min(ratios):.2f}-{max(ratios):.2f})"
            )


# --- Scaling of the memory store ------------------------------------------------------------


async def save_cost(store_size: int, batch: int, state: State) -> float:
    """Return µs per `save` of a new session into a memory store holding `store_size` sessions."""
    store = InMemorySessionStore(default_ttl=TTL_SECONDS)
    for number in range(store_size):
        await store.save(session_id(number), state)
    new_ids = [session_id(store_size + number) for number in range(batch)]
    gc.collect()
    start = time.perf_counter()
    for session in new_ids:
        await store.save(session, state)
    elapsed = time.perf_counter() - start
    del store
    gc.collect()
    return elapsed / batch * 1e6


async def measure_scaling(mode: Mode, state: State) -> dict[int, list[float]]:
    """Return µs per `save` of a new session for each store size, sizes rotated per repetition."""
    costs: dict[int, list[float]] = {size: [] for size in SCALING_SIZES}
    for repetition in range(mode.scaling_repetitions):
        shift = repetition % len(SCALING_SIZES)
        for size in (*SCALING_SIZES[shift:], *SCALING_SIZES[:shift]):
            costs[size].append(await save_cost(size, mode.scaling_batch, state))
    return costs


def print_scaling(costs: dict[int, list[float]], mode: Mode) -> float:
    """Print the scaling table and return the ratio of the largest size's cost to the smallest's."""
    print(
        f"\n== Memory store scaling: µs per save of a NEW session (batch of {mode.scaling_batch:,},"
        f" median of {mode.scaling_repetitions})"
    )
    for size, values in costs.items():
        print(
            f"  {size:>9,} live sessions: {statistics.median(values):6.2f} µs"
            f"   (all: {', '.join(f'{value:.2f}' for value in values)})"
        )
    ratio = statistics.median(costs[SCALING_SIZES[-1]]) / statistics.median(costs[SCALING_SIZES[0]])
    print(f"  ratio {SCALING_SIZES[-1]:,} / {SCALING_SIZES[0]:,}: {ratio:.2f}")
    return ratio


# --- Memory per session ---------------------------------------------------------------------


@dataclass
class MemoryFigures:
    """What `InMemorySessionStore` holds per session, from a tracemalloc snapshot diff."""

    sessions: int
    json_bytes: int
    bytes_per_session: float
    ratio_to_json: float
    top_lines: list[tuple[str, float]]


def describe_line(frame: tracemalloc.Frame) -> str:
    """Return `file:line  source` for a frame of a tracemalloc traceback."""
    source = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{Path(frame.filename).name}:{frame.lineno}  {source}"


async def measure_memory(count: int, state: State) -> MemoryFigures:
    """Save `count` sessions into a fresh memory store and count every byte allocated.

    The count includes the store itself, the id strings (made inside the measured window) and
    every entry of its dicts and sets; it excludes tracemalloc's own bookkeeping.
    """
    json_bytes = len(StateCodec().encode(state))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    store = InMemorySessionStore(default_ttl=TTL_SECONDS)
    for number in range(count):
        await store.save(session_id(number), state)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert await store.exists(session_id(count - 1))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    total = sum(stat.size_diff for stat in stats)
    top = [(describe_line(stat.traceback[0]), stat.size_diff / count) for stat in stats[:5]]
    return MemoryFigures(
        sessions=count,
        json_bytes=json_bytes,
        bytes_per_session=total / count,
        ratio_to_json=total / count / json_bytes,
        top_lines=top,
    )


def print_memory(figures: MemoryFigures) -> None:
    """Print bytes held per session and where they were allocated."""
    print(f"\n== Memory held by InMemorySessionStore ({figures.sessions:,} sessions, tracemalloc)")
    print(
        f"  {figures.bytes_per_session:,.0f} bytes per session for {figures.json_bytes:,} bytes "
        f"of JSON: {figures.ratio_to_json:.3f}x"
    )
    for where, size in figures.top_lines:
        print(f"    {size:8.1f} B/session at {where}")


# --- Targets --------------------------------------------------------------------------------


@dataclass
class Target:
    """A goal, its measured figure and whether the figure meets it."""

    description: str
    figure: float
    goal: str
    met: bool
    detail: str = ""


def ratio_target(
    samples: dict[Cell, list[float]],
    pair: tuple[str, str],
    label: str,
    cell: tuple[str, int],
    goal: float,
) -> Target:
    """Return the target that `pair[0]` runs at least `goal` times as fast as `pair[1]`.

    Args:
        samples: Per-round ops/s of every cell.
        pair: The contestant and the one it is compared with.
        label: How the target names the pair.
        cell: The operation and the concurrency.
        goal: The lowest ratio that meets the target.
    """
    kind, tasks = cell
    name, other = pair
    description = f"{label}, {kind}, {task_count(tasks)}"
    return paired_target(samples, (name, kind, tasks), (other, kind, tasks), description, goal)


def paired_target(
    samples: dict[Cell, list[float]], cell: Cell, baseline: Cell, description: str, goal: float
) -> Target:
    """Return the target that `cell` runs at least `goal` times as fast as `baseline`."""
    ratios = paired_ratios(samples, cell, baseline)
    ratio = statistics.median(ratios)
    return Target(
        description=description,
        figure=ratio,
        goal=f">= {goal:.2f}x",
        met=ratio >= goal,
        detail=f"rounds {min(ratios):.2f}-{max(ratios):.2f}",
    )


def task_count(tasks: int) -> str:
    """Return `1 task` or `64 tasks`."""
    return f"{tasks} task{'s' if tasks > 1 else ''}"


def evaluate_targets(
    samples: dict[Cell, list[float]], scaling_ratio: float, memory: MemoryFigures
) -> list[Target]:
    """Check every figure against its target."""
    cells = [(kind, tasks) for kind in OPERATIONS for tasks in CONCURRENCIES]
    raw = (VALERIE_REDIS, RAW)
    litestar_redis = (VALERIE_REDIS, LITESTAR_REDIS)
    litestar_memory = (VALERIE_MEMORY, LITESTAR_MEMORY)
    targets = [
        ratio_target(samples, raw, "Redis store / raw redis.asyncio", cell, 1.1) for cell in cells
    ]
    targets += [
        ratio_target(samples, litestar_redis, "Redis store / Litestar RedisStore", cell, 1.0)
        for cell in cells
    ]
    targets += [
        ratio_target(samples, litestar_memory, "Memory store / Litestar MemoryStore", cell, 3.0)
        for cell in cells
        if cell[0] in ("save", "load")
    ]
    targets.append(
        Target(
            f"Memory store save cost, {SCALING_SIZES[-1]:,} / {SCALING_SIZES[0]:,} sessions",
            scaling_ratio,
            "<= 1.50x",
            scaling_ratio <= 1.5,
        )
    )
    targets.append(
        Target(
            "Memory store bytes held per session / JSON size",
            memory.ratio_to_json,
            "<= 1.15x",
            memory.ratio_to_json <= 1.15,
            f"{memory.bytes_per_session:,.0f} / {memory.json_bytes:,} bytes",
        )
    )
    return targets


def call_targets(figures: CallFigures) -> list[Target]:
    """Check the update and batch figures against their targets.

    Updates on distinct sessions must reach half the throughput of `save` on both stores; a
    batch must beat its single calls 5x on Redis; every update must be in the counters. Hot
    sessions and memory batches are informational.
    """
    labels = {VALERIE_REDIS: "Redis store", VALERIE_MEMORY: "Memory store"}
    targets = [
        paired_target(
            figures.updates,
            (name, "update distinct", tasks),
            (name, "save", tasks),
            f"{label} update distinct / save, {task_count(tasks)}",
            0.5,
        )
        for name, label in labels.items()
        for tasks in CONCURRENCIES
    ]
    targets += [
        paired_target(
            figures.batches,
            (VALERIE_REDIS, batch, 1),
            (VALERIE_REDIS, singles, 1),
            f"Redis store {batch} speedup over {singles}",
            5.0,
        )
        for batch, singles in BATCH_PAIRS
    ]
    for name, label in labels.items():
        checks = [check for check in figures.counters if check.store == name]
        counted = sum(check.counted for check in checks)
        done = sum(check.done for check in checks)
        targets.append(
            Target(
                f"{label} update: counters / updates done",
                counted / done,
                "== 1.00x",
                all(check.exact for check in checks),
                ", ".join(
                    f"{check.operation.removeprefix('update ')} {check.counted:,} / {check.done:,}"
                    for check in checks
                ),
            )
        )
    return targets


def cluster_targets(figures: ClusterFigures) -> list[Target]:
    """Check that the Redis store keeps 0.8x its standalone throughput through the cluster."""
    tasks = CONCURRENCIES[-1]
    return [
        paired_target(
            figures.samples,
            (CLUSTER, kind, tasks),
            (STANDALONE, kind, tasks),
            f"Redis store cluster / standalone, {kind}, {task_count(tasks)}",
            0.8,
        )
        for kind in OPERATIONS
    ]


def print_targets(targets: Sequence[Target]) -> None:
    """Print each target as PASS or MISS with its figure."""
    print("\n== Targets")
    for target in targets:
        verdict = "PASS" if target.met else "MISS"
        print(
            f"  {verdict}  {target.description:<52} {target.figure:5.2f}x  "
            f"(target {target.goal}{'; ' + target.detail if target.detail else ''})"
        )
    missed = sum(not target.met for target in targets)
    print(f"\n  {len(targets) - missed} of {len(targets)} targets met")


# --- Main -----------------------------------------------------------------------------------


def environment(server: RedisServer, state: State, mode_name: str) -> dict[str, str]:
    """Describe the versions, machine and state this run used."""
    server_version = subprocess.run(
        [server.executable, "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[2]
    return {
        "mode": mode_name,
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
        "redis-server": server_version.removeprefix("v="),
        "redis-py": version("redis"),
        "orjson": version("orjson"),
        "litestar": version("litestar"),
        "aiocache": version("aiocache"),
        "valerie codec": StateCodec().name,
        "state JSON, compact (valerie)": f"{len(StateCodec().encode(state))} bytes",
        "state JSON, json.dumps (peers)": f"{len(json.dumps(state).encode())} bytes",
        "session id": f"{len(session_id(0))} chars, e.g. {session_id(0)}",
        "session ids per contestant": f"{SESSION_COUNT:,}, split evenly between its tasks",
        "update and batch sections": (
            f"{SESSION_COUNT:,} ids per operation (hot update: 1), batches of {BATCH_SIZE}"
        ),
        "cluster section": f"{CLUSTER_PRIMARIES} primaries, no replicas, {SESSION_COUNT:,} ids",
    }


def cells_json(samples: dict[Cell, list[float]]) -> list[dict[str, Any]]:
    """Return per-round ops/s of every cell in a form JSON can hold."""
    return [
        {"store": name, "operation": kind, "concurrency": tasks, "rounds": rates}
        for (name, kind, tasks), rates in samples.items()
    ]


async def run(arguments: argparse.Namespace) -> int:
    """Run every part of the benchmark and print (and optionally write) the results."""
    mode = QUICK if arguments.quick else FULL
    state = make_state()
    with RedisServer() as server:
        env = environment(server, state, "quick" if arguments.quick else "full")
        print("== valerie session store benchmark")
        for key, value in env.items():
            print(f"  {key:<32} {value}")
        contestants = open_contestants(server.url, server.port)
        try:
            samples = await measure_throughput(contestants, server.url, mode, state)
        finally:
            for contestant in contestants:
                await contestant.close()
        calls = await measure_calls(server.url, mode, state)
        with ClusterDeployment(primaries=CLUSTER_PRIMARIES) as cluster:
            topology = await measure_cluster(server.url, cluster, mode, state)
    rows = summarize(samples, {contestant.name: contestant.backend for contestant in contestants})
    print_throughput(rows, mode)
    print_updates(calls.updates, calls.counters, mode)
    print_batches(calls.batches, mode)
    print_cluster(topology, mode)
    scaling = await measure_scaling(mode, state)
    scaling_ratio = print_scaling(scaling, mode)
    memory = await measure_memory(mode.memory_sessions, state)
    print_memory(memory)
    targets = [
        *evaluate_targets(samples, scaling_ratio, memory),
        *call_targets(calls),
        *cluster_targets(topology),
    ]
    print_targets(targets)
    if arguments.json is not None:
        report = {
            "environment": env,
            "throughput": [asdict(row) for row in rows],
            "scaling_us_per_save": {str(size): values for size, values in scaling.items()},
            "scaling_ratio": scaling_ratio,
            "memory": asdict(memory),
            "updates_ops_per_second": cells_json(calls.updates),
            "update_counters": [asdict(check) for check in calls.counters],
            "batches_per_second": cells_json(calls.batches),
            "cluster_ops_per_second": cells_json(topology.samples),
            "cluster_keys_per_primary": topology.keys_per_primary,
            "targets": [asdict(target) for target in targets],
        }
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nResults written to {arguments.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the benchmark.

    Returns:
        The process exit code: 0, whether or not the targets are met.
    """
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Progress goes to stderr: line buffering keeps the two in order when piped.
        sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke test of under 30 s")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
