"""The command line over owners and encryption (issue 10): ls --owner, stats by key id,
doctor's encryption check, and an export that decrypts and an import that encrypts."""

from __future__ import annotations

import base64
import os

from tests.cli.conftest import Cli, store_args
from tests.support.redis_server import RedisServer
from valerie.infrastructure import Encryption, RedisSessionStore

KEYS = ",".join(f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}" for key_id in ("k2", "k1"))
OLD_KEY_ONLY = KEYS.split(",")[1]


async def test_ls_owner_lists_that_owners_sessions_only(
    cli: Cli, redis_server: RedisServer, prefix: str
) -> None:
    """--owner reads the owner's index; --match still filters."""
    async with RedisSessionStore(redis_server.url, prefix=prefix) as store:
        await store.save_many({f"a{i}": {} for i in range(5)}, owner="alice")
        await store.save_many({f"b{i}": {} for i in range(3)}, owner="bob")
    alice = cli("ls", "--json", "--owner", "alice", *store_args(redis_server, prefix))
    assert sorted(row["id"] for row in alice.json_lines()) == [f"a{i}" for i in range(5)]
    matched = cli(
        "ls", "--json", "--owner", "alice", "--match", "a[12]", *store_args(redis_server, prefix)
    )
    assert sorted(row["id"] for row in matched.json_lines()) == ["a1", "a2"]
    assert cli("ls", "--json", "--owner", "carol", *store_args(redis_server, prefix)).out == ""


async def test_stats_counts_sessions_per_key_id_and_doctor_names_the_keys(
    cli: Cli, redis_server: RedisServer, prefix: str
) -> None:
    """With VALERIE_SESSION_ENCRYPTION_KEYS, stats tells how many sessions each key sealed
    (and plaintext), so an operator knows when an old key can go; doctor names the keys."""
    env = {"VALERIE_SESSION_ENCRYPTION_KEYS": KEYS}
    old = Encryption.from_environ({"VALERIE_SESSION_ENCRYPTION_KEYS": OLD_KEY_ONLY})
    async with RedisSessionStore(redis_server.url, prefix=prefix, encryption=old) as store:
        await store.save_many({f"old{i}": {"n": i} for i in range(3)})
    new = Encryption.from_environ(env)
    async with RedisSessionStore(redis_server.url, prefix=prefix, encryption=new) as store:
        await store.save_many({f"new{i}": {"n": i} for i in range(4)})
    stats = cli("stats", "--json", *store_args(redis_server, prefix), env=env)
    assert stats.code == 0, stats.err
    assert stats.json()["key_ids"] == {"k2": 4, "k1": 3}
    doctor = cli(
        "doctor", "--json", "--max-latency-ms", "1000", *store_args(redis_server, prefix), env=env
    )
    found = {c["check"]: c for c in doctor.json()["checks"]}
    assert found["encryption"]["status"] == "pass"
    assert found["encryption"]["message"] == "2 keys, 'k2' encrypts, 'k1' only decrypt"
    assert KEYS.split(",")[0].split(":")[1] not in doctor.out + doctor.err


async def test_an_encrypted_store_exports_states_and_imports_them_sealed(
    cli: Cli, redis_server: RedisServer, prefix: str
) -> None:
    """export decrypts (the file holds states: keep it safe); import seals with the current key."""
    env = {"VALERIE_SESSION_ENCRYPTION_KEYS": KEYS}
    encryption = Encryption.from_environ(env)
    async with RedisSessionStore(redis_server.url, prefix=prefix, encryption=encryption) as store:
        await store.save("s", {"secret": "swordfish"}, ttl=600)
        exported = cli("export", *store_args(redis_server, prefix), env=env)
        assert exported.json_lines()[0]["state"] == {"secret": "swordfish"}
        assert cli("clear", "--yes", *store_args(redis_server, prefix), env=env).code == 0
        imported = cli("import", *store_args(redis_server, prefix), env=env, input=exported.out)
        assert imported.code == 0, imported.err
        assert await store.load("s") == {"secret": "swordfish"}
        assert b"swordfish" not in redis_server.command("GET", f"{prefix}s")
