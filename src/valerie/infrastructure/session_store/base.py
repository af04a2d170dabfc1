"""The public contract of a session store, and the base that makes every backend behave alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

from .codec import DEFAULT_CODEC, SessionState
from .validation import TTL, check_session_id, ttl_seconds

DEFAULT_TTL_SECONDS = 3600

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

    async def save(self, session_id: str, state: Mapping[str, Any], ttl: TTL | None = None) -> None:
        """Store `state` under `session_id`; see `SessionStore.save`."""
        check_session_id(session_id)
        seconds = self._default_ttl if ttl is None else ttl_seconds(ttl)
        await self._write(session_id, DEFAULT_CODEC.encode(state), seconds)

    async def load(self, session_id: str) -> SessionState | None:
        """Return the session's state or `None`; see `SessionStore.load`."""
        data = await self._read(check_session_id(session_id))
        return None if data is None else DEFAULT_CODEC.decode(data)

    async def delete(self, session_id: str) -> None:
        """Remove the session if it exists; see `SessionStore.delete`."""
        await self._remove(check_session_id(session_id))

    async def exists(self, session_id: str) -> bool:
        """Return whether the session is stored; see `SessionStore.exists`."""
        return await self._contains(check_session_id(session_id))

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
