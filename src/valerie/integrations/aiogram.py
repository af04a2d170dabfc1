"""aiogram 3 on our stores: an FSM storage with atomic `update_data`, and event isolation on leases.

```python
store = RedisSessionStore(redis_url=..., prefix="bot:")
dispatcher = Dispatcher(
    storage=ValerieStorage(store),
    events_isolation=ValerieEventIsolation(store),
)
```

Needs the `aiogram` extra: `pip install 'valerie[aiogram]'`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import quote

from valerie.infrastructure.session_store import (
    DELETE,
    TTL,
    BackendError,
    InvalidArgumentError,
    LockNotOwnedError,
    SessionState,
    SessionStore,
)

from ._missing import missing

try:
    from aiogram.fsm.state import State
    from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, StateType, StorageKey
except ImportError as error:  # pragma: no cover - exercised in a child process without aiogram
    raise missing("aiogram", "aiogram 3") from error

__all__ = ["ValerieEventIsolation", "ValerieStorage", "session_id_of"]

_LOG = logging.getLogger("valerie.integrations.aiogram")


def session_id_of(key: StorageKey) -> str:
    """Return the session id that holds the FSM record of `key`.

    `aiogram:<bot>:<chat>:<user>:<thread>:<business connection>:<destiny>`, every field always
    present: `-` for a missing thread or business connection, `=` before a business connection's
    percent-encoded id, the destiny percent-encoded. No field can hold a `:`, so two different
    keys never share a session.
    """
    thread = "-" if key.thread_id is None else str(int(key.thread_id))
    business = (
        "-"
        if key.business_connection_id is None
        else "=" + quote(key.business_connection_id, safe="")
    )
    destiny = quote(key.destiny, safe="")
    return (
        f"aiogram:{int(key.bot_id)}:{int(key.chat_id)}:{int(key.user_id)}"
        f":{thread}:{business}:{destiny}"
    )


def _state_name(state: StateType) -> str | None:
    if state is None or isinstance(state, str):
        return state
    if isinstance(state, State):
        return state.state
    raise InvalidArgumentError(
        f"state must be a str, an aiogram State or None, not {type(state).__name__}; "
        "pass the State itself or its .state"
    )


def _data_of(data: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(
            f"data must be a mapping with str keys, not {type(data).__name__}; pass a dict"
        )
    return dict(data)


def _record(state: str | None, data: dict[str, Any]) -> Any:
    """The session's new value, or the delete sentinel when nothing is left to keep."""
    if state is None and not data:
        return DELETE
    return {"state": state, "data": data}


class ValerieStorage(BaseStorage):
    """An aiogram FSM storage on any of our stores; each `StorageKey` is one session.

    A key's state and data live together in one session (`{"state": ..., "data": {...}}`, id
    from `session_id_of`), renewed to `ttl` by every write and deleted when both are empty.
    Every write goes through the store's `update()`, so `update_data` is atomic across
    processes: two handlers updating one chat at once both keep their changes.

    Args:
        store: The session store (memory, Redis, Sentinel, Cluster...). Give it a prefix of
            its own, or share it: FSM ids all start with `aiogram:`.
        ttl: How long a key's record lives after its last write; `None` means the store's
            default TTL.
        close_store: Whether `close()` (which aiogram calls at shutdown) closes the store.
    """

    def __init__(
        self, store: SessionStore, *, ttl: TTL | None = None, close_store: bool = True
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.close_store = close_store

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        """Set the key's state (`None` clears it); its data is kept. Atomic."""
        name = _state_name(state)

        def with_state(current: SessionState | None) -> Any:
            return _record(name, dict((current or {}).get("data") or {}))

        await self.store.update(session_id_of(key), with_state, self.ttl)

    async def get_state(self, key: StorageKey) -> str | None:
        """Return the key's state, or `None`."""
        record = await self.store.load(session_id_of(key))
        return None if record is None else record.get("state")

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        """Replace the key's data; its state is kept. Atomic.

        Raises:
            SerializationError: `data` holds a value JSON cannot represent; nothing was written.
        """
        new_data = _data_of(data)

        def with_data(current: SessionState | None) -> Any:
            return _record((current or {}).get("state"), new_data)

        await self.store.update(session_id_of(key), with_data, self.ttl)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        """Return a copy of the key's data (`{}` when there is none)."""
        record = await self.store.load(session_id_of(key))
        return {} if record is None else dict(record.get("data") or {})

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        """Merge `data` into the key's data, like `dict.update`, and return the result.

        Atomic across processes (a compare-and-set retried on conflict): no concurrent
        `update_data` or `set_state` of the same key is lost, unlike aiogram's own storages,
        which read, merge and write back.
        """
        changes = _data_of(data)

        def merged(current: SessionState | None) -> Any:
            record = current or {}
            new_data = dict(record.get("data") or {})
            new_data.update(changes)
            return _record(record.get("state"), new_data)

        stored = await self.store.update(session_id_of(key), merged, self.ttl)
        return {} if stored is None else dict(stored.get("data") or {})

    async def close(self) -> None:
        """Close the store, unless this storage was made with `close_store=False`."""
        if self.close_store:
            await self.store.close()


class ValerieEventIsolation(BaseEventIsolation):
    """Handles the updates of one chat one at a time across every bot process, on leases.

    aiogram takes `lock(key)` around each update's handlers; here that is the store's lease on
    the key's session (`store.lock()`), renewed every third of `timeout` while the handler
    runs, so a long handler keeps it and a crashed process frees it within `timeout`.

    Args:
        store: The session store whose leases serialize the updates.
        timeout: Seconds a lease lasts without renewal (how long a crashed process can block
            a chat).
        wait: Seconds an update waits for the chat's lease before giving up with
            `SessionLockedError` (a `TimeoutError`); aiogram then reports the update as failed.
        close_store: Whether `close()` closes the store (by default the storage does that).
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        timeout: float = 30.0,
        wait: float = 10.0,
        close_store: bool = False,
    ) -> None:
        store.lock("aiogram:check", timeout=timeout, wait=wait)  # refuses bad bounds now
        self.store = store
        self.timeout = timeout
        self.wait = wait
        self.close_store = close_store

    @contextlib.asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        """Hold the key's lease while the block runs.

        Raises:
            SessionLockedError: Another process held it for all of `wait`.
        """
        async with self.store.lock(
            session_id_of(key), timeout=self.timeout, wait=self.wait
        ) as lease:
            renewal = asyncio.create_task(_keep_renewed(lease.extend, self.timeout / 3))
            try:
                yield
            finally:
                await _stop(renewal)

    async def close(self) -> None:
        """Close the store if this isolation was made with `close_store=True`."""
        if self.close_store:
            await self.store.close()


async def _keep_renewed(extend: Any, every: float) -> None:
    """Extend the lease every `every` seconds until cancelled or the lease is lost."""
    while True:
        await asyncio.sleep(every)
        try:
            await extend()
        except LockNotOwnedError:
            # A lost lease cannot be won back here; the release at the end of the block
            # reports it.
            return
        except BackendError as error:
            # A transient outage: the lease still runs for up to `timeout`, so the next
            # tick may still keep it.
            _LOG.warning(
                "could not renew an aiogram event lease, retrying in %.1f s: %s", every, error
            )


async def _stop(renewal: asyncio.Task[None]) -> None:
    """Cancel the renewal and wait for it; its own error never replaces the handler's."""
    renewal.cancel()
    try:
        await renewal
    except asyncio.CancelledError:
        if not renewal.cancelled():
            raise  # this task itself is being cancelled
    except Exception as error:
        _LOG.warning("the aiogram event lease renewal failed: %s", error)
