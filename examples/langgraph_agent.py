"""A small LangGraph agent whose conversation is checkpointed in our store; no LLM needed.

The store comes from the environment (memory by default, Redis when configured):

    python examples/langgraph_agent.py
    VALERIE_SESSION_STORE=redis VALERIE_SESSION_REDIS_URL=redis://localhost:6379 \
        python examples/langgraph_agent.py
"""

from __future__ import annotations

import asyncio
import operator
import sys
from typing import Annotated, Any, NotRequired, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from valerie.infrastructure import BackendUnavailableError, get_session_store
from valerie.integrations.langgraph import ValerieCheckpointSaver


class Chat(TypedDict):
    """The agent's state: the messages so far (each turn appends) and the turns taken."""

    messages: Annotated[list[str], operator.add]
    turns: NotRequired[int]


def answer(state: Chat) -> dict[str, Any]:
    """Stands in for an LLM call: a deterministic reply to the last message."""
    last = state["messages"][-1]
    return {"messages": [f"You said {last!r}; this is turn {state.get('turns', 0) + 1}."]}


def count(state: Chat) -> dict[str, Any]:
    """Counts the turn."""
    return {"turns": state.get("turns", 0) + 1}


async def main() -> None:
    """Two turns on one thread, each with a freshly compiled graph, as after a restart."""
    async with get_session_store() as store:
        print(f"store: {store!r}")
        # Keep the last 20 checkpoints per thread; each expires an hour after its last write.
        saver = ValerieCheckpointSaver(store, max_checkpoints=20, ttl=3600)
        config: RunnableConfig = {"configurable": {"thread_id": "user-7"}}
        await saver.adelete_thread("user-7")
        for text in ("Hello", "Book me a flight to Lisbon"):
            builder = StateGraph(Chat)
            builder.add_node("answer", answer)
            builder.add_node("count", count)
            builder.add_edge(START, "answer")
            builder.add_edge("answer", "count")
            builder.add_edge("count", END)
            graph = builder.compile(checkpointer=saver)
            turn: Chat = {"messages": [text]}
            result = await graph.ainvoke(turn, config)
            print(f"user:  {text}\nagent: {result['messages'][-1]}")
        history = [c async for c in saver.alist(config)]
        print(f"turns: {result['turns']}, checkpoints kept: {len(history)}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BackendUnavailableError as error:
        sys.exit(f"langgraph_agent: {error}")
