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
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from .inspection import SessionInfo
from .versions import version_of


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A connection pool's state right now, for the `db.client.connection.*` metrics.

    Attributes:
        max: Connections the pool opens at most.
        used: Connections a call holds now.
        idle: Connections open and free now.
        pending: Calls waiting for a free connection now.
    """

    max: int
    used: int
    idle: int
    pending: int


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
    OWNERS = "owners"
    """`save(owner=)`, `update(owner=)`, `save_many(owner=)`, `sessions_of`, `erase_owner`."""
    RELOCATION = "relocation"
    """One atomic step for `rotate_id` and for sealing a value again (key rotation); without
    it they work in compare-and-set steps."""


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

    def pool_usage(self) -> PoolUsage | None:
        """The connection pool's state now; `None` (the default) for a backend without one."""
        return None

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

    async def read_many_with_ttl(self, session_ids: list[str]) -> list[tuple[bytes, int] | None]:
        """Return each id's bytes and milliseconds left (-1: no expiry), in order.

        `None` for a missing id. Default: `read` then `remaining` of each id (whole seconds).
        """
        found: list[tuple[bytes, int] | None] = []
        for session_id in session_ids:
            data = await self.read(session_id)
            seconds = None if data is None else await self.remaining(session_id)
            found.append(None if data is None or seconds is None else (data, seconds * 1000))
        return found

    async def describe_many(self, session_ids: list[str]) -> list[SessionInfo | None]:
        """Return each id's stored size and milliseconds left, in order; `None` if missing.

        Default: over `read_many_with_ttl`; a backend that can should not read the values.
        """
        return [
            None if item is None else SessionInfo(len(item[0]), item[1])
            for item in await self.read_many_with_ttl(session_ids)
        ]


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


class Relocation(Backend):
    """Rewriting a value in place with its TTL kept, and moving it to another id, atomically."""

    @abstractmethod
    async def replace(self, session_id: str, data: bytes, version: str) -> bool:
        """Write `data` keeping the remaining TTL, only if the stored bytes have `version`.

        Atomic; never retried by the backend. Returns whether it wrote.
        """

    @abstractmethod
    async def move(self, old_id: str, new_id: str, data: bytes, version: str) -> str:
        """Store `data` under `new_id` with `old_id`'s remaining TTL, and remove `old_id`.

        Only if `old_id` still has `version` and `new_id` holds nothing; atomic, never retried.
        Returns `"moved"`, `"missing"` (no `old_id`), `"exists"` (`new_id` taken) or
        `"changed"` (`old_id` has another version); nothing changed unless `"moved"`. A
        backend that cannot do it atomically in some deployment (Redis Cluster, where the
        keys may be on different nodes) returns `"unsupported"` there, and the store moves
        in compare-and-set steps instead.
        """


class Owners(Backend):
    """An index of sessions by owner (a user id), for listing and erasing a user's sessions.

    The promise: a live session written with an owner is never missing from that owner's
    index, on any deployment. The store calls `index_owner` before it writes the session and
    `confirm_owner` after, and `erase_owned` puts back the entry of a session that a
    concurrent write brought back; an entry leaves the index otherwise only when its recorded
    deadline has passed and its session is gone. So the index may hold ids of deleted or
    expired sessions for a while (`owned` filters them out), never miss a live one.
    """

    @abstractmethod
    async def index_owner(self, owner: str, session_ids: list[str], ttl_seconds: int) -> None:
        """Record each id under `owner`, with a deadline `ttl_seconds` from now.

        Idempotent. Also drops a few of the owner's entries whose deadline has passed and
        whose session is gone, so expired sessions leave the index without a scan.
        """

    @abstractmethod
    async def confirm_owner(self, owner: str, session_ids: list[str], ttl_seconds: int) -> None:
        """After the write: record each id under `owner` again if an erasure removed it."""

    @abstractmethod
    async def owned(self, owner: str) -> list[str]:
        """Return the ids of `owner`'s live sessions.

        Drops the entries whose deadline has passed and whose session is gone.
        """

    @abstractmethod
    async def erase_owned(self, owner: str) -> list[str]:
        """Delete every session indexed under `owner`, and its entries; return the ids deleted.

        An entry whose session is live again right after (a concurrent write) is kept.
        """


_CAPABILITY_CLASSES: tuple[tuple[Capability, type[Backend]], ...] = (
    (Capability.COMPARE_AND_SET, CompareAndSet),
    (Capability.EXPIRY, ExpiryControl),
    (Capability.LEASES, Leases),
    (Capability.SCANS, Scans),
    (Capability.BATCHES, Batches),
    (Capability.OWNERS, Owners),
    (Capability.RELOCATION, Relocation),
)


def capabilities_of(backend: Backend) -> frozenset[Capability]:
    """Return the optional capabilities `backend` declares (by subclassing their classes)."""
    return frozenset(
        capability for capability, cls in _CAPABILITY_CLASSES if isinstance(backend, cls)
    )
