"""aiogram on our stores: FSM storage, atomic update_data, isolation on leases, real Dispatcher."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisStorage

from tests.adapters import aiogram_workers as workers
from tests.support.backends import backend_params, open_store
from tests.support.redis_server import RedisServer
from valerie.infrastructure import (
    EncodedSessionStore,
    InMemorySessionStore,
    InvalidArgumentError,
    RedisSessionStore,
    SerializationError,
    SessionLockedError,
)
from valerie.integrations.aiogram import ValerieEventIsolation, ValerieStorage, session_id_of

KEY = StorageKey(bot_id=42, chat_id=workers.CHAT, user_id=workers.CHAT)
context = multiprocessing.get_context("spawn")


@pytest.fixture(params=backend_params(("memory", "redis")))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EncodedSessionStore]:
    async with open_store(request, request.param) as opened:
        yield opened


async def test_state_and_data_round_trip_and_stay_apart(store: EncodedSessionStore) -> None:
    """set_state keeps the data, set_data keeps the state; get_data returns a copy."""
    storage = ValerieStorage(store, close_store=False)
    assert await storage.get_state(KEY) is None
    assert await storage.get_data(KEY) == {}
    await storage.set_data(KEY, {"name": "Ada"})
    await storage.set_state(KEY, State("size", group_name="Order"))
    assert await storage.get_state(KEY) == "Order:size"
    await storage.set_state(KEY, "Order:confirm")
    data = await storage.get_data(KEY)
    assert data == {"name": "Ada"}
    data["name"] = "changed"
    assert await storage.get_data(KEY) == {"name": "Ada"}
    assert await storage.get_value(KEY, "name") == "Ada"
    assert await storage.update_data(KEY, {"size": "L"}) == {"name": "Ada", "size": "L"}
    assert await storage.get_state(KEY) == "Order:confirm"


async def test_clearing_state_and_data_deletes_the_session(store: EncodedSessionStore) -> None:
    """FSMContext.clear() (state None, data {}) leaves nothing stored."""
    storage = ValerieStorage(store, close_store=False)
    await storage.set_state(KEY, "Order:size")
    await storage.update_data(KEY, {"size": "L"})
    assert await store.exists(session_id_of(KEY))
    await storage.set_state(KEY, None)
    assert await store.exists(session_id_of(KEY))  # the data is still there
    await storage.set_data(KEY, {})
    assert not await store.exists(session_id_of(KEY))


async def test_every_write_renews_the_store_ttl(redis_server: RedisServer) -> None:
    """The record lives `ttl` after its last write (the store's default when not given)."""
    async with RedisSessionStore(redis_server.url, f"fsm:{uuid.uuid4().hex}:") as store:
        await ValerieStorage(store, ttl=120).set_state(KEY, "Order:size")
        assert 110 < (await store.ttl(session_id_of(KEY)) or 0) <= 120
        await ValerieStorage(store).update_data(KEY, {"a": 1})
        assert (await store.ttl(session_id_of(KEY)) or 0) > 3000


def test_every_field_of_the_key_is_in_the_session_id() -> None:
    """Keys that differ in any field, or whose strings hold separators, never share a session."""
    keys = [
        KEY,
        StorageKey(bot_id=43, chat_id=workers.CHAT, user_id=workers.CHAT),
        StorageKey(bot_id=42, chat_id=-100123, user_id=workers.CHAT),
        StorageKey(bot_id=42, chat_id=workers.CHAT, user_id=7),
        StorageKey(bot_id=42, chat_id=workers.CHAT, user_id=workers.CHAT, thread_id=5),
        StorageKey(42, workers.CHAT, workers.CHAT, business_connection_id=""),
        StorageKey(42, workers.CHAT, workers.CHAT, business_connection_id="-"),
        StorageKey(42, workers.CHAT, workers.CHAT, business_connection_id="a:b"),
        StorageKey(42, workers.CHAT, workers.CHAT, business_connection_id="a", destiny="b"),
        StorageKey(42, workers.CHAT, workers.CHAT, business_connection_id="a:b", destiny=""),
        StorageKey(42, workers.CHAT, workers.CHAT, destiny="x:1"),
        StorageKey(42, workers.CHAT, workers.CHAT, thread_id=1, destiny="x"),
    ]
    ids = [session_id_of(key) for key in keys]
    assert len(set(ids)) == len(keys)
    assert session_id_of(KEY) == "aiogram:42:1001:1001:-:-:default"
    assert all(session_id.count(":") == 6 for session_id in ids)


async def test_bad_state_or_data_is_a_typed_error_that_changes_nothing() -> None:
    """A state that is not a str/State, non-mapping data or non-JSON data is refused."""
    async with InMemorySessionStore() as store:
        storage = ValerieStorage(store)
        await storage.set_data(KEY, {"kept": 1})
        with pytest.raises(InvalidArgumentError, match="state must be a str"):
            await storage.set_state(KEY, 5)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="data must be a mapping"):
            await storage.set_data(KEY, [("a", 1)])  # type: ignore[arg-type]
        with pytest.raises(SerializationError):
            await storage.update_data(KEY, {"when": object()})
        assert await storage.get_data(KEY) == {"kept": 1}


class ClosingCounted(InMemorySessionStore):
    closed = 0

    async def close(self) -> None:
        self.closed += 1
        await super().close()


async def test_close_closes_the_store_only_when_asked() -> None:
    """The storage closes its store by default (aiogram calls close() at shutdown); the
    isolation does not, unless asked."""
    store = ClosingCounted()
    await ValerieStorage(store, close_store=False).close()
    await ValerieEventIsolation(store).close()
    assert store.closed == 0
    await ValerieStorage(store).close()
    await ValerieEventIsolation(store, close_store=True).close()
    assert store.closed == 2


async def test_isolation_serializes_one_chat_and_times_out_with_a_typed_error() -> None:
    """A second update of the chat waits for the first; past `wait` it gets SessionLockedError."""
    async with InMemorySessionStore() as store:
        isolation = ValerieEventIsolation(store, timeout=5, wait=0.2)
        other = StorageKey(bot_id=42, chat_id=2, user_id=2)
        async with isolation.lock(KEY):
            started = time.monotonic()
            with pytest.raises(SessionLockedError) as raised:
                async with isolation.lock(KEY):
                    pass
            assert 0.15 < time.monotonic() - started < 2
            assert isinstance(raised.value, TimeoutError)
            async with isolation.lock(other):  # another chat is not held up
                pass
        async with isolation.lock(KEY):  # released
            pass


async def test_isolation_keeps_the_lease_for_a_handler_longer_than_its_timeout() -> None:
    """The lease is renewed while the handler runs, so a slow handler is not overtaken."""
    async with InMemorySessionStore() as store:
        isolation = ValerieEventIsolation(store, timeout=0.3, wait=0)
        async with isolation.lock(KEY):
            await asyncio.sleep(0.8)
            with pytest.raises(SessionLockedError):
                async with isolation.lock(KEY):
                    pass


def test_isolation_refuses_bad_bounds_at_construction() -> None:
    """A non-positive timeout is refused when the isolation is made, not at the first update."""
    with pytest.raises(InvalidArgumentError, match="timeout"):
        ValerieEventIsolation(InMemorySessionStore(), timeout=0)


def run_bots(kind: str, url: str, prefix: str, router: str, per_process: int) -> None:
    start = context.Barrier(2)
    processes = [
        context.Process(
            target=workers.bot_process,
            args=(kind, url, prefix, router, range(i * per_process, (i + 1) * per_process), start),
        )
        for i in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0


async def data_after(kind: str, url: str, prefix: str) -> dict[str, Any]:
    if kind == "aiogram":
        storage = RedisStorage.from_url(url, key_builder=DefaultKeyBuilder(prefix=prefix))
        try:
            return await storage.get_data(KEY)
        finally:
            await storage.close()
    async with RedisSessionStore(url, prefix) as store:
        return await ValerieStorage(store).get_data(KEY)


@pytest.mark.slow
async def test_two_bot_processes_keep_every_update_data_where_aiogram_redis_loses_some(
    redis_server: RedisServer,
) -> None:
    """2 processes x 50 rapid messages of one chat, each adding its key with update_data: all
    100 kept through our storage; aiogram's RedisStorage (no isolation) loses some."""
    kept = {}
    for kind in ("valerie", "aiogram"):
        prefix = f"fsm:{uuid.uuid4().hex}:"
        run_bots(kind, redis_server.url, prefix, "note", 50)
        kept[kind] = len(await data_after(kind, redis_server.url, prefix))
    assert kept["valerie"] == 100
    assert kept["aiogram"] < 100


@pytest.mark.slow
async def test_with_isolation_a_handlers_read_modify_write_loses_nothing(
    redis_server: RedisServer,
) -> None:
    """Handlers that read, work and write a counter: 2 processes x 20 messages count 40 under
    our isolation, fewer without it."""
    counts: dict[str, int] = {}
    for kind in ("valerie+isolation", "valerie"):
        prefix = f"fsm:{uuid.uuid4().hex}:"
        run_bots(kind, redis_server.url, prefix, "count", 20)
        counts[kind] = int((await data_after(kind, redis_server.url, prefix))["count"])
    assert counts["valerie+isolation"] == 40
    assert counts["valerie"] < 40


async def test_state_and_data_survive_a_restart_of_the_bot(redis_server: RedisServer) -> None:
    """Each step of a conversation is handled by a new Dispatcher, as after a restart."""
    prefix = f"fsm:{uuid.uuid4().hex}:"
    replies = []
    for number, text in enumerate(["/order", "large", "yes"]):
        replies += await workers.feed(
            "valerie", redis_server.url, prefix, "order", [(number, text)]
        )
    assert replies == ["Which size?", "A large one, confirm?", "Ordered: large"]
    async with RedisSessionStore(redis_server.url, prefix) as store:
        assert await store.count() == 0  # clear() left nothing behind
