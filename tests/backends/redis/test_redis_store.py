"""What only the Redis store has: its key layout, raw JSON values, server-side TTLs, its repr."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.support.acl import create_acl_user
from tests.support.children import python_env
from tests.support.redis_server import RedisServer, free_port
from valerie.infrastructure import (
    ABSENT,
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    LockNotOwnedError,
    MissingDependencyError,
    RedisSessionStore,
)
from valerie.infrastructure.session_store.backends.redis.keys import LOCK_SUFFIX

STATE = {"user_id": "user-123", "step": 1, "text": "Olá 💬"}


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A redis-py client of its own on the session's server: what any other client sees."""
    async with Redis.from_url(redis_server.url) as client:
        yield client


async def test_a_session_is_one_string_key_prefix_plus_id(redis_server: RedisServer) -> None:
    """The key is exactly prefix + session_id, and it is a Redis string."""
    async with RedisSessionStore(redis_server.url, prefix="chatbot:session:") as store:
        await store.save("user-123-session", STATE, ttl=3600)
        assert redis_server.command("TYPE", "chatbot:session:user-123-session") == b"string\n"
        await store.delete("user-123-session")


async def test_the_value_is_compact_utf8_json_any_client_can_parse(
    redis_server: RedisServer, client: Redis
) -> None:
    """Another service can GET the key and parse it as JSON."""
    async with RedisSessionStore(redis_server.url, prefix="raw-json:") as store:
        await store.save("s1", STATE)
        raw = await client.get("raw-json:s1")
        assert raw == json.dumps(STATE, separators=(",", ":"), ensure_ascii=False).encode()
        assert json.loads(raw) == STATE
        await store.delete("s1")


@pytest.mark.parametrize("ttl", [5, 3600, timedelta(days=1, seconds=7)])
async def test_server_side_ttl_matches_the_requested_one(
    redis_store: RedisSessionStore, ttl: int | timedelta, client: Redis
) -> None:
    """Redis holds the expiry natively, within one second of what was asked."""
    seconds = ttl if isinstance(ttl, int) else int(ttl.total_seconds())
    await redis_store.save("s1", STATE, ttl=ttl)
    remaining = await client.ttl(redis_store.prefix + "s1")
    assert seconds - 1 <= remaining <= seconds


async def test_default_ttl_is_set_on_the_server(redis_server: RedisServer, client: Redis) -> None:
    """A save without a TTL writes the store's default TTL."""
    async with RedisSessionStore(redis_server.url, prefix="dflt:", default_ttl=120) as store:
        await store.save("s1", STATE)
        remaining = await client.ttl("dflt:s1")
        assert 119 <= remaining <= 120


async def test_stores_with_different_prefixes_never_meet(redis_server: RedisServer) -> None:
    """The same id under two prefixes is two sessions."""
    async with (
        RedisSessionStore(redis_server.url, prefix="app:") as app,
        RedisSessionStore(redis_server.url, prefix="apple:") as apple,
    ):
        await app.save("s1", {"owner": "app"})
        await apple.save("s1", {"owner": "apple"})
        await app.delete("s1")
        assert await apple.load("s1") == {"owner": "apple"}


async def test_a_prefix_that_starts_another_sees_its_sessions(redis_server: RedisServer) -> None:
    """The documented limit: `app:` scans the keys of `app:v2:` too (a key cannot tell which
    store wrote it), while single-session calls stay apart."""
    async with (
        RedisSessionStore(redis_server.url, prefix="nested:") as outer,
        RedisSessionStore(redis_server.url, prefix="nested:v2:") as inner,
    ):
        await inner.save("alice", {"n": 1})
        assert await outer.load("alice") is None
        assert [session_id async for session_id in outer.iter_ids()] == ["v2:alice"]
        assert await outer.clear() == 1
        assert await inner.load("alice") is None


async def test_a_key_of_another_type_is_reported_as_corrupted(
    redis_store: RedisSessionStore, client: Redis
) -> None:
    """A hash where a session should be raises CorruptedSessionError and is left alone."""
    await client.hset(redis_store.prefix + "s1", "field", "value")
    with pytest.raises(CorruptedSessionError, match="Redis type"):
        await redis_store.load("s1")
    assert await client.type(redis_store.prefix + "s1") == b"hash"


async def test_two_stores_on_one_server_share_sessions(redis_server: RedisServer) -> None:
    """What one process saves, another process's store loads: the point of Redis."""
    async with (
        RedisSessionStore(redis_server.url, prefix="shared:") as first,
        RedisSessionStore(redis_server.url, prefix="shared:") as second,
    ):
        await first.save("s1", STATE)
        assert await second.load("s1") == STATE
        await second.delete("s1")
        assert not await first.exists("s1")


def test_url_and_prefix_are_readable_and_never_show_the_password() -> None:
    """redis_url (masked: user info as ***) and prefix are attributes; repr shows them."""
    store = RedisSessionStore("redis://app:s3cr3t@cache.internal:6380/2", prefix="bot:")
    assert store.redis_url == "redis://***@cache.internal:6380/2"
    assert store.prefix == "bot:"
    assert "s3cr3t" not in repr(store)
    assert repr(store) == (
        "RedisSessionStore(redis_url='redis://***@cache.internal:6380/2', prefix='bot:', "
        "default_ttl=3600)"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"redis_url": "http://localhost"}, "scheme"),
        ({"redis_url": "redis://:pw@host:notaport"}, "port is not a number"),
        ({"redis_url": "redis:///0"}, "no host"),
        ({"redis_url": "redis://host/db1"}, "database"),
        ({"prefix": ""}, "prefix"),
        ({"prefix": "bad\nprefix"}, "prefix"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"max_connections": 0}, "max_connections"),
        ({"default_ttl": 0}, "default_ttl"),
    ],
)
def test_bad_constructor_arguments_raise_clear_errors(
    kwargs: dict[str, object], match: str
) -> None:
    """Each bad argument raises a ValueError subclass naming it."""
    with pytest.raises(ValueError, match=match) as caught:
        RedisSessionStore(**kwargs)  # type: ignore[arg-type]
    assert "pw" not in str(caught.value)
    if match != "default_ttl":
        assert isinstance(caught.value, ConfigurationError)


def test_without_redis_py_the_package_imports_and_the_store_says_how_to_install() -> None:
    """redis-py is optional: the import works, and the Redis store names the extra to install."""
    script = """
import sys
sys.modules["redis"] = None  # as if redis-py were not installed
import valerie.infrastructure as infra
try:
    infra.RedisSessionStore()
except infra.MissingDependencyError as error:
    print(error)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=python_env(),
    )
    assert "pip install 'valerie[redis]'" in result.stdout
    assert issubclass(MissingDependencyError, ImportError)


async def test_clear_deletes_its_prefix_only(redis_server: RedisServer, client: Redis) -> None:
    """clear() on prefix 'app:' leaves 'apple:' and every other key alone."""
    async with (
        RedisSessionStore(redis_server.url, prefix="app:") as app,
        RedisSessionStore(redis_server.url, prefix="apple:") as apple,
    ):
        await app.save_many({f"s{n}": {"n": n} for n in range(2500)})
        await apple.save_many({f"s{n}": {"n": n} for n in range(10)})
        await client.set("unrelated", "x")
        lease = app.lock("s1")
        await lease.acquire()
        assert await app.clear() == 2500  # sessions counted; their locks deleted too
        with pytest.raises(LockNotOwnedError):
            await lease.release()
        assert await app.count() == 0
        assert await apple.count() == 10
        assert await client.get("unrelated") == b"x"
        await apple.clear()
        await client.delete("unrelated")


async def test_glob_characters_in_the_prefix_are_literal(redis_server: RedisServer) -> None:
    """A prefix with *, ? or [ ] matches itself only when scanning."""
    async with (
        RedisSessionStore(redis_server.url, prefix="a*:") as star,
        RedisSessionStore(redis_server.url, prefix="ab:") as plain,
    ):
        await star.save("s1", {})
        await plain.save("s1", {})
        assert [i async for i in star.iter_ids()] == ["s1"]
        assert await star.clear() == 1
        assert await plain.exists("s1")
        await plain.clear()


async def test_scans_and_batches_need_no_keys_or_flush_command(redis_server: RedisServer) -> None:
    """Under an ACL user barred from KEYS and FLUSH* (and from keys outside its prefix), every
    operation works: iteration is SCAN, clear is SCAN + UNLINK."""
    redis_server.command(
        "ACL", "SETUSER", "limited", "on", ">pw", "~acl:*", "+@all", "-keys", "-flushdb",
        "-flushall",
    )  # fmt: skip
    url = redis_server.url.replace("redis://", "redis://limited:pw@")
    async with RedisSessionStore(url, prefix="acl:") as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(20)})
        assert await store.update("s1", lambda s: {"n": 100}) == {"n": 100}
        assert await store.load_many(["s1", "s2"]) == {"s1": {"n": 100}, "s2": {"n": 2}}
        async with store.lock("s1"):
            assert await store.count() == 20
        assert await store.touch("s1")
        assert await store.load("s1", refresh_ttl=True) == {"n": 100}
        assert len([i async for i in store.iter_ids()]) == 20
        await store.delete_many(["s1", "s2"])
        assert await store.clear() == 18


async def test_versioned_writes_and_refreshes_keep_the_value_plain_json(
    redis_store: RedisSessionStore, client: Redis
) -> None:
    """After update and compare-and-set the key is still the state's JSON string."""
    await redis_store.update("s1", lambda s: {"n": 1})
    version = (await redis_store.load_versioned("s1")).version
    await redis_store.save("s1", {"n": 2}, if_version=version)
    raw = await client.get(redis_store.prefix + "s1")
    assert raw == b'{"n":2}'


async def test_a_version_is_the_sha1_of_the_stored_bytes(
    redis_server: RedisServer, redis_store: RedisSessionStore
) -> None:
    """The version is the SHA-1 of the value as Redis holds it, which its scripts compute too:
    a value written by another client has the version its bytes give."""
    key = redis_store.prefix + "s1"
    redis_server.command("SET", key, '{"written":"elsewhere"}')
    version = (await redis_store.load_versioned("s1")).version
    assert version == hashlib.sha1(b'{"written":"elsewhere"}').hexdigest()
    await redis_store.save("s1", {"n": 1}, if_version=version)
    assert await redis_store.load("s1") == {"n": 1}


async def test_touch_and_refresh_set_the_server_side_ttl(
    redis_store: RedisSessionStore, client: Redis
) -> None:
    """touch and load(refresh_ttl=) change Redis's own TTL for the key."""
    key = redis_store.prefix + "s1"
    await redis_store.save("s1", {}, ttl=10)
    await redis_store.touch("s1", ttl=1000)
    assert 999 <= await client.ttl(key) <= 1000
    await redis_store.load("s1", refresh_ttl=2000)
    assert 1999 <= await client.ttl(key) <= 2000


async def test_a_lease_is_a_key_beside_the_session(
    redis_store: RedisSessionStore, client: Redis
) -> None:
    """The lease key is prefix + id + LOCK_SUFFIX, with a millisecond expiry."""
    async with redis_store.lock("s1", timeout=30) as lease:
        key = redis_store.prefix + "s1" + LOCK_SUFFIX
        assert await client.get(key) == lease.token.encode()
        assert 29_000 < await client.pttl(key) <= 30_000
    assert await client.exists(key) == 0


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("socket_timeout=abc", "socket_timeout to a value that is not a positive number"),
        ("decode_responses=true", "decode_responses"),
        ("protocol=3", "protocol"),
        ("max_connections=2", "max_connections"),
    ],
)
def test_url_options_are_checked_when_the_store_is_created(query: str, match: str) -> None:
    """A query parameter redis-py cannot read, or one the store owns, is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match=match) as caught:
        RedisSessionStore(f"redis://:hunter2@localhost:6379/0?{query}")
    assert "hunter2" not in str(caught.value)


async def test_a_cancelled_call_waiting_for_a_connection_stays_cancelled(
    redis_server: RedisServer,
) -> None:
    """Cancelling a call that waits for a free connection cancels it, even when a connection
    frees up in the same step. (Without pipelining, a call waits for a connection slot of its
    own; pipelined calls that are cancelled while queued: tests/test_redis_pipelining.py.)"""
    async with RedisSessionStore(
        redis_server.url, prefix="cancel:", max_connections=1, pipelining=False
    ) as store:
        await store.save("s", {"n": 1})
        slots = store.backend._slots
        await slots.acquire()  # another call holds the only connection
        waiter = asyncio.create_task(store.load("s"))
        await asyncio.sleep(0.01)
        slots.release()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await store.load("s") == {"n": 1}


BUSY_SCRIPT = """
local start = redis.call('TIME')
while true do
    local now = redis.call('TIME')
    if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 400000 then return 1 end
end
"""


async def test_a_lock_cancelled_while_acquiring_is_not_left_held(
    redis_server: RedisServer, client: Redis
) -> None:
    """Cancelled after its request reached a busy server: the lease is given back anyway."""
    async with RedisSessionStore(redis_server.url, prefix="lockcancel:") as store:

        async def keep_server_busy() -> None:
            await client.eval(BUSY_SCRIPT, 0)

        busy = asyncio.create_task(keep_server_busy())
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1), store.lock("s", timeout=30, wait=10):
                pass
        await busy
        async with store.lock("s", wait=1):
            pass


# The first loop ends without close(): its sockets can only be dropped, which Python reports.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_store_can_be_used_from_two_event_loops_in_turn(redis_server: RedisServer) -> None:
    """asyncio.run twice with one store (a CLI, a test runner): the second run works."""
    store = RedisSessionStore(redis_server.url, prefix="loops:")
    asyncio.run(store.save("s", {"n": 1}))

    async def second_run() -> None:
        assert await store.load("s") == {"n": 1}
        await store.close()  # on this run's loop, so that this run leaves no socket behind

    asyncio.run(second_run())
    gc.collect()  # report the first loop's dropped sockets here, where they are expected


async def test_load_many_reports_a_key_of_another_type_as_corrupted(
    redis_store: RedisSessionStore, client: Redis
) -> None:
    """load_many treats a hash where a session should be as load does."""
    await client.hset(redis_store.prefix + "h", "f", "v")
    with pytest.raises(CorruptedSessionError):
        await redis_store.load_many(["h"])


async def test_update_is_right_when_another_process_wrote_last(redis_server: RedisServer) -> None:
    """Each store remembers the bytes it last wrote; when another store wrote meanwhile, the
    compare-and-set fails, answers with the stored bytes, and the update is applied to them."""
    first = RedisSessionStore(redis_server.url, prefix="cache:")
    second = RedisSessionStore(redis_server.url, prefix="cache:")
    async with first, second:
        for _ in range(10):
            for store in (first, second):
                await store.update("c", lambda s: {"n": (s or {"n": 0})["n"] + 1})
        await second.save("c", {"n": 100})  # a plain save the first store never saw
        await first.delete("c")
        await second.update("c", lambda s: {"n": -1 if s is None else s["n"] + 1})
        assert await first.load("c") == {"n": -1}
        await second.save("c", {"n": 7})
        assert await first.update("c", lambda s: {"n": (s or {"n": 0})["n"] + 1}) == {"n": 8}


async def test_a_lease_on_an_unreachable_server_is_a_typed_error() -> None:
    """Taking a lease while Redis cannot be reached raises BackendUnavailableError (the best
    effort to give back a lease that may have been taken fails too, and stays silent)."""
    async with RedisSessionStore(f"redis://127.0.0.1:{free_port()}", retries=0) as store:
        with pytest.raises(BackendUnavailableError):
            await store.lock("s1", wait=0).acquire()


async def test_refused_credentials_and_permissions_say_where_and_what_to_check(
    redis_server: RedisServer,
) -> None:
    """An AccessDeniedError names the server (masked), Redis's own reason, and what to check:
    the URL's credentials, or the injected client's; the command and the ACL grant needed."""
    user = create_acl_user(redis_server, prefix="mine:", password="right-horse-battery")
    wrong = user.url.replace(":right-horse-battery@", ":wrong-horse-battery@")
    where = f"Redis at redis://***@127.0.0.1:{redis_server.port}/0"
    async with RedisSessionStore(wrong, prefix="mine:") as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.load("s1")
    message = str(caught.value)
    assert message.startswith(f"{where} refused the store's credentials (invalid ")
    assert message.endswith(
        "); nothing was retried: check the user name and password in the URL "
        "(VALERIE_SESSION_REDIS_URL), and that the ACL user exists and is enabled"
    )
    client = Redis(
        port=redis_server.port,
        username=user.username,
        password="wrong-horse-battery",
        retry=Retry(NoBackoff(), 0),  # the client's own retries are not the subject here
    )
    async with RedisSessionStore(client=client, prefix="mine:") as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.load("s1")
    await client.aclose()
    message = str(caught.value)
    assert message.startswith(
        f"Redis at localhost:{redis_server.port} (the client given to the store) refused the "
        "store's credentials (invalid "
    )
    assert message.endswith(
        "check the user name and password of the client, and that the ACL user exists and is "
        "enabled"
    )
    async with RedisSessionStore(user.url, prefix="theirs:") as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.save("s1", {})
    message = str(caught.value)
    assert message.startswith(f"{where} refused SET: the ACL user lacks a permission (this user ")
    assert message.endswith(
        "); grant it the commands and the key pattern the store needs (see the README), or "
        "use a prefix it may write"
    )


async def test_an_unreachable_server_is_named_with_the_cause_and_what_to_check() -> None:
    """BackendUnavailableError names the server (masked), the error, the attempts made and
    what to check; a call sent once says so instead."""
    port = free_port()
    async with RedisSessionStore(f"redis://:hunter2@127.0.0.1:{port}", retries=0) as store:
        with pytest.raises(BackendUnavailableError) as caught:
            await store.load("s1")
        message = str(caught.value)
        assert message.startswith(
            f"Redis at redis://***@127.0.0.1:{port} is unavailable (ConnectionError: "
        )
        assert f"connecting to 127.0.0.1:{port}" in message  # redis-py's own account
        assert message.endswith(
            ") after 1 attempt(s) of at most 1s; check that the server is running and "
            "reachable, and the URL (VALERIE_SESSION_REDIS_URL)"
        )
        with pytest.raises(BackendUnavailableError) as caught:
            await store.save("s1", {}, if_version=ABSENT)
        message = str(caught.value)
        assert message.startswith(
            f"Redis at redis://***@127.0.0.1:{port} did not answer EVAL (ConnectionError: "
        )
        assert message.endswith(
            "); it was sent once, not retried (it must not run twice), so it may or may not "
            "have been applied; check that the server is running and reachable, and the URL "
            "(VALERIE_SESSION_REDIS_URL)"
        )


@pytest.mark.redis
async def test_a_command_redis_refuses_is_a_backend_error_naming_it() -> None:
    """Out of memory under noeviction: BackendError naming the server, the command and
    Redis's reason; not a corrupted session, not an outage."""
    with RedisServer(None, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction") as full:
        async with RedisSessionStore(full.url, prefix="oom:") as store:
            with pytest.raises(BackendError) as caught:
                await store.save("big", {"text": "x" * 2_000_000})
    assert type(caught.value) is BackendError
    assert str(caught.value) == (
        f"Redis at {full.url} refused SET: command not allowed when used memory > 'maxmemory'."
    )


def test_update_cache_size_is_checked() -> None:
    """update_cache_size must be an int >= 0 (0 turns the cache off)."""
    RedisSessionStore(update_cache_size=0)
    with pytest.raises(ConfigurationError, match="update_cache_size"):
        RedisSessionStore(update_cache_size=-1)
