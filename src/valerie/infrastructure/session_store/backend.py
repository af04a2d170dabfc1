"""The byte-level backend contract: what a storage backend provides, required and optional.

A backend stores bytes under valid session ids, with a TTL in whole seconds; everything above
bytes (ids, TTLs and states checked, codec, transforms, versions, `update`, observers) is done
once by the store core (`EncodedSessionStore`), so every backend behaves the same.

Every backend subclasses `Backend` and implements its required primitives. Each optional
capability is a class of its own; a backend declares one by subclassing it, and must then
implement all of its abstract methods (Python refuses to create the backend otherwise, and
mypy says so). `capabilities_of(backend)` lists what a backend declares; a store call that
needs a capability the backend lacks raises `UnsupportedCapabilityError` before any I/O.

Atomicity: each primitive is atomic on its own; the ones that compare then write do both in
one atomic step across every process that shares the storage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Any, ClassVar

from .versions import version_of

ConnectionWaitHook = Callable[[float, bool], None]
"""Called by a pooled backend after a call waited for a free connection: the seconds it
waited, and whether it gave up (timed out). See `Backend.connection_wait_hook`."""


class Capability(StrEnum):
    """An optional capability of a backend, and the store methods that need it."""

    COMPARE_AND_SET = "compare-and-set"
    """`update`, `save(if_version=)`, `delete(if_version=)`."""
    EXPIRY = "expiry control"
    """`load(refresh_ttl=)`, `touch`, `ttl`."""
    LEASES = "leases"
    """`lock`."""
    SCANS = "scans"
    """`iter_ids`, `count`, `clear`."""
    BATCHES = "batches"
    """Fewer round trips for `load_many`, `save_many`, `delete_many`; without it they loop."""


class Backend(ABC):
    """The required primitives: every backend implements these.

    Attributes:
        name: The backend's name in observer events (e.g. `memory`, `redis`).
        connection_wait_hook: Set by the store when observers are attached; a backend with a
            connection pool calls it after each wait for a free connection. `None` otherwise:
            check it before measuring, so that no observer costs nothing.
    """

    name: ClassVar[str] = "custom"
    connection_wait_hook: ConnectionWaitHook | None = None

    @abstractmethod
    async def read(self, session_id: str) -> bytes | None:
        """Return the bytes stored under `session_id`, or `None` if missing or expired."""

    @abstractmethod
    async def write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        """Store `data` under `session_id`, replacing any value, expiring in `ttl_seconds`."""

    @abstractmethod
    async def remove(self, session_id: str) -> None:
        """Remove `session_id` if present; a missing one is not an error."""

    @abstractmethod
    async def contains(self, session_id: str) -> bool:
        """Return whether `session_id` is present and not expired."""

    @abstractmethod
    async def ping(self) -> dict[str, Any]:
        """Make a round trip to the storage; return facts about it (`topology` at least).

        Raises:
            BackendUnavailableError: The storage cannot serve right now.
        """

    async def close(self) -> None:  # noqa: B027 - a no-op by design, for backends without connections
        """Release connections; the backend reconnects if it is used again."""


class CompareAndSet(Backend):
    """Writes and removals conditional on the stored bytes' version (`versions.version_of`)."""

    @abstractmethod
    async def write_if(self, session_id: str, data: bytes, ttl_seconds: int, version: str) -> bool:
        """Write only if the stored bytes have `version` (`ABSENT`: nothing stored); atomic.

        Never retried by the backend: a retry of a write that did land would see a conflict.
        Returns whether it wrote.
        """

    @abstractmethod
    async def remove_if(self, session_id: str, version: str) -> bool:
        """Remove only if the stored bytes have `version`, atomically; True if now absent."""

    async def swap(
        self, session_id: str, previous: bytes | None, data: bytes | None, ttl_seconds: int
    ) -> tuple[bool, bytes | None]:
        """Replace `previous` by `data` (`None`: delete) if the stored bytes still are `previous`.

        Atomic, and never retried by the backend. Returns whether it swapped and, when it did
        not, the bytes stored now, so that `update` can try again without another read. The
        default uses `write_if` / `remove_if` then `read`; a backend can do it in one step.
        """
        version = version_of(previous)
        if data is None:
            swapped = await self.remove_if(session_id, version)
        else:
            swapped = await self.write_if(session_id, data, ttl_seconds, version)
        return swapped, None if swapped else await self.read(session_id)

    def last_seen(self, session_id: str) -> bytes | None:
        """Return the bytes this backend last swapped in for `session_id`, if it remembers.

        `update` starts from it instead of a read. A stale guess costs one failed `swap` (which
        returns the stored bytes), and `update` does not count it as a conflict. Default: `None`.
        """
        return None


class ExpiryControl(Backend):
    """Reading and renewing a session's TTL."""

    @abstractmethod
    async def read_and_touch(self, session_id: str, ttl_seconds: int) -> bytes | None:
        """Return the bytes (or `None`) and renew the TTL to `ttl_seconds`, atomically."""

    @abstractmethod
    async def touch(self, session_id: str, ttl_seconds: int) -> bool:
        """Renew the TTL; return whether the session exists."""

    @abstractmethod
    async def remaining(self, session_id: str) -> int | None:
        """Return the whole seconds left (rounded up), or `None` if missing."""


class Leases(Backend):
    """Per-session leases: a lock that expires by itself, held by whoever has its token."""

    @abstractmethod
    async def acquire_lease(self, session_id: str, token: str, milliseconds: int) -> bool:
        """Take the lease for `milliseconds` if it is free (or `token` holds it); atomic.

        Safe to retry: taking a lease one already holds succeeds.
        """

    @abstractmethod
    async def release_lease(self, session_id: str, token: str) -> bool:
        """Release the lease if `token` holds it; atomic. Return whether it did."""

    @abstractmethod
    async def extend_lease(self, session_id: str, token: str, milliseconds: int) -> bool:
        """Reset the lease's expiry if `token` holds it; atomic. Return whether it did."""


class Scans(Backend):
    """Walking and clearing every session of this backend (and nothing else)."""

    @abstractmethod
    def scan(self) -> AsyncIterator[str]:
        """Yield every live session id, in batches; none twice on a backend that can avoid it."""

    @abstractmethod
    async def clear(self) -> int:
        """Delete every session and lease of this backend; return how many sessions."""


class Batches(Backend):
    """Many sessions per round trip; without this capability the store loops instead."""

    @abstractmethod
    async def read_many(self, session_ids: list[str]) -> list[bytes | None]:
        """Return the bytes of each id, in order."""

    @abstractmethod
    async def write_many(self, items: list[tuple[str, bytes]], ttl_seconds: int) -> None:
        """Write each (id, bytes) with the same TTL; each write is atomic, the batch is not."""

    @abstractmethod
    async def remove_many(self, session_ids: list[str]) -> None:
        """Remove each id."""


_CAPABILITY_CLASSES: tuple[tuple[Capability, type[Backend]], ...] = (
    (Capability.COMPARE_AND_SET, CompareAndSet),
    (Capability.EXPIRY, ExpiryControl),
    (Capability.LEASES, Leases),
    (Capability.SCANS, Scans),
    (Capability.BATCHES, Batches),
)


def capabilities_of(backend: Backend) -> frozenset[Capability]:
    """Return the optional capabilities `backend` declares (by subclassing their classes)."""
    return frozenset(
        capability for capability, cls in _CAPABILITY_CLASSES if isinstance(backend, cls)
    )
