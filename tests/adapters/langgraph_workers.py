"""Agent processes for the LangGraph tests: a real `StateGraph` and raw savers (spawned)."""

from __future__ import annotations

import asyncio
import operator
from multiprocessing.synchronize import Barrier
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from valerie.infrastructure import RedisSessionStore
from valerie.integrations.langgraph import CheckpointConflictError, ValerieCheckpointSaver


class Conversation(TypedDict):
    """The graph's state: the messages so far, appended to by each turn."""

    messages: Annotated[list[str], operator.add]
    turns: int


def reply(state: Conversation) -> dict[str, Any]:
    """A deterministic stand-in for an LLM: answers with what it has heard so far."""
    last = state["messages"][-1]
    return {"messages": [f"echo {last} (turn {state.get('turns', 0) + 1})"]}


def count_turns(state: Conversation) -> dict[str, Any]:
    """Counts the turn (a second node, so each turn makes several checkpoints)."""
    return {"turns": state.get("turns", 0) + 1}


def build_graph(saver: ValerieCheckpointSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    """user message -> reply -> count -> end, checkpointed by `saver`."""
    builder = StateGraph(Conversation)
    builder.add_node("reply", reply)
    builder.add_node("count", count_turns)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", "count")
    builder.add_edge("count", END)
    return builder.compile(checkpointer=saver)


async def one_turn(url: str, prefix: str, thread_id: str, text: str) -> dict[str, Any]:
    """A fresh process's turn: open the store, run the graph once, close."""
    async with RedisSessionStore(url, prefix) as store:
        graph = build_graph(ValerieCheckpointSaver(store))
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        result: dict[str, Any] = await graph.ainvoke({"messages": [text]}, config)
        return result


def turn_process(url: str, prefix: str, thread_id: str, text: str) -> None:
    """One agent process handling one user message, then exiting."""
    asyncio.run(one_turn(url, prefix, thread_id, text))


def writer_process(
    url: str, prefix: str, linear: bool, count: int, start: Barrier, results: Any
) -> None:
    """Extend the thread `count` times from its latest checkpoint; report what was kept."""

    async def run() -> None:
        kept: list[str] = []
        conflicts = 0
        async with RedisSessionStore(url, prefix) as store:
            saver = ValerieCheckpointSaver(store, linear=linear, max_checkpoints=None)
            config = {"configurable": {"thread_id": "shared", "checkpoint_ns": ""}}
            start.wait()
            while len(kept) < count:
                latest = await saver.aget_tuple(config)  # type: ignore[arg-type]
                parent = config if latest is None else latest.config
                await asyncio.sleep(0.001)  # the run's work between read and write
                checkpoint = empty_checkpoint()
                checkpoint["id"] = str(uuid6(clock_seq=-1))
                try:
                    stored = await saver.aput(parent, checkpoint, {"step": len(kept)}, {})  # type: ignore[arg-type]
                except CheckpointConflictError:
                    conflicts += 1
                    continue
                kept.append(stored["configurable"]["checkpoint_id"])
        results.put((kept, conflicts))

    asyncio.run(run())
