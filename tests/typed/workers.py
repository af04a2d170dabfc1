"""Models and functions that run in child processes for the typed multi-process tests
(spawned, so importable); each worker writes what it did as JSON to a file the test reads."""

from __future__ import annotations

import asyncio
import json
from multiprocessing.synchronize import Barrier, Event
from typing import Any

from pydantic import BaseModel

from valerie.infrastructure import NewerSchemaVersionError, RedisSessionStore


class TurnsV1(BaseModel):
    """Version 1 of a deploy's state."""

    user: str
    count: int = 0


class TurnsV2(BaseModel):
    """Version 2: `user` became `user_name`, `count` became `turns`, `channel` is new."""

    user_name: str
    turns: int = 0
    channel: str = "web"


def v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    return {"user_name": state["user"], "turns": state["count"], "channel": "web"}


def view_v1(store: RedisSessionStore) -> Any:
    return store.typed(TurnsV1)


def view_v2(store: RedisSessionStore) -> Any:
    return store.typed(TurnsV2, version=2, migrations={1: v1_to_v2})


def count_up_v1(state: TurnsV1 | None) -> TurnsV1:
    state = state or TurnsV1(user="ann")
    state.count += 1
    return state


def count_up_v2(state: TurnsV2 | None) -> TurnsV2:
    state = state or TurnsV2(user_name="ann")
    state.turns += 1
    return state


def typed_increments(url: str, prefix: str, count: int, start: Barrier) -> None:
    """Increment one counter `count` times with typed update()."""

    async def run() -> None:
        async with RedisSessionStore(url, prefix) as store:
            counters = view_v1(store)
            start.wait()
            for _ in range(count):
                await counters.update("counter", count_up_v1)

    asyncio.run(run())


def deploy_v1(
    url: str, prefix: str, sessions: int, first_round: Event, migrated: Event, report: str
) -> None:
    """The old code: update every session, round after round, until the new code has
    migrated them all (saying when its own first round is done); then try to overwrite each.
    A newer session is an error."""

    async def run() -> dict[str, Any]:
        done = {f"s{n}": 0 for n in range(sessions)}
        newer = 0
        async with RedisSessionStore(url, prefix) as store:
            old = view_v1(store)
            while not migrated.is_set():
                for session_id in done:
                    try:
                        await old.update(session_id, count_up_v1)
                    except NewerSchemaVersionError:
                        newer += 1
                    else:
                        done[session_id] += 1
                    await asyncio.sleep(0.001)
                first_round.set()
            for session_id in done:
                try:
                    await old.save(session_id, TurnsV1(user="overwrite"))
                except NewerSchemaVersionError:
                    newer += 1
        return {"done": done, "newer": newer}

    with open(report, "w") as file:
        json.dump(asyncio.run(run()), file)


def deploy_v2(
    url: str, prefix: str, sessions: int, first_round: Event, migrated: Event, report: str
) -> None:
    """The new code, once the old one did a round: load (migrating) and update every
    session, three rounds, saying when the first is done."""

    async def run() -> dict[str, Any]:
        done = {f"s{n}": 0 for n in range(sessions)}
        async with RedisSessionStore(url, prefix) as store:
            new = view_v2(store)
            assert first_round.wait(timeout=60)
            for _ in range(3):
                for session_id in done:
                    assert await new.load(session_id) is not None
                    await new.update(session_id, count_up_v2)
                    done[session_id] += 1
                    await asyncio.sleep(0.001)
                migrated.set()
        return {"done": done}

    with open(report, "w") as file:
        json.dump(asyncio.run(run()), file)
