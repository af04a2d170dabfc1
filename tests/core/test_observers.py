"""Observers: one event per public operation, from one place in the core, on every backend."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.core.conftest import MakeStore
from tests.support.redis_server import RedisServer
from valerie.infrastructure import (
    DELETE,
    BackendUnavailableError,
    ConnectionWaitEvent,
    InvalidSessionIdError,
    LockNotOwnedError,
    Observer,
    OperationEvent,
    Outcome,
    RedisSessionStore,
    SessionLockedError,
    VersionConflictError,
)


class Recorder(Observer):
    """Keeps every operation event."""

    def __init__(self) -> None:
        self.events: list[OperationEvent] = []

    def on_operation(self, event: OperationEvent) -> None:
        self.events.append(event)

    def seen(self) -> list[tuple[str, Outcome, int]]:
        """(operation, outcome, bytes) of each event, then forget them."""
        seen = [(event.operation, event.outcome, event.bytes) for event in self.events]
        self.events.clear()
        return seen


async def test_each_public_operation_reports_one_event(make_store: MakeStore) -> None:
    """Name, backend, outcome and bytes of every public operation, in call order."""
    recorder = Recorder()
    store = make_store(observers=[recorder])
    name = store.backend.name
    await store.save("s1", {"n": 1})
    await store.load("s1")
    await store.load("missing")
    await store.exists("s1")
    await store.exists("missing")
    await store.load_versioned("s1")
    await store.touch("s1")
    await store.ttl("s1")
    await store.update("s1", lambda state: {"n": 2})
    await store.save_many({"a": {"n": 1}, "b": {"n": 2}})
    await store.load_many(["a", "b", "c"])
    await store.delete_many(["a", "b"])
    await store.count()
    await store.delete("s1")
    await store.ping()
    await store.clear()
    assert {event.backend for event in recorder.events} == {name}
    assert all(event.duration >= 0 and event.error_type is None for event in recorder.events)
    assert recorder.seen() == [
        ("save", Outcome.OK, 7),
        ("load", Outcome.HIT, 7),
        ("load", Outcome.MISS, 0),
        ("exists", Outcome.HIT, 0),
        ("exists", Outcome.MISS, 0),
        ("load_versioned", Outcome.HIT, 7),
        ("touch", Outcome.HIT, 0),
        ("ttl", Outcome.HIT, 0),
        ("update", Outcome.OK, 7),
        ("save_many", Outcome.OK, 14),
        ("load_many", Outcome.OK, 14),
        ("delete_many", Outcome.OK, 0),
        ("count", Outcome.OK, 0),
        ("delete", Outcome.OK, 0),
        ("ping", Outcome.OK, 0),
        ("clear", Outcome.OK, 0),
    ]


async def test_batches_report_their_size(make_store: MakeStore) -> None:
    """sessions counts a batch's sessions (and what count and clear found)."""
    recorder = Recorder()
    store = make_store(observers=[recorder])
    await store.save_many({"a": {}, "b": {}, "c": {}})
    await store.load_many(["a", "b"])
    await store.count()
    assert [event.sessions for event in recorder.events] == [3, 2, 3]


async def test_errors_and_conflicts_report_their_type(make_store: MakeStore) -> None:
    """A refused argument is an error event naming its type; a version conflict a conflict."""
    recorder = Recorder()
    store = make_store(observers=[recorder])
    with pytest.raises(InvalidSessionIdError):
        await store.load("")
    await store.save("s1", {"n": 1})
    with pytest.raises(VersionConflictError):
        await store.save("s1", {"n": 2}, if_version="absent")
    assert [(e.operation, e.outcome, e.error_type) for e in recorder.events] == [
        ("load", Outcome.ERROR, "InvalidSessionIdError"),
        ("save", Outcome.OK, None),
        ("save", Outcome.CONFLICT, "VersionConflictError"),
    ]


async def test_update_reports_its_attempts(make_store: MakeStore) -> None:
    """An update that met a concurrent change reports 2 attempts; a plain one 1."""
    recorder = Recorder()
    store = make_store(observers=[recorder])
    await store.save("s1", {"n": 0})
    runs = 0

    async def meddled(state: Any) -> Any:
        nonlocal runs
        runs += 1
        if runs == 1:
            await store.backend.write("s1", b'{"n":10}', 60)  # a concurrent writer
        return {"n": state["n"] + 1}

    await store.update("s1", meddled)
    await store.update("s1", lambda state: DELETE)
    updates = [e for e in recorder.events if e.operation == "update"]
    assert [(e.outcome, e.attempts) for e in updates] == [(Outcome.OK, 2), (Outcome.OK, 1)]
    assert updates[1].bytes == 0


async def test_leases_report_acquired_refused_and_lost(make_store: MakeStore) -> None:
    """acquire_lease (its duration is the wait), a refusal as locked, an expiry as lost."""
    recorder = Recorder()
    store = make_store(observers=[recorder])
    async with store.lock("s1", timeout=5):
        with pytest.raises(SessionLockedError):
            await store.lock("s1", wait=0.05).acquire()
    lease = store.lock("s1", timeout=0.05)
    await lease.acquire()
    await asyncio.sleep(0.1)
    with pytest.raises(LockNotOwnedError):
        await lease.extend()
    assert [(e.operation, e.outcome) for e in recorder.events] == [
        ("acquire_lease", Outcome.OK),
        ("acquire_lease", Outcome.LOCKED),
        ("release_lease", Outcome.OK),
        ("acquire_lease", Outcome.OK),
        ("extend_lease", Outcome.LOST),
    ]
    assert recorder.events[1].duration >= 0.05


async def test_a_walk_reports_when_it_ends(make_store: MakeStore) -> None:
    """iter_ids reports once, when the walk ends, with the ids it yielded (even if stopped)."""
    recorder = Recorder()
    store = make_store(observers=[recorder])
    await store.save_many({"a1": {}, "a2": {}, "b": {}})
    recorder.events.clear()
    assert sorted([i async for i in store.iter_ids("a*")]) == ["a1", "a2"]
    walk = store.iter_ids()
    await anext(walk)
    await walk.aclose()  # type: ignore[attr-defined]
    assert [(e.operation, e.outcome, e.sessions) for e in recorder.events] == [
        ("iter_ids", Outcome.OK, 2),
        ("iter_ids", Outcome.OK, 1),
    ]


def test_an_event_carries_no_session_id_nor_state() -> None:
    """The event's fields: what metrics need, and nothing that identifies a user."""
    assert list(OperationEvent._fields) == [
        "operation",
        "backend",
        "outcome",
        "error_type",
        "duration",
        "bytes",
        "attempts",
        "sessions",
    ]


async def test_a_failing_observer_does_not_fail_the_call(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    """An observer that raises is logged; the operation and the other observers go on."""

    class Broken(Observer):
        def on_operation(self, event: OperationEvent) -> None:
            raise RuntimeError("observer bug")

    recorder = Recorder()
    store = make_store(observers=[Broken(), recorder])
    with caplog.at_level(logging.ERROR, logger="valerie.session_store"):
        await store.save("s1", {"n": 1})
    assert await store.load("s1") == {"n": 1}
    assert len(recorder.events) == 2
    assert "observer" in caplog.text


async def test_without_observers_the_backend_has_no_wait_hook(make_store: MakeStore) -> None:
    """No observer: nothing is measured, not even the pool's waits."""
    assert make_store().backend.connection_wait_hook is None
    assert make_store(observers=[Recorder()]).backend.connection_wait_hook is not None


class Waits(Observer):
    """Keeps every connection wait event."""

    def __init__(self) -> None:
        self.events: list[ConnectionWaitEvent] = []

    def on_connection_wait(self, event: ConnectionWaitEvent) -> None:
        self.events.append(event)


async def test_redis_reports_waits_for_a_pooled_connection(redis_server: RedisServer) -> None:
    """With every connection busy, a call's wait for one is reported, with how long it took."""

    waits = Waits()
    async with RedisSessionStore(
        redis_server.url,
        prefix="waits:",
        max_connections=1,
        timeout=5,
        observers=[waits],
        pipelining=False,  # a slot of the pool; pipelined calls wait for the pipeline instead
    ) as store:
        await store.save("s", {"n": 1})
        assert waits.events == []  # a free connection is no wait
        budget = store.backend._slots
        await budget.acquire()  # another call holds the only connection
        waiter = asyncio.create_task(store.load("s"))
        await asyncio.sleep(0.2)
        assert waits.events == []  # reported when the wait ends
        budget.release()
        assert await waiter == {"n": 1}
    assert len(waits.events) == 1
    event = waits.events[0]
    assert (event.backend, event.timed_out) == ("redis", False)
    assert 0.15 < event.duration < 5


async def test_redis_reports_a_wait_that_gave_up(redis_server: RedisServer) -> None:
    """A call that waited `timeout` for a connection and gave up is reported as timed out."""

    waits = Waits()
    async with RedisSessionStore(
        redis_server.url,
        prefix="waits:",
        max_connections=1,
        timeout=0.2,
        observers=[waits],
        pipelining=False,
    ) as store:
        await store.ping()
        budget = store.backend._slots
        await budget.acquire()
        with pytest.raises(BackendUnavailableError, match="stayed busy"):
            await store.load("s")
        budget.release()
    assert [(event.timed_out, event.duration >= 0.2) for event in waits.events] == [(True, True)]
