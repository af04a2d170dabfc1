"""Automatic pipelining: concurrent calls share a few connections, each keeps its own reply.

Real servers, no mocks: counts come from the server (`INFO stats`, `INFO commandstats`) or from
the fault proxy that loses a reply after the server ran the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from tests.support.cluster import ClusterDeployment
from tests.support.fault_proxy import FaultProxy, command_named, script
from tests.support.redis_server import RedisServer
from tests.support.resp import ReplyError, call, command_calls
from valerie.infrastructure import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    RedisSessionStore,
)
from valerie.infrastructure.session_store import ConnectionWaitEvent, Observer
from valerie.infrastructure.session_store.backends.redis.scripts import SWAP

pytestmark = pytest.mark.redis

TIMEOUT = 0.5
RETRIES = 1


pytestmark = pytest.mark.redis  # every test here starts a redis-server


@pytest.fixture
def private_server() -> Iterator[RedisServer]:
    """A server of this test's own: its connection counts are the store's alone."""
    with RedisServer() as server:
        yield server


def connections_received(server: RedisServer) -> int:
    """Connections the server accepted so far, not counting the one asking."""
    info = server.command("INFO", "stats").decode()
    (line,) = [row for row in info.splitlines() if row.startswith("total_connections_received:")]
    return int(line.partition(":")[2]) - 1


async def turns(store: RedisSessionStore, tasks: int, rounds: int) -> None:
    async def worker(n: int) -> None:
        for _ in range(rounds):
            state = await store.load(f"s{n}") or {"turn": 0}
            state["turn"] += 1
            await store.save(f"s{n}", state)

    await asyncio.gather(*(worker(n) for n in range(tasks)))


async def test_256_concurrent_turns_use_at_most_8_connections(
    private_server: RedisServer,
) -> None:
    """With pipelining (the default) 256 tasks share at most 8 sockets; without it, a call
    takes a connection of its own (the control: this count can exceed 8)."""
    before = connections_received(private_server) + 1
    async with RedisSessionStore(private_server.url, prefix="few:") as store:
        await turns(store, 256, 4)
        assert await store.load("s255") == {"turn": 4}
    pipelined = connections_received(private_server) - before
    before = connections_received(private_server) + 1
    async with RedisSessionStore(private_server.url, prefix="many:", pipelining=False) as store:
        await turns(store, 256, 4)
    unpipelined = connections_received(private_server) - before
    assert 1 <= pipelined <= 8
    assert unpipelined > 8


async def test_concurrent_calls_are_written_together(private_server: RedisServer) -> None:
    """200 loads issued in one step reach the server in a few writes, not 200: the server's
    connection count stays low and every caller gets its own state."""
    async with RedisSessionStore(private_server.url, prefix="together:") as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(200)})
        before = connections_received(private_server) + 1
        loaded = await asyncio.gather(*(store.load(f"s{n}") for n in range(200)))
        assert loaded == [{"n": n} for n in range(200)]
        assert connections_received(private_server) - before <= 1


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
async def test_a_refused_command_fails_only_its_caller(
    topology: str, request: pytest.FixtureRequest
) -> None:
    """One key of the wrong type among 99 good ones, loaded in the same step: its caller gets
    CorruptedSessionError, every other caller its own state (on a cluster, the other callers
    of the same node's pipeline too)."""
    server = request.getfixturevalue(
        "redis_server" if topology == "standalone" else "cluster_deployment"
    )
    prefix = f"isolated:{uuid.uuid4().hex[:8]}:"
    async with RedisSessionStore(server.url, prefix=prefix) as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(100)})
        await store.backend._connection().delete(prefix + "s50")
        await store.backend._connection().hset(prefix + "s50", "field", "value")
        outcomes = await asyncio.gather(
            *(store.load(f"s{n}") for n in range(100)), return_exceptions=True
        )
        assert isinstance(outcomes[50], CorruptedSessionError)
        assert [o for n, o in enumerate(outcomes) if n != 50] == [
            {"n": n} for n in range(100) if n != 50
        ]
        await store.clear()


async def test_cancelling_waiting_callers_never_mixes_up_the_replies_of_others(
    redis_server: RedisServer,
) -> None:
    """Callers cancelled while queued or while their pipeline is in flight: every other
    caller, then and later, gets the reply to its own command."""
    prefix = f"cancel:{uuid.uuid4().hex[:8]}:"
    async with RedisSessionStore(redis_server.url, prefix=prefix) as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(300)})
        for delay in (0, 1, 2, 3):
            tasks = [asyncio.create_task(store.load(f"s{n}")) for n in range(300)]
            for _ in range(delay):
                await asyncio.sleep(0)  # some pipelines are now on their way
            for task in tasks[::3]:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            for n, outcome in enumerate(outcomes):
                if n % 3:
                    assert outcome == {"n": n}
                else:
                    assert outcome == {"n": n} or isinstance(outcome, asyncio.CancelledError)
            assert await asyncio.gather(*(store.load(f"s{n}") for n in range(300))) == [
                {"n": n} for n in range(300)
            ]
        await store.clear()


async def test_pipelined_compare_and_sets_whose_reply_is_lost_run_once() -> None:
    """Twenty updates in one pipeline, the connection dropped after the server ran the first
    script: none is sent again, so the server ran at most twenty scripts; plain loads in the
    same situation are retried (the control)."""
    with RedisServer() as server, FaultProxy(server.port) as proxy:
        store = RedisSessionStore(proxy.url, prefix="once:", timeout=TIMEOUT, retries=RETRIES)
        async with store:
            for n in range(20):
                await store.update(f"s{n}", lambda state: {"n": 0})
            before = command_calls(server.port, "eval")
            with proxy.fault("drop", script(SWAP)) as fault:
                outcomes = await asyncio.gather(
                    *(store.update(f"s{n}", lambda state: {"n": 1}) for n in range(20)),
                    return_exceptions=True,
                )
            assert fault.hits >= 1
            assert any(isinstance(o, BackendUnavailableError) for o in outcomes)
            assert command_calls(server.port, "eval") - before <= 20

            before = command_calls(server.port, "get")
            with proxy.fault("drop", command_named("GET")):
                await asyncio.gather(
                    *(store.load(f"s{n}") for n in range(20)), return_exceptions=True
                )
            assert command_calls(server.port, "get") - before > 20


async def test_pipelining_is_checked_and_can_be_turned_off(redis_server: RedisServer) -> None:
    """pipelining=False sends each call on its own connection; a non-bool is refused."""
    with pytest.raises(ConfigurationError, match="pipelining must be True or False"):
        RedisSessionStore(redis_server.url, pipelining="yes")  # type: ignore[arg-type]
    async with RedisSessionStore(redis_server.url, prefix="off:", pipelining=False) as store:
        await store.save("s", {"n": 1})
        assert await store.load("s") == {"n": 1}
        await store.delete("s")


async def test_a_client_given_to_the_store_is_pipelined_too(redis_server: RedisServer) -> None:
    """With client=, concurrent calls share its pool's connections the same way."""
    client = Redis.from_url(redis_server.url)
    try:
        store = RedisSessionStore(client=client, prefix=f"given:{uuid.uuid4().hex[:8]}:")
        await asyncio.gather(*(store.save(f"s{n}", {"n": n}) for n in range(100)))
        assert await asyncio.gather(*(store.load(f"s{n}") for n in range(100))) == [
            {"n": n} for n in range(100)
        ]
        assert len(client.connection_pool._available_connections) <= 8
        await store.clear()
    finally:
        await client.aclose()


BUSY_SCRIPT = """
local start = redis.call('TIME')
while true do
    local now = redis.call('TIME')
    if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 300000 then return 1 end
end
"""


class Waits(Observer):
    def __init__(self) -> None:
        self.events: list[ConnectionWaitEvent] = []

    def on_connection_wait(self, event: ConnectionWaitEvent) -> None:
        self.events.append(event)


@pytest.mark.parametrize(("seconds", "timed_out"), [(2.0, False), (0.1, True)])
async def test_a_pipelined_wait_for_a_busy_connection_is_bounded_and_reported(
    redis_server: RedisServer, seconds: float, timed_out: bool
) -> None:
    """The only pipeline connection waits on a busy server: the next call waits for it, at
    most `timeout` (then BackendUnavailableError naming the busy connections), and observers
    see the wait."""
    waits = Waits()
    other = Redis.from_url(redis_server.url)
    store = RedisSessionStore(
        redis_server.url, prefix="pwaits:", max_connections=1, timeout=seconds, observers=[waits]
    )
    try:
        await store.save("s", {"n": 1})
        busy = asyncio.ensure_future(other.eval(BUSY_SCRIPT, 0))
        await asyncio.sleep(0.05)
        first = asyncio.create_task(store.load("s"))  # the only connection, waiting on Redis
        await asyncio.sleep(0.01)
        if timed_out:
            with pytest.raises(BackendUnavailableError, match="all 1 connections"):
                await store.load("s")
        else:
            assert await store.load("s") == {"n": 1}
        await asyncio.gather(first, busy, return_exceptions=True)
    finally:
        await store.close()
        await other.aclose()
    assert [(event.backend, event.timed_out) for event in waits.events] == [("redis", timed_out)]
    assert 0.05 < waits.events[0].duration < seconds + 0.5


async def test_on_a_cluster_256_concurrent_turns_use_at_most_8_connections_per_node(
    cluster_deployment: ClusterDeployment,
) -> None:
    """Pipelined per node: 256 tasks whose sessions spread over three primaries open at most 8
    sockets on each (plus the one that reads the slot map); without pipelining, many more."""

    async def sockets_per_node(pipelining: bool) -> list[int]:
        nodes = sorted(cluster_deployment.primaries, key=lambda node: node.port)
        before = [connections_received(node) + 1 for node in nodes]
        prefix = f"few:{uuid.uuid4().hex[:8]}:"
        async with RedisSessionStore(
            cluster_deployment.url, prefix=prefix, pipelining=pipelining
        ) as store:
            await turns(store, 256, 4)
            assert await store.load("s255") == {"turn": 4}
        after = [connections_received(node) for node in nodes]
        return [end - start for start, end in zip(before, after, strict=True)]

    pipelined = await sockets_per_node(True)
    unpipelined = await sockets_per_node(False)
    assert all(1 <= count <= 8 + 1 for count in pipelined)
    assert max(unpipelined) > 9


async def test_on_a_cluster_a_command_of_no_key_shares_a_step_with_loads(
    cluster_deployment: ClusterDeployment,
) -> None:
    """PING (no key, left to redis-py's routing) in the same batch as 49 loads on three
    nodes: each caller gets its own answer."""
    async with RedisSessionStore(
        cluster_deployment.url, prefix=f"mixed:{uuid.uuid4().hex[:8]}:"
    ) as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(50)})
        # The first call of a step goes alone; the PING comes after it, with 49 loads.
        outcomes: list[Any] = await asyncio.gather(
            *(store.load(f"s{n}") for n in range(50)), store.ping()
        )
        assert outcomes[-1]["topology"] == "cluster"
        assert outcomes[:-1] == [{"n": n} for n in range(50)]
        await store.clear()


async def test_on_a_cluster_a_slot_being_migrated_is_followed_by_ask() -> None:
    """A resharding under way: the slot of one session is MIGRATING from its owner to another
    node, and the session is not on the owner. Saved, then loaded, each time in the same
    step as 30 other sessions' loads, it goes where ASK says (through redis-py's routing),
    and every caller gets its own answer."""
    prefix = "ask:"
    slot = key_slot((prefix + "moving").encode())
    with ClusterDeployment(primaries=3) as cluster:
        owner, owner_id = target, target_id = None, ""
        for node in cluster.primaries:
            for row in node.command("CLUSTER", "NODES").decode().splitlines():
                node_id, _, flags, *rest = row.split()
                if "myself" not in flags:
                    continue
                spans = [span.partition("-") for span in rest[5:]]
                if any(int(low) <= slot <= int(high or low) for low, _, high in spans):
                    owner, owner_id = node, node_id
                elif target is None:
                    target, target_id = node, node_id
        assert owner is not None
        assert target is not None
        target.command("CLUSTER", "SETSLOT", str(slot), "IMPORTING", owner_id)
        owner.command("CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        async with RedisSessionStore(cluster.url, prefix=prefix) as store:
            await store.save_many({f"s{n}": {"n": n} for n in range(30)})
            # Several connections open to every node: ASKING and its command must share one.
            for _ in range(3):
                await asyncio.gather(*(store.load(f"s{n}") for n in range(30)))
            await asyncio.gather(
                *(store.load(f"s{n}") for n in range(30)), store.save("moving", {"moved": True})
            )
            loaded = await asyncio.gather(
                *(store.load(f"s{n}") for n in range(30)), store.load("moving")
            )
            async with store.lock("moving", wait=0):  # a lease script, sent once, follows ASK
                updated = await store.update("moving", lambda state: {"moved": 2})
        assert loaded == [*({"n": n} for n in range(30)), {"moved": True}]
        assert updated == {"moved": 2}
        assert target.command("CLUSTER", "COUNTKEYSINSLOT", str(slot)).strip() == b"(integer) 1"


def owner_port(cluster: ClusterDeployment, key: str) -> int:
    """The port of the primary that serves `key` (the others answer MOVED)."""
    for node in cluster.primaries:
        with contextlib.suppress(ReplyError):
            call(node.port, "EXISTS", key)
            return node.port
    raise AssertionError(f"no primary serves {key}")


def ids_by_node(cluster: ClusterDeployment, prefix: str, count: int) -> dict[int, list[str]]:
    """Session ids s0... grouped by the port of the primary that holds them."""
    groups: dict[int, list[str]] = {}
    for n in range(count):
        groups.setdefault(owner_port(cluster, f"{prefix}s{n}"), []).append(f"s{n}")
    return groups


@pytest.mark.slow
async def test_on_a_cluster_a_dead_primary_fails_only_the_calls_it_serves() -> None:
    """One primary killed (no failover: a long node timeout): 90 loads in one step, each
    node's share in its own pipeline; those the live primaries serve all succeed, those of
    the dead one fail with BackendUnavailableError, round after round."""
    with ClusterDeployment(primaries=3, node_timeout_ms=60_000) as cluster:
        prefix = "dead:"
        async with RedisSessionStore(cluster.url, prefix=prefix, timeout=0.5, retries=1) as store:
            await store.save_many({f"s{n}": {"n": n} for n in range(90)})
            groups = ids_by_node(cluster, prefix, 90)
            dead = cluster.primaries[0]
            on_dead = set(groups[dead.port])
            for _ in range(2):  # the slot map learnt, connections open to every node
                await asyncio.gather(*(store.load(f"s{n}") for n in range(90)))
            dead.kill()
            for _ in range(3):
                outcomes = await asyncio.gather(
                    *(store.load(f"s{n}") for n in range(90)), return_exceptions=True
                )
                for n, outcome in enumerate(outcomes):
                    if f"s{n}" in on_dead:
                        assert isinstance(outcome, BackendUnavailableError), outcome
                    else:
                        assert outcome == {"n": n}


async def test_on_a_cluster_a_lost_reply_on_one_node_sends_nothing_twice_on_another(
    proxied_cluster_deployment: ClusterDeployment,
) -> None:
    """In one batch, four deletes on node A and a load on node B whose reply is lost: node A
    runs UNLINK exactly four times and the deletes succeed; only the load fails."""
    cluster = proxied_cluster_deployment
    prefix = f"resend:{uuid.uuid4().hex[:8]}:"
    async with RedisSessionStore(
        cluster.url, prefix=prefix, timeout=TIMEOUT, retries=RETRIES
    ) as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(30)})
        (port_a, on_a), (port_b, on_b), *_ = ids_by_node(cluster, prefix, 30).items()
        before = command_calls(port_a, "unlink")
        lost = command_named("GET", key=prefix + on_b[0])
        with cluster.proxies[port_b].fault("drop", lost):
            *deleted, loaded = await asyncio.gather(
                store.load(on_a[0]),  # the first call of the step goes alone
                *(store.delete(session_id) for session_id in on_a[1:5]),
                store.load(on_b[0]),
                return_exceptions=True,
            )
        assert command_calls(port_a, "unlink") - before == 4
        assert deleted == [{"n": int(on_a[0][1:])}, None, None, None, None]
        assert isinstance(loaded, BackendUnavailableError)
        await store.clear()


async def test_on_a_cluster_lost_compare_and_set_replies_fail_only_their_node(
    proxied_cluster_deployment: ClusterDeployment,
) -> None:
    """Updates on two nodes at once, every compare-and-set reply of node B lost: node A's
    updates all succeed; node B's fail as sent once (outcome unknown), none run twice."""
    cluster = proxied_cluster_deployment
    prefix = f"cas:{uuid.uuid4().hex[:8]}:"
    async with RedisSessionStore(
        cluster.url, prefix=prefix, timeout=TIMEOUT, retries=RETRIES
    ) as store:
        await store.save_many({f"s{n}": {"n": 0} for n in range(30)})
        (_, on_a), (port_b, on_b), *_ = ids_by_node(cluster, prefix, 30).items()
        with cluster.proxies[port_b].fault("drop", script(SWAP)):
            outcomes = await asyncio.gather(
                *(store.update(session_id, lambda state: {"n": 1}) for session_id in on_a + on_b),
                return_exceptions=True,
            )
        assert outcomes[: len(on_a)] == [{"n": 1}] * len(on_a)
        for outcome in outcomes[len(on_a) :]:
            assert isinstance(outcome, BackendUnavailableError)
            assert "sent once" in str(outcome)
        await store.clear()


@pytest.mark.parametrize("topology", ["redis_server", "cluster_deployment"])
async def test_large_writes_and_pipelined_calls_share_max_connections(
    topology: str, request: pytest.FixtureRequest
) -> None:
    """Two writes over 1 MiB (a connection each) and 120 pipelined loads at once, under
    max_connections=2: the pipelines take their connections from the same budget, so the
    pool never runs out and every call succeeds."""
    server = request.getfixturevalue(topology)
    prefix = f"budget:{uuid.uuid4().hex[:8]}:"
    async with RedisSessionStore(server.url, prefix=prefix, max_connections=2) as store:
        await store.save_many({f"s{n}": {"n": n} for n in range(60)})
        large = {"x": "y" * (1 << 21)}
        outcomes = await asyncio.gather(
            *(store.save(f"large{n}", large) for n in range(2)),
            *(store.load(f"s{n % 60}") for n in range(120)),
            return_exceptions=True,
        )
        assert outcomes == [None, None, *({"n": n % 60} for n in range(120))]
        await store.clear()
