"""A chatbot's conversation kept between turns, with the store the environment configures.

Run it with `make demo` (in-memory store), or against Redis:

    VALERIE_SESSION_STORE=redis VALERIE_SESSION_REDIS_URL=redis://localhost:6379 make demo
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from valerie.infrastructure import (
    BackendUnavailableError,
    SerializationError,
    SessionState,
    SessionStore,
    SessionStoreError,
    get_default_ttl,
    get_session_store,
)


async def handle_message(store: SessionStore, session_id: str, text: str) -> str:
    """One turn, applied atomically: a message arriving meanwhile cannot erase this one."""

    def turn(state: SessionState | None) -> SessionState:
        state = state or {"user_id": "user-123", "step": 0, "history": []}
        state["step"] += 1
        state["history"].append({"role": "user", "content": text})
        if "lisbon" in text.lower():
            state["intent"] = "book_flight"
            state.setdefault("context", {})["destination"] = "LIS"
        reply = f"(turn {state['step']}) noted: {text!r}"
        state["history"].append({"role": "assistant", "content": reply})
        return state

    state = await store.update(session_id, turn)
    assert state is not None
    return str(state["history"][-1]["content"])


async def main() -> None:
    """Run a three-turn conversation, then show the store's guarantees."""
    async with get_session_store() as store:
        print(f"store: {store!r} (default TTL {get_default_ttl()} s)")
        session_id = "user-123-session"
        await store.delete(session_id)
        for text in ("Hi!", "I want to fly to Lisbon", "Next Friday, two people"):
            print(f"user: {text}\nbot:  {await handle_message(store, session_id, text)}")

        state = await store.load(session_id)
        assert state is not None
        print(
            f"stored state: step={state['step']}, intent={state.get('intent')}, "
            f"{len(state['history'])} messages"
        )

        try:
            await store.save(session_id, {**state, "when": timedelta(days=1)})
        except SerializationError as error:
            print(f"refused, nothing written: {error}")
        assert await store.load(session_id) == state

        await store.save("short-lived", {"otp": "123456"}, ttl=timedelta(minutes=5))
        print(
            f"short-lived exists: {await store.exists('short-lived')}, "
            f"{await store.ttl('short-lived')} s left"
        )
        async with store.lock(session_id, timeout=10):
            print("holding the session's lease: no other process can take this turn")
        await store.delete(session_id)
        await store.delete("short-lived")
        print(f"after delete: {await store.load(session_id)}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BackendUnavailableError as error:
        sys.exit(f"the session store is unreachable: {error}")
    except SessionStoreError as error:
        sys.exit(f"the session store refused: {type(error).__name__}: {error}")
