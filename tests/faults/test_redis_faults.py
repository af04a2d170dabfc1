"""The Redis store against faults that are not outages: refused credentials, huge writes,
repeats from SCAN, injected clients, a close() under load, a missing Sentinel master.

Faults that need a misbehaving server (one that takes a command and never answers, or whose
SCAN repeats keys) are made by `LoopProxy` (`tests.support.loop_proxy`), a real TCP proxy in
front of a real redis-server.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.support.acl import create_acl_user
from tests.support.cluster import ClusterDeployment
from tests.support.loop_proxy import LoopProxy
from tests.support.redis_server import RedisServer
from tests.support.resp import acl_denials, call, command_calls
from tests.support.sentinel import SentinelDeployment
from tests.support.tls import TlsRedisServer
from valerie.infrastructure import (
    ABSENT,
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    RedisSessionStore,
    SessionStoreError,
)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A private server, whose counters only this test moves."""
    with RedisServer() as private:
        yield private


# --- credentials are not an outage -----------------------------------------------------------


def _assert_denied(error: AccessDeniedError, cause: str, secret: str | None, *words: str) -> None:
    assert error.cause == cause
    assert isinstance(error, SessionStoreError)
    assert isinstance(error, BackendError)
    assert isinstance(error, PermissionError)
    assert not isinstance(error, BackendUnavailableError)
    assert not isinstance(error, ConnectionError)
    message = str(error)
    for word in words:
        assert word in message, (word, message)
    assert "unavailable" not in message
    assert "attempt" not in message
    if secret is not None:
        assert secret not in message
        assert secret not in repr(error)


@pytest.mark.redis
async def test_a_wrong_password_is_access_denied_and_never_retried(server: RedisServer) -> None:
    """A wrong password: AccessDeniedError("authentication"), at once, after one AUTH only,
    although the store would retry an outage twice."""
    user = create_acl_user(server, prefix="cred:", password="right-horse-battery")
    url = user.url.replace(":right-horse-battery@", ":wrong-horse-battery@")
    async with RedisSessionStore(url, prefix="cred:", retries=2) as store:
        started = time.monotonic()
        with pytest.raises(AccessDeniedError) as caught:
            await store.save("s1", {"n": 1})
        assert time.monotonic() - started < 0.5
        assert acl_denials(server.port, "auth") == 1
        _assert_denied(caught.value, "authentication", "wrong-horse-battery", "password")
        with pytest.raises(AccessDeniedError):  # and so again: nothing is cached as healthy
            await store.load("s1")
        assert acl_denials(server.port, "auth") == 2


@pytest.mark.redis
async def test_an_unknown_user_or_a_missing_password_is_access_denied(server: RedisServer) -> None:
    """An ACL user that does not exist (WRONGPASS), and no password where the server needs one
    (NOAUTH), are authentication refusals too."""
    ghost = server.url.replace("redis://", "redis://ghost:boo-secret-pw@")
    async with RedisSessionStore(ghost, prefix="cred:") as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.exists("s1")
        _assert_denied(caught.value, "authentication", "boo-secret-pw", "ACL user")
    call(server.port, "CONFIG", "SET", "requirepass", "server-wide-secret")  # private server
    async with RedisSessionStore(server.url, prefix="cred:") as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.exists("s1")
        _assert_denied(caught.value, "authentication", None, "password")


@pytest.mark.redis
async def test_a_missing_permission_is_access_denied_and_sent_once(server: RedisServer) -> None:
    """An ACL user refused a key (outside its pattern) or a command (EVAL): AccessDeniedError
    ("permission") naming the command; the server saw exactly one refused attempt."""
    user = create_acl_user(server, prefix="mine:", password="perm-secret-pw")
    async with RedisSessionStore(user.url, prefix="theirs:") as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.save("s1", {"n": 1})
        assert acl_denials(server.port, "key") == 1
        _assert_denied(caught.value, "permission", "perm-secret-pw", "SET", "permission")
    no_eval = create_acl_user(
        server, prefix="mine:", password="perm-secret-pw", denied=("eval", "evalsha")
    )
    async with RedisSessionStore(no_eval.url, prefix="mine:") as store:
        await store.save("s1", {"n": 1})
        with pytest.raises(AccessDeniedError) as caught:
            await store.save("s1", {"n": 2}, if_version=ABSENT)
        assert acl_denials(server.port, "command") == 1
        _assert_denied(caught.value, "permission", "perm-secret-pw", "EVAL")
        assert await store.load("s1") == {"n": 1}


async def test_an_unverifiable_server_certificate_is_access_denied_once(
    tls_server: TlsRedisServer,
) -> None:
    """A TLS server whose certificate the client cannot verify (no CA given): the
    "certificate" cause, after a single connection (counted by a proxy), with the fix in the
    message."""
    async with LoopProxy(tls_server.port, raw=True) as proxy:
        url = f"rediss://127.0.0.1:{proxy.port}/0"
        async with RedisSessionStore(url, prefix="noca:", retries=2) as store:
            with pytest.raises(AccessDeniedError) as caught:
                await store.load("s1")
        assert len(proxy.links) == 1
        _assert_denied(caught.value, "certificate", None, "ssl_ca_certs", "certificate")


@pytest.mark.redis
@pytest.mark.slow
async def test_a_missing_client_certificate_is_access_denied() -> None:
    """Mutual TLS: a server that requires a client certificate refuses a client without one;
    that is the "certificate" cause too, and the message names ssl_certfile."""
    with TlsRedisServer(auth_clients="yes") as strict:
        url = strict.url + f"?ssl_ca_certs={strict.ca_cert}"
        async with RedisSessionStore(url, prefix="mtls:", retries=2) as store:
            with pytest.raises(AccessDeniedError) as caught:
                await store.save("s1", {})
            _assert_denied(caught.value, "certificate", None, "ssl_certfile")


async def test_a_wrong_password_on_a_cluster_is_access_denied(
    cluster_deployment: ClusterDeployment,
) -> None:
    """Through a Cluster's seed nodes, an unknown user is the authentication cause too."""
    url = cluster_deployment.url.replace("redis+cluster://", "redis+cluster://ghost:clu-secret@")
    async with RedisSessionStore(url, prefix="cauth:") as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.save("s1", {})
        _assert_denied(caught.value, "authentication", "clu-secret", "password")


async def test_a_wrong_password_through_sentinel_is_access_denied(
    sentinel_deployment: SentinelDeployment,
) -> None:
    """The Sentinels name the primary, whose ACL user's password is wrong: authentication."""
    user = create_acl_user(
        sentinel_deployment.primary, sentinel_deployment.replica, prefix="sauth:"
    )
    hosts = sentinel_deployment.url.removeprefix("redis+sentinel://")
    url = f"redis+sentinel://{user.username}:not-{user.password}@{hosts}"
    async with RedisSessionStore(url, prefix="sauth:") as store:
        with pytest.raises(AccessDeniedError) as caught:
            await store.load("s1")
        _assert_denied(caught.value, "authentication", user.password, "password")


@pytest.mark.redis
@pytest.mark.slow
async def test_sentinels_refusing_the_store_is_access_denied_once() -> None:
    """Sentinels that require a password the store does not give: authentication, naming
    ?sentinel_password=, each Sentinel asked once (not once per retry)."""
    with SentinelDeployment() as deployment:
        for sentinel in deployment.sentinels:
            call(sentinel.port, "ACL", "SETUSER", "default", "on", ">sentinel-pw", "~*", "+@all")
        proxies = [LoopProxy(sentinel.port) for sentinel in deployment.sentinels]
        for proxy in proxies:
            await proxy.__aenter__()
        try:
            hosts = ",".join(f"127.0.0.1:{proxy.port}" for proxy in proxies)
            url = f"redis+sentinel://{hosts}/{deployment.master_name}/0"
            async with RedisSessionStore(url, prefix="sent:", retries=2) as store:
                with pytest.raises(AccessDeniedError) as caught:
                    await store.save("s1", {})
        finally:
            for proxy in proxies:
                await proxy.__aexit__()
        _assert_denied(caught.value, "authentication", "sentinel-pw", "sentinel_password")
        assert len(str(caught.value)) < 400
        # Each Sentinel was asked once (a retry would ask each again): the handshake's
        # HELLO, refused (NOAUTH), and nothing more.
        assert [proxy.commands for proxy in proxies] == [["HELLO"]] * 3


# --- huge writes ----------------------------------------------------------------------------

BIG = 8 * 2**20  # above the 1 MiB beyond which a write is sent once


@pytest.mark.redis
async def test_a_large_write_whose_reply_is_lost_is_sent_once_and_says_so(
    server: RedisServer,
) -> None:
    """The server takes an 8 MiB save but its reply never comes back: one SET reaches the
    server (the write landed), not three, and the error says that it may have been applied
    and what to do (raise the timeout, or shrink the state). A small save under the same
    fault is re-sent, and succeeds: what the test tells apart."""
    async with (
        LoopProxy(server.port) as proxy,
        RedisSessionStore(proxy.url, prefix="big:", timeout=0.5, retries=2) as store,
    ):
        await store.save("warm", {})  # a pooled connection, whose replies get lost
        proxy.stall_replies()
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError) as caught:
            await store.save("big", {"blob": "x" * BIG})
        assert time.monotonic() - started < 0.5 + 1.0  # one attempt
        assert command_calls(server.port, "set") == 2  # warm, then big: once
        assert len(str(call(server.port, "GET", "big:big"))) > BIG  # it landed
        message = str(caught.value)
        for words in ("8.0 MiB", "sent once", "may have been applied", "raise timeout"):
            assert words in message, (words, message)
        assert "smaller state" in message
        assert "attempt" not in message

        await store.save("warm", {})  # a new pooled connection
        proxy.stall_replies()
        await store.save("small", {"n": 1})  # re-sent on a new connection
        assert command_calls(server.port, "set") == 2 + 1 + 2


@pytest.mark.redis
async def test_a_large_batch_is_sent_once_too(server: RedisServer) -> None:
    """save_many of states that together exceed 1 MiB: sent once, as a single save is."""
    async with (
        LoopProxy(server.port) as proxy,
        RedisSessionStore(proxy.url, prefix="bigb:", timeout=0.5, retries=2) as store,
    ):
        await store.save("warm", {})
        proxy.stall_replies()
        with pytest.raises(BackendUnavailableError, match="sent once"):
            await store.save_many({f"s{n}": {"blob": "x" * (BIG // 4)} for n in range(4)})
        assert command_calls(server.port, "set") == 1 + 4


@pytest.mark.redis
@pytest.mark.slow
async def test_a_large_value_goes_out_in_slices_each_within_the_timeout(
    server: RedisServer,
) -> None:
    """A 32 MiB state through a link of 24 MiB/s (over a second) with a 0.5 s timeout is stored
    at the first try: each 1 MiB slice of the value must go out within the timeout, not the
    whole value, so a write slower than the timeout but making progress is not cut off."""
    async with (
        LoopProxy(server.port, rate=24 * 2**20) as proxy,
        RedisSessionStore(proxy.url, prefix="slices:", timeout=0.5) as store,
    ):
        state = {"blob": "y" * (32 * 2**20)}
        started = time.monotonic()
        await store.save("s1", state)
        assert time.monotonic() - started > 1.0  # the link was slow indeed
        assert command_calls(server.port, "set") == 1
        assert await store.load("s1") == state


MEMORY_PROBE = """
import asyncio, gc, json, sys
from pathlib import Path
from valerie.infrastructure import RedisSessionStore

def status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)

async def main() -> None:
    size = 64 * 2**20
    async with RedisSessionStore(sys.argv[1], prefix="mem:", timeout=10) as store:
        await store.save("warm", {"n": 1})
        state = {"blob": "z" * size}
        gc.collect()
        before = status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak, VmHWM
        await store.save("s1", state)
        print(json.dumps({"extra": (status("VmHWM") - before) / size}))

asyncio.run(main())
"""


@pytest.mark.redis
@pytest.mark.slow
def test_saving_a_large_state_holds_about_one_copy_of_it(server: RedisServer) -> None:
    """A 64 MiB save raises the client's peak memory by about the state's JSON (one copy),
    not several: no round-trip decoding of a large state, no joined or re-sliced send buffers.
    Measured in a process of its own, whose peak resident size (Linux's VmHWM) is reset just
    before the save."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs to measure a peak of memory")
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, server.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    extra = json.loads(done.stdout)["extra"]
    assert extra < 1.5, f"saving took {extra:.2f}x the state's size in extra memory"


# --- SCAN repeats keys ------------------------------------------------------------------------


@pytest.mark.redis
async def test_count_and_clear_count_each_session_once_when_scan_repeats_keys(
    server: RedisServer,
) -> None:
    """SCAN may return a key twice (Redis resized its table during the walk); here the proxy
    makes the server answer the walk's first page twice. count() and clear() still count each
    session once, and clear() deletes them all."""
    sessions = {f"s{n}": {"n": n} for n in range(2500)}  # three pages of SCAN
    async with (
        LoopProxy(server.port) as proxy,
        RedisSessionStore(proxy.url, prefix="rep:") as store,
    ):
        await store.save_many(sessions)
        raw = Redis.from_url(proxy.url)
        try:
            proxy.repeat_next_scan()
            keys = [key async for key in raw.scan_iter(match="rep:*", count=1000)]
            assert len(keys) > len(set(keys)) == 2500  # the fault: keys come twice
        finally:
            await raw.aclose()
        proxy.repeat_next_scan()
        assert await store.count() == 2500
        assert proxy.scans_repeated == 2
        proxy.repeat_next_scan()
        assert sorted([i async for i in store.iter_ids()]) == sorted(sessions)
        proxy.repeat_next_scan()
        assert await store.clear() == 2500
        assert proxy.scans_repeated == 4
        assert await store.count() == 0


@pytest.mark.redis
async def test_clear_counts_what_unlink_deleted(server: RedisServer) -> None:
    """A session deleted by someone else between clear()'s SCAN and its UNLINK is not counted:
    clear() says how many it deleted itself."""
    async with (
        LoopProxy(server.port) as proxy,
        RedisSessionStore(proxy.url, prefix="gone:") as store,
    ):
        await store.save_many({f"s{n}": {} for n in range(10)})
        proxy.before_next("UNLINK", lambda: call(server.port, "DEL", "gone:s3"))
        assert await store.clear() == 9
        assert await store.count() == 0


@pytest.mark.slow
async def test_count_streams_in_bounded_memory(redis_server: RedisServer) -> None:
    """count() over 50,000 sessions holds a bounded window of keys (about 10,000), not a list
    or set of all of them."""
    prefix = f"cm:{uuid.uuid4().hex}:"
    async with RedisSessionStore(redis_server.url, prefix=prefix) as store:
        for start in range(0, 50_000, 5_000):
            await store.save_many({f"session-{n:08d}": {} for n in range(start, start + 5_000)})
        tracemalloc.start()
        try:
            assert await store.count() == 50_000
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4_000_000, f"count() peaked at {peak / 1e6:.1f} MB"
        assert await store.clear() == 50_000


# --- injected clients -------------------------------------------------------------------------


@pytest.mark.redis
async def test_an_injected_client_names_its_own_server_not_a_url(server: RedisServer) -> None:
    """A store given client= shows where that client points, in its repr and its errors, and
    never a URL it did not use nor VALERIE_SESSION_REDIS_URL."""
    client = Redis(host="127.0.0.1", port=server.port)
    try:
        store = RedisSessionStore(client=client, prefix="inj:")
        assert store.redis_url is None
        shown = repr(store)
        assert f"127.0.0.1:{server.port}" in shown
        assert "redis://" not in shown
        assert "6379" not in shown
        await store.save("s1", {"n": 1})
        assert await store.load("s1") == {"n": 1}
    finally:
        await client.aclose()
    dead = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    try:
        async with RedisSessionStore(client=dead, prefix="inj:") as broken:
            with pytest.raises(BackendUnavailableError) as caught:
                await broken.load("s1")
    finally:
        await dead.aclose()
    message = str(caught.value)
    assert "127.0.0.1:1 (the client given to the store)" in message
    assert "VALERIE_SESSION_REDIS_URL" not in message
    assert "redis://" not in message
    assert "client's settings" in message


def test_an_injected_cluster_client_is_described_by_its_seed_nodes(
    cluster_deployment: ClusterDeployment,
) -> None:
    """repr of a store with an injected RedisCluster names the seed nodes."""
    seed = cluster_deployment.startup_nodes[0]
    client = RedisCluster(host=seed[0], port=seed[1])
    store = RedisSessionStore(client=client, prefix="injc:")
    assert f"client=<RedisCluster the Cluster at {seed[0]}:{seed[1]}>" in repr(store)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Redis(decode_responses=True),
        lambda: RedisCluster(host="127.0.0.1", port=7000, decode_responses=True),
    ],
    ids=["Redis", "RedisCluster"],
)
def test_a_client_that_decodes_replies_is_refused(make: Any) -> None:
    """decode_responses=True would hand the store str where it reads bytes: refused at once,
    saying why and what to do."""
    with pytest.raises(ConfigurationError) as caught:
        RedisSessionStore(client=make())
    assert "decode_responses=True" in str(caught.value)
    assert "decode_responses=False" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"client": "redis://localhost:6379"}, "redis.asyncio.Redis"),
        ({"client": SyncRedis()}, "redis.asyncio.Redis"),
        ({"client": Redis(), "redis_url": "redis://localhost:6379"}, "not both"),
    ],
    ids=["a str", "a sync client", "with a URL"],
)
def test_a_client_the_store_cannot_use_is_refused(kwargs: dict[str, Any], match: str) -> None:
    """client= takes a redis.asyncio client, and not with redis_url (which would be ignored)."""
    with pytest.raises(ConfigurationError, match=match):
        RedisSessionStore(**kwargs)


# --- close() with calls in flight ---------------------------------------------------------------


def connected_clients(servers: list[RedisServer]) -> int:
    """Clients connected to `servers`, not counting the connection that asks."""
    total = 0
    for node in servers:
        text = call(node.port, "INFO", "clients")
        assert isinstance(text, str)
        total += int(text.split("connected_clients:")[1].split()[0]) - 1
    return total


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("topology", ["standalone", "sentinel", "cluster"])
async def test_close_with_800_compare_and_sets_in_flight_breaks_none(
    request: pytest.FixtureRequest, topology: str
) -> None:
    """close(), again and again, while 800 tasks run compare-and-sets (sent once, so a broken
    call shows): every call succeeds, every write is there, and once they are done no
    connection of the store is left open."""
    if topology == "standalone":
        private = RedisServer()
        request.addfinalizer(private.close)
        private.start()
        url, servers = private.url, [private]
    elif topology == "sentinel":
        deployment: SentinelDeployment = request.getfixturevalue("sentinel_deployment")
        url, servers = deployment.url, [deployment.primary, deployment.replica]
    else:
        cluster: ClusterDeployment = request.getfixturevalue("cluster_deployment")
        url, servers = cluster.url, list(cluster.nodes)
    baseline = connected_clients(servers)
    store = RedisSessionStore(
        url, prefix=f"closing:{uuid.uuid4().hex}:", timeout=10, max_connections=200
    )

    async def turn(n: int) -> None:
        await store.save(f"s{n}", {"n": n}, if_version=ABSENT)
        await store.update(f"s{n}", lambda state: {"n": (state or {"n": -1})["n"] + 1000})

    tasks = [asyncio.create_task(turn(n)) for n in range(800)]
    closes = 0
    while not all(task.done() for task in tasks):
        await asyncio.sleep(0.005)
        await store.close()
        closes += 1
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [repr(outcome) for outcome in outcomes if outcome is not None]
    assert not failures, f"{len(failures)} calls broke, e.g. {failures[:3]}"
    assert closes > 3
    found = await store.load_many([f"s{n}" for n in range(800)])
    assert found == {f"s{n}": {"n": n + 1000} for n in range(800)}
    assert await store.clear() == 800
    await store.close()
    gc.collect()  # an unclosed connection would warn (an error here) when collected
    await asyncio.sleep(0.1)  # let the servers see the closed sockets
    assert connected_clients(servers) == baseline


# --- messages that say what happened -----------------------------------------------------------


@pytest.mark.redis
async def test_a_send_once_call_says_it_was_sent_once_not_retried() -> None:
    """Against a dead port: a compare-and-set (sent once) says so, and that it may or may not
    have been applied, never "after 3 attempt(s)"; a plain load says how often it tried."""
    with RedisServer() as private:
        url = private.url
    async with RedisSessionStore(url, prefix="once:", retries=2) as store:
        with pytest.raises(BackendUnavailableError) as caught:
            await store.save("s1", {}, if_version=ABSENT)
        message = str(caught.value)
        assert "sent once, not retried" in message
        assert "may or may not have been applied" in message
        assert "attempt" not in message
        with pytest.raises(BackendUnavailableError, match=r"after 3 attempt\(s\) of at most 1s"):
            await store.load("s1")


async def test_a_master_name_no_sentinel_knows_gives_a_short_clear_error(
    sentinel_deployment: SentinelDeployment,
) -> None:
    """A master name the Sentinels do not know: a short message naming it and the fix, not
    kilobytes of redis-py reprs."""
    url = sentinel_deployment.url.replace("/valerie/", "/no-such-master/")
    async with RedisSessionStore(url, prefix="nomaster:") as store:
        with pytest.raises(BackendUnavailableError) as caught:
            await store.load("s1")
    message = str(caught.value)
    assert len(message) < 400, message
    assert "'no-such-master'" in message
    assert "master name" in message
    assert "<redis" not in message


@pytest.mark.redis
async def test_sentinels_that_do_not_answer_give_a_short_clear_error() -> None:
    """No Sentinel listening: a short message saying that none answered."""
    with RedisServer() as first, RedisServer() as second:
        url = f"redis+sentinel://127.0.0.1:{first.port},127.0.0.1:{second.port}/valerie/0"
    async with RedisSessionStore(url, prefix="nosentinel:", retries=0) as store:
        with pytest.raises(BackendUnavailableError) as caught:
            await store.load("s1")
    message = str(caught.value)
    assert len(message) < 400, message
    assert "no Sentinel answered" in message
    assert "<redis" not in message


@pytest.mark.redis
async def test_close_between_a_running_call_and_one_waiting_for_its_connection(
    server: RedisServer,
) -> None:
    """One connection: a call runs on it and another waits for it when close() comes. Both
    succeed, on the pool they started with, and the last one closes it: no connection is left
    open (an unclosed one would also warn, an error here, when collected)."""
    async with LoopProxy(server.port) as proxy:
        store = RedisSessionStore(proxy.url, prefix="pair:", max_connections=1, timeout=2)
        await store.save("warm", {})
        proxy.before_next("EVAL", lambda: time.sleep(0.05))  # the first call is in flight
        first = asyncio.create_task(store.save("a", {}, if_version=ABSENT))
        second = asyncio.create_task(store.save("b", {}, if_version=ABSENT))
        await asyncio.sleep(0.01)
        await store.close()
        await asyncio.gather(first, second)
        gc.collect()
        await asyncio.sleep(0.05)
        assert [link.writers[0].is_closing() for link in proxy.links] == [True] * len(proxy.links)
        assert await store.load_many(["a", "b"]) == {"a": {}, "b": {}}
        await store.close()
