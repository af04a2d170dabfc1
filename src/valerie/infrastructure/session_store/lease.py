"""Per-session leases: a lock that expires by itself and that only its holder can release."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

from .backend import Leases
from .errors import LockNotOwnedError, SessionLockedError
from .instrumentation import Instrumentation, Outcome
from .validation import check_session_id, lease_seconds


class Lease:
    """A lease on one session's turn; use it as `async with store.lock(session_id) as lease:`.

    The holder is identified by a random token, so only this object can release or extend the
    lease; if it is not released within `timeout` seconds it expires by itself. Works over any
    backend with the `Leases` capability.

    Args:
        leases: The backend that keeps the lease.
        session_id: The session whose turn it guards.
        timeout: Seconds the lease lasts unless released or extended.
        wait: Seconds `acquire` waits for another holder; 0 tries once.
        instrumentation: Reports `acquire_lease`, `release_lease` and `extend_lease` to the
            store's observers; `None` when it has none.

    Raises:
        InvalidSessionIdError: `session_id` is not a valid id.
        InvalidTTLError: `timeout` is not a positive number of seconds (at most ten years),
            or `wait` is not a number of seconds >= 0.
    """

    __slots__ = ("_instrumentation", "_leases", "session_id", "timeout", "token", "wait")

    def __init__(
        self,
        leases: Leases,
        session_id: str,
        *,
        timeout: float,
        wait: float,
        instrumentation: Instrumentation | None = None,
    ) -> None:
        self._leases = leases
        self._instrumentation = instrumentation
        self.session_id = check_session_id(session_id)
        self.timeout = lease_seconds(timeout, "timeout")
        self.wait = lease_seconds(wait, "wait", zero_allowed=True)
        self.token = secrets.token_hex(16)

    def __repr__(self) -> str:
        return f"Lease(timeout={self.timeout:g}, wait={self.wait:g})"

    async def acquire(self) -> None:
        """Take the lease, waiting up to `wait` seconds for its current holder.

        Raises:
            SessionLockedError: It was not free within `wait` seconds.
        """
        if self._instrumentation is None:
            await self._acquire()
        else:
            await self._instrumentation.observe("acquire_lease", self._acquire(), _done)

    async def _acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        delay = 0.005
        milliseconds = math.ceil(self.timeout * 1000)
        while not await self._try_acquire(milliseconds):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SessionLockedError(
                    f"the session's lock stayed taken for the {self.wait:g}s this call waited; "
                    "retry later, or wait longer with lock(..., wait=...)"
                )
            await asyncio.sleep(min(remaining, random.uniform(delay / 2, delay)))
            delay = min(delay * 2, 0.1)

    async def _try_acquire(self, milliseconds: int) -> bool:
        try:
            return await self._leases.acquire_lease(self.session_id, self.token, milliseconds)
        except BaseException:
            # Cancelled (or failed) after the request may have reached the server: the lease
            # could be ours with nobody to release it, blocking the session for `timeout`.
            # Give it back, whatever becomes of this task.
            await _shielded(self._leases.release_lease(self.session_id, self.token))
            raise

    async def release(self) -> None:
        """Give the lease back.

        Raises:
            LockNotOwnedError: It had expired (and may be someone else's now).
        """
        if self._instrumentation is None:
            await self._release()
        else:
            await self._instrumentation.observe("release_lease", self._release(), _done)

    async def _release(self) -> None:
        # Shielded: a cancellation while leaving the block must not leave the lease held.
        released = asyncio.ensure_future(self._leases.release_lease(self.session_id, self.token))
        if not await asyncio.shield(released):
            raise _not_owned("release")

    async def extend(self, seconds: float | None = None) -> None:
        """Make the lease last `seconds` (default: its own timeout) from now.

        Raises:
            InvalidTTLError: `seconds` is not a positive number of seconds (at most ten years).
            LockNotOwnedError: It had already expired.
        """
        if self._instrumentation is None:
            await self._extend(seconds)
        else:
            await self._instrumentation.observe("extend_lease", self._extend(seconds), _done)

    async def _extend(self, seconds: float | None) -> None:
        lasting = self.timeout if seconds is None else lease_seconds(seconds, "seconds")
        if not await self._leases.extend_lease(
            self.session_id, self.token, math.ceil(lasting * 1000)
        ):
            raise _not_owned("extend")

    async def __aenter__(self) -> Lease:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.release()


async def _shielded(release: Coroutine[Any, Any, bool]) -> None:
    """Run a best-effort release to completion even if the caller is cancelled; ignore errors."""
    task = asyncio.ensure_future(release)
    with contextlib.suppress(BaseException):
        await asyncio.shield(task)


def _done(_: None) -> tuple[Outcome, int, int, int]:
    return Outcome.OK, 0, 1, 1


def _not_owned(action: str) -> LockNotOwnedError:
    return LockNotOwnedError(
        f"cannot {action} the session's lock: it expired before this holder was done, so "
        "another holder may have run meanwhile; use a longer timeout, or extend() it"
    )
