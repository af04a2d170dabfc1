"""Encryption at rest through the store, on memory, one Redis server and a Cluster."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as redis_py

from tests.protection.conftest import KEY_A, KEY_B, Backend, encryption
from tests.support.backends import backend_url, skip_unless_every_deployment
from valerie.infrastructure import ABSENT, CorruptedSessionError, RedisSessionStore, SessionState
from valerie.infrastructure.session_store.errors import DecryptionError

STATE: SessionState = {
    "user": "Ada Lovelace",
    "address": "12 Analytical Way, London",
    "history": [{"role": "user", "content": "my card ends in 4242"}],
}
SECRETS = ("Ada", "Lovelace", "Analytical", "London", "4242", "history", "content")


async def test_a_sealed_session_round_trips_and_its_stored_bytes_show_nothing(
    backend: Backend,
) -> None:
    """What the backend holds contains none of the state's strings; load gives the state."""
    store = backend.open(encryption(KEY_A))
    await store.save("s1", STATE)
    raw = await store.backend.read("s1")
    assert raw is not None
    for word in SECRETS:
        assert word.encode() not in raw
    assert await store.load("s1") == STATE


async def _raw_value(backend: Backend, session_id: str) -> bytes:
    """The value as another Redis client reads it: `GET prefix+id`."""
    assert backend.url is not None
    client = redis_py.Redis.from_url(backend.url)
    try:
        raw = await client.get(backend.prefix + session_id)
    finally:
        await client.aclose()
    assert isinstance(raw, bytes)
    return raw


async def test_the_raw_redis_value_contains_none_of_the_states_strings(
    redis_backend: Backend,
) -> None:
    """Read by another client straight from Redis, the value shows nothing of the state."""
    await redis_backend.open(encryption(KEY_A)).save("s1", STATE)
    raw = await _raw_value(redis_backend, "s1")
    assert raw.startswith(b"vse\x01\x05key-a")
    for word in SECRETS:
        assert word.encode() not in raw


async def test_without_encryption_the_redis_value_stays_plain_json(
    redis_backend: Backend,
) -> None:
    """The contract: a Redis value is plain JSON unless encryption is turned on."""
    await redis_backend.open(None).save("s1", STATE)
    assert json.loads(await _raw_value(redis_backend, "s1")) == STATE


async def test_a_value_moved_to_another_id_fails_with_the_typed_error(backend: Backend) -> None:
    """A sealed value copied under another id is refused there and never returned."""
    store = backend.open(encryption(KEY_A))
    await store.save("victim", STATE)
    raw = await store.backend.read("victim")
    assert raw is not None
    await store.backend.write("attacker", raw, 60)
    with pytest.raises(DecryptionError) as caught:
        await store.load("attacker")
    assert caught.value.reason == "tampered"
    assert isinstance(caught.value, CorruptedSessionError)
    assert await store.backend.read("attacker") == raw  # left in place
    for call in (store.load_many(["attacker"]), store.load_versioned("attacker")):
        with pytest.raises(DecryptionError):
            await call
    with pytest.raises(DecryptionError):
        await store.update("attacker", lambda state: {"x": 1})


async def test_a_value_moved_to_another_prefix_fails(redis_backend: Backend) -> None:
    """Two Redis stores with the same keys but different prefixes cannot swap values."""
    keys = encryption(KEY_A)
    mine = redis_backend.open(keys)
    theirs = redis_backend.open(keys, prefix=redis_backend.prefix + "other:")
    await mine.save("s1", STATE)
    raw = await mine.backend.read("s1")
    assert raw is not None
    await theirs.backend.write("s1", raw, 60)
    with pytest.raises(DecryptionError, match="copied from another session id or store"):
        await theirs.load("s1")


async def test_a_wrong_key_under_the_same_id_fails(backend: Backend) -> None:
    """Other key material under the same key id: refused."""
    await backend.open(encryption(KEY_A)).save("s1", STATE)
    impostor = type(KEY_A)("key-a", bytes(32))
    with pytest.raises(DecryptionError) as caught:
        await backend.open(encryption(impostor)).load("s1")
    assert caught.value.reason == "tampered"


async def test_a_flipped_byte_fails(backend: Backend) -> None:
    """One bit changed in the stored value: refused, left in place."""
    store = backend.open(encryption(KEY_A))
    await store.save("s1", STATE)
    raw = await store.backend.read("s1")
    assert raw is not None
    broken = bytearray(raw)
    broken[-20] ^= 0x40
    await store.backend.write("s1", bytes(broken), 60)
    with pytest.raises(DecryptionError):
        await store.load("s1")
    assert await store.backend.read("s1") == bytes(broken)


async def test_plaintext_is_refused_outside_migration_mode(backend: Backend) -> None:
    """A session written without encryption is an error for an encrypting store."""
    await backend.open(None).save("s1", STATE)
    with pytest.raises(DecryptionError, match="migrate_plaintext=True") as caught:
        await backend.open(encryption(KEY_A)).load("s1")
    assert caught.value.reason == "plaintext"


async def test_migration_mode_reads_plaintext_and_seals_it_on_read(backend: Backend) -> None:
    """With migrate_plaintext, plaintext is read and sealed in place, its TTL kept."""
    await backend.open(None).save("s1", STATE, ttl=500)
    store = backend.open(encryption(KEY_A, migrate=True))
    assert await store.load("s1") == STATE
    raw = await store.backend.read("s1")
    assert raw is not None
    assert raw.startswith(b"vse")
    assert 495 <= (await store.ttl("s1") or 0) <= 500
    assert await backend.open(encryption(KEY_A)).load("s1") == STATE


async def test_a_session_read_under_an_old_key_is_sealed_under_the_new_one(
    backend: Backend,
) -> None:
    """Rewrite on read: after a load with [B, A], the session is under B, TTL kept."""
    await backend.open(encryption(KEY_A)).save("s1", STATE, ttl=500)
    store = backend.open(encryption(KEY_B, KEY_A))
    assert await store.load("s1") == STATE
    assert await store.key_usage() == {"key-b": 1}
    assert 495 <= (await store.ttl("s1") or 0) <= 500
    assert await backend.open(encryption(KEY_B)).load("s1") == STATE


async def test_every_capability_keeps_working_over_ciphertext(backend: Backend) -> None:
    """Update, versions, leases, batches, scans and TTLs, all on sealed values."""
    store = backend.open(encryption(KEY_A))

    def bump(state: SessionState | None) -> SessionState:
        state = state or {"n": 0}
        state["n"] += 1
        return state

    await asyncio.gather(*(store.update("counter", bump) for _ in range(20)))
    assert await store.load("counter") == {"n": 20}
    state, version = await store.load_versioned("counter")
    assert state == {"n": 20}
    await store.save("counter", {"n": 21}, if_version=version)
    await store.save("fresh", {"n": 0}, if_version=ABSENT)
    async with store.lock("counter"):
        assert await store.load("counter", refresh_ttl=100) == {"n": 21}
    assert await store.ttl("counter") == 100
    assert await store.touch("counter", ttl=200)
    await store.save_many({"b1": {"x": 1}, "b2": {"x": 2}})
    assert await store.load_many(["b1", "b2", "nope"]) == {
        "b1": {"x": 1},
        "b2": {"x": 2},
        "nope": None,
    }
    ids = sorted([session_id async for session_id in store.iter_ids()])
    assert ids == ["b1", "b2", "counter", "fresh"]
    assert await store.count() == 4
    await store.delete_many(["b1", "b2"])
    assert await store.exists("fresh")
    assert await store.clear() == 2


@pytest.mark.redis
@pytest.mark.parametrize("deployment", ["redis-tls", "redis-sentinel"])
async def test_encryption_works_the_same_over_tls_and_sentinel(
    request: pytest.FixtureRequest, deployment: str
) -> None:
    """Sealed values, updates, a moved value refused and rotate_id, on the other topologies."""
    skip_unless_every_deployment(request)
    url = backend_url(request, deployment)
    prefix = f"test:{uuid.uuid4().hex}:"
    async with RedisSessionStore(url, prefix, encryption=encryption(KEY_B, KEY_A)) as store:
        await store.save("s1", STATE)
        await store.update("s1", lambda state: {**(state or {}), "step": 2})
        raw = await store.backend.read("s1")
        assert raw is not None
        assert b"Lovelace" not in raw
        await store.backend.write("s2", raw, 60)
        with pytest.raises(DecryptionError):
            await store.load("s2")
        assert await store.rotate_id("s1", "s3")
        assert await store.load("s3") == {**STATE, "step": 2}
        await store.clear()
