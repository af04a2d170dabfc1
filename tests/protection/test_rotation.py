"""Key rotation and session id rotation, on memory, one Redis server and a Cluster."""

from __future__ import annotations

import asyncio

import pytest

from tests.protection.conftest import KEY_A, KEY_B, Backend, bump, encryption
from valerie.infrastructure import InvalidArgumentError, VersionConflictError
from valerie.infrastructure.session_store.errors import DecryptionError, SessionExistsError
from valerie.infrastructure.session_store.protection import RotationReport


async def test_rotate_keys_moves_every_session_to_the_new_key_and_keeps_ttls(
    backend: Backend,
) -> None:
    """Sessions under A, keyring [B, A]: afterwards all under B, so A can be removed."""
    old = backend.open(encryption(KEY_A))
    await old.save_many({f"s{i}": {"i": i} for i in range(250)}, ttl=900)
    assert await old.key_usage() == {"key-a": 250}
    store = backend.open(encryption(KEY_B, KEY_A))
    reports: list[RotationReport] = []
    report = await store.rotate_keys(
        batch_size=100, progress=lambda r: reports.append(RotationReport(**vars(r)))
    )
    assert (report.scanned, report.resealed, report.current) == (250, 250, 0)
    assert [r.scanned for r in reports] == [100, 200, 250]
    assert await store.key_usage() == {"key-b": 250}
    retired = backend.open(encryption(KEY_B))
    assert await retired.load_many([f"s{i}" for i in range(250)]) == {
        f"s{i}": {"i": i} for i in range(250)
    }
    assert 890 <= (await retired.ttl("s7") or 0) <= 900
    again = await retired.rotate_keys()
    assert (again.scanned, again.resealed, again.current) == (250, 0, 250)


async def test_rotate_keys_seals_plaintext_in_migration_mode_and_counts_it_first(
    backend: Backend,
) -> None:
    """key_usage counts plaintext under None; rotation in migration mode seals it."""
    await backend.open(None).save_many({"p1": {"a": 1}, "p2": {"a": 2}})
    store = backend.open(encryption(KEY_A, migrate=True))
    await store.save("s1", {"a": 3})
    assert await store.key_usage() == {None: 2, "key-a": 1}
    report = await store.rotate_keys()
    assert (report.resealed, report.current) == (2, 1)
    assert await backend.open(encryption(KEY_A)).key_usage() == {"key-a": 3}


async def test_rotate_keys_leaves_unreadable_sessions_in_place_and_counts_them(
    backend: Backend,
) -> None:
    """A value no key opens is counted as unreadable and left as it is."""
    store = backend.open(encryption(KEY_B, KEY_A))
    await store.save("good", {"a": 1})
    await backend.open(None).save("plain", {"a": 2})
    report = await backend.open(encryption(KEY_B, KEY_A)).rotate_keys()
    assert (report.scanned, report.current, report.unreadable) == (2, 1, 1)
    assert await store.backend.read("plain") == b'{"a":2}'


async def test_rotate_keys_under_concurrent_updates_keeps_every_update(backend: Backend) -> None:
    """Rotating while 4 writers update: every update kept, every session under B."""
    sessions, rounds = 200, 5
    await backend.open(encryption(KEY_A)).save_many({f"s{i}": {"n": 0} for i in range(sessions)})
    store = backend.open(encryption(KEY_B, KEY_A))

    async def writer() -> None:
        for _ in range(rounds):
            for i in range(sessions):
                await store.update(f"s{i}", bump)

    rotation = asyncio.create_task(store.rotate_keys(batch_size=10))
    await asyncio.gather(*(writer() for _ in range(4)))
    report = await rotation
    assert report.scanned == sessions
    assert await store.key_usage() == {"key-b": sessions}
    states = await backend.open(encryption(KEY_B)).load_many([f"s{i}" for i in range(sessions)])
    assert all(state == {"n": 4 * rounds} for state in states.values())


async def test_rotate_keys_needs_encryption_and_a_sane_batch(backend: Backend) -> None:
    """Typed errors before any work."""
    with pytest.raises(InvalidArgumentError, match="needs a store with encryption"):
        await backend.open(None).rotate_keys()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="batch_size"):
            await backend.open(encryption(KEY_A)).rotate_keys(batch_size=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "encrypted"])
async def test_rotate_id_keeps_state_and_ttl_and_removes_the_old_id(
    backend: Backend, sealed: bool
) -> None:
    """The session is under the new id with its remaining TTL; the old id is gone."""
    store = backend.open(encryption(KEY_A) if sealed else None)
    await store.save("anonymous", {"cart": ["tea"]}, ttl=600)
    assert await store.rotate_id("anonymous", "logged-in") is True
    assert await store.load("logged-in") == {"cart": ["tea"]}
    assert 595 <= (await store.ttl("logged-in") or 0) <= 600
    assert not await store.exists("anonymous")
    assert await store.rotate_id("anonymous", "elsewhere") is False
    assert not await store.exists("elsewhere")


async def test_rotate_id_refuses_to_overwrite_and_changes_nothing(backend: Backend) -> None:
    """An existing new_id is never overwritten; both sessions stay as they were."""
    store = backend.open(encryption(KEY_A))
    await store.save("old", {"who": "old"})
    await store.save("new", {"who": "new"})
    with pytest.raises(SessionExistsError, match="refused to overwrite"):
        await store.rotate_id("old", "new")
    assert await store.load("old") == {"who": "old"}
    assert await store.load("new") == {"who": "new"}
    with pytest.raises(InvalidArgumentError, match="different from old_id"):
        await store.rotate_id("old", "old")


async def test_a_moved_encrypted_session_is_bound_to_its_new_id(backend: Backend) -> None:
    """After rotate_id the value opens under the new id only."""
    store = backend.open(encryption(KEY_A))
    await store.save("old", {"a": 1})
    await store.rotate_id("old", "new")
    raw = await store.backend.read("new")
    assert raw is not None
    await store.backend.write("old", raw, 60)
    with pytest.raises(DecryptionError):
        await store.load("old")


async def test_rotate_id_under_concurrent_updates_loses_no_write(backend: Backend) -> None:
    """Every update lands before the move (and moves with it) or after it (under the old id,
    as a new session); a move that meets an update fails with VersionConflictError and is
    retried."""
    store = backend.open(encryption(KEY_A))
    await store.save("old", {"n": 0})
    updates = 200
    conflicts = 0

    async def updater() -> None:
        for _ in range(updates):
            await store.update("old", bump)
            await asyncio.sleep(0)

    async def mover() -> None:
        nonlocal conflicts
        await asyncio.sleep(0.001)
        while True:
            try:
                assert await store.rotate_id("old", "new")
                return
            except VersionConflictError:
                conflicts += 1
                await asyncio.sleep(0)

    await asyncio.gather(updater(), updater(), mover())
    moved = await store.load("new")
    left = await store.load("old")
    assert moved is not None
    assert moved["n"] + (0 if left is None else left["n"]) == 2 * updates
