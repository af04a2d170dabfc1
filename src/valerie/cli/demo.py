"""Sample chatbot sessions for `--demo`: try every command without a Redis server."""

from __future__ import annotations

from valerie.infrastructure import SessionStore

_NAMES = ("ada", "bo", "chen", "dara", "eli", "fay", "gus", "hana", "ivo", "jun", "kai", "lea")


async def fill(store: SessionStore) -> None:
    """Save a dozen conversations of varied sizes and TTLs (five minutes to a day)."""
    for number, name in enumerate(_NAMES):
        history = [
            {"role": "user" if turn % 2 == 0 else "assistant", "content": f"message {turn}"}
            for turn in range(number * 3)
        ]
        state = {
            "user": {"name": name.title(), "email": f"{name}@example.com"},
            "step": number,
            "intent": "order_status" if number % 2 else "greeting",
            "history": history,
        }
        await store.save(f"chat:{name}", state, ttl=300 + number * 7800)
