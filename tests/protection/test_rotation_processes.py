"""Key rotation while other OS processes update the sessions, on one Redis server."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid

import pytest

from tests.protection import workers
from tests.protection.conftest import KEY_A, KEY_B, encryption
from tests.support.redis_server import RedisServer
from valerie.infrastructure import RedisSessionStore

pytestmark = pytest.mark.slow

PROCESSES = 4
SESSIONS = 10_000
context = multiprocessing.get_context("spawn")


async def test_10000_sessions_rotate_while_4_processes_update_them(
    redis_server: RedisServer,
) -> None:
    """Key A to key B under 4 updating processes: every update kept, every session under B
    afterwards, and key A removable (a store with B alone reads them all)."""
    prefix = f"rotate:{uuid.uuid4().hex}:"
    async with RedisSessionStore(redis_server.url, prefix, encryption=encryption(KEY_A)) as old:
        for first in range(0, SESSIONS, 1000):
            await old.save_many({f"s{i}": {"n": 0} for i in range(first, first + 1000)})
    keys = f"{KEY_B.export()},{KEY_A.export()}"
    start = context.Barrier(PROCESSES + 1)
    processes = [
        context.Process(
            target=workers.update_each_session,
            args=(redis_server.url, prefix, keys, SESSIONS, start),
        )
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    async with RedisSessionStore(
        redis_server.url, prefix, encryption=encryption(KEY_B, KEY_A)
    ) as store:
        await asyncio.to_thread(start.wait)
        report = await store.rotate_keys(batch_size=200)
        for process in processes:
            await asyncio.to_thread(process.join, 300)
            assert process.exitcode == 0
        assert report.scanned == report.resealed + report.current == SESSIONS
        assert await store.key_usage() == {"key-b": SESSIONS}
    async with RedisSessionStore(redis_server.url, prefix, encryption=encryption(KEY_B)) as new:
        states = {}
        for first in range(0, SESSIONS, 1000):
            states.update(await new.load_many([f"s{i}" for i in range(first, first + 1000)]))
        assert all(state == {"n": PROCESSES} for state in states.values())
        await new.clear()
