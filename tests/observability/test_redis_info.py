"""The seed's three Redis signals, read from INFO by the sampler, on real servers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from tests.observability.readings import Telemetry
from tests.support.acl import create_acl_user
from tests.support.cluster import ClusterDeployment
from tests.support.redis_server import RedisServer, RedisServerMissing
from valerie.infrastructure import BackendUnavailableError, InvalidArgumentError, RedisSessionStore
from valerie.infrastructure.session_store.telemetry import RedisInfoSampler, names
from valerie.infrastructure.session_store.telemetry.redis_info import (
    InfoSample,
    parse_info,
    rate,
)

# These tests start redis-server processes of their own.
pytestmark = pytest.mark.redis

STATE = {"history": ["x" * 1000]}


@pytest.fixture
def evicting_server() -> Iterator[RedisServer]:
    """A private server with 2 MB of maxmemory under allkeys-lru."""
    try:
        server = RedisServer(None, "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")
    except RedisServerMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    with server:
        yield server


@pytest.mark.redis
async def test_a_server_that_evicts_sessions_shows_evictions_through_the_sampler(
    evicting_server: RedisServer, telemetry: Telemetry
) -> None:
    """At maxmemory 2mb with allkeys-lru, saving 4,000 sessions of 1 kB evicts many: the
    sampler reports the evictions, the memory used and the limit."""
    async with RedisSessionStore(evicting_server.url, prefix="evict:") as store:
        sampler = RedisInfoSampler.for_store(store, meter_provider=telemetry.meter_provider)
        first = await sampler.sample()
        assert first is not None
        for n in range(4000):
            await store.save(f"s{n}", STATE)
        second = await sampler.sample()
    assert second is not None
    attributes = {names.DB_SYSTEM_NAME: "redis"}
    evicted = telemetry.value(names.REDIS_KEYS_EVICTED, **attributes)
    assert evicted > 1000
    assert evicted == second.evicted_keys
    assert telemetry.value(names.REDIS_MAXMEMORY, **attributes) == 2 * 1024 * 1024
    used = telemetry.value(names.REDIS_MEMORY_USED, **attributes)
    assert 1024 * 1024 < used <= 2 * 1024 * 1024 * 1.1
    assert sampler.rates()["evicted_keys"] > 0
    assert second.memory_ratio is not None
    assert second.memory_ratio > 0.5


async def test_expirations_show_through_the_sampler(
    redis_server: RedisServer, telemetry: Telemetry
) -> None:
    """Sessions whose TTL ran out are counted in redis.keys.expired."""
    async with RedisSessionStore(redis_server.url, prefix="expire-info:") as store:
        sampler = RedisInfoSampler.for_store(store, meter_provider=telemetry.meter_provider)
        before = await sampler.sample()
        assert before is not None
        for n in range(20):
            await store.save(f"s{n}", STATE, ttl=1)
        await asyncio.sleep(1.2)
        for n in range(20):  # reading an expired key removes it at once
            assert await store.load(f"s{n}") is None
        after = await sampler.sample()
    assert after is not None
    assert after.expired_keys - before.expired_keys >= 20
    assert telemetry.value(names.REDIS_KEYS_EXPIRED) == after.expired_keys


async def test_info_refused_is_said_once_in_the_log_and_the_store_carries_on(
    redis_server: RedisServer, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """Under an ACL without +info the sampler logs one warning, reports nothing, and the
    store keeps working."""
    user = create_acl_user(redis_server, prefix="noinfo:", denied=("info",))
    caplog.set_level(logging.DEBUG, logger="valerie")
    async with RedisSessionStore(user.url, prefix="noinfo:") as store:
        sampler = RedisInfoSampler.for_store(store, meter_provider=telemetry.meter_provider)
        assert await sampler.sample() is None
        assert await sampler.sample() is None
        await store.save("s", STATE)
        assert await store.load("s") == STATE
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "refused INFO" in warnings[0].getMessage()
    assert user.password not in caplog.text
    assert names.REDIS_MEMORY_USED not in telemetry.instruments()


async def test_the_background_task_samples_every_interval_and_stops(
    redis_server: RedisServer, telemetry: Telemetry
) -> None:
    """One task per sampler reads INFO every `interval`; stop() ends it."""
    async with RedisSessionStore(redis_server.url, prefix="task-info:") as store:
        sampler = RedisInfoSampler.for_store(
            store, interval=0.1, meter_provider=telemetry.meter_provider
        )
        async with sampler:
            sampler.start()  # a second start changes nothing
            await asyncio.sleep(0.35)
            assert sampler.last is not None
            first = sampler.last
            await asyncio.sleep(0.25)
            assert sampler.last is not first
        stopped = sampler.last
        await asyncio.sleep(0.25)
        assert sampler.last is stopped
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "valerie-redis-info-sampler"]
    assert tasks == []


async def test_on_a_cluster_every_primary_is_read_and_reported_with_its_address(
    cluster_deployment: ClusterDeployment, telemetry: Telemetry
) -> None:
    """A cluster's primaries are each read: one reading per primary, with `server.address`
    and `server.port` (a full node is what evicts); `last` is their sum."""
    async with RedisSessionStore(cluster_deployment.url, prefix="cluster-info:") as store:
        await store.save_many({f"s{n}": STATE for n in range(60)})
        sampler = RedisInfoSampler.for_store(store, meter_provider=telemetry.meter_provider)
        summed = await sampler.sample()
        await store.clear()
    assert summed is not None
    nodes = sorted(cluster_deployment.primaries, key=lambda node: node.port)
    assert sorted(sampler.last_by_server) == sorted(f"127.0.0.1:{node.port}" for node in nodes)
    for node in nodes:
        where = {names.SERVER_ADDRESS: "127.0.0.1", names.SERVER_PORT: node.port}
        used = telemetry.value(names.REDIS_MEMORY_USED, **where)
        assert used == sampler.last_by_server[f"127.0.0.1:{node.port}"].used_memory > 100_000
    assert summed.used_memory == sum(s.used_memory for s in sampler.last_by_server.values())
    assert telemetry.value(names.REDIS_MEMORY_USED) == summed.used_memory


@pytest.mark.parametrize("interval", [0, 0.05, -1, True, "15"])
def test_a_bad_interval_is_refused(interval: object, telemetry: Telemetry) -> None:
    async def never() -> dict[str, str]:
        raise AssertionError

    with pytest.raises(InvalidArgumentError, match="interval must be a number of seconds"):
        RedisInfoSampler(never, interval=interval, meter_provider=telemetry.meter_provider)  # type: ignore[arg-type]


def test_info_lines_are_parsed_and_rates_survive_a_restart() -> None:
    fields = parse_info("# Memory\r\nused_memory:1024\r\nmaxmemory:0\r\n\r\n# Stats\r\n")
    assert fields == {"used_memory": "1024", "maxmemory": "0"}
    before = InfoSample(100, 0, evicted_keys=10, expired_keys=5, monotonic=1.0)
    after = InfoSample(100, 0, evicted_keys=30, expired_keys=0, monotonic=3.0)
    assert rate(before, after, "evicted_keys") == 10.0
    assert rate(before, after, "expired_keys") == 0.0  # the counter went back: a restart
    assert after.memory_ratio is None


async def test_cluster_rates_are_each_primarys_own_and_a_new_primary_counts_zero(
    telemetry: Telemetry,
) -> None:
    """Readings by server (as a cluster gives them): the rate is the sum of each primary's own
    rate, so a primary that appears (a failover) adds no spike; a server without maxmemory
    makes the total unlimited (0); a failed reading reports nothing rather than old values."""
    readings: list[dict[str, dict[str, str]]] = [
        {
            "a:1": {"evicted_keys": "10", "maxmemory": "100", "used_memory": "50"},
            "b:2": {"evicted_keys": "0", "maxmemory": "0", "used_memory": "50"},
        },
        {
            "a:1": {"evicted_keys": "30", "maxmemory": "100", "used_memory": "60"},
            "c:3": {"evicted_keys": "1000000", "maxmemory": "100", "used_memory": "60"},
        },
    ]

    async def read_info() -> dict[str, dict[str, str]]:
        if not readings:
            raise BackendUnavailableError("the cluster is down")
        return readings.pop(0)

    sampler = RedisInfoSampler(read_info, meter_provider=telemetry.meter_provider)
    first = await sampler.sample()
    assert first is not None
    assert first.maxmemory == 0
    second = await sampler.sample()
    assert second is not None
    assert second.maxmemory == 200
    elapsed = second.monotonic - first.monotonic
    assert sampler.rates()["evicted_keys"] == pytest.approx(20 / elapsed)
    assert await sampler.sample() is None
    assert telemetry.value(names.REDIS_MEMORY_USED) == 0
