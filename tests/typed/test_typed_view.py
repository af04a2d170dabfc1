"""The typed view: model instances in and out, the same bytes for every reader, safe loading."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from tests.support.children import python_env
from tests.typed.models import ChatState, Counter, CounterDict, Intent, UserMessage, a_chat
from valerie.infrastructure import (
    ABSENT,
    Compression,
    ConfigurationError,
    CorruptedSessionError,
    EncodedSessionStore,
    InMemorySessionStore,
    InvalidArgumentError,
    InvalidSessionIdError,
    InvalidTTLError,
    Observer,
    OperationEvent,
    Outcome,
    SerializationError,
    SessionStore,
    StateCodec,
    StateValidationError,
    UpdaterReturnedNoneError,
    VersionConflictError,
    get_session_store,
)
from valerie.infrastructure.session_store.typed import DELETE, TypedSessionStore

Chats = TypedSessionStore[ChatState]


async def test_a_model_round_trips_exactly(chats: Chats) -> None:
    """Every type the issue names comes back equal: tz-aware datetimes, dates, times,
    timedeltas, UUIDs, Enums, Decimals, bytes, nested models, optionals, tagged unions."""
    chat = a_chat()
    await chats.save("s1", chat)
    loaded = await chats.load("s1")
    assert loaded == chat
    assert loaded is not chat
    assert loaded is not None
    assert loaded.intent is Intent.BOOK_FLIGHT
    assert [type(message).__name__ for message in loaded.messages] == [
        "UserMessage",
        "AssistantMessage",
        "ToolMessage",
    ]
    assert loaded.messages[0].at.utcoffset() == datetime.timedelta(0)


async def test_load_of_a_missing_session_is_none(chats: Chats) -> None:
    """A missing session loads as None, not an error."""
    assert await chats.load("never") is None


async def test_the_stored_value_is_the_models_json_dump_plus_its_version(
    chats: Chats, base_store: EncodedSessionStore
) -> None:
    """The dict API (any reader) sees the model's JSON dump and the reserved version key."""
    chat = a_chat()
    await chats.save("s1", chat)
    assert await base_store.load("s1") == {
        **json.loads(chat.model_dump_json()),
        "_schema_version": 1,
    }


async def test_a_redis_client_reads_the_same_json(redis_server: Any) -> None:
    """On Redis the key holds plain JSON that another client parses to the model's dump."""
    from redis.asyncio import Redis

    from valerie.infrastructure import RedisSessionStore

    chat = a_chat()
    async with RedisSessionStore(redis_server.url, prefix="typed-raw:") as store:
        await store.typed(ChatState).save("s1", chat)
        client = Redis.from_url(redis_server.url)
        try:
            raw = await client.get("typed-raw:s1")
        finally:
            await client.aclose()
    assert raw is not None
    assert json.loads(raw) == {**json.loads(chat.model_dump_json()), "_schema_version": 1}


async def test_a_value_saved_by_the_dict_api_loads_as_a_model(
    chats: Chats, base_store: EncodedSessionStore
) -> None:
    """A session written by another service as JSON (no version key: version 1) loads."""
    await base_store.save("s1", json.loads(a_chat().model_dump_json()))
    assert await chats.load("s1") == a_chat()


async def test_update_hands_fn_a_model_and_stores_what_it_returns(chats: Chats) -> None:
    """fn gets None first, then the model; update returns what load would."""
    seen: list[ChatState | None] = []

    def add_turn(chat: ChatState | None) -> ChatState:
        seen.append(chat)
        chat = chat or a_chat()
        chat.turns += 1
        return chat

    first = await chats.update("s1", add_turn)
    second = await chats.update("s1", add_turn)
    assert seen[0] is None
    assert isinstance(seen[1], ChatState)
    assert first is not None
    assert first.turns == 4
    assert second is not None
    assert second.turns == 5
    assert await chats.load("s1") == second


async def test_update_with_an_async_function(chats: Chats) -> None:
    """fn may be a coroutine function."""

    async def create(chat: ChatState | None) -> ChatState:
        await asyncio.sleep(0)
        return chat or a_chat()

    assert await chats.update("s1", create) == a_chat()


async def test_update_returning_delete_deletes(chats: Chats) -> None:
    """Deleting is explicit: fn returns DELETE."""
    await chats.save("s1", a_chat())
    assert await chats.update("s1", lambda chat: DELETE) is None
    assert not await chats.exists("s1")


async def test_update_returning_none_for_a_session_is_refused_and_writes_nothing(
    chats: Chats,
) -> None:
    """Changing the model in place and forgetting `return` is an error, not a deletion."""
    await chats.save("s1", a_chat())

    def forgets_return(chat: ChatState | None) -> None:
        assert chat is not None
        chat.turns = 99

    with pytest.raises(UpdaterReturnedNoneError, match="DELETE"):
        await chats.update("s1", forgets_return)
    assert await chats.load("s1") == a_chat()


async def test_update_returning_none_for_a_missing_session_creates_nothing(chats: Chats) -> None:
    """fn(None) -> None leaves the session missing."""
    assert await chats.update("s1", lambda chat: None) is None
    assert not await chats.exists("s1")


async def test_200_concurrent_typed_updates_lose_nothing(chats: Chats) -> None:
    """Typed updates are atomic: 200 tasks that await between read and write end at 200."""

    async def add_turn(chat: ChatState | None) -> ChatState:
        await asyncio.sleep(0)
        chat = chat or a_chat().model_copy(update={"turns": 0})
        chat.turns += 1
        return chat

    await asyncio.gather(*(chats.update("hot", add_turn) for _ in range(200)))
    loaded = await chats.load("hot")
    assert loaded is not None
    assert loaded.turns == 200


async def test_versions_compare_and_set_typed_states(chats: Chats) -> None:
    """load_versioned and save(if_version=) work on models: first writer wins."""
    assert await chats.load_versioned("s1") == (None, ABSENT)
    await chats.save("s1", a_chat(), if_version=ABSENT)
    chat, version = await chats.load_versioned("s1")
    assert chat == a_chat()
    await chats.save("s1", a_chat().model_copy(update={"turns": 7}), if_version=version)
    with pytest.raises(VersionConflictError):
        await chats.save("s1", a_chat(), if_version=version)
    loaded = await chats.load("s1")
    assert loaded is not None
    assert loaded.turns == 7


async def test_batches_take_and_return_models(chats: Chats) -> None:
    """save_many and load_many speak models; missing ids map to None."""
    states = {f"s{i}": a_chat().model_copy(update={"turns": i}) for i in range(5)}
    await chats.save_many(states, ttl=60)
    assert await chats.load_many([*states, "missing"]) == {**states, "missing": None}
    await chats.delete_many(["s0", "s1"])
    assert await chats.count() == 3
    assert sorted([session_id async for session_id in chats.iter_ids("s[2-3]")]) == ["s2", "s3"]


@pytest.mark.parametrize(
    ("states", "ttl", "error"),
    [
        ({"a": a_chat(), "b": {"not": "a model"}}, None, SerializationError),
        ({"a": a_chat(), "b\n": a_chat()}, None, InvalidSessionIdError),
        ({"a": a_chat(), "b": a_chat()}, 0, InvalidTTLError),
        ([("a", a_chat())], None, InvalidArgumentError),
    ],
)
async def test_a_bad_item_fails_the_whole_typed_batch_before_writing(
    chats: Chats, states: Any, ttl: Any, error: type[Exception]
) -> None:
    """save_many checks every id, model and the TTL before writing any."""
    with pytest.raises(error):
        await chats.save_many(states, ttl)
    assert await chats.count() == 0


async def test_update_refuses_what_is_not_callable_before_reading(chats: Chats) -> None:
    """fn is checked first: InvalidArgumentError, nothing written."""
    with pytest.raises(InvalidArgumentError, match="fn"):
        await chats.update("s1", "not a function")  # type: ignore[arg-type]
    assert not await chats.exists("s1")


async def test_expiry_and_leases_pass_through(chats: Chats) -> None:
    """touch, ttl, exists, delete and lock behave as on the store."""
    await chats.save("s1", a_chat(), ttl=60)
    remaining = await chats.ttl("s1")
    assert remaining is not None
    assert 58 <= remaining <= 60
    assert await chats.touch("s1", ttl=600)
    remaining = await chats.ttl("s1")
    assert remaining is not None
    assert remaining > 500
    async with chats.lock("s1", timeout=5):
        assert await chats.exists("s1")
    await chats.delete("s1")
    assert not await chats.exists("s1")


# What cannot be written


async def test_a_state_of_another_type_is_refused_before_anything_is_written(
    chats: Chats,
) -> None:
    """A dict or another model is a SerializationError; the stored session stays."""
    await chats.save("s1", a_chat())
    for wrong in ({"user_id": "x"}, UserMessage(content="hi", at=datetime.datetime.now())):
        with pytest.raises(SerializationError, match="must be a ChatState"):
            await chats.save("s1", wrong)  # type: ignore[arg-type]
    assert await chats.load("s1") == a_chat()


async def test_a_model_that_cannot_be_dumped_is_refused_before_anything_is_written(
    chats: Chats,
) -> None:
    """A field holding the wrong type (no validate_assignment) is refused, naming the field
    and not the value."""
    await chats.save("s1", a_chat())
    broken = a_chat()
    broken.turns = "secret-value-123"  # type: ignore[assignment]
    with pytest.raises(SerializationError) as caught:
        await chats.save("s1", broken)
    assert caught.value.path == "state['turns']"
    assert "secret-value-123" not in str(caught.value)
    assert await chats.load("s1") == a_chat()


class Utf8Blob(BaseModel):
    blob: bytes


async def test_bytes_that_are_not_utf8_need_base64(base_store: EncodedSessionStore) -> None:
    """Pydantic's default writes bytes as UTF-8 text: other bytes are refused (nothing
    written); `ser_json_bytes="base64"` (as in ChatState) stores any bytes."""
    blobs = base_store.typed(Utf8Blob)
    await blobs.save("s1", Utf8Blob(blob=b"text"))
    assert await blobs.load("s1") == Utf8Blob(blob=b"text")
    with pytest.raises(SerializationError, match="cannot be dumped"):
        await blobs.save("s1", Utf8Blob(blob=b"\xff\xfe"))
    assert await blobs.load("s1") == Utf8Blob(blob=b"text")


# What cannot be read


async def test_a_stored_value_that_does_not_validate_names_the_paths_and_stays(
    chats: Chats, base_store: EncodedSessionStore
) -> None:
    """StateValidationError is a CorruptedSessionError naming each field path (the id is an
    attribute); the message quotes no stored value; the value is left in place."""
    stored = json.loads(a_chat().model_dump_json())
    stored["messages"][1]["role"] = "robot-secret-1"
    stored["booking"]["price"] = "cheap-secret-2"
    await base_store.save("s1", stored)
    with pytest.raises(StateValidationError) as caught:
        await chats.load("s1")
    error = caught.value
    assert isinstance(error, CorruptedSessionError)
    assert isinstance(error, ValueError)
    assert error.session_id == "s1"
    assert error.paths == ("state['messages'][1]", "state['booking']['price']")
    assert "state['messages'][1]" in str(error)
    assert "state['booking']['price']" in str(error)
    assert "secret" not in str(error)
    assert "s1" not in str(error)
    assert await base_store.load("s1") == stored


async def test_a_stored_value_naming_code_is_inert(
    chats: Chats, base_store: EncodedSessionStore, tmp_path: Path
) -> None:
    """The type comes from the code, never from the data: values that name os.system,
    pickle opcodes or type tags are validation errors (or plain strings), never run."""
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    hostile: list[dict[str, Any]] = [
        {"__class__": "os.system", "args": [command]},
        {"py/object": "os.system", "py/reduce": [{"py/function": "os.system"}, [command]]},
        {"$type": "System.Diagnostics.Process, System", "StartInfo": command},
        {"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {"command": command}},
        {"user_id": {"__reduce__": ["os.system", [command]]}},
        {"user_id": "12345678-1234-5678-1234-567812345678", "intent": "os.system"},
        {"user_id": "12345678-1234-5678-1234-567812345678", "messages": [{"role": "os.system"}]},
        {"user_id": "12345678-1234-5678-1234-567812345678", "attachment": "cos\nsystem\n."},
    ]
    modules = set(sys.modules)
    for index, value in enumerate(hostile):
        await base_store.save(f"h{index}", value)
        with pytest.raises(StateValidationError):
            await chats.load(f"h{index}")
    # A field typed `dict[str, Any]` holds such a value as plain data.
    plain = {"user_id": "12345678-1234-5678-1234-567812345678", "context": hostile[1]}
    await base_store.save("plain", plain)
    loaded = await chats.load("plain")
    assert loaded is not None
    assert loaded.context == hostile[1]
    assert not marker.exists()
    assert set(sys.modules) - modules == set()


def test_no_pickle_anywhere_in_the_package() -> None:
    """Nothing in the package imports pickle, reads marshal data (the codec only writes it, to
    check types), or names a type to load from data."""
    root = Path(__file__).parents[2] / "src" / "valerie"
    for source in root.rglob("*.py"):
        text = source.read_text()
        for word in ("import pickle", "marshal.load", "import_module", "__import__", "eval("):
            assert word not in text, f"{source} contains {word}"


# Other kinds of model


async def test_a_dataclass_is_typed_through_a_type_adapter(base_store: EncodedSessionStore) -> None:
    """Dataclasses work like models (Pydantic's TypeAdapter)."""
    counters = base_store.typed(Counter)
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    await counters.save("c", Counter(count=1, updated=when))
    assert await counters.load("c") == Counter(count=1, updated=when)

    def bump(counter: Counter | None) -> Counter:
        assert counter is not None
        return dataclasses.replace(counter, count=2)

    assert await counters.update("c", bump) == Counter(count=2, updated=when)
    with pytest.raises(SerializationError):
        await counters.save("c", {"count": 3})  # type: ignore[arg-type]


async def test_a_typed_dict_is_typed_through_a_type_adapter(
    base_store: EncodedSessionStore,
) -> None:
    """TypedDicts (from typing_extensions on Python < 3.12) are checked by the dump."""
    counters = base_store.typed(CounterDict)
    await counters.save("c", {"count": 1, "tags": ["a"]})
    assert await counters.load("c") == {"count": 1, "tags": ["a"]}
    with pytest.raises(SerializationError, match=r"state\['count'\]"):
        await counters.save("c", {"count": "one", "tags": []})  # type: ignore[typeddict-item]
    assert await counters.load("c") == {"count": 1, "tags": ["a"]}


class StrictChat(BaseModel):
    model_config = ConfigDict(strict=True)

    at: datetime.datetime
    intent: Intent


async def test_strict_models_validate_from_json(base_store: EncodedSessionStore) -> None:
    """Validation runs on the stored JSON, so strict models load (a dict would not do)."""
    strict = base_store.typed(StrictChat)
    chat = StrictChat(at=datetime.datetime(2026, 1, 1), intent=Intent.CANCEL)
    await strict.save("s", chat)
    assert await strict.load("s") == chat


# Configuration


def test_a_type_pydantic_cannot_take_is_a_configuration_error() -> None:
    """A model Pydantic has no schema for is refused when the view is made."""

    class NotAModel:
        pass

    with pytest.raises(ConfigurationError, match="NotAModel"):
        InMemorySessionStore().typed(NotAModel)


def test_a_model_whose_json_is_not_an_object_is_refused_on_save() -> None:
    """A type whose JSON is not an object cannot be a session."""
    view = InMemorySessionStore().typed(list[int])
    with pytest.raises(SerializationError, match="not an object"):
        asyncio.run(view.save("s", [1]))


def test_the_view_says_what_it_types() -> None:
    """repr names the model, the version and the store."""
    view = InMemorySessionStore().typed(ChatState)
    assert repr(view).startswith("TypedSessionStore(ChatState, version=1, store=InMemorySession")
    assert view.version == 1


def test_without_pydantic_the_store_imports_and_typed_says_how_to_install() -> None:
    """The store needs only the standard library; typed() without Pydantic says what to
    install."""
    script = (
        "import sys\n"
        "sys.modules['pydantic'] = None\n"
        "sys.modules['pydantic_core'] = None\n"
        "import valerie.infrastructure as v\n"
        "from valerie.infrastructure import MissingDependencyError\n"
        "try:\n"
        "    v.InMemorySessionStore().typed(dict)\n"
        "except MissingDependencyError as error:\n"
        "    print(type(error).__name__, isinstance(error, ImportError), error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=python_env(),
        check=True,
        timeout=60,
        cwd=os.getcwd(),
    )
    assert result.stdout.strip() == (
        "MissingDependencyError True typed sessions need Pydantic v2, which is not "
        "installed: pip install 'valerie[pydantic]'"
    )


class Empty(BaseModel):
    pass


class Forbidding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


@pytest.mark.parametrize(
    "raw",
    [
        b'{"_schema_version":1,"name":"Ann"}',
        b'{"name": "Ann", "_schema_version": 1}',
        b'{\n  "name": "Ann",\n  "_schema_version": 1\n}',
        b'{"name":"Ann"}',
        b'{"name":"Ann","_schema_version":1}',
    ],
)
async def test_any_json_layout_of_a_session_loads(
    base_store: EncodedSessionStore, raw: bytes
) -> None:
    """Whatever the writer's layout (stamp first, spaces, none at all), load and load_many
    read the session; the reserved key never reaches a model that forbids extras."""
    await base_store.backend.write("s1", raw, 60)
    view = base_store.typed(Forbidding)
    assert await view.load("s1") == Forbidding(name="Ann")
    assert await view.load_many(["s1"]) == {"s1": Forbidding(name="Ann")}


async def test_a_model_with_no_fields_round_trips(base_store: EncodedSessionStore) -> None:
    """An empty model is stored as just its version."""
    empty = base_store.typed(Empty)
    await empty.save("s1", Empty())
    assert await base_store.load("s1") == {"_schema_version": 1}
    assert await empty.load("s1") == Empty()


async def test_a_stored_value_that_is_not_json_is_corrupted(
    chats: Chats, base_store: EncodedSessionStore
) -> None:
    """Bytes that are no JSON object raise a CorruptedSessionError and stay."""
    for raw in (b"not json", b"[1,2]", b'"_schema_version":1}'):
        await base_store.backend.write("s1", raw, 60)
        with pytest.raises(CorruptedSessionError):
            await chats.load("s1")
        assert await base_store.backend.read("s1") == raw


# The store's codec layers


class TaggedJson:
    """A codec of another shape: JSON after a tag, so the stored bytes are not plain JSON."""

    def __init__(self) -> None:
        self._json = StateCodec()

    def encode(self, state: Any) -> bytes:
        return b"v1:" + self._json.encode(state)

    def decode(self, data: bytes) -> dict[str, Any]:
        return self._json.decode(data.removeprefix(b"v1:"))


class Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[OperationEvent] = []

    def on_operation(self, event: OperationEvent) -> None:
        self.events.append(event)


async def test_the_typed_view_reads_through_transforms_and_other_codecs() -> None:
    """With Compression, the typed load gets the JSON back (transforms undone); with another
    codec, it goes through the store's own load. Both round-trip, migrations included."""
    for store in (
        InMemorySessionStore(transforms=[Compression()]),
        InMemorySessionStore(codec=TaggedJson()),
    ):
        chats = store.typed(ChatState)
        await chats.save("s1", a_chat())
        assert await chats.load("s1") == a_chat()
        await store.save("old", {"name": "Ann"})
        renamed = store.typed(
            Forbidding, version=2, migrations={1: lambda state: {"name": state["name"] + "!"}}
        )
        assert await renamed.load("old") == Forbidding(name="Ann!")
        assert await store.load("old") == {"name": "Ann!", "_schema_version": 2}


async def test_observers_see_a_typed_load_as_a_load() -> None:
    """The typed view's direct read of the JSON is reported like any load, hit or miss."""
    recorder = Recorder()
    store = InMemorySessionStore(observers=[recorder])
    chats = store.typed(ChatState)
    await chats.save("s1", a_chat())
    recorder.events.clear()
    await chats.load("s1")
    await chats.load("missing")
    assert [(event.operation, event.outcome) for event in recorder.events] == [
        ("load", Outcome.HIT),
        ("load", Outcome.MISS),
    ]
    assert recorder.events[0].bytes == len(await store.backend.read("s1") or b"")


def test_any_session_store_offers_typed() -> None:
    """typed() is part of the SessionStore contract, the type get_session_store() returns."""
    store: SessionStore = get_session_store({})
    assert isinstance(store.typed(ChatState), TypedSessionStore)
