"""The framework adapters against the frameworks' own storages, in the same run, on one server.

    python -m benchmarks.adapters [--quick]

aiogram: `update_data`, and a get/set turn (`get_data` then `set_data`), through our
`ValerieStorage` on Redis against aiogram's own `RedisStorage` on the same server, with 1 and 64
tasks (each task its own chat). LangGraph: `aput` and `aget_tuple` (latest) through our
`ValerieCheckpointSaver` against LangGraph's `InMemorySaver` on memory; on Redis, ours alone
with its ratio to `InMemorySaver` (the only published Redis saver, langgraph-checkpoint-redis,
needs the RediSearch and RedisJSON modules, which plain Redis lacks; the run checks and says
so). Cells compared are interleaved piece by piece and ratios are paired per round, with
`benchmarks.harness`. Figures are ops/s medians over rounds; ratios are ours / theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver

from benchmarks.harness import interleaved_rates, timed_calls
from benchmarks.servers import RedisServer
from valerie.infrastructure import InMemorySessionStore, RedisSessionStore
from valerie.integrations.aiogram import ValerieStorage
from valerie.integrations.langgraph import ValerieCheckpointSaver

Runner = Callable[[float], Awaitable[tuple[int, float]]]
TASKS = (1, 64)


def runner(call: Callable[[int], Awaitable[object]], tasks: int) -> Runner:
    """Run `call(i)` from `tasks` workers, worker `i` always on item `i`."""

    async def run(seconds: float) -> tuple[int, float]:
        return await timed_calls(call, list(range(tasks)), tasks, seconds)

    return run


async def measure(
    cells: dict[str, Runner], rounds: int, slice_seconds: float
) -> dict[str, list[float]]:
    """A warm-up, then `rounds` rounds of interleaved pieces; each cell's rate per round."""
    await interleaved_rates(cells, slice_seconds / 2, 2, 0)
    samples: dict[str, list[float]] = {name: [] for name in cells}
    for number in range(rounds):
        for name, rate in (await interleaved_rates(cells, slice_seconds, 4, number)).items():
            samples[name].append(rate)
    return samples


def paired(samples: dict[str, list[float]], ours: str, theirs: str) -> str:
    ratios = [a / b for a, b in zip(samples[ours], samples[theirs], strict=True)]
    return f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"


def row(label: str, samples: dict[str, list[float]], ours: str, theirs: str) -> str:
    return (
        f"| {label} | {statistics.median(samples[ours]):,.0f} "
        f"| {statistics.median(samples[theirs]):,.0f} | {paired(samples, ours, theirs)} |"
    )


def fsm_key(task: int) -> StorageKey:
    return StorageKey(bot_id=42, chat_id=1000 + task, user_id=1000 + task)


def fsm_calls(storage: BaseStorage) -> dict[str, Callable[[int], Awaitable[object]]]:
    async def update_data(task: int) -> None:
        await storage.update_data(fsm_key(task), {"last": task, "step": "size"})

    async def turn(task: int) -> None:
        data = await storage.get_data(fsm_key(task))
        data["turns"] = int(data.get("turns", 0)) + 1
        await storage.set_data(fsm_key(task), data)

    return {"update_data": update_data, "get/set turn": turn}


async def aiogram_section(url: str, rounds: int, slice_seconds: float) -> list[str]:
    prefix = f"bench:{uuid.uuid4().hex}:"
    store = RedisSessionStore(url, prefix)
    ours = ValerieStorage(store)
    theirs = RedisStorage.from_url(url, key_builder=DefaultKeyBuilder(prefix=prefix + "aiogram"))
    lines = [
        "| aiogram on Redis, tasks | ValerieStorage ops/s | aiogram RedisStorage ops/s | ratio |",
        "|---|---|---|---|",
    ]
    try:
        for operation in ("update_data", "get/set turn"):
            for tasks in TASKS:
                cells = {
                    "ours": runner(fsm_calls(ours)[operation], tasks),
                    "theirs": runner(fsm_calls(theirs)[operation], tasks),
                }
                samples = await measure(cells, rounds, slice_seconds)
                lines.append(row(f"{operation}, {tasks}", samples, "ours", "theirs"))
    finally:
        await store.clear()
        await ours.close()
        await theirs.close()
    return lines


def message_history(turns: int) -> list[dict[str, str]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " + "x" * 80}
        for i in range(turns)
    ]


class Chains:
    """One thread per task; `put` extends it, `get` reads its latest checkpoint."""

    def __init__(self, saver: BaseCheckpointSaver[Any], tasks: int) -> None:
        self.saver = saver
        self.heads: list[RunnableConfig] = [
            {"configurable": {"thread_id": f"bench-{uuid.uuid4().hex}", "checkpoint_ns": ""}}
            for _ in range(tasks)
        ]
        self.history = message_history(10)
        self.version = 0

    async def put(self, task: int) -> None:
        self.version += 1
        checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6(clock_seq=-1))
        checkpoint["channel_values"] = {"messages": self.history, "turns": self.version}
        checkpoint["channel_versions"] = {"messages": self.version, "turns": self.version}
        self.heads[task] = await self.saver.aput(
            self.heads[task],
            checkpoint,
            {"source": "loop", "step": self.version},
            {"messages": self.version, "turns": self.version},
        )

    async def get(self, task: int) -> None:
        found = await self.saver.aget_tuple(self.heads[task])
        assert found is not None


async def langgraph_section(url: str, rounds: int, slice_seconds: float) -> list[str]:
    lines = [
        "| LangGraph, tasks | ValerieCheckpointSaver ops/s | InMemorySaver ops/s | ratio |",
        "|---|---|---|---|",
    ]
    redis = RedisSessionStore(url, f"bench:{uuid.uuid4().hex}:")
    try:
        for backend, store in (("memory", InMemorySessionStore()), ("Redis", redis)):
            for tasks in TASKS:
                ours = Chains(ValerieCheckpointSaver(store, max_checkpoints=20), tasks)
                theirs = Chains(InMemorySaver(), tasks)
                for chains in (ours, theirs):
                    for task in range(tasks):
                        await chains.put(task)  # so that aget_tuple finds a checkpoint
                for operation in ("aput", "aget_tuple"):
                    cells = {
                        "ours": runner(ours.put if operation == "aput" else ours.get, tasks),
                        "theirs": runner(theirs.put if operation == "aput" else theirs.get, tasks),
                    }
                    samples = await measure(cells, rounds, slice_seconds)
                    label = f"{operation} on {backend}, {tasks}"
                    lines.append(row(label, samples, "ours", "theirs"))
    finally:
        await redis.clear()
        await redis.close()
    return lines


async def redis_saver_status(url: str) -> str:
    """Whether langgraph-checkpoint-redis runs on this (plain) Redis server."""
    try:
        from langgraph.checkpoint.redis.aio import AsyncRedisSaver
    except ImportError:
        return "langgraph-checkpoint-redis: not installed, not compared"
    try:
        async with AsyncRedisSaver.from_conn_string(url) as saver:
            await saver.asetup()
    except Exception as error:  # whatever it raises, the figure is that it cannot run here
        return f"langgraph-checkpoint-redis: cannot run on this server ({type(error).__name__})"
    return "langgraph-checkpoint-redis: runs on this server (add it as a contestant)"


async def main(arguments: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; figures not citable")
    options = parser.parse_args(arguments)
    rounds, slice_seconds = (2, 0.1) if options.quick else (7, 1.0)
    with RedisServer() as server:
        print(await redis_saver_status(server.url))
        for line in await aiogram_section(server.url, rounds, slice_seconds):
            print(line)
        print()
        for line in await langgraph_section(server.url, rounds, slice_seconds):
            print(line)


if __name__ == "__main__":
    asyncio.run(main())
