"""Typed sessions across OS processes and under load: no update lost, rolling deploys safe."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.redis_server import RedisServer
from tests.typed import workers
from tests.typed.workers import TurnsV1, TurnsV2, view_v1, view_v2
from valerie.infrastructure import EncodedSessionStore, RedisSessionStore

pytestmark = pytest.mark.slow

context = multiprocessing.get_context("spawn")


async def test_4_processes_x_250_typed_updates_end_at_exactly_1000(
    redis_server: RedisServer,
) -> None:
    """Typed update is atomic across processes: 1,000 increments, none lost."""
    prefix = f"typed-procs:{uuid.uuid4().hex}:"
    start = context.Barrier(4)
    processes = [
        context.Process(
            target=workers.typed_increments, args=(redis_server.url, prefix, 250, start)
        )
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    async with RedisSessionStore(redis_server.url, prefix) as store:
        assert await view_v1(store).load("counter") == TurnsV1(user="ann", count=1000)


def read_report(path: str) -> Any:
    return json.loads(Path(path).read_text())


async def test_a_rolling_deploy_migrates_forward_and_the_old_code_never_overwrites(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A v1 and a v2 process share 20 sessions, updating them at once: v2 migrates each on
    load; from then on v1 gets NewerSchemaVersionError and cannot overwrite any, and every
    increment either process made lands in the end state."""
    prefix = f"typed-deploy:{uuid.uuid4().hex}:"
    sessions = 20
    async with RedisSessionStore(redis_server.url, prefix) as store:
        old = view_v1(store)
        for n in range(sessions):
            await old.save(f"s{n}", TurnsV1(user=f"user-{n}"))
    reports = {name: str(tmp_path / f"{name}.json") for name in ("v1", "v2")}
    first_round, migrated = context.Event(), context.Event()
    processes = [
        context.Process(
            target=getattr(workers, f"deploy_{name}"),
            args=(redis_server.url, prefix, sessions, first_round, migrated, report),
        )
        for name, report in reports.items()
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    v1, v2 = (read_report(reports[name]) for name in ("v1", "v2"))
    assert sum(v1["done"].values()) >= sessions  # the first round, before v2 started
    assert v1["newer"] >= sessions  # at least the final overwrite attempts, all refused
    async with RedisSessionStore(redis_server.url, prefix) as store:
        new = view_v2(store)
        for n in range(sessions):
            session_id = f"s{n}"
            raw = await store.load(session_id)
            assert raw is not None
            assert raw["_schema_version"] == 2
            assert await new.load(session_id) == TurnsV2(
                user_name=f"user-{n}",
                turns=v1["done"][session_id] + v2["done"][session_id],
            )


async def test_10000_v1_sessions_migrate_while_64_writers_update_them(
    base_store: EncodedSessionStore,
) -> None:
    """Loads migrate 10,000 unversioned sessions (writing back by compare-and-set) while 64
    tasks run typed updates on random ones: every session ends migrated, no update lost."""
    sessions = [f"u{n:05d}" for n in range(10_000)]
    await base_store.save_many(
        {session_id: {"user": session_id, "count": 1} for session_id in sessions}
    )
    new = view_v2(base_store)  # type: ignore[arg-type]
    updates = {session_id: 0 for session_id in sessions}
    chooser = random.Random(9)

    async def writer(picks: list[str]) -> None:
        for session_id in picks:
            await new.update(session_id, workers.count_up_v2)
            updates[session_id] += 1

    async def migrator(chunk: list[str]) -> None:
        for session_id in chunk:
            assert await new.load(session_id) is not None

    writers = [writer(chooser.choices(sessions, k=40)) for _ in range(64)]
    migrators = [migrator(sessions[n::8]) for n in range(8)]
    await asyncio.gather(*writers, *migrators)
    stored = await base_store.load_many(sessions)
    for session_id in sessions:
        state = stored[session_id]
        assert state == {
            "user_name": session_id,
            "turns": 1 + updates[session_id],
            "channel": "web",
            "_schema_version": 2,
        }
