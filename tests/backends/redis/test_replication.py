"""min_replicas: WAIT after every write, on the write's own connection, and what it proves.

WAIT counts the replicas that have every write its connection sent before it, so the tests
pause or kill replicas to make only the newest write missing, and count the WAITs a primary
received (`INFO commandstats`) to see which calls are followed by one.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from redis.crc import key_slot

from tests.support.backends import skip_unless_every_deployment
from tests.support.cluster import ClusterDeployment
from tests.support.redis_server import RedisServer
from tests.support.resp import call
from tests.support.sentinel import SentinelDeployment
from valerie.infrastructure import (
    ABSENT,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    RedisSessionStore,
    ReplicationError,
)

# --- support --------------------------------------------------------------------------------


def info(server: RedisServer, section: str) -> dict[str, str]:
    text = call(server.port, "INFO", section)
    assert isinstance(text, str)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def command_calls(server: RedisServer, command: str) -> int:
    """How many times `server` ran `command` since it started (INFO commandstats)."""
    stats = info(server, "commandstats").get(f"cmdstat_{command}", "calls=0")
    return int(stats.split(",")[0].removeprefix("calls="))


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.02)


def replica_caught_up(primary: RedisServer, replica: RedisServer) -> bool:
    """Whether `replica` is linked to `primary`, has applied everything it has, and has told
    it so (the acknowledged offset the primary's WAIT goes by)."""
    if info(replica, "replication").get("master_link_status") != "up":
        return False
    primary_info = info(primary, "replication")
    target = int(primary_info["master_repl_offset"])
    acknowledged = [
        int(value.split("offset=")[1].split(",")[0])
        for key, value in primary_info.items()
        if key.startswith("slave") and f"port={replica.port}," in value
    ]
    return bool(acknowledged) and acknowledged[0] >= target


def raw_get(server: RedisServer, key: str) -> str | None:
    """GET `key` straight from `server`, a primary or a replica (of a cluster too: READONLY)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as connection:
        encoded = key.encode()
        connection.sendall(
            b"READONLY\r\n*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(encoded), encoded)
        )
        with connection.makefile("rb") as reader:
            reader.readline()  # +OK, or an error outside cluster mode
            header = reader.readline()
            assert header.startswith(b"$"), header
            length = int(header[1:])
            return None if length < 0 else reader.read(length + 2)[:-2].decode()


@pytest.fixture
def replicated() -> Iterator[tuple[RedisServer, RedisServer]]:
    """A private primary with one replica in sync, free to be frozen."""
    fast_sync = ("--repl-diskless-sync", "no")
    primary = RedisServer(None, *fast_sync)
    replica = RedisServer(None, *fast_sync, "--replicaof", "127.0.0.1", str(primary.port))
    with primary, replica:
        wait_until(lambda: replica_caught_up(primary, replica), "replica in sync")
        yield primary, replica


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": 1, "replica_timeout": 2.0}, "replica_timeout"),
        ({"replica_timeout": 0}, "replica_timeout"),
    ],
)
def test_min_replicas_settings_are_checked(kwargs: dict[str, Any], match: str) -> None:
    """min_replicas must be >= 0 and replica_timeout between 0 and timeout."""
    with pytest.raises(ConfigurationError, match=match):
        RedisSessionStore(**kwargs)


# --- outcomes -------------------------------------------------------------------------------


@pytest.mark.redis
async def test_min_replicas_confirms_writes_that_are_then_on_the_replica(
    replicated: tuple[RedisServer, RedisServer],
) -> None:
    """With a replica in sync, each write returns once the replica has it: read straight from
    the replica right after the call, every write is there."""
    primary, replica = replicated
    async with RedisSessionStore(primary.url, prefix="ok:", min_replicas=1) as store:
        await store.save("s1", {"n": 1})
        assert raw_get(replica, "ok:s1") == '{"n":1}'
        await store.save_many({"s2": {"n": 2}, "s3": {"n": 3}})
        assert raw_get(replica, "ok:s3") == '{"n":3}'
        assert await store.update("s1", lambda s: {"n": 10}) == {"n": 10}
        assert raw_get(replica, "ok:s1") == '{"n":10}'
        await store.delete("s2")
        assert raw_get(replica, "ok:s2") is None
        assert await store.touch("s3", ttl=500)
        assert 490 < int(str(call(replica.port, "TTL", "ok:s3"))) <= 500


async def test_min_replicas_confirms_writes_through_sentinel(
    sentinel_deployment: SentinelDeployment,
) -> None:
    """Through Sentinel, a confirmed write is on the replica when the call returns."""
    prefix = f"wait:{uuid.uuid4().hex}:"
    async with RedisSessionStore(sentinel_deployment.url, prefix=prefix, min_replicas=1) as store:
        await store.save("s1", {"n": 1})
        replica = next(
            server
            for server in (sentinel_deployment.primary, sentinel_deployment.replica)
            if server is not sentinel_deployment.current_primary()
        )
        assert raw_get(replica, prefix + "s1") == '{"n":1}'


@pytest.mark.redis
async def test_min_replicas_without_replicas_raises_after_the_write() -> None:
    """No replica confirms: ReplicationError (acknowledged 0) after replica_timeout; the
    primary has the write, and the connection is still in step (the next call gets its own
    reply)."""
    with RedisServer() as server:  # surely without replicas
        async with RedisSessionStore(
            server.url, prefix="nowait:", min_replicas=1, replica_timeout=0.1
        ) as store:
            started = time.monotonic()
            with pytest.raises(ReplicationError) as caught:
                await store.save("s1", {"n": 1})
            assert 0.1 <= time.monotonic() - started < 0.9
            assert caught.value.acknowledged == 0
            assert isinstance(caught.value, BackendError)
            assert "0 of the 1 replicas" in str(caught.value)
            assert await store.load("s1") == {"n": 1}
            with pytest.raises(ReplicationError) as caught:
                await store.save_many({"s2": {"n": 2}})
            assert caught.value.acknowledged == 0
            server.command("HSET", "nowait:h", "f", "v")
            with pytest.raises(CorruptedSessionError):
                await store.update("h", lambda s: {"n": 1})
            assert await store.load("s2") == {"n": 2}


# --- WAIT confirms the write just made, and only it -------------------------------------------


@pytest.mark.redis
@pytest.mark.slow
async def test_wait_confirms_the_write_just_made(
    replicated: tuple[RedisServer, RedisServer],
) -> None:
    """Every earlier write is on the replica; then the replica is frozen, so that only the
    new write can be missing: the call raises ReplicationError (acknowledged 0), which a WAIT
    sent before the write (it would count the earlier writes) cannot do. Thawed, the replica
    confirms again, and has the write."""
    primary, replica = replicated
    async with RedisSessionStore(
        primary.url, prefix="order:", min_replicas=1, replica_timeout=0.3
    ) as store:
        await store.save("s1", {"n": 1})
        await store.save("s1", {"n": 2})  # the same pooled connection: it has written before
        wait_until(lambda: replica_caught_up(primary, replica), "replica in sync")
        replica.freeze()
        try:
            with pytest.raises(ReplicationError) as caught:
                await store.save("s1", {"n": 3})
            assert caught.value.acknowledged == 0
            with pytest.raises(ReplicationError):
                await store.update("s1", lambda s: {"n": 4})
        finally:
            replica.thaw()
        await store.save("s1", {"n": 5})
        assert raw_get(replica, "order:s1") == '{"n":5}'


@pytest.mark.redis
@pytest.mark.slow
async def test_a_wait_whose_reply_never_comes_raises_unavailable(
    replicated: tuple[RedisServer, RedisServer],
) -> None:
    """The replica is frozen, so WAIT blocks on the primary; the primary is then frozen too,
    so WAIT's reply never comes: the call raises BackendUnavailableError once the read times
    out (a command's timeout plus replica_timeout), not ReplicationError, which would claim
    that the server answered with a count."""
    primary, replica = replicated
    async with RedisSessionStore(
        primary.url, prefix="lost:", min_replicas=1, timeout=1.0, replica_timeout=0.8, retries=0
    ) as store:
        await store.save("s1", {"n": 1})
        replica.freeze()
        try:
            started = time.monotonic()
            saving = asyncio.create_task(store.save("s1", {"n": 2}))
            await asyncio.to_thread(
                wait_until,
                lambda: info(primary, "clients")["blocked_clients"] == "1",
                "WAIT blocking on the primary",
            )
            primary.freeze()
            with pytest.raises(BackendUnavailableError) as caught:
                await saving
            # One read of a command's timeout plus replica_timeout, not a retry's worth.
            assert 1.0 + 0.8 <= time.monotonic() - started < 1.0 + 0.8 + 0.5
            assert "WAIT did not answer" in str(caught.value)
        finally:
            primary.thaw()
            replica.thaw()
        assert await store.load("s1") == {"n": 2}


# --- which calls WAIT follows ----------------------------------------------------------------

Call = Callable[[RedisSessionStore], Awaitable[Any]]


async def _lock_and_release(store: RedisSessionStore) -> None:
    async with store.lock("s1", timeout=5):
        pass


async def _lock_extend_release(store: RedisSessionStore) -> None:
    async with store.lock("s1", timeout=5) as lease:
        await lease.extend(10)


async def _iterate(store: RedisSessionStore) -> None:
    async for _ in store.iter_ids():
        pass


WRITES: dict[str, tuple[Call, int]] = {
    "save": (lambda s: s.save("s1", {"n": 2}), 1),
    "save if_version": (lambda s: s.save("new", {}, if_version=ABSENT), 1),
    "update": (lambda s: s.update("s1", lambda state: {"n": 3}), 1),
    "delete": (lambda s: s.delete("s2"), 1),
    "delete if_version": (lambda s: s.delete("s3", if_version=ABSENT), 1),
    "touch": (lambda s: s.touch("s1", ttl=100), 1),
    "load refresh_ttl": (lambda s: s.load("s1", refresh_ttl=100), 1),
    "lock and release": (_lock_and_release, 2),
    "lock, extend, release": (_lock_extend_release, 3),
    "save_many": (lambda s: s.save_many({"a": {}, "b": {}, "c": {}}), 1),
    "delete_many": (lambda s: s.delete_many(["s1", "s2", "s3"]), 1),
    "clear": (lambda s: s.clear(), 1),
}
READS: dict[str, Call] = {
    "load": lambda s: s.load("s1"),
    "load_versioned": lambda s: s.load_versioned("s1"),
    "exists": lambda s: s.exists("s1"),
    "ttl": lambda s: s.ttl("s1"),
    "load_many": lambda s: s.load_many(["s1", "s2"]),
    "iter_ids": _iterate,
    "count": lambda s: s.count(),
    "ping": lambda s: s.ping(),
}


@pytest.mark.redis
@pytest.mark.parametrize("name", sorted(WRITES))
async def test_every_write_is_followed_by_one_wait(
    replicated: tuple[RedisServer, RedisServer], name: str
) -> None:
    """Each call that changes a session or its lease is followed by a WAIT (one per command
    that writes; a batch, or a page of clear(), is one), as the README says."""
    primary, _ = replicated
    call_it, waits = WRITES[name]
    async with RedisSessionStore(primary.url, prefix="w:", min_replicas=1) as store:
        await store.save_many({"s1": {"n": 1}, "s2": {"n": 2}})
        before = command_calls(primary, "wait")
        await call_it(store)
        assert command_calls(primary, "wait") - before == waits


@pytest.mark.redis
@pytest.mark.parametrize("name", sorted(READS))
async def test_reads_are_not_followed_by_wait(
    replicated: tuple[RedisServer, RedisServer], name: str
) -> None:
    """Calls that change nothing send no WAIT."""
    primary, _ = replicated
    async with RedisSessionStore(primary.url, prefix="r:", min_replicas=1) as store:
        await store.save_many({"s1": {"n": 1}, "s2": {"n": 2}})
        before = command_calls(primary, "wait")
        await READS[name](store)
        assert command_calls(primary, "wait") == before


# --- Cluster ----------------------------------------------------------------------------------


@pytest.fixture
def private_cluster(request: pytest.FixtureRequest) -> Iterator[ClusterDeployment]:
    """Three primaries with a replica each, of this test's own."""
    skip_unless_every_deployment(request)
    with ClusterDeployment(primaries=3, replicas_per_primary=1) as deployment:
        yield deployment


async def test_min_replicas_on_a_cluster_waits_on_each_slot_primary(
    private_cluster: ClusterDeployment, cluster_deployment: ClusterDeployment
) -> None:
    """On a cluster with replicas, writes (single, batched, compare-and-set) are on the
    replicas when the call returns; on one without, they raise ReplicationError (0)."""
    ids = [f"s{n}" for n in range(60)]  # spread over every primary
    async with RedisSessionStore(private_cluster.url, prefix="cwait:", min_replicas=1) as store:
        await store.save("one", {"n": 1})
        await store.save_many({session_id: {"id": session_id} for session_id in ids})
        assert await store.update("one", lambda s: {"n": 2}) == {"n": 2}
        await store.delete_many(ids[:10])
        for session_id in ids[8:12]:
            key = "cwait:" + session_id
            replica = private_cluster.replicas_of(primary_of(private_cluster, key))[0]
            expected = None if session_id in ids[:10] else f'{{"id":"{session_id}"}}'
            assert raw_get(replica, key) == expected
        replica = private_cluster.replicas_of(primary_of(private_cluster, "cwait:one"))[0]
        assert raw_get(replica, "cwait:one") == '{"n":2}'
        assert await store.count() == 51
    async with RedisSessionStore(
        cluster_deployment.url, prefix=f"cnowait:{uuid.uuid4().hex}:", min_replicas=1
    ) as lonely:
        with pytest.raises(ReplicationError) as caught:
            await lonely.save("s1", {"n": 1})
        assert caught.value.acknowledged == 0
        with pytest.raises(ReplicationError) as caught:
            await lonely.save_many({f"batch-{session_id}": {} for session_id in ids})
        assert caught.value.acknowledged == 0
        assert await lonely.load("s1") == {"n": 1}
        # Every slot primary got its share of the batch, not only those before the first
        # that fell short.
        batch = [f"batch-{session_id}" for session_id in ids]
        assert await lonely.load_many(batch) == {key: {} for key in batch}


def slot_ranges(port: int) -> dict[int, list[tuple[int, int]]]:
    """The slot ranges each primary serves, by port, as the node on `port` sees them."""
    ranges: dict[int, list[tuple[int, int]]] = {}
    reply = call(port, "CLUSTER", "SLOTS")
    assert isinstance(reply, list)
    for entry in reply:
        assert isinstance(entry, list)
        start, end, owner = entry[0], entry[1], entry[2]
        assert isinstance(start, int)
        assert isinstance(end, int)
        assert isinstance(owner, list)
        ranges.setdefault(int(str(owner[1])), []).append((start, end))
    return ranges


def primary_of(cluster: ClusterDeployment, key: str) -> RedisServer:
    slot = key_slot(key.encode())
    for port, spans in slot_ranges(cluster.primaries[0].port).items():
        if any(start <= slot <= end for start, end in spans):
            return cluster.node_at(port)
    raise AssertionError(f"no primary serves slot {slot}")


@pytest.mark.redis
@pytest.mark.slow
async def test_cluster_writes_with_min_replicas_recover_after_a_failover_on_the_same_store(
    private_cluster: ClusterDeployment,
) -> None:
    """Kill a primary under continuous update/save/save_many with min_replicas=1: calls fail
    (bounded) until its replica is promoted; within a few seconds of the promotion every write
    to its slots reaches the new primary (which, alone, confirms with ReplicationError(0));
    restarted, the old primary rejoins as a replica and every write succeeds again, all on the
    same store. A second store, idle meanwhile (its slot map still names the old primary),
    writes to those slots at the first try: the MOVED reply is learnt even though the WAIT
    after it is refused ("WAIT cannot be used with replica instances")."""
    victim = private_cluster.primaries[0]
    others = [node for node in private_cluster.nodes if node is not victim]
    victim_spans = slot_ranges(victim.port)[victim.port]
    candidates = [f"v{n}" for n in range(2000)]
    victim_ids = [
        i
        for i in candidates
        if any(start <= key_slot(f"rf:{i}".encode()) <= end for start, end in victim_spans)
    ][:24]
    other_ids = [i for i in candidates if i not in victim_ids][:24]
    assert len(victim_ids) == len(other_ids) == 24

    store = RedisSessionStore(
        private_cluster.url, prefix="rf:", timeout=0.5, replica_timeout=0.25, min_replicas=1
    )
    # Seeds without the victim, so that its first connection to the victim is made later.
    idle_url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in others)
    idle = RedisSessionStore(idle_url, prefix="rf:", timeout=0.5, min_replicas=1)
    outcomes: list[tuple[float, float, str, bool, str]] = []  # start, took, op, victim?, result
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        ops: list[tuple[str, Callable[[str], Awaitable[Any]]]] = [
            ("update", lambda i: store.update(i, lambda s: {"n": (s or {"n": 0})["n"] + 1})),
            ("save", lambda i: store.save(i, {"by": n})),
            ("save_many", lambda i: store.save_many({i: {"by": n}, f"{i}-b": {"by": n}})),
        ]
        round_ = 0
        while not stop.is_set():
            for ids, in_victim in ((victim_ids, True), (other_ids, False)):
                name, op = ops[(round_ + n) % len(ops)]
                session_id = ids[(round_ * 7 + n) % len(ids)]
                started = time.monotonic()
                try:
                    await op(session_id)
                    result = "ok"
                except ReplicationError as error:
                    result = f"replication:{error.acknowledged}"
                except BackendUnavailableError:
                    result = "unavailable"
                except BackendError as error:  # what must not happen
                    result = f"error:{error}"
                outcomes.append((started, time.monotonic() - started, name, in_victim, result))
            round_ += 1
            await asyncio.sleep(0.01)

    async with store, idle:
        await idle.save(other_ids[0], {"n": 0})  # learns the slot map, never meets the victim
        await store.save_many({i: {"n": 0} for i in victim_ids + other_ids})
        workers = [asyncio.create_task(worker(n)) for n in range(6)]
        await asyncio.sleep(1.0)
        killed_at = time.monotonic()
        victim.kill()
        promoted = await asyncio.to_thread(private_cluster.wait_for_failover, victim)
        promoted_at = time.monotonic()
        await asyncio.sleep(4.0)  # the new primary serves alone: writes there confirm 0
        victim.start()
        await asyncio.to_thread(private_cluster.wait_until_ok)
        rejoined_at = time.monotonic()
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.gather(*workers)

        assert promoted is not victim
        assert info(victim, "replication")["role"] == "slave"
        assert max(took for _, took, _, _, _ in outcomes) < 3.0  # every call is bounded
        assert not [o for o in outcomes if o[4].startswith("error:")], "untyped or wrong errors"
        during = [o for o in outcomes if killed_at + 0.2 < o[0] < promoted_at and o[3]]
        assert any(o[4] == "unavailable" for o in during), "the kill never showed"
        # A few seconds after the promotion every write to the victim's slots reaches the new
        # primary, which has no replica yet: ReplicationError(0), never unavailable.
        alone = [o for o in outcomes if promoted_at + 3.0 < o[0] < rejoined_at - 0.5 and o[3]]
        assert alone
        assert {o[4] for o in alone} == {"replication:0"}
        after = [o for o in outcomes if o[0] > rejoined_at + 1.0]
        assert after
        assert {o[4] for o in after} == {"ok"}
        assert {o[2] for o in after if o[3]} == {"update", "save", "save_many"}

        # The idle store's first write to the victim's slots meets the old primary, now a
        # replica: MOVED, and WAIT refused; it must go to the new primary and succeed.
        started = time.monotonic()
        await idle.save(victim_ids[0], {"idle": True})
        assert time.monotonic() - started < 1.5
        assert raw_get(promoted, "rf:" + victim_ids[0]) == '{"idle":true}'
        assert raw_get(victim, "rf:" + victim_ids[0]) == '{"idle":true}'  # replicated
