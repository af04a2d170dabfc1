"""Typed sessions: a chat state as a Pydantic model, a turn with typed update(), a migration.

Needs the `pydantic` extra. Run it with `.venv/bin/python examples/typed_sessions.py` on the
in-memory store, or against Redis with `VALERIE_SESSION_STORE=redis` and
`VALERIE_SESSION_REDIS_URL=redis://localhost:6379` in the environment.
"""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from valerie.infrastructure import (
    NewerSchemaVersionError,
    SessionStore,
    get_session_store,
)
from valerie.infrastructure.session_store.typed import TypedSessionStore


class Intent(enum.Enum):
    """What the user wants."""

    BOOK_FLIGHT = "book_flight"
    SMALL_TALK = "small_talk"


class UserMessage(BaseModel):
    """A message from the user."""

    role: Literal["user"] = "user"
    content: str
    at: datetime


class AssistantMessage(BaseModel):
    """A reply from the bot."""

    role: Literal["assistant"] = "assistant"
    content: str
    at: datetime


Message = Annotated[UserMessage | AssistantMessage, Field(discriminator="role")]


class ChatStateV1(BaseModel):
    """The first version of the state: a step counter named `step`."""

    user_id: str
    step: int = 0
    messages: list[Message] = []


class ChatState(BaseModel):
    """Version 2: `step` became `turns`, and the state knows the intent."""

    user_id: str
    turns: int = 0
    intent: Intent | None = None
    messages: list[Message] = []


def v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """Version 1 to 2: rename `step` to `turns`; the intent starts unknown."""
    state["turns"] = state.pop("step", 0)
    return state


def chats_of(store: SessionStore) -> TypedSessionStore[ChatState]:
    """The typed view this code uses: version 2, migrating version-1 sessions on load."""
    return store.typed(ChatState, version=2, migrations={1: v1_to_v2})


async def handle_message(store: SessionStore, session_id: str, text: str) -> str:
    """One turn, applied atomically to the model: a message arriving meanwhile is kept."""

    def turn(chat: ChatState | None) -> ChatState:
        chat = chat or ChatState(user_id="user-123")
        now = datetime.now(UTC)
        chat.turns += 1
        chat.messages.append(UserMessage(content=text, at=now))
        if "lisbon" in text.lower():
            chat.intent = Intent.BOOK_FLIGHT
        reply = f"(turn {chat.turns}) noted: {text!r}"
        chat.messages.append(AssistantMessage(content=reply, at=now))
        return chat  # return it: returning None is refused; return DELETE to delete

    chat = await chats_of(store).update(session_id, turn)
    assert chat is not None
    return chat.messages[-1].content


async def main() -> None:
    """A session saved by the old code, migrated by the new, then a conversation."""
    async with get_session_store() as store:
        session_id = "typed-example-session"
        await store.delete(session_id)

        old = store.typed(ChatStateV1)  # what the previous deploy ran
        await old.save(session_id, ChatStateV1(user_id="user-123", step=4))
        print(f"saved by v1: {await store.load(session_id)}")

        for text in ("Hi!", "I want to fly to Lisbon"):
            print(f"user: {text}\nbot:  {await handle_message(store, session_id, text)}")

        chat = await chats_of(store).load(session_id)
        assert chat is not None
        print(
            f"typed state: turns={chat.turns}, intent={chat.intent}, "
            f"{len(chat.messages)} messages, first at {chat.messages[0].at.isoformat()}"
        )
        stored = await store.load(session_id)
        assert stored is not None
        print(f"stored JSON keys: {sorted(stored)}, schema version {stored['_schema_version']}")

        try:
            await old.save(session_id, ChatStateV1(user_id="user-123"))
        except NewerSchemaVersionError as error:
            print(f"the old code cannot overwrite it: {error}")
        await store.delete(session_id)


if __name__ == "__main__":
    asyncio.run(main())
