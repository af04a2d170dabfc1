"""The chat state models the typed tests use: every type the issue names, in one state."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict


class Intent(enum.Enum):
    BOOK_FLIGHT = "book_flight"
    CANCEL = "cancel"
    SMALL_TALK = "small_talk"


class UserMessage(BaseModel):
    role: Literal["user"] = "user"
    content: str
    at: datetime.datetime


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    at: datetime.datetime
    latency: datetime.timedelta | None = None


class ToolMessage(BaseModel):
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    role: Literal["tool"] = "tool"
    tool: str
    result: bytes
    at: datetime.datetime


Message = Annotated[UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]


class Booking(BaseModel):
    departs: datetime.date
    at: datetime.time
    price: decimal.Decimal
    reference: uuid.UUID


class ChatState(BaseModel):
    """A chatbot's state: ids, an intent Enum, messages with roles and timestamps, a booking."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    user_id: uuid.UUID
    intent: Intent | None = None
    messages: list[Message] = []
    booking: Booking | None = None
    turns: int = 0
    attachment: bytes = b""
    context: dict[str, Any] = {}


@dataclasses.dataclass
class Counter:
    count: int
    updated: datetime.datetime | None = None


class CounterDict(TypedDict):
    count: int
    tags: list[str]


UTC = datetime.UTC


def a_chat() -> ChatState:
    """A state holding every type the issue names."""
    now = datetime.datetime(2026, 11, 29, 10, 30, 15, 123456, tzinfo=UTC)
    return ChatState(
        user_id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        intent=Intent.BOOK_FLIGHT,
        messages=[
            UserMessage(content="Flights to Lisbon?", at=now),
            AssistantMessage(
                content="When?", at=now, latency=datetime.timedelta(seconds=1, microseconds=5)
            ),
            ToolMessage(tool="search", result=b"\x00\xff binary", at=now),
        ],
        booking=Booking(
            departs=datetime.date(2026, 12, 24),
            at=datetime.time(7, 45, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
            price=decimal.Decimal("199.50"),
            reference=uuid.UUID("87654321-4321-8765-4321-876543218765"),
        ),
        turns=3,
        attachment=b"\x89PNG\r\n",
        context={"lang": "pt", "nested": {"n": [1, 2.5, None, True]}},
    )
