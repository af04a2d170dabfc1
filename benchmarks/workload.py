"""What every scenario stores: a ~2 KB chatbot state under UUID session ids."""

from __future__ import annotations

import uuid
from typing import Any

State = dict[str, Any]

TTL_SECONDS = 3600
SESSION_COUNT = 1024
"""Session ids per contestant in the throughput, update and cluster scenarios."""


def make_state() -> State:
    """Return a realistic chatbot state of about 2 KB of JSON.

    A delivery-rescheduling conversation: ids, the dialogue step and intent, twelve messages
    with role, content and timestamp, and a context holding a float, bools, None and a list.
    """
    lines = [
        ("user", "Hi, my parcel was supposed to arrive today but nobody came."),
        ("assistant", "Sorry to hear that. Could you give me your order number?"),
        ("user", "Sure, it's A-10293847."),
        ("assistant", "Thanks. I can see the courier tried at 10:42 and left a card."),
        ("user", "I was home all morning and the doorbell never rang, this is the second time."),
        ("assistant", "I'm sorry about that. Would you like to book a new delivery slot?"),
        ("user", "Yes please, ideally Thursday or Friday, I work from home on those days."),
        ("assistant", "Thursday 10:00-12:00 or Friday 14:00-16:00 are free. Which one suits you?"),
        ("user", "Friday afternoon works."),
        ("assistant", "Done: Friday 14:00-16:00. Shall I text you a reminder the day before?"),
        ("user", "Yes, same number as on the order."),
        ("assistant", "Great, you'll get a text on Thursday evening. Anything else I can do?"),
    ]
    messages = [
        {"role": role, "content": content, "timestamp": f"2024-05-14T09:{31 + i:02d}:0{i % 10}Z"}
        for i, (role, content) in enumerate(lines)
    ]
    return {
        "user_id": "u-5f3a9c2e-8b1d-4e7a-9c3f-2d6b8a1e4f70",
        "step": "confirm_reminder",
        "intent": "reschedule_delivery",
        "turn": 12,
        "locale": "en-GB",
        "timezone": "Europe/London",
        "messages": messages,
        "context": {
            "order_id": "A-10293847",
            "address": "Flat 3, 27 Harbour Street, Leith, Edinburgh EH6 6QW",
            "channel": "whatsapp",
            "confidence": 0.8731,
            "sentiment": -0.42,
            "reason": "missed_delivery_attempt",
            "authenticated": True,
            "escalated": False,
            "agent_id": None,
            "slots_offered": ["2024-05-16T10:00", "2024-05-17T14:00"],
            "slot_chosen": "2024-05-17T14:00",
            "reminder": {"channel": "sms", "opt_in": True},
        },
    }


def session_id(number: int) -> str:
    """Return the `number`th session id: a UUID, as many bots use."""
    return str(uuid.UUID(int=number, version=4))


def session_ids(count: int = SESSION_COUNT, first: int = 0) -> list[str]:
    """Return `count` consecutive session ids from the `first`th."""
    return [session_id(number) for number in range(first, first + count)]
