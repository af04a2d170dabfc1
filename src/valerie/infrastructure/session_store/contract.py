"""The public contract of a session store: the type to annotate with, and the whole API.

`SessionStore` is what `get_session_store()` returns and what every store (memory, Redis, your
own) is. Only the four seed methods (`save`, `load`, `delete`, `exists`) are abstract: a store
written from scratch that implements just those works for those, gets `close`, the context
manager and the batches (as loops) for free, and raises `UnsupportedCapabilityError` for the
rest. The built-in stores implement everything (see `store.EncodedSessionStore`).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .backend import Capability
from .codec import SessionState
from .errors import UnsupportedCapabilityError
from .inspection import SessionInfo, TimedState
from .validation import TTL, check_ids, check_states

if TYPE_CHECKING:
    from .lease import Lease
    from .protection import RotationReport
    from .typed import Migration, TypedSessionStore
    from .versions import VersionedState


class Deletion(enum.Enum):
    """The type of `DELETE`."""

    DELETE = "DELETE"

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = Deletion.DELETE
"""Return it from `update`'s function to delete the session (returning `None` is an error)."""

UpdateResult = SessionState | Deletion
"""What `update`'s function returns: the new state, or `DELETE`."""

Updater = Callable[[SessionState | None], UpdateResult | Awaitable[UpdateResult]]
"""What `update` applies: the current state (or `None`) to the new state or `DELETE`; sync or
async."""

_Store = TypeVar("_Store", bound="SessionStore")
_Model = TypeVar("_Model")

DEFAULT_TTL_SECONDS = 3600
"""The default TTL of every built-in store: one hour."""


class SessionStore(ABC):
    """Keeps each conversation's state between turns, with an expiry.

    Annotate with this type: it shows the whole API. Every store is an async context manager
    that closes itself on exit. To write a backend, implement `backend.Backend` and pass it to
    `EncodedSessionStore` (see the README, "Writing a backend"); subclassing this class and
    implementing the four abstract methods also works, for those four.
    """

    __slots__ = ()

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The optional capabilities this store offers; none for a store written from scratch."""
        return frozenset()

    @property
    def default_ttl(self) -> int:
        """Seconds a session lives when `save` is called without a TTL (one hour by default)."""
        return DEFAULT_TTL_SECONDS

    @abstractmethod
    async def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        ttl: TTL | None = None,
        *,
        if_version: str | None = None,
        owner: str | None = None,
    ) -> None:
        """Store `state` under `session_id`, replacing what was there, expiring after `ttl`.

        Args:
            session_id: The conversation's id.
            state: A JSON object as a `dict`; it is copied, so later changes to it are not stored.
            ttl: Seconds (`int`) or a `timedelta` until the session expires; `None` means the
                store's default TTL.
            if_version: Write only if the session still has this version (from
                `load_versioned`); `ABSENT` writes only if the session does not exist.
                Atomic across processes. Needs compare-and-set.
            owner: The user the session belongs to, for `sessions_of` and `erase_owner`.
                Needs owners.

        Raises:
            InvalidSessionIdError: `session_id` is not a valid id.
            InvalidTTLError: `ttl` is not a positive whole number of seconds.
            SerializationError: `state` is not a JSON object; nothing was written.
            VersionConflictError: `if_version` was given and the session has changed; nothing
                was written.
            BackendUnavailableError: The backend did not answer in time.
        """

    @abstractmethod
    async def load(
        self, session_id: str, *, refresh_ttl: bool | TTL = False
    ) -> SessionState | None:
        """Return a fresh copy of the session's state, or `None` if it is missing or expired.

        Args:
            session_id: The conversation's id.
            refresh_ttl: `True` renews the session's TTL to the default, a TTL renews it to
                that, in the same atomic step as the read (sliding expiry). Needs expiry control.

        Raises:
            InvalidSessionIdError: `session_id` is not a valid id.
            CorruptedSessionError: The stored value cannot be decoded; it is left in place.
            BackendUnavailableError: The backend did not answer in time.
        """

    @abstractmethod
    async def delete(self, session_id: str, *, if_version: str | None = None) -> None:
        """Remove the session; removing a missing session is not an error.

        Args:
            session_id: The conversation's id.
            if_version: Remove only if the session still has this version. Needs
                compare-and-set.

        Raises:
            InvalidSessionIdError: `session_id` is not a valid id.
            VersionConflictError: `if_version` was given and the session has changed.
            BackendUnavailableError: The backend did not answer in time.
        """

    @abstractmethod
    async def exists(self, session_id: str) -> bool:
        """Return whether the session is stored and not expired.

        Raises:
            InvalidSessionIdError: `session_id` is not a valid id.
            BackendUnavailableError: The backend did not answer in time.
        """

    async def load_versioned(self, session_id: str) -> VersionedState:
        """Return the state (or `None`) and its version, for a later `save(if_version=...)`.

        The version is a hash of the stored bytes, so the value itself stays plain.
        """
        raise self._unsupported("load_versioned", Capability.COMPARE_AND_SET)

    async def update(
        self,
        session_id: str,
        fn: Updater,
        ttl: TTL | None = None,
        *,
        attempts: int = 64,
        owner: str | None = None,
    ) -> SessionState | None:
        """Apply `fn` to the session atomically; no concurrent update is ever lost.

        `fn` (sync or async) receives a fresh copy of the current state, or `None` when there is
        none, and returns the new state, or `DELETE` to delete the session. If another writer
        changed the session meanwhile, nothing is written and `fn` runs again on the new state
        (optimistic concurrency, with jittered backoff), so `fn` must not have side effects
        that cannot be repeated. Atomic across processes and hosts. Needs compare-and-set.
        `owner` records the user the session belongs to (needs owners).

        Returns:
            The new state as stored (what `load` would return), or `None` if deleted (or if
            there was no session and `fn` returned `None` or `DELETE`).

        Raises:
            UpdaterReturnedNoneError: `fn` returned `None` for an existing session (did it
                change the state in place and forget `return state`?); nothing was written.
            InvalidArgumentError: `fn` is not callable, or `attempts` is not an int >= 1.
            VersionConflictError: `attempts` tries all met a concurrent change.
            SerializationError: `fn` returned a state the codec cannot hold; nothing was written.
        """
        raise self._unsupported("update", Capability.COMPARE_AND_SET)

    async def touch(self, session_id: str, ttl: TTL | None = None) -> bool:
        """Renew the session's TTL without rewriting it; return whether it exists.

        Args:
            session_id: The conversation's id.
            ttl: The new TTL from now; `None` means the store's default TTL.
        """
        raise self._unsupported("touch", Capability.EXPIRY)

    async def ttl(self, session_id: str) -> int | None:
        """Return the session's remaining lifetime in whole seconds, or `None` if missing."""
        raise self._unsupported("ttl", Capability.EXPIRY)

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
        raise self._unsupported("lock", Capability.LEASES)

    async def load_many(self, session_ids: Iterable[str]) -> dict[str, SessionState | None]:
        """Return the states of many sessions (`None` for missing ones), in few round trips.

        Raises:
            InvalidArgumentError: `session_ids` is a single `str` or not an iterable.
            InvalidSessionIdError: An id is not valid; nothing was read.
        """
        return {session_id: await self.load(session_id) for session_id in check_ids(session_ids)}

    async def save_many(
        self,
        states: Mapping[str, Mapping[str, Any]],
        ttl: TTL | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        """Store many sessions, in few round trips; all are checked before any is written.

        Not a transaction: each session is written atomically, the batch is not.

        Args:
            states: Session id to state.
            ttl: The TTL of every session of the batch; `None` means the store's default.
            owner: The user every session of the batch belongs to (needs owners).

        Raises:
            InvalidArgumentError: `states` is not a mapping; nothing was written.
            InvalidSessionIdError, InvalidTTLError, SerializationError: An id, the TTL or a
                state is not valid; nothing was written.
        """
        for session_id, state in check_states(states).items():
            await self.save(session_id, state, ttl, owner=owner)

    async def describe_many(self, session_ids: Iterable[str]) -> dict[str, SessionInfo | None]:
        """Return the stored size and remaining lifetime of many sessions (`None` if missing).

        Reads no value (on Redis, `STRLEN` and `PTTL` pipelined: one round trip) and changes
        nothing; for operators' listings and statistics.

        Raises:
            InvalidArgumentError: `session_ids` is a single `str` or not an iterable.
            InvalidSessionIdError: An id is not valid; nothing was read.
            UnsupportedCapabilityError: The backend has no expiry control.
        """
        raise self._unsupported("describe_many", Capability.EXPIRY)

    async def load_many_with_ttl(self, session_ids: Iterable[str]) -> dict[str, TimedState | None]:
        """Return the states of many sessions with their remaining lifetime (`None` if missing).

        One round trip on Redis (`GET` and `PTTL` pipelined); the TTLs are not renewed. For
        exports.

        Raises:
            InvalidArgumentError: `session_ids` is a single `str` or not an iterable.
            InvalidSessionIdError: An id is not valid; nothing was read.
            CorruptedSessionError: A stored value is not a session.
            UnsupportedCapabilityError: The backend has no expiry control.
        """
        raise self._unsupported("load_many_with_ttl", Capability.EXPIRY)

    async def delete_many(self, session_ids: Iterable[str]) -> None:
        """Remove many sessions, in few round trips; missing ones are not an error.

        Raises:
            InvalidArgumentError: `session_ids` is a single `str` or not an iterable.
            InvalidSessionIdError: An id is not valid; nothing was deleted.
        """
        for session_id in check_ids(session_ids):
            await self.delete(session_id)

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
        raise self._unsupported("iter_ids", Capability.SCANS)

    async def count(self) -> int:
        """Return how many sessions this store holds (a walk of the store: O(sessions) time).

        Streams the walk: memory stays bounded whatever the store's size (on Redis, the last
        10,000 keys seen, to drop the repeats `SCAN` may return).
        """
        raise self._unsupported("count", Capability.SCANS)

    async def clear(self) -> int:
        """Delete every session of this store, and nothing else; return how many.

        On Redis only keys that start with the prefix are touched, in batches (`SCAN` +
        `UNLINK`), never `FLUSHDB`. Use a prefix that ends with a separator (`app:`), so that
        no other store's prefix starts with it (`apple:` does start with `app`).
        """
        raise self._unsupported("clear", Capability.SCANS)

    async def sessions_of(self, owner: str) -> list[str]:
        """Return the ids of the live sessions written with `owner=owner`. Needs owners."""
        raise self._unsupported("sessions_of", Capability.OWNERS)

    async def erase_owner(self, owner: str) -> list[str]:
        """Delete every session of `owner`; return the ids deleted. Needs owners."""
        raise self._unsupported("erase_owner", Capability.OWNERS)

    async def rotate_id(self, old_id: str, new_id: str, *, owner: str | None = None) -> bool:
        """Move a session to a new id, keeping its state and TTL; False if there was none.

        Needs relocation, or compare-and-set with expiry control.
        """
        raise self._unsupported("rotate_id", Capability.RELOCATION)

    async def rotate_keys(
        self,
        *,
        batch_size: int = 100,
        progress: Callable[[RotationReport], object] | None = None,
    ) -> RotationReport:
        """Seal every session not under the newest key again. Needs encryption and scans."""
        raise self._unsupported("rotate_keys", "encryption")

    async def key_usage(self) -> dict[str | None, int]:
        """Count the sessions under each key id (`None`: not encrypted). Needs scans."""
        raise self._unsupported("key_usage", Capability.SCANS)

    async def ping(self) -> dict[str, Any]:
        """Check that the store can serve, for a readiness probe.

        Returns:
            `latency_ms` of a round trip and facts about the topology (`topology`, and for
            Redis the server, the Sentinel master name or the cluster's primaries).

        Raises:
            BackendUnavailableError: The store cannot serve right now.
        """
        raise self._unsupported("ping", "ping")

    def typed(
        self,
        model: type[_Model],
        *,
        version: int = 1,
        migrations: Mapping[int, Migration] | None = None,
        version_key: str = "_schema_version",
    ) -> TypedSessionStore[_Model]:
        """Return a view of this store whose states are instances of `model`.

        Needs the `pydantic` extra. See `TypedSessionStore` for the arguments and guarantees.

        Raises:
            MissingDependencyError: Pydantic is not installed.
            ConfigurationError: Pydantic cannot take `model`, or the versions are inconsistent.
        """
        from .typed import TypedSessionStore

        return TypedSessionStore(
            self, model, version=version, migrations=migrations, version_key=version_key
        )

    async def close(self) -> None:  # noqa: B027 - a no-op by design, overridden by stores
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

    def _unsupported(self, method: str, capability: str) -> UnsupportedCapabilityError:
        if not method.endswith(")"):
            method += "()"
        return UnsupportedCapabilityError(
            f"{self._lacking()} does not offer {capability}, which {method} needs; nothing "
            "was read or written: use a backend that has it (see store.capabilities)",
            capability,
        )

    def _lacking(self) -> str:
        """Who lacks a capability, for error messages."""
        return type(self).__name__
