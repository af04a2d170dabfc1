"""The public contract of a session store, and the base that makes every backend behave alike."""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Any, TypeVar

from .codec import DEFAULT_CODEC, SessionState
from .errors import VersionConflictError
from .inspection import SessionInfo, TimedState
from .lease import Lease
from .validation import (
    TTL,
    check_attempts,
    check_ids,
    check_match,
    check_refresh_ttl,
    check_session_id,
    check_states,
    check_updater,
    check_version,
    ttl_seconds,
)
from .versions import VersionedState, version_of

DEFAULT_TTL_SECONDS = 3600

Updater = Callable[[SessionState | None], "SessionState | Awaitable[SessionState | None] | None"]
"""What `update` applies: current state (or None) to new state (None deletes); may be async."""

_Store = TypeVar("_Store", bound="SessionStore")


class SessionStore(ABC):
    """Keeps each conversation's state between turns, with an expiry.

    Subclass it to write a backend of your own from scratch, or subclass `EncodedSessionStore`
    to get validation and JSON encoding for free and implement four byte-level methods.
    Every store is an async context manager that closes itself on exit.
    """

    __slots__ = ()

    @abstractmethod
    async def save(self, session_id: str, state: Mapping[str, Any], ttl: TTL | None = None) -> None:
        """Store `state` under `session_id`, replacing what was there, expiring after `ttl`.

        Args:
            session_id: The conversation's id.
            state: A JSON object as a `dict`; it is copied, so later changes to it are not stored.
            ttl: Seconds (`int`) or a `timedelta` until the session expires; `None` means the
                store's default TTL.

        Raises:
            InvalidSessionIdError: `session_id` is not a valid id.
            InvalidTTLError: `ttl` is not a positive whole number of seconds.
            SerializationError: `state` is not a JSON object; nothing was written.
            BackendUnavailableError: The backend did not answer in time.
        """

    @abstractmethod
    async def load(self, session_id: str) -> SessionState | None:
        """Return a fresh copy of the session's state, or `None` if it is missing or expired.

        Raises:
            InvalidSessionIdError: `session_id` is not a valid id.
            CorruptedSessionError: The stored value is not a JSON object; it is left in place.
            BackendUnavailableError: The backend did not answer in time.
        """

    @abstractmethod
    async def delete(self, session_id: str) -> None:
        """Remove the session; removing a missing session is not an error.

        Raises:
            InvalidSessionIdError: `session_id` is not a valid id.
            BackendUnavailableError: The backend did not answer in time.
        """

    @abstractmethod
    async def exists(self, session_id: str) -> bool:
        """Return whether the session is stored and not expired.

        Raises:
            InvalidSessionIdError: `session_id` is not a valid id.
            BackendUnavailableError: The backend did not answer in time.
        """

    async def close(self) -> None:  # noqa: B027 - a no-op by design, overridden by backends
        """Release the store's connections; the store reconnects if it is used again."""

    async def __aenter__(self: _Store) -> _Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


class EncodedSessionStore(SessionStore):
    """A store whose backend keeps bytes: ids, TTLs and states are checked here, once.

    Backends implement `_write`, `_read`, `_remove` and `_contains`, which receive a valid
    session id, the state's JSON as bytes and a TTL in whole seconds, so every backend accepts
    and refuses exactly the same input. Nothing reaches the backend unless it is valid: a failed
    call leaves stored data as it was.

    Args:
        default_ttl: The TTL used when `save` is called without one.
    """

    __slots__ = ("_default_ttl",)

    def __init__(self, default_ttl: TTL = DEFAULT_TTL_SECONDS) -> None:
        self._default_ttl = ttl_seconds(default_ttl, "default_ttl")

    @property
    def default_ttl(self) -> int:
        """Seconds a session lives when `save` is called without a TTL."""
        return self._default_ttl

    async def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        ttl: TTL | None = None,
        *,
        if_version: str | None = None,
    ) -> None:
        """Store `state` under `session_id`; see `SessionStore.save`.

        Args:
            session_id: The conversation's id.
            state: A JSON object as a `dict`.
            ttl: Seconds or a `timedelta`; `None` means the store's default TTL.
            if_version: Write only if the session still has this version (from
                `load_versioned`); `ABSENT` writes only if the session does not exist.
                Atomic across processes.

        Raises:
            InvalidArgumentError: `if_version` is not a version from `load_versioned` or
                `ABSENT`.
            VersionConflictError: `if_version` was given and the session has changed; nothing
                was written.
        """
        check_session_id(session_id)
        seconds = self._ttl_or_default(ttl)
        version = None if if_version is None else check_version(if_version)
        data = DEFAULT_CODEC.encode(state)
        if version is None:
            await self._write(session_id, data, seconds)
        elif not await self._write_if(session_id, data, seconds, version):
            raise _conflict()

    async def load(
        self, session_id: str, *, refresh_ttl: bool | TTL = False
    ) -> SessionState | None:
        """Return the session's state or `None`; see `SessionStore.load`.

        Args:
            session_id: The conversation's id.
            refresh_ttl: `True` renews the session's TTL to the default, a TTL renews it to
                that, in the same atomic step as the read (sliding expiry).

        Raises:
            InvalidTTLError: `refresh_ttl` is neither a `bool` nor a valid TTL.
        """
        check_session_id(session_id)
        seconds = check_refresh_ttl(refresh_ttl, self._default_ttl)
        if seconds is None:
            data = await self._read(session_id)
        else:
            data = await self._read_and_touch(session_id, seconds)
        return None if data is None else DEFAULT_CODEC.decode(data)

    async def delete(self, session_id: str, *, if_version: str | None = None) -> None:
        """Remove the session if it exists; see `SessionStore.delete`.

        Raises:
            InvalidArgumentError: `if_version` is not a version from `load_versioned` or
                `ABSENT`.
            VersionConflictError: `if_version` was given and the session has changed.
        """
        check_session_id(session_id)
        if if_version is None:
            await self._remove(session_id)
        elif not await self._remove_if(session_id, check_version(if_version)):
            raise _conflict()

    async def exists(self, session_id: str) -> bool:
        """Return whether the session is stored; see `SessionStore.exists`."""
        return await self._contains(check_session_id(session_id))

    async def load_versioned(self, session_id: str) -> VersionedState:
        """Return the state (or `None`) and its version, for a later `save(if_version=...)`.

        The version is derived from the stored bytes, so the value itself stays plain JSON.
        """
        data = await self._read(check_session_id(session_id))
        state = None if data is None else DEFAULT_CODEC.decode(data)
        return VersionedState(state, version_of(data))

    async def update(
        self,
        session_id: str,
        fn: Updater,
        ttl: TTL | None = None,
        *,
        attempts: int = 64,
    ) -> SessionState | None:
        """Apply `fn` to the session atomically; no concurrent update is ever lost.

        `fn` (sync or async) receives a fresh copy of the current state, or `None` when there is
        none, and returns the new state, or `None` to delete the session. If another writer
        changed the session meanwhile, nothing is written and `fn` runs again on the new state
        (optimistic concurrency, with jittered backoff), so `fn` must not have side effects
        that cannot be repeated. Atomic across processes and hosts.

        Returns:
            The new state as stored (what `load` would return), or `None` if deleted.

        Raises:
            InvalidArgumentError: `fn` is not callable, or `attempts` is not an int >= 1.
            VersionConflictError: `attempts` tries all met a concurrent change.
            SerializationError: `fn` returned a state JSON cannot hold; nothing was written.
        """
        check_session_id(session_id)
        seconds = self._ttl_or_default(ttl)
        check_updater(fn)
        check_attempts(attempts)
        previous = self._guess(session_id)
        guessed = previous is not None
        if not guessed:
            previous = await self._read(session_id)
        conflicts = 0
        while True:
            result = fn(None if previous is None else DEFAULT_CODEC.decode(previous))
            new_state = await result if inspect.isawaitable(result) else result
            if new_state is None:
                if previous is None:
                    return None
                new_data, copy = None, None
            else:
                new_data, copy = DEFAULT_CODEC.encode_with_copy(new_state)
            swapped, current = await self._swap(session_id, previous, new_data, seconds)
            if swapped:
                return copy
            if guessed:
                # A stale guess (someone wrote since this store last saw the session) is not
                # a concurrent change: it uses up no attempt.
                guessed, previous = False, current
                continue
            conflicts += 1
            if conflicts == attempts:
                raise VersionConflictError(
                    f"update gave up after {attempts} attempts, each meeting a concurrent "
                    "change; raise attempts, or serialize the writers with lock()"
                )
            if conflicts == 1:
                previous = current  # the first retry goes at once, from what the swap returned
            else:
                # Contended: back off, then read afresh (what the swap returned has aged).
                await asyncio.sleep(random.uniform(0, min(0.1, 0.001 * 2 ** (conflicts - 1))))
                previous = await self._read(session_id)

    async def touch(self, session_id: str, ttl: TTL | None = None) -> bool:
        """Renew the session's TTL without rewriting it; return whether it exists.

        Args:
            session_id: The conversation's id.
            ttl: The new TTL from now; `None` means the store's default TTL.
        """
        check_session_id(session_id)
        return await self._touch(session_id, self._ttl_or_default(ttl))

    async def ttl(self, session_id: str) -> int | None:
        """Return the session's remaining lifetime in whole seconds, or `None` if missing."""
        return await self._remaining(check_session_id(session_id))

    def lock(self, session_id: str, *, timeout: float = 30.0, wait: float = 10.0) -> Lease:
        """Return a lease on the session, to hold with `async with store.lock(id):`.

        Exclusive across processes; it expires by itself `timeout` seconds after it was taken
        (so a crashed holder blocks others for at most that long), and only its holder can
        release or extend it. The lock guards turns, not data: it does not stop a writer that
        does not take it.

        Args:
            session_id: The conversation's id.
            timeout: Seconds the lease lasts unless released or extended.
            wait: Seconds to wait for a lease that someone else holds; 0 tries once.

        Raises:
            InvalidTTLError: `timeout` is not a positive number of seconds, or `wait` is
                negative.
            SessionLockedError: (on entering) the lease was not free within `wait`.
        """
        return Lease(self, session_id, timeout=timeout, wait=wait)

    async def load_many(self, session_ids: Iterable[str]) -> dict[str, SessionState | None]:
        """Return the states of many sessions (`None` for missing ones) in one round trip.

        Raises:
            InvalidArgumentError: `session_ids` is a single `str` or not an iterable.
            InvalidSessionIdError: An id is not valid; nothing was read.
        """
        ids = check_ids(session_ids)
        found = await self._read_many(ids) if ids else []
        return {
            session_id: None if data is None else DEFAULT_CODEC.decode(data)
            for session_id, data in zip(ids, found, strict=True)
        }

    async def save_many(
        self, states: Mapping[str, Mapping[str, Any]], ttl: TTL | None = None
    ) -> None:
        """Store many sessions in one round trip; all are checked before any is written.

        Not a transaction: each session is written atomically, the batch is not.

        Args:
            states: Session id to state.
            ttl: The TTL of every session of the batch; `None` means the store's default.

        Raises:
            InvalidArgumentError: `states` is not a mapping; nothing was written.
            InvalidSessionIdError, InvalidTTLError, SerializationError: An id, the TTL or a
                state is not valid; nothing was written.
        """
        seconds = self._ttl_or_default(ttl)
        items = [
            (check_session_id(session_id), DEFAULT_CODEC.encode(state))
            for session_id, state in check_states(states).items()
        ]
        if items:
            await self._write_many(items, seconds)

    async def describe_many(self, session_ids: Iterable[str]) -> dict[str, SessionInfo | None]:
        """Return the stored size and remaining lifetime of many sessions (`None` for missing ones).

        Reads no value (on Redis, `STRLEN` and `PTTL` pipelined: one round trip), changes
        nothing; for operators' listings and statistics.

        Raises:
            InvalidArgumentError: `session_ids` is a single `str` or not an iterable.
            InvalidSessionIdError: An id is not valid; nothing was read.
        """
        ids = check_ids(session_ids)
        found = await self._describe_many(ids) if ids else []
        return dict(zip(ids, found, strict=True))

    async def load_many_with_ttl(self, session_ids: Iterable[str]) -> dict[str, TimedState | None]:
        """Return the states of many sessions with their remaining lifetime, in one round trip.

        `None` for a missing session. Changes nothing (the TTLs are not renewed); for exports.

        Raises:
            InvalidArgumentError: `session_ids` is a single `str` or not an iterable.
            InvalidSessionIdError: An id is not valid; nothing was read.
            CorruptedSessionError: A stored value is not the JSON of an object.
        """
        ids = check_ids(session_ids)
        found = await self._read_many_with_ttl(ids) if ids else []
        return {
            session_id: None if item is None else TimedState(DEFAULT_CODEC.decode(item[0]), item[1])
            for session_id, item in zip(ids, found, strict=True)
        }

    async def delete_many(self, session_ids: Iterable[str]) -> None:
        """Remove many sessions in one round trip; missing ones are not an error.

        Raises:
            InvalidArgumentError: `session_ids` is a single `str` or not an iterable.
            InvalidSessionIdError: An id is not valid; nothing was deleted.
        """
        ids = check_ids(session_ids)
        if ids:
            await self._remove_many(ids)

    def iter_ids(self, match: str | None = None) -> AsyncIterator[str]:
        """Yield the ids of this store's sessions, optionally those matching a glob pattern.

        Walks the store in batches (Redis `SCAN`, never `KEYS`); a session saved or deleted
        meanwhile may or may not be seen, and none is seen twice on the memory store (Redis
        may repeat one, as `SCAN` does).

        Args:
            match: An `fnmatch` pattern over ids (`*`, `?`, `[abc]`, `[!abc]`), or `None`.

        Raises:
            InvalidArgumentError: (at the call) `match` is neither a `str` nor `None`.
        """
        check_match(match)
        return self._matching_ids(match)

    async def _matching_ids(self, match: str | None) -> AsyncIterator[str]:
        async for session_id in self._scan():
            if match is None or fnmatchcase(session_id, match):
                yield session_id

    async def count(self) -> int:
        """Return how many sessions this store holds (a walk of the store: O(sessions) time).

        Streams the walk: memory stays bounded whatever the store's size (on Redis, the last
        10,000 keys seen, to drop the repeats `SCAN` may return).
        """
        found = 0
        async for _ in self._scan():
            found += 1
        return found

    async def clear(self) -> int:
        """Delete every session of this store, and nothing else; return how many.

        On Redis only keys that start with the prefix are touched, in batches (`SCAN` +
        `UNLINK`), never `FLUSHDB`. Use a prefix that ends with a separator (`app:`), so that
        no other store's prefix starts with it (`apple:` does start with `app`).
        """
        return await self._clear()

    async def ping(self) -> dict[str, Any]:
        """Check that the store can serve, for a readiness probe.

        Returns:
            `latency_ms` of a round trip and facts about the topology (`topology`, and for
            Redis the server, the Sentinel master name or the cluster's primaries).

        Raises:
            BackendUnavailableError: The store cannot serve right now.
        """
        started = time.perf_counter()
        facts = await self._ping()
        return {"latency_ms": round((time.perf_counter() - started) * 1000, 6), **facts}

    def _ttl_or_default(self, ttl: TTL | None) -> int:
        return self._default_ttl if ttl is None else ttl_seconds(ttl)

    # The byte-level primitives. The first four are all a backend must implement; the others
    # raise NotImplementedError until a backend provides them.

    @abstractmethod
    async def _write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        """Store `data` under `session_id`, replacing any value, expiring in `ttl_seconds`."""

    @abstractmethod
    async def _read(self, session_id: str) -> bytes | None:
        """Return the bytes stored under `session_id`, or `None` if missing or expired."""

    @abstractmethod
    async def _remove(self, session_id: str) -> None:
        """Remove `session_id` if present."""

    @abstractmethod
    async def _contains(self, session_id: str) -> bool:
        """Return whether `session_id` is present and not expired."""

    async def _write_if(self, session_id: str, data: bytes, ttl_seconds: int, version: str) -> bool:
        """Write only if the stored bytes have `version` (`ABSENT`: nothing stored), atomically.

        Never retried by the backend: a retry of a write that did land would see a conflict.
        """
        raise _unsupported(self, "_write_if")

    async def _remove_if(self, session_id: str, version: str) -> bool:
        """Remove only if the stored bytes have `version`, atomically; True if now absent."""
        raise _unsupported(self, "_remove_if")

    def _guess(self, session_id: str) -> bytes | None:
        """Return the bytes this store last saw under `session_id`, if it remembers; else None.

        `update` starts from such a guess instead of a read. A stale guess costs one failed
        `_swap` (which returns the stored bytes), and `update` does not count it as a conflict.
        """
        return None

    async def _swap(
        self, session_id: str, previous: bytes | None, data: bytes | None, ttl_seconds: int
    ) -> tuple[bool, bytes | None]:
        """Replace `previous` by `data` (None: delete) if the stored bytes still are `previous`.

        Atomic, and never retried by the backend. Returns whether it swapped and, when it did
        not, the bytes stored now, so that `update` can try again without another read.
        """
        version = version_of(previous)
        if data is None:
            swapped = await self._remove_if(session_id, version)
        else:
            swapped = await self._write_if(session_id, data, ttl_seconds, version)
        return swapped, None if swapped else await self._read(session_id)

    async def _read_and_touch(self, session_id: str, ttl_seconds: int) -> bytes | None:
        """Return the bytes and renew the TTL, atomically."""
        raise _unsupported(self, "_read_and_touch")

    async def _touch(self, session_id: str, ttl_seconds: int) -> bool:
        """Renew the TTL; return whether the session exists."""
        raise _unsupported(self, "_touch")

    async def _remaining(self, session_id: str) -> int | None:
        """Return whole seconds left (rounded up), or None if missing."""
        raise _unsupported(self, "_remaining")

    async def _acquire_lock(self, session_id: str, token: str, milliseconds: int) -> bool:
        """Take the session's lock for `milliseconds` if it is free; atomic."""
        raise _unsupported(self, "_acquire_lock")

    async def _release_lock(self, session_id: str, token: str) -> bool:
        """Release the lock if `token` holds it; atomic. Return whether it did."""
        raise _unsupported(self, "_release_lock")

    async def _extend_lock(self, session_id: str, token: str, milliseconds: int) -> bool:
        """Reset the lock's expiry if `token` holds it; atomic. Return whether it did."""
        raise _unsupported(self, "_extend_lock")

    async def _read_many(self, session_ids: list[str]) -> list[bytes | None]:
        """Return the bytes of each id, in order."""
        return [await self._read(session_id) for session_id in session_ids]

    async def _write_many(self, items: list[tuple[str, bytes]], ttl_seconds: int) -> None:
        """Write each (id, bytes) with the same TTL."""
        for session_id, data in items:
            await self._write(session_id, data, ttl_seconds)

    async def _remove_many(self, session_ids: list[str]) -> None:
        """Remove each id."""
        for session_id in session_ids:
            await self._remove(session_id)

    async def _describe_many(self, session_ids: list[str]) -> list[SessionInfo | None]:
        """Return each id's stored size and milliseconds left, in order (None if missing)."""
        found: list[SessionInfo | None] = []
        for item in await self._read_many_with_ttl(session_ids):
            found.append(None if item is None else SessionInfo(len(item[0]), item[1]))
        return found

    async def _read_many_with_ttl(self, session_ids: list[str]) -> list[tuple[bytes, int] | None]:
        """Return each id's bytes and milliseconds left, in order (None if missing).

        The default reads each session, then its TTL in whole seconds.
        """
        found: list[tuple[bytes, int] | None] = []
        for session_id in session_ids:
            data = await self._read(session_id)
            seconds = None if data is None else await self._remaining(session_id)
            found.append(None if data is None or seconds is None else (data, seconds * 1000))
        return found

    async def _ping(self) -> dict[str, Any]:
        """Make a round trip to the backend; return facts about it."""
        raise _unsupported(self, "_ping")

    def _scan(self) -> AsyncIterator[str]:
        """Yield every live session id of this store, in batches."""
        raise _unsupported(self, "_scan")

    async def _clear(self) -> int:
        """Delete every session and lock of this store; return how many sessions."""
        raise _unsupported(self, "_clear")


def _conflict() -> VersionConflictError:
    return VersionConflictError(
        "the session changed since its version was read, so nothing was written; "
        "load_versioned() it again and retry, or use update()"
    )


def _unsupported(store: EncodedSessionStore, primitive: str) -> NotImplementedError:
    return NotImplementedError(
        f"{type(store).__name__} does not implement {primitive}(), which this method needs"
    )
