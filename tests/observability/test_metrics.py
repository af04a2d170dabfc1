"""OpenTelemetry metrics of every operation, on memory and Redis, read with the real SDK."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.observability.readings import Telemetry
from tests.observability.stores import (
    OPERATIONS,
    Store,
    collide_once,
    every_operation,
    every_signal,
    observed_store,
    observer_for,
    pool_timeout,
    private_server,
)
from tests.support.redis_server import RedisServer
from valerie.infrastructure import (
    BackendUnavailableError,
    InvalidSessionIdError,
    LockNotOwnedError,
    RedisSessionStore,
    SessionLockedError,
    VersionConflictError,
)
from valerie.infrastructure.session_store.telemetry import names

BACKENDS = ("memory", pytest.param("redis", marks=pytest.mark.redis))
ALLOWED_ATTRIBUTES = {
    names.DB_SYSTEM_NAME,
    names.DB_OPERATION_NAME,
    names.ERROR_TYPE,
    names.POOL_NAME,
    names.CONNECTION_STATE,
    names.LOAD_OUTCOME,
    names.LEASE_OUTCOME,
    names.UPDATE_ATTEMPTS,
}


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, telemetry: Telemetry) -> AsyncIterator[Store]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    async with observed_store(request.param, telemetry, server, f"otel-{uuid.uuid4()}:") as made:
        yield made


@pytest.fixture
def frozen_server() -> Iterator[RedisServer]:
    """A private server, to freeze."""
    with private_server() as server:
        yield server


def backend_of(store: Store) -> str:
    return "redis" if isinstance(store, RedisSessionStore) else "memory"


async def test_every_operation_reports_its_duration_with_exactly_its_name_and_backend(
    store: Store, telemetry: Telemetry
) -> None:
    """One db.client.operation.duration point per public operation, whose attributes are
    exactly db.system.name and db.operation.name when it succeeds."""
    await every_operation(store)
    points = telemetry.points(names.OPERATION_DURATION)
    assert {attributes[names.DB_OPERATION_NAME] for attributes, _ in points} == OPERATIONS
    for attributes, point in points:
        assert attributes == {
            names.DB_SYSTEM_NAME: backend_of(store),
            names.DB_OPERATION_NAME: attributes[names.DB_OPERATION_NAME],
        }
        assert point.count >= 1
        assert 0 < point.sum < 5


async def test_a_miss_and_a_hit_are_counted_by_outcome(store: Store, telemetry: Telemetry) -> None:
    await store.load("nobody")
    await store.load("nobody")
    await store.save("somebody", {"n": 1})
    await store.load("somebody")
    await store.load_versioned("somebody")
    system = {names.DB_SYSTEM_NAME: backend_of(store)}
    assert telemetry.value(names.LOADS, **system, **{names.LOAD_OUTCOME: "miss"}) == 2
    assert telemetry.value(names.LOADS, **system, **{names.LOAD_OUTCOME: "hit"}) == 2
    assert telemetry.value(names.LOADS, **{names.DB_OPERATION_NAME: "load_versioned"}) == 1


async def test_a_forced_conflict_shows_as_a_conflict_and_an_error_type(
    store: Store, telemetry: Telemetry
) -> None:
    await store.save("s", {"n": 0})
    _, version = await store.load_versioned("s")
    await store.save("s", {"n": 1})
    with pytest.raises(VersionConflictError):
        await store.save("s", {"n": 2}, if_version=version)
    with pytest.raises(VersionConflictError):
        await store.delete("s", if_version=version)
    assert telemetry.value(names.CONFLICTS, **{names.DB_OPERATION_NAME: "save"}) == 1
    assert telemetry.value(names.CONFLICTS, **{names.DB_OPERATION_NAME: "delete"}) == 1
    failed = [
        attributes
        for attributes, _ in telemetry.points(names.OPERATION_DURATION)
        if names.ERROR_TYPE in attributes
    ]
    assert sorted(a[names.DB_OPERATION_NAME] for a in failed) == ["delete", "save"]
    assert {a[names.ERROR_TYPE] for a in failed} == {"VersionConflictError"}


async def test_update_retries_and_their_conflicts_are_counted(
    store: Store, telemetry: Telemetry
) -> None:
    """An update whose first attempt meets a concurrent write counts one retry and one
    conflict."""
    assert await collide_once(store) == 2
    assert telemetry.value(names.UPDATE_RETRIES) == 1
    assert telemetry.value(names.CONFLICTS, **{names.DB_OPERATION_NAME: "update"}) == 1
    await store.update("s", lambda state: {"n": 0})
    assert telemetry.value(names.UPDATE_RETRIES) == 1


async def test_a_lease_wait_a_refusal_and_a_loss_are_counted(
    store: Store, telemetry: Telemetry
) -> None:
    async with store.lock("s", timeout=5):
        with pytest.raises(SessionLockedError):
            await store.lock("s", wait=0.2).acquire()
    lease = store.lock("s", timeout=0.05)
    await lease.acquire()
    await _sleep(0.1)
    with pytest.raises(LockNotOwnedError):
        await lease.release()
    outcome = names.LEASE_OUTCOME
    assert telemetry.value(names.LEASES, **{outcome: "acquired"}) == 2
    assert telemetry.value(names.LEASES, **{outcome: "refused"}) == 1
    assert telemetry.value(names.LEASES, **{outcome: "lost"}) == 1
    waits = telemetry.points(names.LEASE_WAIT_TIME)
    assert [attributes for attributes, _ in waits] == [{names.DB_SYSTEM_NAME: backend_of(store)}]
    (_, histogram) = waits[0]
    assert histogram.count == 3
    assert histogram.max >= 0.2


async def test_state_size_is_the_stored_bytes(store: Store, telemetry: Telemetry) -> None:
    state = {"history": ["x" * 1000], "step": 3}
    stored = len(json.dumps(state, separators=(",", ":")).encode())
    await store.save("s", state)
    await store.load("s")
    await store.update("s", lambda _: state)
    points = dict(
        (attributes[names.DB_OPERATION_NAME], point)
        for attributes, point in telemetry.points(names.STATE_SIZE)
    )
    assert set(points) == {"save", "update"}  # what is written; a load reads the same
    assert points["save"].sum == stored
    assert points["update"].sum == stored


async def test_an_error_shows_with_its_type(store: Store, telemetry: Telemetry) -> None:
    with pytest.raises(InvalidSessionIdError):
        await store.load("")
    (attributes,) = [a for a, _ in telemetry.points(names.OPERATION_DURATION)]
    assert attributes == {
        names.DB_SYSTEM_NAME: backend_of(store),
        names.DB_OPERATION_NAME: "load",
        names.ERROR_TYPE: "InvalidSessionIdError",
    }


async def test_an_unreachable_server_shows_as_backend_unavailable(telemetry: Telemetry) -> None:
    from tests.support.redis_server import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    async with RedisSessionStore(url, retries=0, observers=[observer_for(telemetry)]) as store:
        with pytest.raises(BackendUnavailableError):
            await store.save("s", {"n": 1})
    (attributes,) = [a for a, _ in telemetry.points(names.OPERATION_DURATION)]
    assert attributes[names.ERROR_TYPE] == "BackendUnavailableError"


@pytest.mark.redis
async def test_a_pool_exhausted_at_one_connection_shows_its_wait_and_timeout(
    frozen_server: RedisServer, telemetry: Telemetry
) -> None:
    """At max_connections=1, with the one connection stuck on a frozen server, the next call
    waits `timeout` for it, gives up, and both show in the pool's instruments."""
    async with RedisSessionStore(
        frozen_server.url,
        max_connections=1,
        timeout=0.3,
        retries=0,
        observers=[observer_for(telemetry, pool_name="sessions")],
    ) as store:
        await store.ping()
        gave_up = await pool_timeout(store, frozen_server)
    pool = {names.DB_SYSTEM_NAME: "redis", names.POOL_NAME: "sessions"}
    assert telemetry.value(names.CONNECTION_TIMEOUTS, **pool) == gave_up
    (waits,) = [p for a, p in telemetry.points(names.CONNECTION_WAIT_TIME) if a == pool]
    assert waits.count == 3
    assert waits.max >= 0.25


@pytest.mark.redis
async def test_the_pool_reports_its_connections_its_limit_and_waiting_calls(
    frozen_server: RedisServer, telemetry: Telemetry
) -> None:
    """While one call holds the only connection and another waits: 1 used, max 1, 1 pending."""
    import asyncio

    async with RedisSessionStore(
        frozen_server.url,
        max_connections=1,
        timeout=2,
        retries=0,
        observers=[observer_for(telemetry, pool_name="sessions")],
    ) as store:
        await store.ping()
        pool = {names.DB_SYSTEM_NAME: "redis", names.POOL_NAME: "sessions"}
        assert telemetry.value(names.CONNECTION_MAX, **pool) == 1
        assert telemetry.value(names.CONNECTION_COUNT, **{names.CONNECTION_STATE: "used"}) == 0
        frozen_server.freeze()
        try:
            calls = [asyncio.ensure_future(store.load("s")) for _ in range(2)]
            await asyncio.sleep(0.1)
            used = {**pool, names.CONNECTION_STATE: "used"}
            assert telemetry.value(names.CONNECTION_COUNT, **used) == 1
            assert telemetry.value(names.CONNECTION_PENDING_REQUESTS, **pool) == 1
        finally:
            frozen_server.thaw()
        await asyncio.gather(*calls)
        assert telemetry.value(names.CONNECTION_PENDING_REQUESTS, **pool) == 0


@pytest.mark.redis
async def test_no_session_id_user_id_or_value_ever_becomes_an_attribute(
    frozen_server: RedisServer, telemetry: Telemetry
) -> None:
    """Every signal moved, and no attribute key outside the documented set, no attribute value
    holding an id, a value or the URL."""
    async with RedisSessionStore(
        frozen_server.url,
        max_connections=1,
        timeout=0.3,
        retries=0,
        observers=[observer_for(telemetry)],
    ) as store:
        with telemetry.tracer_provider.get_tracer("test").start_as_current_span("turn"):
            await store.save("user-4711-secret-id", {"user_id": "u-0815", "text": "my-pass"})
            await store.load("user-4711-secret-id")
            await every_signal(store, frozen_server)
    seen: list[tuple[str, object]] = []
    for name in names.INSTRUMENTS:
        for attributes, _ in telemetry.points(name):
            seen.extend(attributes.items())
    for span in telemetry.spans.get_finished_spans():
        seen.extend((span.attributes or {}).items())
        if span.name != "turn":
            seen.append(("span name", span.name))
    assert {key for key, _ in seen} - {"span name"} <= ALLOWED_ATTRIBUTES
    text = repr(seen)
    assert len(telemetry.spans.get_finished_spans()) > 10
    for secret in ("4711", "0815", "my-pass", str(frozen_server.port), "127.0.0.1"):
        assert secret not in text


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
