"""Sessions in this process's memory: for development, tests and single-process bots."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from heapq import heappop, heappush
from itertools import islice
from typing import Any, Generic, TypeVar

from ..backend import CompareAndSet, ExpiryControl, Leases, Owners, Relocation, Scans
from ..codec import Codec
from ..contract import DEFAULT_TTL_SECONDS
from ..encryption import Encryption
from ..errors import ConfigurationError
from ..instrumentation import Observer
from ..store import EncodedSessionStore
from ..transforms import Transform
from ..validation import TTL, describe
from ..versions import version_of

_SWEEP_BUDGET = 8
"""Expired sessions (or leases) released per call at most, so no call pays for a backlog."""

_Entry = tuple[bytes, float]  # (the state's JSON, the clock reading at which it expires)
_Held = tuple[str, float]  # (the lease holder's token, the clock reading at which it expires)
_Value = TypeVar("_Value")


class _Deadlines(Generic[_Value]):
    """Finds the expired entries of a table without scanning it.

    Each key sits in the bucket of the whole second in which its entry expires; a heap holds
    the buckets' seconds, so the next ones to empty are found in O(log buckets).
    """

    __slots__ = ("buckets", "heap", "table")

    def __init__(self, table: dict[str, _Value]) -> None:
        self.table = table
        self.buckets: dict[int, set[str]] = {}
        self.heap: list[int] = []

    def add(self, key: str, deadline: float) -> None:
        second = int(deadline)
        bucket = self.buckets.get(second)
        if bucket is None:
            bucket = self.buckets[second] = set()
            heappush(self.heap, second)
        bucket.add(key)

    def discard(self, key: str, deadline: float) -> None:
        # An emptied bucket stays until its second comes up, so that each second is in the
        # heap once, however often keys come and go within it.
        self.buckets[int(deadline)].discard(key)

    def move(self, key: str, old: float, new: float) -> None:
        if int(old) != int(new):
            self.discard(key, old)
            self.add(key, new)

    def sweep(self, now: float) -> None:
        """Drop up to `_SWEEP_BUDGET` entries or empty buckets whose whole second has passed."""
        heap = self.heap
        budget = _SWEEP_BUDGET
        while budget and heap and heap[0] + 1 <= now:
            bucket = self.buckets[heap[0]]
            while bucket and budget:
                del self.table[bucket.pop()]
                budget -= 1
            if not bucket:
                del self.buckets[heappop(heap)]
                budget -= 1

    def clear(self) -> None:
        self.table.clear()
        self.buckets.clear()
        self.heap.clear()


class MemoryBackend(CompareAndSet, ExpiryControl, Leases, Scans, Relocation, Owners):
    """Sessions kept as bytes in a dict, with exact expiry and optional LRU eviction.

    Safe for any number of tasks on one event loop: no method awaits while it changes the
    backend, so each call is atomic. Every call frees up to a few sessions (and every lease
    call a few leases) whose deadline has passed, found through per-second buckets, so no call
    costs more than O(1) amortized however many are stored.

    Args:
        max_sessions: When set, writing a new session into a full backend evicts the least
            recently used one (writes and reads count as use; `contains` does not).
        clock: Seconds on a monotonic clock; tests pass a fake one.

    Raises:
        ConfigurationError: `max_sessions` is not a positive int or None, or `clock` is not
            callable.
    """

    name = "memory"

    __slots__ = (
        "_clock",
        "_entries",
        "_expiry",
        "_lock_expiry",
        "_locks",
        "_owner_of",
        "_owners",
        "_recency",
        "max_sessions",
    )

    def __init__(
        self,
        *,
        max_sessions: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions is not None and (type(max_sessions) is not int or max_sessions < 1):
            raise ConfigurationError(
                f"max_sessions must be a positive int or None, got {describe(max_sessions)}; "
                "pass e.g. max_sessions=10_000, or None for no limit"
            )
        if not callable(clock):
            raise ConfigurationError(
                f"clock must be a function returning seconds, got {describe(clock)}; "
                "pass e.g. clock=time.monotonic (the default)"
            )
        self.max_sessions = max_sessions
        self._clock = clock
        # An OrderedDict only when evicting: it moves and pops its oldest entry in O(1).
        self._recency: OrderedDict[str, _Entry] | None = (
            None if max_sessions is None else OrderedDict()
        )
        self._entries: dict[str, _Entry] = {} if self._recency is None else self._recency
        self._expiry = _Deadlines(self._entries)
        # Session id -> (holder's token, deadline); leases nobody released expire like sessions.
        self._locks: dict[str, _Held] = {}
        self._lock_expiry = _Deadlines(self._locks)
        # Owner -> session id -> deadline, oldest first. No call awaits between indexing and
        # writing a session, so here the index is exact: erasure takes it whole.
        self._owners: dict[str, dict[str, float]] = {}
        # Session id -> the owner its last owned write named: a session written for a new owner
        # is no longer listed or erased for the previous one, whose entry stays until pruned.
        self._owner_of: dict[str, str] = {}

    async def write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        self._put(session_id, data, ttl_seconds)

    def _put(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        now = self._clock()
        self._put_until(session_id, data, now + ttl_seconds, now)

    def _put_until(self, session_id: str, data: bytes, deadline: float, now: float) -> None:
        self._expiry.sweep(now)
        old = self._entries.get(session_id)
        # Copied to an exact-size object: orjson's bytes keep up to twice their length spare.
        self._entries[session_id] = (bytes(memoryview(data)), deadline)
        if old is None:
            self._expiry.add(session_id, deadline)
            if self.max_sessions is not None and len(self._entries) > self.max_sessions:
                self._make_room(now)
        else:
            self._expiry.move(session_id, old[1], deadline)
            if self._recency is not None:
                self._recency.move_to_end(session_id)

    async def read(self, session_id: str) -> bytes | None:
        entry = self._live_entry(session_id)
        if entry is None:
            return None
        if self._recency is not None:
            self._recency.move_to_end(session_id)
        return entry[0]

    async def remove(self, session_id: str) -> None:
        self._expiry.sweep(self._clock())
        entry = self._entries.pop(session_id, None)
        if entry is not None:
            self._expiry.discard(session_id, entry[1])

    async def contains(self, session_id: str) -> bool:
        return self._live_entry(session_id) is not None

    # No method below awaits between its check and its write: that is what makes each atomic.

    async def write_if(self, session_id: str, data: bytes, ttl_seconds: int, version: str) -> bool:
        entry = self._live_entry(session_id)
        if version_of(None if entry is None else entry[0]) != version:
            return False
        self._put(session_id, data, ttl_seconds)
        return True

    async def swap(
        self, session_id: str, previous: bytes | None, data: bytes | None, ttl_seconds: int
    ) -> tuple[bool, bytes | None]:
        entry = self._live_entry(session_id)
        current = None if entry is None else entry[0]
        # `is` first: unchanged, the entry still holds the very object update read.
        if current is not previous and current != previous:
            return False, current
        if data is None:
            await self.remove(session_id)
        else:
            self._put(session_id, data, ttl_seconds)
        return True, None

    async def remove_if(self, session_id: str, version: str) -> bool:
        entry = self._live_entry(session_id)
        if entry is None:
            return True
        if version_of(entry[0]) != version:
            return False
        await self.remove(session_id)
        return True

    async def replace(self, session_id: str, data: bytes, version: str) -> bool:
        entry = self._live_entry(session_id)
        if entry is None or version_of(entry[0]) != version:
            return False
        self._entries[session_id] = (bytes(memoryview(data)), entry[1])
        return True

    async def move(self, old_id: str, new_id: str, data: bytes, version: str) -> str:
        entry = self._live_entry(old_id)
        if entry is None:
            return "missing"
        if version_of(entry[0]) != version:
            return "changed"
        if self._live_entry(new_id) is not None:
            return "exists"
        await self.remove(old_id)
        self._put_until(new_id, data, entry[1], self._clock())
        return "moved"

    async def read_and_touch(self, session_id: str, ttl_seconds: int) -> bytes | None:
        entry = self._live_entry(session_id)
        if entry is None:
            return None
        self._put(session_id, entry[0], ttl_seconds)
        return entry[0]

    async def touch(self, session_id: str, ttl_seconds: int) -> bool:
        return await self.read_and_touch(session_id, ttl_seconds) is not None

    async def remaining(self, session_id: str) -> int | None:
        entry = self._live_entry(session_id)
        return None if entry is None else math.ceil(entry[1] - self._clock())

    async def read_many_with_ttl(self, session_ids: list[str]) -> list[tuple[bytes, int] | None]:
        found: list[tuple[bytes, int] | None] = []
        for session_id in session_ids:
            entry = self._live_entry(session_id)
            if entry is None:
                found.append(None)
            else:
                # Rounded up, as Redis's PTTL does not reach 0 for a live key either.
                found.append((entry[0], math.ceil((entry[1] - self._clock()) * 1000)))
        return found

    async def acquire_lease(self, session_id: str, token: str, milliseconds: int) -> bool:
        now = self._clock()
        self._lock_expiry.sweep(now)
        held = self._locks.get(session_id)
        if held is not None and held[1] > now and held[0] != token:
            return False
        self._hold(session_id, token, now + milliseconds / 1000, held)
        return True

    async def release_lease(self, session_id: str, token: str) -> bool:
        held = self._live_lease(session_id, token)
        if held is None:
            return False
        del self._locks[session_id]
        self._lock_expiry.discard(session_id, held[1])
        return True

    async def extend_lease(self, session_id: str, token: str, milliseconds: int) -> bool:
        held = self._live_lease(session_id, token)
        if held is None:
            return False
        self._hold(session_id, token, self._clock() + milliseconds / 1000, held)
        return True

    def _live_lease(self, session_id: str, token: str) -> _Held | None:
        """Return the session's lease if `token` holds it and it has not expired."""
        now = self._clock()
        self._lock_expiry.sweep(now)
        held = self._locks.get(session_id)
        return held if held is not None and held[0] == token and held[1] > now else None

    def _hold(self, session_id: str, token: str, deadline: float, held: _Held | None) -> None:
        self._locks[session_id] = (token, deadline)
        if held is None:
            self._lock_expiry.add(session_id, deadline)
        else:
            self._lock_expiry.move(session_id, held[1], deadline)

    async def ping(self) -> dict[str, Any]:
        return {"topology": "memory", "sessions": len(self._entries)}

    async def scan(self) -> AsyncIterator[str]:
        for session_id in list(self._entries):
            if self._live_entry(session_id) is not None:
                yield session_id

    async def clear(self) -> int:
        now = self._clock()
        count = sum(1 for _, deadline in self._entries.values() if deadline > now)
        self._expiry.clear()
        self._lock_expiry.clear()
        self._owners.clear()
        self._owner_of.clear()
        return count

    async def index_owner(self, owner: str, session_ids: list[str], ttl_seconds: int) -> None:
        now = self._clock()
        entries = self._owners.setdefault(owner, {})
        for session_id in session_ids:
            entries.pop(session_id, None)  # re-inserted last: the dict stays in deadline order
            entries[session_id] = now + ttl_seconds
            self._owner_of[session_id] = owner
        for other, deadline in list(islice(entries.items(), _SWEEP_BUDGET)):
            if deadline <= now and self._live_entry(other) is None:
                self._forget(owner, other)

    async def confirm_owner(self, owner: str, session_ids: list[str], ttl_seconds: int) -> None:
        entries = self._owners.setdefault(owner, {})
        for session_id in session_ids:
            if session_id not in entries:
                entries[session_id] = self._clock() + ttl_seconds
            self._owner_of.setdefault(session_id, owner)

    async def owned(self, owner: str) -> list[str]:
        entries = self._owners.get(owner)
        if entries is None:
            return []
        for session_id in list(entries):
            if not self._live_entry(session_id):
                self._forget(owner, session_id)
        return [sid for sid in entries if self._owner_of.get(sid, owner) == owner]

    async def erase_owned(self, owner: str) -> list[str]:
        entries = self._owners.pop(owner, {})
        erased = [
            session_id
            for session_id in entries
            if self._owner_of.get(session_id, owner) == owner and self._live_entry(session_id)
        ]
        for session_id in erased:
            await self.remove(session_id)
        for session_id in entries:
            if self._owner_of.get(session_id) == owner:
                del self._owner_of[session_id]
        return erased

    def _forget(self, owner: str, session_id: str) -> None:
        """Drop a dead session's entry from `owner`'s index, and its owner if it was `owner`."""
        entries = self._owners[owner]
        del entries[session_id]
        if not entries:
            del self._owners[owner]
        if self._owner_of.get(session_id) == owner:
            del self._owner_of[session_id]

    def _live_entry(self, session_id: str) -> _Entry | None:
        """Return the session's entry, dropping it instead if it has expired."""
        now = self._clock()
        self._expiry.sweep(now)
        entry = self._entries.get(session_id)
        if entry is not None and entry[1] <= now:
            del self._entries[session_id]
            self._expiry.discard(session_id, entry[1])
            return None
        return entry

    def _make_room(self, now: float) -> None:
        """Free one place, preferring a session already expired to the least recently used.

        Expired sessions of the current second are not swept yet; a few of them are checked.
        """
        assert self._recency is not None
        expiry = self._expiry
        if expiry.heap and expiry.heap[0] <= now:
            for session_id in islice(expiry.buckets[expiry.heap[0]], _SWEEP_BUDGET):
                deadline = self._entries[session_id][1]
                if deadline <= now:
                    del self._entries[session_id]
                    expiry.discard(session_id, deadline)
                    return
        session_id, (_, deadline) = self._recency.popitem(last=False)
        expiry.discard(session_id, deadline)


class InMemorySessionStore(EncodedSessionStore):
    """Sessions in this process's memory (a `MemoryBackend`), a loaded state always a fresh copy.

    Behaves like `RedisSessionStore` in every respect the contract covers, but lives and dies
    with the process. Expiry is exact: `load` and `exists` never see an expired session, nor a
    lease holder its expired lease, and memory is released without any call from you.

    Args:
        default_ttl: The TTL used when `save` is called without one.
        max_sessions: When set, saving a new session into a full store evicts the least
            recently used one (`save` and `load` count as use; `exists` does not).
        clock: Seconds on a monotonic clock; tests pass a fake one.
        codec: Turns states into bytes; default: strict JSON (`StateCodec`).
        transforms: Byte transforms between codec and storage, e.g. `[Compression()]`.
        observers: Receive an event per public call (see `instrumentation`).
        encryption: Seal every stored value (see `Encryption`).
        max_state_bytes: Refuse, before writing, a state whose encoding is larger.

    Raises:
        ConfigurationError: `max_sessions` is not a positive int or None, or `clock` is not
            callable.
        InvalidTTLError: `default_ttl` is not a valid TTL.
    """

    __slots__ = ("_memory",)

    def __init__(
        self,
        default_ttl: TTL = DEFAULT_TTL_SECONDS,
        *,
        max_sessions: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        codec: Codec | None = None,
        transforms: Sequence[Transform] = (),
        observers: Sequence[Observer] = (),
        encryption: Encryption | None = None,
        max_state_bytes: int | None = None,
    ) -> None:
        self._memory = MemoryBackend(max_sessions=max_sessions, clock=clock)
        super().__init__(
            self._memory,
            default_ttl=default_ttl,
            codec=codec,
            transforms=transforms,
            observers=observers,
            encryption=encryption,
            max_state_bytes=max_state_bytes,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(sessions={len(self._memory._entries)}, "
            f"default_ttl={self.default_ttl}, max_sessions={self.max_sessions})"
        )

    @property
    def backend(self) -> MemoryBackend:
        """The memory backend that keeps this store's bytes."""
        return self._memory

    @property
    def max_sessions(self) -> int | None:
        """Sessions kept at most (least recently used evicted beyond), or `None`."""
        return self._memory.max_sessions
