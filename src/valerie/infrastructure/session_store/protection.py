"""Key rotation and session id rotation, built on the backend contract.

Every write here is a compare-and-set against the bytes just read, so a concurrent writer
always wins and nothing it wrote is lost; each step is safe to interrupt and to run again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .backend import Capability, CompareAndSet, ExpiryControl, Relocation
from .errors import (
    BackendError,
    DecryptionError,
    InvalidArgumentError,
    SessionExistsError,
    VersionConflictError,
)
from .versions import ABSENT, version_of

if TYPE_CHECKING:
    from .store import EncodedSessionStore

_LOG = logging.getLogger("valerie.session_store")
_RESEAL_ATTEMPTS = 16  # per session, against writers that keep changing it under rotate_keys


@dataclass
class RotationReport:
    """What `rotate_keys()` has done so far (also what its `progress` callback receives).

    Attributes:
        scanned: Sessions looked at.
        resealed: Sessions sealed again under the current key.
        current: Sessions already under the current key (written meanwhile, or before).
        vanished: Sessions deleted or expired between the scan and the read.
        unreadable: Sessions that could not be opened (`DecryptionError`), left in place.
        conflicts: Compare-and-sets lost to a concurrent writer (then retried).
    """

    scanned: int = 0
    resealed: int = 0
    current: int = 0
    vanished: int = 0
    unreadable: int = 0
    conflicts: int = 0


async def reseal_quietly(store: EncodedSessionStore, session_id: str, data: bytes) -> None:
    """Seal `data` again under the current key if it is unchanged; a failure is not an error.

    Used by reads: the read already succeeded, and a write that does not land now is done by
    the next read or by `rotate_keys()`. A backend that cannot compare-and-set is left as is.
    """
    if not {Capability.RELOCATION, Capability.COMPARE_AND_SET} & store.capabilities:
        return
    try:
        await reseal(store, session_id, data)
    except (BackendError, DecryptionError) as error:
        _LOG.debug("a session read under an old key was not sealed again: %s", type(error).__name__)


async def reseal(store: EncodedSessionStore, session_id: str, data: bytes) -> bool:
    """Seal `data` under the current key in place, keeping its TTL; True if it did.

    Only if the session still holds exactly `data` (compare-and-set).
    """
    encryption = store.encryption
    assert encryption is not None
    plain = encryption.open(data, store._binding, session_id)
    sealed = encryption.seal(plain, store._binding, session_id)
    backend = store.backend
    if isinstance(backend, Relocation):
        return await backend.replace(session_id, sealed, version_of(data))
    cas = store._need_cas("rotate_keys")
    seconds = await _expiry(store, "rotate_keys").remaining(session_id)
    return seconds is not None and await cas.write_if(session_id, sealed, seconds, version_of(data))


async def rotate_keys(
    store: EncodedSessionStore,
    *,
    batch_size: int = 100,
    progress: Callable[[RotationReport], object] | None = None,
) -> RotationReport:
    """Seal every session not under the current key again; see `EncodedSessionStore`."""
    if store.encryption is None:
        raise InvalidArgumentError(
            "rotate_keys() needs a store with encryption; open the store with encryption=..."
        )
    if type(batch_size) is not int or batch_size < 1:
        raise InvalidArgumentError(
            f"batch_size must be an int >= 1, got {type(batch_size).__name__}; e.g. 100"
        )
    scans = store._need_scans("rotate_keys")
    if not isinstance(store.backend, Relocation):
        store._need_cas("rotate_keys")
    report = RotationReport()
    batch: list[str] = []
    async for session_id in scans.scan():
        batch.append(session_id)
        if len(batch) == batch_size:
            await _rotate_batch(store, batch, report)
            batch = []
            if progress is not None:
                progress(report)
    if batch:
        await _rotate_batch(store, batch, report)
        if progress is not None:
            progress(report)
    return report


async def _rotate_batch(store: EncodedSessionStore, ids: list[str], report: RotationReport) -> None:
    encryption = store.encryption
    assert encryption is not None
    for session_id, found in zip(ids, await _read_many(store, ids), strict=True):
        report.scanned += 1
        data = found
        for _ in range(_RESEAL_ATTEMPTS):
            if data is None:
                report.vanished += 1
                break
            if encryption.is_current(data):
                report.current += 1
                break
            try:
                if await reseal(store, session_id, data):
                    report.resealed += 1
                    break
            except DecryptionError:
                report.unreadable += 1
                break
            report.conflicts += 1
            data = await store.backend.read(session_id)
        else:
            raise VersionConflictError(
                f"rotate_keys met {_RESEAL_ATTEMPTS} concurrent changes of one session in a "
                "row; run it again (what it did so far is kept)"
            )


async def key_usage(store: EncodedSessionStore) -> dict[str | None, int]:
    """Count the sessions under each key id (`None`: plaintext); see `EncodedSessionStore`."""
    encryption = store.encryption
    counts: Counter[str | None] = Counter()
    batch: list[str] = []

    async def tally() -> None:
        for data in await _read_many(store, batch):
            if data is not None:
                counts[None if encryption is None else encryption.key_id_of(data)] += 1

    async for session_id in store._need_scans("key_usage").scan():
        batch.append(session_id)
        if len(batch) == 100:
            await tally()
            batch = []
    if batch:
        await tally()
    return dict(counts)


async def rotate_id(store: EncodedSessionStore, old_id: str, new_id: str) -> bool:
    """Move a session to a new id; see `EncodedSessionStore.rotate_id`."""
    backend = store.backend
    if not isinstance(backend, Relocation):
        store._need_cas("rotate_id")
        _expiry(store, "rotate_id")
    data = await backend.read(old_id)
    if data is None:
        return False
    moved = data
    if store.encryption is not None:
        # A sealed value is bound to its id: it is opened under the old one, sealed for the new.
        plain = store.encryption.open(data, store._binding, old_id)
        moved = store.encryption.seal(plain, store._binding, new_id)
    outcome = "unsupported"
    if isinstance(backend, Relocation):
        outcome = await backend.move(old_id, new_id, moved, version_of(data))
    if outcome == "unsupported":
        outcome = await _move_in_steps(store, old_id, new_id, moved, data)
    if outcome == "exists":
        raise SessionExistsError(
            "rotate_id refused to overwrite new_id, which holds a session; nothing changed. "
            "Pick an unused id (e.g. secrets.token_urlsafe())"
        )
    if outcome == "changed":
        raise VersionConflictError(
            "the session changed while rotate_id moved it, so nothing moved (the concurrent "
            "write is kept under the old id); call rotate_id again"
        )
    return outcome == "moved"


async def _move_in_steps(
    store: EncodedSessionStore, old_id: str, new_id: str, data: bytes, previous: bytes
) -> str:
    """Move with compare-and-set steps, where the two ids may be on different nodes.

    Creates `new_id` (holding `data`) only if absent, then deletes `old_id` only if it still
    holds `previous`; if that fails, `new_id` is taken back. No write is lost: a write to
    `old_id` before the delete makes the move fail ("changed") and stays; after it, it creates
    a new session under `old_id`. A delete of `old_id` before ours makes the move fail
    ("missing"), so a logout between the steps is never undone. A crash between the two steps
    leaves the session under both ids, never under none.
    """
    cas: CompareAndSet = store._need_cas("rotate_id")
    seconds = await _expiry(store, "rotate_id").remaining(old_id)
    if seconds is None:
        return "missing"
    if not await cas.write_if(new_id, data, seconds, ABSENT):
        return "exists"
    # swap, unlike remove_if, fails when the key is gone: a concurrent delete must win.
    removed, current = await cas.swap(old_id, previous, None, seconds)
    if removed:
        return "moved"
    await cas.remove_if(new_id, version_of(data))
    return "missing" if current is None else "changed"


def _expiry(store: EncodedSessionStore, method: str) -> ExpiryControl:
    return store._need_expiry(method)


async def _read_many(store: EncodedSessionStore, ids: list[str]) -> list[bytes | None]:
    batches = store._batches
    if batches is not None:
        return await batches.read_many(ids)
    return [await store.backend.read(session_id) for session_id in ids]
