"""Property tests: any model holding every type the issue names round-trips exactly through
the typed view, on memory and Redis; what Pydantic dumps is what any reader gets."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.contract.test_properties import store_settings  # fresh ids per example
from tests.support.properties import examples
from tests.typed.models import (
    AssistantMessage,
    Booking,
    ChatState,
    Intent,
    ToolMessage,
    UserMessage,
)
from valerie.infrastructure import EncodedSessionStore, InMemorySessionStore, SerializationError

offsets = st.builds(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
aware_datetimes = st.datetimes(
    min_value=datetime.datetime(1, 1, 2),
    max_value=datetime.datetime(9999, 12, 30),
    timezones=offsets,
)
times = st.times() | st.times(timezones=offsets)
durations = st.timedeltas(
    min_value=datetime.timedelta(days=-999_999), max_value=datetime.timedelta(days=999_999)
)
decimals = st.decimals(allow_nan=False, allow_infinity=False)
texts = st.text(max_size=20)
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=10,
)

messages = st.one_of(
    st.builds(UserMessage, content=texts, at=aware_datetimes),
    st.builds(AssistantMessage, content=texts, at=aware_datetimes, latency=st.none() | durations),
    st.builds(ToolMessage, tool=texts, result=st.binary(max_size=20), at=aware_datetimes),
)
bookings = st.builds(Booking, departs=st.dates(), at=times, price=decimals, reference=st.uuids())
chat_states = st.builds(
    ChatState,
    user_id=st.uuids(),
    intent=st.none() | st.sampled_from(Intent),
    messages=st.lists(messages, max_size=4),
    booking=st.none() | bookings,
    turns=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    attachment=st.binary(max_size=40),
    context=st.dictionaries(texts, json_values, max_size=4),
)


def assert_identical(loaded: Any, saved: Any) -> None:
    """Equal, and what equality forgives is kept too: the same UTC offsets, Decimal digits."""
    assert loaded == saved
    if isinstance(saved, datetime.datetime | datetime.time):
        assert loaded.utcoffset() == saved.utcoffset()
    if isinstance(saved, decimal.Decimal):
        assert str(loaded) == str(saved)
    if isinstance(saved, BaseModel):
        for name in type(saved).model_fields:
            assert_identical(getattr(loaded, name), getattr(saved, name))
    if isinstance(saved, list):
        for pair in zip(loaded, saved, strict=True):
            assert_identical(*pair)


@store_settings
@given(chat=chat_states)
async def test_any_chat_state_round_trips_exactly(
    base_store: EncodedSessionStore, chat: ChatState
) -> None:
    """Every type in the model comes back identical: offsets and Decimal digits too."""
    chats = base_store.typed(ChatState)
    session_id = f"p-{uuid.uuid4().hex}"
    await chats.save(session_id, chat)
    loaded = await chats.load(session_id)
    assert_identical(loaded, chat)
    assert_identical(await chats.update(session_id, lambda state: state), chat)


@store_settings
@given(chat=chat_states)
async def test_any_reader_gets_the_models_json_dump(
    base_store: EncodedSessionStore, chat: ChatState
) -> None:
    """The stored JSON is Pydantic's own JSON of the model, plus the version key."""
    session_id = f"p-{uuid.uuid4().hex}"
    await base_store.typed(ChatState).save(session_id, chat)
    assert await base_store.load(session_id) == {
        **json.loads(chat.model_dump_json()),
        "_schema_version": 1,
    }


class Number(BaseModel):
    value: int


@settings(max_examples=examples(30), deadline=None)
@given(value=st.integers(min_value=2**64) | st.integers(max_value=-(2**63) - 1))
async def test_an_integer_json_readers_cannot_take_is_refused_with_its_path(value: int) -> None:
    """The store's JSON rules still apply under the model: nothing is written."""
    store = InMemorySessionStore()
    numbers = store.typed(Number)
    with pytest.raises(SerializationError) as caught:
        await numbers.save("n", Number(value=value))
    assert caught.value.path == "state['value']"
    assert await store.count() == 0
