"""What a production Redis must grant and keep: the exact ACL rule, and no eviction.

The README's ACL rule is tested both ways: a user created with exactly that rule (and nothing
more) runs every operation of the store, and the same user without any one command of the rule
fails the operation that needs it, so the rule is minimal. The eviction note is backed by
private servers with a small `maxmemory`: under `allkeys-lru` or `volatile-lru` acknowledged
saves vanish without a word (every session has a TTL, so `volatile-*` evicts them too), and
under `noeviction` a save that does not fit fails loudly with a typed error.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from urllib.parse import quote

import pytest

from tests.support.cluster import ClusterDeployment
from tests.support.redis_server import RedisServer, RedisServerMissing
from tests.support.resp import call_server
from tests.support.sentinel import SentinelDeployment
from valerie.infrastructure import (
    ABSENT,
    DELETE,
    BackendError,
    BackendUnavailableError,
    RedisSessionStore,
    ReplicationError,
)

pytestmark = pytest.mark.redis  # every test here starts a redis-server

# The rule the README gives, command by command (the key pattern is `~<prefix>*`).
ACL_COMMANDS = (
    "get",  # load, load_many, and inside scripts
    "set",  # save, save_many, and inside scripts
    "getex",  # load(refresh_ttl=...)
    "exists",  # exists
    "unlink",  # delete, delete_many, clear
    "expire",  # touch
    "pttl",  # ttl
    "scan",  # iter_ids, count, clear
    "eval",  # update, if_version, leases
    "del",  # scripts: update to None, delete(if_version=...), lease release
    "pexpire",  # scripts: lease extend, lease acquire retried by its holder
    "ping",  # ping
)
CLUSTER_COMMANDS = ("cluster|slots", "command")
"""Also needed on a Cluster: redis-py learns the slot map and the commands' key positions."""


def acl_rule(prefix: str, commands: Sequence[str] = ACL_COMMANDS) -> list[str]:
    """The README's rule for a store with `prefix`: these commands, on these keys only."""
    escaped = "".join(f"\\{char}" if char in "*?[]\\" else char for char in prefix)
    return ["resetkeys", f"~{escaped}*", "resetchannels", "-@all", *(f"+{c}" for c in commands)]


def create_user(servers: Sequence[RedisServer], rule: Sequence[str]) -> tuple[str, str]:
    """Create a user with exactly `rule` on every server; return its name and password."""
    username = f"acl-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    for server in servers:
        reply = call_server(
            server, "ACL", "SETUSER", username, "reset", "on", f">{password}", *rule
        )
        assert reply == "OK", reply
    return username, password


def with_user(url: str, username: str, password: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{rest}"


Operation = Callable[[RedisSessionStore], Awaitable[object]]


async def _save(store: RedisSessionStore) -> None:
    await store.save("a", {"n": 1})


async def _load(store: RedisSessionStore) -> None:
    assert await store.load("a") == {"n": 1}


async def _exists(store: RedisSessionStore) -> None:
    assert await store.exists("a")


async def _update(store: RedisSessionStore) -> None:
    assert await store.update("a", lambda state: {"n": (state or {"n": 0})["n"] + 1}) == {"n": 2}


async def _update_to_none(store: RedisSessionStore) -> None:
    await store.save("gone", {"n": 1})
    assert await store.update("gone", lambda state: DELETE) is None
    assert not await store.exists("gone")


async def _if_version(store: RedisSessionStore) -> None:
    await store.save("v", {"n": 1}, if_version=ABSENT)
    _, version = await store.load_versioned("v")
    await store.save("v", {"n": 2}, if_version=version)
    _, version = await store.load_versioned("v")
    await store.delete("v", if_version=version)
    assert not await store.exists("v")


async def _touch(store: RedisSessionStore) -> None:
    assert await store.touch("a", ttl=600)


async def _ttl(store: RedisSessionStore) -> None:
    assert await store.ttl("a") == 600


async def _refresh_ttl(store: RedisSessionStore) -> None:
    assert await store.load("a", refresh_ttl=900) == {"n": 2}


async def _leases(store: RedisSessionStore) -> None:
    async with store.lock("a", timeout=5) as lease:
        await lease.extend(10)
    async with store.lock("a", timeout=5, wait=0):
        pass


async def _batches(store: RedisSessionStore) -> None:
    await store.save_many({f"b{n}": {"n": n} for n in range(5)})
    assert await store.load_many(["b0", "b4"]) == {"b0": {"n": 0}, "b4": {"n": 4}}
    await store.delete_many(["b0", "b1"])


async def _iter_ids(store: RedisSessionStore) -> None:
    assert sorted([i async for i in store.iter_ids()]) == ["a", "b2", "b3", "b4"]


async def _count(store: RedisSessionStore) -> None:
    assert await store.count() == 4


async def _ping(store: RedisSessionStore) -> None:
    assert (await store.ping())["latency_ms"] > 0


async def _delete(store: RedisSessionStore) -> None:
    await store.delete("b2")
    assert not await store.exists("b2")


async def _clear(store: RedisSessionStore) -> None:
    assert await store.clear() == 3


# In order: each operation finds what the ones before it left.
OPERATIONS: dict[str, Operation] = {
    "save": _save,
    "load": _load,
    "exists": _exists,
    "update": _update,
    "update to None": _update_to_none,
    "if_version": _if_version,
    "touch": _touch,
    "ttl": _ttl,
    "refresh_ttl": _refresh_ttl,
    "leases": _leases,
    "batches": _batches,
    "iter_ids": _iter_ids,
    "count": _count,
    "ping": _ping,
    "delete": _delete,
    "clear": _clear,
}
# The first operation that needs each command, on a user that lacks it.
NEEDED_BY = {
    "get": "load",
    "set": "save",
    "getex": "refresh_ttl",
    "exists": "exists",
    "unlink": "batches",
    "expire": "touch",
    "pttl": "ttl",
    "scan": "iter_ids",
    "eval": "update",
    "del": "update to None",
    "pexpire": "leases",
    "ping": "ping",
}


async def run_operations(url: str, prefix: str) -> dict[str, Exception]:
    """Run every operation in turn on a store for `url`; return those that failed.

    Whatever is left under `prefix` is then deleted as the default user, so that tests
    sharing the server never meet these keys.
    """
    failures: dict[str, Exception] = {}
    async with RedisSessionStore(url, prefix=prefix, retries=0) as store:
        for name, operation in OPERATIONS.items():
            try:
                await operation(store)
            except Exception as error:
                failures[name] = error
    scheme, _, rest = url.partition("://")
    async with RedisSessionStore(f"{scheme}://{rest.rpartition('@')[2]}", prefix=prefix) as admin:
        await admin.clear()
    return failures


async def test_the_readme_rule_runs_every_operation(redis_server: RedisServer) -> None:
    """A user with exactly the README's rule runs every operation of the store."""
    prefix = f"readme-acl:{uuid.uuid4().hex[:8]}:"
    username, password = create_user([redis_server], acl_rule(prefix))
    failures = await run_operations(with_user(redis_server.url, username, password), prefix)
    assert failures == {}


@pytest.mark.parametrize("missing", ACL_COMMANDS)
async def test_the_readme_rule_is_minimal(redis_server: RedisServer, missing: str) -> None:
    """Without any one command of the rule, the operation that needs it fails, with a typed
    error that is not an outage; the operations before it still work."""
    prefix = f"readme-acl:{uuid.uuid4().hex[:8]}:"
    rule = acl_rule(prefix, [c for c in ACL_COMMANDS if c != missing])
    username, password = create_user([redis_server], rule)
    failures = await run_operations(with_user(redis_server.url, username, password), prefix)
    first = next(iter(failures), None)
    assert first == NEEDED_BY[missing], failures
    error = failures[first]
    assert isinstance(error, BackendError)
    assert not isinstance(error, BackendUnavailableError)
    assert password not in str(error)


async def test_a_user_confined_to_its_prefix_cannot_reach_other_keys(
    redis_server: RedisServer,
) -> None:
    """The key pattern is part of the rule: a store with another prefix is refused."""
    prefix = f"readme-acl:{uuid.uuid4().hex[:8]}:"
    username, password = create_user([redis_server], acl_rule(prefix))
    url = with_user(redis_server.url, username, password)
    async with RedisSessionStore(url, prefix=prefix + "x", retries=0) as inside:
        await inside.save("a", {"n": 1})  # prefix + "x" starts with prefix
        await inside.delete("a")
    async with RedisSessionStore(url, prefix="elsewhere:", retries=0) as outside:
        with pytest.raises(BackendError):
            await outside.save("a", {"n": 1})


async def test_a_database_other_than_0_also_needs_select(redis_server: RedisServer) -> None:
    """redis-py selects the URL's database on connect: +select is needed for /1 and above."""
    prefix = f"readme-acl:{uuid.uuid4().hex[:8]}:"
    url = redis_server.url.removesuffix("/0") + "/1"
    without = create_user([redis_server], acl_rule(prefix))
    with_select = create_user([redis_server], acl_rule(prefix, (*ACL_COMMANDS, "select")))
    assert await run_operations(with_user(url, *with_select), prefix) == {}
    failures = await run_operations(with_user(url, *without), prefix)
    assert set(failures) == set(OPERATIONS)


async def test_min_replicas_also_needs_wait(redis_server: RedisServer) -> None:
    """With min_replicas, WAIT follows each write: without +wait the write is refused outright;
    with it, WAIT runs (and, with no replica here, reports that none confirmed)."""
    prefix = f"readme-acl:{uuid.uuid4().hex[:8]}:"
    without = create_user([redis_server], acl_rule(prefix))
    with_wait = create_user([redis_server], acl_rule(prefix, (*ACL_COMMANDS, "wait")))
    for user, expected in ((with_wait, ReplicationError), (without, BackendError)):
        url = with_user(redis_server.url, *user)
        async with RedisSessionStore(url, prefix=prefix, min_replicas=1, retries=0) as store:
            with pytest.raises(expected) as caught:
                await store.save("a", {"n": 1})
            assert isinstance(caught.value, ReplicationError) == (expected is ReplicationError)


async def test_the_rule_on_sentinel_data_nodes(sentinel_deployment: SentinelDeployment) -> None:
    """Through Sentinel, the same rule on the data nodes runs every operation."""
    prefix = f"readme-acl:{uuid.uuid4().hex[:8]}:"
    servers = [sentinel_deployment.primary, sentinel_deployment.replica]
    username, password = create_user(servers, acl_rule(prefix))
    url = with_user(sentinel_deployment.url, username, password)
    assert await run_operations(url, prefix) == {}


async def test_the_rule_on_a_cluster(cluster_deployment: ClusterDeployment) -> None:
    """On a Cluster the rule needs CLUSTER SLOTS and COMMAND too, and each of them."""
    prefix = f"readme-acl:{uuid.uuid4().hex[:8]}:"
    nodes = cluster_deployment.nodes
    full = create_user(nodes, acl_rule(prefix, (*ACL_COMMANDS, *CLUSTER_COMMANDS)))
    url = cluster_deployment.url
    assert await run_operations(with_user(url, *full), prefix) == {}
    for missing in CLUSTER_COMMANDS:
        commands = [c for c in (*ACL_COMMANDS, *CLUSTER_COMMANDS) if c != missing]
        user = create_user(nodes, acl_rule(prefix, commands))
        failures = await run_operations(with_user(url, *user), prefix)
        assert "save" in failures, missing


# --- eviction ---------------------------------------------------------------------------------

STATE = {"history": ["x" * 100] * 10}  # about 1 KB of JSON


@pytest.fixture
def small_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A private server with 2 MB of maxmemory and the policy given as the test's parameter."""
    try:
        server = RedisServer(None, "--maxmemory", "2mb", "--maxmemory-policy", request.param)
    except RedisServerMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    with server:
        yield server


@pytest.mark.parametrize("small_server", ["allkeys-lru", "volatile-lru"], indirect=True)
async def test_an_evicting_policy_loses_acknowledged_saves_silently(
    small_server: RedisServer,
) -> None:
    """Under allkeys-lru, and under volatile-lru since every session has a TTL, saves that
    Redis acknowledged are gone later, and nothing says so."""
    async with RedisSessionStore(small_server.url, prefix="evict:") as store:
        for n in range(4000):
            await store.save(f"s{n}", STATE)  # every one acknowledged: no error
        kept = await store.load_many([f"s{n}" for n in range(4000)])
    lost = [session_id for session_id, state in kept.items() if state is None]
    assert len(lost) > 1000
    assert "s0" in lost


@pytest.mark.parametrize("small_server", ["noeviction"], indirect=True)
async def test_noeviction_refuses_a_save_loudly_and_keeps_every_acknowledged_one(
    small_server: RedisServer,
) -> None:
    """Under noeviction a save that does not fit raises BackendError (out of memory); every
    save that was acknowledged before it is still there."""
    saved: list[str] = []

    async def fill(store: RedisSessionStore) -> None:
        for n in range(4000):
            await store.save(f"s{n}", STATE)
            saved.append(f"s{n}")

    async with RedisSessionStore(small_server.url, prefix="full:") as store:
        with pytest.raises(BackendError, match="used memory > 'maxmemory'") as caught:
            await fill(store)
        assert not isinstance(caught.value, BackendUnavailableError)
        assert 100 < len(saved) < 4000
        kept = await store.load_many(saved)
    assert all(state == STATE for state in kept.values())
