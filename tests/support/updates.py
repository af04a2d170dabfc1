"""Update functions the tests pass to `update()`."""

from __future__ import annotations

import asyncio

from valerie.infrastructure import SessionState


def increment(state: SessionState | None) -> SessionState:
    """Count one more in `state["count"]` (starting a new state at 1)."""
    state = state or {"count": 0}
    state["count"] += 1
    return state


async def slow_increment(state: SessionState | None) -> SessionState:
    """`increment` in a turn that awaits (an LLM call) between its read and its write."""
    await asyncio.sleep(0)
    return increment(state)
