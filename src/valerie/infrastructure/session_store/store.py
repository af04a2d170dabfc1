"""The one store core: every store is this class over a backend.

`EncodedSessionStore` checks ids, TTLs and arguments, turns states into bytes (codec, then
transforms), derives versions from the stored bytes, runs `update`'s optimistic loop, the
batches and the leases, and reports each public call to observers, all once, above the
backend, so every backend behaves the same. The backend (`backend.Backend`) stores bytes.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from . import protection
from .backend import (
    Backend,
    Batches,
    Capability,
    CompareAndSet,
    ExpiryControl,
    Leases,
    Owners,
    Scans,
    capabilities_of,
)
from .codec import Codec, SessionState, StateCodec
from .contract import DEFAULT_TTL_SECONDS, Deletion, SessionStore, Updater
from .encryption import Encryption, binding_of, check_encryption
from .errors import (
    ConfigurationError,
    InvalidArgumentError,
    UpdaterReturnedNoneError,
    VersionConflictError,
)
from .inspection import SessionInfo, TimedState
from .instrumentation import Description, Instrumentation, Observer, Outcome
from .lease import Lease
from .limits import check_max_state_bytes, check_state_size
from .owners import Owning, check_owner
from .protection import RotationReport
from .transforms import Transform
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
    describe,
    ttl_seconds,
)
from .versions import VersionedState, version_of


class EncodedSessionStore(SessionStore):
    """A session store over a byte-level backend; the built-in stores are this class.

    Nothing reaches the backend unless it is valid: a failed call leaves stored data as it was.
    A method that needs a capability the backend lacks (see `capabilities`) raises
    `UnsupportedCapabilityError` before any I/O.

    Args:
        backend: Where the bytes live (see `backend.Backend`).
        default_ttl: The TTL used when `save` is called without one.
        codec: Turns states into bytes and back; default: `StateCodec()` (strict JSON).
        transforms: Applied to the codec's bytes in order on writes, in reverse on reads
            (e.g. `[Compression()]`).
        observers: Receive an event for each public call (see `instrumentation`); none by
            default, which costs nothing.
        encryption: Seal every stored value with AES-256-GCM, after the transforms, bound to
            the session id and the backend's `prefix` (see `encryption.Encryption`); `None`
            stores the bytes as they are.
        max_state_bytes: Refuse, before writing, a state whose codec output is larger.

    Raises:
        ConfigurationError: `backend`, `codec`, a transform or an observer is not one.
        InvalidTTLError: `default_ttl` is not a valid TTL.
    """

    __slots__ = (
        "_backend",
        "_batches",
        "_binding",
        "_capabilities",
        "_cas",
        "_codec",
        "_decode",
        "_default_ttl",
        "_encode",
        "_encryption",
        "_expiry",
        "_instrumentation",
        "_leases",
        "_max_state_bytes",
        "_plain",
        "_scans",
        "_transforms",
    )

    def __init__(
        self,
        backend: Backend,
        *,
        default_ttl: TTL = DEFAULT_TTL_SECONDS,
        codec: Codec | None = None,
        transforms: Sequence[Transform] = (),
        observers: Sequence[Observer] = (),
        encryption: Encryption | None = None,
        max_state_bytes: int | None = None,
    ) -> None:
        if not isinstance(backend, Backend):
            raise ConfigurationError(
                f"backend must be a Backend, got {describe(backend)}; subclass "
                "valerie.infrastructure.session_store.backend.Backend"
            )
        self._default_ttl = ttl_seconds(default_ttl, "default_ttl")
        self._codec: Codec = StateCodec() if codec is None else _check_codec(codec)
        self._transforms = _check_each(transforms, Transform, "transforms", "Compression()")
        observing = _check_each(observers, Observer, "observers", "an Observer subclass")
        # Bound once: without transforms, the codec's own methods, no loop on the hot path.
        self._encode: Callable[[Mapping[str, Any]], bytes] = (
            self._transformed_encode if self._transforms else self._codec.encode
        )
        self._decode: Callable[[bytes], SessionState] = (
            self._transformed_decode if self._transforms else self._codec.decode
        )
        self._encryption = check_encryption(encryption)
        self._max_state_bytes = check_max_state_bytes(max_state_bytes)
        # Without encryption or a size limit, the bytes depend on the state alone: the hot
        # paths below use the bound codec directly.
        self._plain = encryption is None and max_state_bytes is None
        self._backend = backend
        self._binding = binding_of(backend)
        self._capabilities = capabilities_of(backend)
        self._cas = backend if isinstance(backend, CompareAndSet) else None
        self._expiry = backend if isinstance(backend, ExpiryControl) else None
        self._leases = backend if isinstance(backend, Leases) else None
        self._scans = backend if isinstance(backend, Scans) else None
        self._batches = backend if isinstance(backend, Batches) else None
        self._instrumentation: Instrumentation | None = None
        if observing:
            self._instrumentation = Instrumentation(backend.name, observing)
            backend.connection_wait_hook = self._instrumentation.connection_wait
            for observer in observing:
                observer.on_attach(backend.name, backend.pool_usage)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(backend={self._backend.name!r}, "
            f"default_ttl={self._default_ttl})"
        )

    @property
    def backend(self) -> Backend:
        """The backend that keeps this store's bytes."""
        return self._backend

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The optional capabilities of this store's backend."""
        return self._capabilities

    @property
    def codec(self) -> Codec:
        """The codec that turns states into bytes."""
        return self._codec

    @property
    def encryption(self) -> Encryption | None:
        """How stored values are sealed, or `None` (fixed for the store's life)."""
        return self._encryption

    @property
    def max_state_bytes(self) -> int | None:
        """The largest encoded state this store writes, or `None` for no limit."""
        return self._max_state_bytes

    @property
    def default_ttl(self) -> int:
        """Seconds a session lives when `save` is called without a TTL."""
        return self._default_ttl

    async def close(self) -> None:
        """Release the backend's connections; the store reconnects if it is used again."""
        await self._backend.close()

    # Each public method runs its work (a coroutine returning the result and what observers
    # need) directly, or through the instrumentation when observers are attached.

    async def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        ttl: TTL | None = None,
        *,
        if_version: str | None = None,
        owner: str | None = None,
    ) -> None:
        """Store `state` under `session_id`; see `SessionStore.save`.

        Args:
            session_id: The conversation's id.
            state: A JSON object as a `dict`.
            ttl: Seconds or a `timedelta`; `None` means the store's default TTL.
            if_version: Write only if the session still has this version.
            owner: The user the session belongs to (see `sessions_of`, `erase_owner`).
        """
        if self._instrumentation is None:
            if if_version is None and owner is None and self._plain:
                # The hot path, inlined: one coroutine less per call.
                check_session_id(session_id)
                seconds = self._default_ttl if ttl is None else ttl_seconds(ttl)
                await self._backend.write(session_id, self._encode(state), seconds)
            else:
                await self._save(session_id, state, ttl, if_version, owner)
        else:
            call = self._save(session_id, state, ttl, if_version, owner)
            await self._instrumentation.observe("save", call, _written)

    async def _save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        ttl: TTL | None,
        if_version: str | None,
        owner: str | None = None,
    ) -> int:
        check_session_id(session_id)
        seconds = self._ttl_or_default(ttl)
        owning = self._owning("save(owner=...)", owner)
        if if_version is None:
            data = self._encode_for(session_id, state)
            if owning is not None:
                await owning.before([session_id], seconds)
            await self._backend.write(session_id, data, seconds)
        else:
            cas = self._need_cas("save(if_version=...)")
            version = check_version(if_version)
            data = self._encode_for(session_id, state)
            if owning is not None:
                await owning.before([session_id], seconds)
            if not await cas.write_if(session_id, data, seconds, version):
                raise _conflict()
        if owning is not None:
            await owning.after([session_id], seconds)
        return len(data)

    async def load(
        self, session_id: str, *, refresh_ttl: bool | TTL = False
    ) -> SessionState | None:
        """Return the session's state or `None`; see `SessionStore.load`."""
        if self._instrumentation is None:
            if refresh_ttl is False and self.encryption is None:
                # The hot path, inlined: one coroutine less per call.
                data = await self._backend.read(check_session_id(session_id))
                return None if data is None else self._decode(data)
            return (await self._load(session_id, refresh_ttl))[0]
        call = self._load(session_id, refresh_ttl)
        return (await self._instrumentation.observe("load", call, _read))[0]

    async def _load(
        self, session_id: str, refresh_ttl: bool | TTL
    ) -> tuple[SessionState | None, bytes | None]:
        check_session_id(session_id)
        seconds = check_refresh_ttl(refresh_ttl, self._default_ttl)
        if seconds is None:
            data = await self._backend.read(session_id)
        else:
            data = await self._need_expiry("load(refresh_ttl=...)").read_and_touch(
                session_id, seconds
            )
        if data is None:
            return None, None
        state = self._decode_for(session_id, data)
        if self.encryption is not None and not self.encryption.is_current(data):
            await protection.reseal_quietly(self, session_id, data)
        return state, data

    async def load_encoded(self, session_id: str) -> bytes | None:
        """Return the session's bytes as the codec wrote them (transforms undone), or `None`.

        For a layer that decodes the codec's output itself, such as the typed view, which
        validates the JSON directly. Reported to observers as a `load`.

        With encryption, the seal is opened (and a session under an old key sealed again
        under the current one), as `load` does.

        Raises:
            InvalidSessionIdError: `session_id` is not a valid id.
            CorruptedSessionError: A transform cannot undo what is stored; it is left in place.
            DecryptionError: The seal cannot be opened; the session is left in place.
        """
        call: Awaitable[tuple[bytes | None, bytes | None]] = self._load_encoded(session_id)
        if self._instrumentation is not None:
            call = self._instrumentation.observe("load", call, _read)
        return (await call)[0]

    def report_state_failure(self, operation: str, error: Exception) -> None:
        """Tell the observers that a layer above the store could not read a stored state.

        For the typed view, whose migrations and validation run after the store's call has
        ended: observers get a `StateFailureEvent` for `error` (a `MigrationError`,
        `NewerSchemaVersionError` or `StateValidationError`). Failures inside the store's own
        calls (a `DecryptionError`) are reported by the store itself.
        """
        if self._instrumentation is not None:
            self._instrumentation.state_failure(operation, error)

    async def _load_encoded(self, session_id: str) -> tuple[bytes | None, bytes | None]:
        stored = await self._backend.read(check_session_id(session_id))
        if stored is None:
            return None, None
        data = stored
        # As `_load`: the seal is opened first (it wraps the transformed bytes).
        if self.encryption is not None:
            data = self.encryption.open(data, self._binding, session_id)
        for transform in reversed(self._transforms):
            data = transform.decode(data)
        if self.encryption is not None and not self.encryption.is_current(stored):
            await protection.reseal_quietly(self, session_id, stored)
        return data, stored

    async def delete(self, session_id: str, *, if_version: str | None = None) -> None:
        """Remove the session if it exists; see `SessionStore.delete`."""
        call = self._delete(session_id, if_version)
        if self._instrumentation is None:
            await call
        else:
            await self._instrumentation.observe("delete", call, _ok)

    async def _delete(self, session_id: str, if_version: str | None) -> None:
        check_session_id(session_id)
        if if_version is None:
            await self._backend.remove(session_id)
            return
        cas = self._need_cas("delete(if_version=...)")
        if not await cas.remove_if(session_id, check_version(if_version)):
            raise _conflict()

    async def exists(self, session_id: str) -> bool:
        """Return whether the session is stored; see `SessionStore.exists`."""
        if self._instrumentation is None:
            return await self._backend.contains(check_session_id(session_id))
        return await self._instrumentation.observe("exists", self._exists(session_id), _found)

    async def _exists(self, session_id: str) -> bool:
        return await self._backend.contains(check_session_id(session_id))

    async def load_versioned(self, session_id: str) -> VersionedState:
        """Return the state (or `None`) and its version, for a later `save(if_version=...)`.

        The version is derived from the stored bytes, so the value itself stays plain.
        """
        call = self._load_versioned(session_id)
        if self._instrumentation is None:
            return (await call)[0]
        return (await self._instrumentation.observe("load_versioned", call, _read))[0]

    async def _load_versioned(self, session_id: str) -> tuple[VersionedState, bytes | None]:
        data = await self._backend.read(check_session_id(session_id))
        state = None if data is None else self._decode_for(session_id, data)
        return VersionedState(state, version_of(data)), data

    async def update(
        self,
        session_id: str,
        fn: Updater,
        ttl: TTL | None = None,
        *,
        attempts: int = 64,
        owner: str | None = None,
    ) -> SessionState | None:
        """Apply `fn` to the session atomically; see `SessionStore.update`.

        `owner` records the user the session belongs to (see `sessions_of`).
        """
        call = self._update(session_id, fn, ttl, attempts, owner)
        if self._instrumentation is None:
            return (await call)[0]
        return (await self._instrumentation.observe("update", call, _updated))[0]

    async def _update(
        self, session_id: str, fn: Updater, ttl: TTL | None, attempts: int, owner: str | None
    ) -> tuple[SessionState | None, int, int]:
        """Return the new state, the bytes written and the attempts it took."""
        check_session_id(session_id)
        seconds = self._ttl_or_default(ttl)
        check_updater(fn)
        check_attempts(attempts)
        cas = self._need_cas("update")
        owning = self._owning("update(owner=...)", owner)
        if owning is None:
            return await self._update_loop(cas, session_id, fn, seconds, attempts)
        await owning.before([session_id], seconds)
        result = await self._update_loop(cas, session_id, fn, seconds, attempts)
        await owning.after([session_id], seconds)
        return result

    async def _update_loop(
        self, cas: CompareAndSet, session_id: str, fn: Updater, seconds: int, attempts: int
    ) -> tuple[SessionState | None, int, int]:
        previous = cas.last_seen(session_id)
        guessed = previous is not None
        if not guessed:
            previous = await cas.read(session_id)
        conflicts = 0
        tries = 1
        while True:
            result = fn(None if previous is None else self._decode_for(session_id, previous))
            new_state = await result if inspect.isawaitable(result) else result
            if isinstance(new_state, Deletion) or new_state is None:
                if previous is None:
                    return None, 0, tries
                if new_state is None:
                    raise UpdaterReturnedNoneError(
                        "update's function returned None for an existing session, so nothing "
                        "was written; return the new state (did it change the state in place "
                        "and forget `return state`?), or return DELETE to delete the session"
                    )
                new_data, copy = None, None
            else:
                new_data, copy = self._encode_with_copy(session_id, new_state)
            swapped, current = await cas.swap(session_id, previous, new_data, seconds)
            if swapped:
                return copy, 0 if new_data is None else len(new_data), tries
            tries += 1
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
                previous = await cas.read(session_id)

    async def touch(self, session_id: str, ttl: TTL | None = None) -> bool:
        """Renew the session's TTL without rewriting it; see `SessionStore.touch`."""
        call = self._touch(session_id, ttl)
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("touch", call, _found)

    async def _touch(self, session_id: str, ttl: TTL | None) -> bool:
        check_session_id(session_id)
        seconds = self._ttl_or_default(ttl)
        return await self._need_expiry("touch").touch(session_id, seconds)

    async def ttl(self, session_id: str) -> int | None:
        """Return the session's remaining lifetime in whole seconds, or `None` if missing."""
        call = self._remaining(session_id)
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("ttl", call, _found)

    async def _remaining(self, session_id: str) -> int | None:
        check_session_id(session_id)
        return await self._need_expiry("ttl").remaining(session_id)

    def lock(self, session_id: str, *, timeout: float = 30.0, wait: float = 10.0) -> Lease:
        """Return a lease on the session; see `SessionStore.lock`.

        Raises:
            UnsupportedCapabilityError: The backend has no leases (at the call).
        """
        if self._leases is None:
            raise self._unsupported("lock", Capability.LEASES)
        return Lease(
            self._leases,
            session_id,
            timeout=timeout,
            wait=wait,
            instrumentation=self._instrumentation,
        )

    async def load_many(self, session_ids: Iterable[str]) -> dict[str, SessionState | None]:
        """Return the states of many sessions; see `SessionStore.load_many`."""
        call = self._load_many(session_ids)
        if self._instrumentation is None:
            return (await call)[0]
        return (await self._instrumentation.observe("load_many", call, _read_many))[0]

    async def _load_many(
        self, session_ids: Iterable[str]
    ) -> tuple[dict[str, SessionState | None], int]:
        ids = check_ids(session_ids)
        if not ids:
            found: list[bytes | None] = []
        elif self._batches is not None:
            found = await self._batches.read_many(ids)
        else:
            found = [await self._backend.read(session_id) for session_id in ids]
        states = {
            session_id: None if data is None else self._decode_for(session_id, data)
            for session_id, data in zip(ids, found, strict=True)
        }
        return states, sum(len(data) for data in found if data is not None)

    async def save_many(
        self,
        states: Mapping[str, Mapping[str, Any]],
        ttl: TTL | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        """Store many sessions; see `SessionStore.save_many`.

        `owner` records the user every session of the batch belongs to (see `sessions_of`).
        """
        call = self._save_many(states, ttl, owner)
        if self._instrumentation is None:
            await call
        else:
            await self._instrumentation.observe("save_many", call, _written_many)

    async def _save_many(
        self, states: Mapping[str, Mapping[str, Any]], ttl: TTL | None, owner: str | None
    ) -> tuple[int, int]:
        seconds = self._ttl_or_default(ttl)
        owning = self._owning("save_many(owner=...)", owner)
        items = [
            # Left to right: the id is checked before it is bound into a sealed value.
            (check_session_id(session_id), self._encode_for(session_id, state))
            for session_id, state in check_states(states).items()
        ]
        if owning is not None and items:
            await owning.before([session_id for session_id, _ in items], seconds)
        if not items:
            pass
        elif self._batches is not None:
            await self._batches.write_many(items, seconds)
        else:
            for session_id, data in items:
                await self._backend.write(session_id, data, seconds)
        if owning is not None and items:
            await owning.after([session_id for session_id, _ in items], seconds)
        return sum(len(data) for _, data in items), len(items)

    async def describe_many(self, session_ids: Iterable[str]) -> dict[str, SessionInfo | None]:
        """Return stored sizes and TTLs; see `SessionStore.describe_many`."""
        call = self._describe_many(session_ids)
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("describe_many", call, _described)

    async def _describe_many(self, session_ids: Iterable[str]) -> dict[str, SessionInfo | None]:
        ids = check_ids(session_ids)
        found = await self._need_expiry("describe_many").describe_many(ids) if ids else []
        return dict(zip(ids, found, strict=True))

    async def load_many_with_ttl(self, session_ids: Iterable[str]) -> dict[str, TimedState | None]:
        """Return states with their TTLs; see `SessionStore.load_many_with_ttl`."""
        call = self._load_many_with_ttl(session_ids)
        if self._instrumentation is None:
            return (await call)[0]
        observe = self._instrumentation.observe
        return (await observe("load_many_with_ttl", call, _read_many_timed))[0]

    async def _load_many_with_ttl(
        self, session_ids: Iterable[str]
    ) -> tuple[dict[str, TimedState | None], int]:
        ids = check_ids(session_ids)
        expiry = self._need_expiry("load_many_with_ttl")
        found = await expiry.read_many_with_ttl(ids) if ids else []
        states = {
            session_id: None
            if item is None
            else TimedState(self._decode_for(session_id, item[0]), item[1])
            for session_id, item in zip(ids, found, strict=True)
        }
        return states, sum(len(item[0]) for item in found if item is not None)

    async def delete_many(self, session_ids: Iterable[str]) -> None:
        """Remove many sessions; see `SessionStore.delete_many`."""
        call = self._delete_many(session_ids)
        if self._instrumentation is None:
            await call
        else:
            await self._instrumentation.observe("delete_many", call, _removed_many)

    async def _delete_many(self, session_ids: Iterable[str]) -> int:
        ids = check_ids(session_ids)
        if not ids:
            pass
        elif self._batches is not None:
            await self._batches.remove_many(ids)
        else:
            for session_id in ids:
                await self._backend.remove(session_id)
        return len(ids)

    def iter_ids(self, match: str | None = None) -> AsyncIterator[str]:
        """Yield the ids of this store's sessions; see `SessionStore.iter_ids`.

        Raises:
            UnsupportedCapabilityError: The backend has no scans (at the call).
        """
        check_match(match)
        return self._matching_ids(self._need_scans("iter_ids"), match)

    async def _matching_ids(self, scans: Scans, match: str | None) -> AsyncIterator[str]:
        started = time.perf_counter()
        seen = 0
        outcome, error_type = Outcome.OK, None
        try:
            async for session_id in scans.scan():
                if match is None or fnmatchcase(session_id, match):
                    seen += 1
                    yield session_id
        except GeneratorExit:
            raise  # the caller stopped early: the walk still ends well
        except BaseException as error:
            outcome, error_type = Outcome.ERROR, type(error).__name__
            raise
        finally:
            if self._instrumentation is not None:
                self._instrumentation.report_walk(
                    "iter_ids", outcome, error_type, time.perf_counter() - started, seen
                )

    async def count(self) -> int:
        """Return how many sessions this store holds; see `SessionStore.count`."""
        call = self._count()
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("count", call, _counted)

    async def _count(self) -> int:
        found = 0
        async for _ in self._need_scans("count").scan():
            found += 1
        return found

    async def clear(self) -> int:
        """Delete every session of this store; see `SessionStore.clear`."""
        call = self._clear()
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("clear", call, _counted)

    async def _clear(self) -> int:
        return await self._need_scans("clear").clear()

    async def ping(self) -> dict[str, Any]:
        """Check that the store can serve; see `SessionStore.ping`."""
        call = self._ping()
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("ping", call, _ok)

    async def _ping(self) -> dict[str, Any]:
        started = time.perf_counter()
        facts = await self._backend.ping()
        return {"latency_ms": round((time.perf_counter() - started) * 1000, 6), **facts}

    async def rotate_keys(
        self,
        *,
        batch_size: int = 100,
        progress: Callable[[RotationReport], object] | None = None,
    ) -> RotationReport:
        """Seal every session that is not under the current key again, keeping its TTL.

        Walks the store in batches (as `iter_ids`); each session is sealed again with a
        compare-and-set, so a concurrent write wins and is never lost (it is sealed under the
        current key anyway). Safe to interrupt and to run again. When `key_usage()` shows no
        session under an old key, that key can leave the keyring. In migration mode
        (`migrate_plaintext=True`) plaintext sessions are sealed too.

        Args:
            batch_size: Sessions read per round trip.
            progress: Called with the report after each batch.

        Returns:
            What was done: sessions scanned, sealed again, already current, vanished,
            unreadable (left in place) and conflicts met.

        Raises:
            InvalidArgumentError: The store has no encryption, or `batch_size` is not >= 1.
            UnsupportedCapabilityError: The backend has no scans or no compare-and-set.
            VersionConflictError: One session changed 16 times in a row under it; run again.
        """
        call = protection.rotate_keys(self, batch_size=batch_size, progress=progress)
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("rotate_keys", call, _rotated)

    async def key_usage(self) -> dict[str | None, int]:
        """Count this store's sessions under each key id (`None`: not encrypted).

        A walk of the store, O(sessions). An old key whose id is absent here can be retired.

        Raises:
            UnsupportedCapabilityError: The backend has no scans.
        """
        call = protection.key_usage(self)
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("key_usage", call, _tallied)

    async def sessions_of(self, owner: str) -> list[str]:
        """Return the ids of the live sessions written with `owner=owner`.

        Reads only that owner's index (no scan of the store); entries of sessions that expired
        or were deleted are dropped from the index on the way, once their TTL has passed.

        Raises:
            InvalidArgumentError: `owner` is not a valid owner (rules of a session id).
            UnsupportedCapabilityError: The backend keeps no owner index.
        """
        check_owner(owner)
        call = self._need_owners("sessions_of").owned(owner)
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("sessions_of", call, _listed)

    async def erase_owner(self, owner: str) -> list[str]:
        """Delete every session of `owner` (the right to erasure); return the ids deleted.

        Reads only that owner's index; each session is deleted, then its index entry. A
        session written for the owner while the erasure runs may survive it (it is then
        still in the index); run it again once the user's sessions have stopped.

        Raises:
            InvalidArgumentError: `owner` is not a valid owner.
            UnsupportedCapabilityError: The backend keeps no owner index.
        """
        check_owner(owner)
        call = self._need_owners("erase_owner").erase_owned(owner)
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("erase_owner", call, _listed)

    async def rotate_id(self, old_id: str, new_id: str, *, owner: str | None = None) -> bool:
        """Move a session to a new id, keeping its state and remaining TTL.

        The defence against session fixation: call it when a user logs in. The old id is gone
        afterwards. Atomic on the memory store and standalone Redis (one script); on Cluster,
        where the two keys may live on different nodes, it creates `new_id` only if absent,
        then deletes `old_id` only if unchanged, taking `new_id` back if not: a concurrent
        write to `old_id` is never lost (it lands before the move, which then fails with
        `VersionConflictError`, or after it, as a new session under `old_id`), and a crash
        between the steps leaves the session under both ids, never under none.

        Args:
            old_id: The session's id now.
            new_id: Its new id, unused.
            owner: Index `new_id` under this user (see `sessions_of`); the old id's entry
                leaves the index by itself.

        Returns:
            True if moved, False if `old_id` holds no session (nothing changed).

        Raises:
            InvalidSessionIdError: An id is not valid.
            InvalidArgumentError: The ids are the same.
            SessionExistsError: `new_id` holds a session; nothing changed.
            VersionConflictError: The session changed during the move; nothing moved.
            UnsupportedCapabilityError: The backend can neither move nor compare-and-set.
        """
        check_session_id(old_id)
        check_session_id(new_id)
        if old_id == new_id:
            raise InvalidArgumentError(
                "rotate_id needs a new_id different from old_id; pass a fresh random id"
            )
        call = self._rotate_id(old_id, new_id, owner)
        if self._instrumentation is None:
            return await call
        return await self._instrumentation.observe("rotate_id", call, _found)

    async def _rotate_id(self, old_id: str, new_id: str, owner: str | None) -> bool:
        owning = self._owning("rotate_id(owner=...)", owner)
        if owning is None:
            return await protection.rotate_id(self, old_id, new_id)
        seconds = await self._need_expiry("rotate_id(owner=...)").remaining(old_id)
        if seconds is None:
            return False
        await owning.before([new_id], seconds)
        moved = await protection.rotate_id(self, old_id, new_id)
        await owning.after([new_id], seconds)
        return moved

    def _ttl_or_default(self, ttl: TTL | None) -> int:
        return self._default_ttl if ttl is None else ttl_seconds(ttl)

    def _transformed_encode(self, state: Mapping[str, Any]) -> bytes:
        data = self._codec.encode(state)
        for transform in self._transforms:
            data = transform.encode(data)
        return data

    def _encode_for(self, session_id: str, state: Mapping[str, Any]) -> bytes:
        """Return the stored bytes of `state`: codec, size limit, transforms, encryption."""
        if self._plain:
            return self._encode(state)
        data = self._codec.encode(state)
        check_state_size(data, state, self.max_state_bytes)
        return self._after_codec(session_id, data)

    def _encode_with_copy(
        self, session_id: str, state: Mapping[str, Any]
    ) -> tuple[bytes, SessionState]:
        """Return the stored bytes of `state`, and what `load` will return for them."""
        codec = self._codec
        if isinstance(codec, StateCodec):
            data, copy = codec.encode_with_copy(state)
        else:
            data = codec.encode(state)
            copy = codec.decode(data)
        check_state_size(data, state, self.max_state_bytes)
        return self._after_codec(session_id, data), copy

    def _after_codec(self, session_id: str, data: bytes) -> bytes:
        # Encryption comes last: it must see compressed bytes, and it binds them to the id.
        for transform in self._transforms:
            data = transform.encode(data)
        if self.encryption is not None:
            data = self.encryption.seal(data, self._binding, session_id)
        return data

    def _decode_for(self, session_id: str, data: bytes) -> SessionState:
        """Return the state of stored bytes: decryption, then transforms and codec."""
        if self.encryption is not None:
            data = self.encryption.open(data, self._binding, session_id)
        return self._decode(data)

    def _transformed_decode(self, data: bytes) -> SessionState:
        for transform in reversed(self._transforms):
            data = transform.decode(data)
        return self._codec.decode(data)

    def _need_cas(self, method: str) -> CompareAndSet:
        if self._cas is None:
            raise self._unsupported(method, Capability.COMPARE_AND_SET)
        return self._cas

    def _need_expiry(self, method: str) -> ExpiryControl:
        if self._expiry is None:
            raise self._unsupported(method, Capability.EXPIRY)
        return self._expiry

    def _owning(self, method: str, owner: str | None) -> Owning | None:
        if owner is None:
            return None
        check_owner(owner)
        if not isinstance(self._backend, Owners):
            raise self._unsupported(method, Capability.OWNERS)
        return Owning(self._backend, owner)

    def _need_owners(self, method: str) -> Owners:
        if not isinstance(self._backend, Owners):
            raise self._unsupported(method, Capability.OWNERS)
        return self._backend

    def _need_scans(self, method: str) -> Scans:
        if self._scans is None:
            raise self._unsupported(method, Capability.SCANS)
        return self._scans

    def _lacking(self) -> str:
        return f"{type(self._backend).__name__} (the backend of {type(self).__name__})"


def _conflict() -> VersionConflictError:
    return VersionConflictError(
        "the session changed since its version was read, so nothing was written; "
        "load_versioned() it again and retry, or use update()"
    )


def _check_codec(codec: object) -> Codec:
    if not (callable(getattr(codec, "encode", None)) and callable(getattr(codec, "decode", None))):
        raise ConfigurationError(
            f"codec must have encode(state) -> bytes and decode(bytes) -> state, got "
            f"{describe(codec)}; pass e.g. codec=StateCodec()"
        )
    return codec  # type: ignore[return-value]


def _check_each(items: object, kind: type[Any], name: str, example: str) -> tuple[Any, ...]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ConfigurationError(
            f"{name} must be a list, got {describe(items)}; pass e.g. [{example}]"
        )
    checked = tuple(items)
    for item in checked:
        if not isinstance(item, kind):
            raise ConfigurationError(
                f"{name} must hold {kind.__name__} objects, got {describe(item)}; pass e.g. "
                f"[{example}]"
            )
    return checked


# What observers learn from each operation's result: outcome, bytes, attempts, sessions.


def _ok(_: object) -> Description:
    return Outcome.OK, 0, 1, 1


def _written(size: int) -> Description:
    return Outcome.OK, size, 1, 1


def _read(result: tuple[object, bytes | None]) -> Description:
    data = result[1]
    return (Outcome.MISS, 0, 1, 1) if data is None else (Outcome.HIT, len(data), 1, 1)


def _found(result: object) -> Description:
    return (Outcome.MISS if result is None or result is False else Outcome.HIT), 0, 1, 1


def _updated(result: tuple[SessionState | None, int, int]) -> Description:
    return Outcome.OK, result[1], result[2], 1


def _read_many(result: tuple[dict[str, SessionState | None], int]) -> Description:
    return Outcome.OK, result[1], 1, len(result[0])


def _read_many_timed(result: tuple[dict[str, TimedState | None], int]) -> Description:
    return Outcome.OK, result[1], 1, len(result[0])


def _described(result: dict[str, SessionInfo | None]) -> Description:
    return Outcome.OK, 0, 1, len(result)


def _written_many(result: tuple[int, int]) -> Description:
    return Outcome.OK, result[0], 1, result[1]


def _removed_many(count: int) -> Description:
    return Outcome.OK, 0, 1, count


def _counted(count: int) -> Description:
    return Outcome.OK, 0, 1, count


def _listed(ids: list[str]) -> Description:
    return Outcome.OK, 0, 1, len(ids)


def _rotated(report: RotationReport) -> Description:
    return Outcome.OK, 0, 1, report.scanned


def _tallied(counts: dict[str | None, int]) -> Description:
    return Outcome.OK, 0, 1, sum(counts.values())
