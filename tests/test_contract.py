"""The behaviour every store shares, run once per backend (memory and Redis)."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import uuid
from datetime import timedelta
from typing import Any

import pytest

from valerie.infrastructure import (
    CorruptedSessionError,
    EncodedSessionStore,
    InvalidSessionIdError,
    InvalidTTLError,
    SerializationError,
    SessionStoreError,
)

STATE: dict[str, Any] = {
    "user_id": "user-123",
    "step": 2,
    "intent": "book_flight",
    "history": [{"role": "user", "content": "Flights to Lisbon?"}],
    "context": {"price": 199.5, "confirmed": False, "notes": None, "tags": ["a", "b"]},
}

BAD_IDS: list[Any] = [
    "",
    None,
    123,
    b"bytes-id",
    "line\nbreak",
    "nul\x00",
    "tab\tseparated",
    "delete\x7f",
    "c1-control\x85",
    "x" * 513,
    "é" * 257,  # 514 UTF-8 bytes
    "lone-surrogate-\ud800",
]

GOOD_IDS = [
    "user-123-session",
    "with space",
    "glob*chars?[x]",
    "colons:and/slashes",
    "ünïcødé-💬",
    "x" * 512,
    "é" * 256,  # exactly 512 UTF-8 bytes
]

BAD_TTLS: list[Any] = [
    0,
    -1,
    1.5,
    60.0,
    True,
    "60",
    timedelta(0),
    timedelta(seconds=-5),
    timedelta(seconds=1.5),
    10**10,
    [60],
]

BAD_STATES: list[tuple[Any, str]] = [
    ({"context": {"when": datetime.datetime(2026, 1, 1)}}, "state['context']['when']"),
    ({"tags": {"a", "b"}}, "state['tags']"),
    ({"id": uuid.UUID(int=1)}, "state['id']"),
    ({"price": decimal.Decimal("1.5")}, "state['price']"),
    ({"score": float("nan")}, "state['score']"),
    ({"score": float("inf")}, "state['score']"),
    ({"history": [{"ok": 1}, {"at": object()}]}, "state['history'][1]['at']"),
    ({"by_user": {1: "one"}}, "state['by_user']"),
    ({"raw": b"bytes"}, "state['raw']"),
    ({"big": 2**64}, "state['big']"),
    ({"text": "lone \udc00 surrogate"}, "state['text']"),
]


async def test_save_then_load_returns_the_state(store: EncodedSessionStore) -> None:
    """A saved state loads back equal."""
    await store.save("s1", STATE, ttl=60)
    assert await store.load("s1") == STATE


async def test_load_of_a_missing_session_returns_none(store: EncodedSessionStore) -> None:
    """Loading an id that was never saved gives None, not an error."""
    assert await store.load("never-saved") is None


async def test_exists_reflects_save_and_delete(store: EncodedSessionStore) -> None:
    """exists is False before save, True after, False after delete."""
    assert await store.exists("s1") is False
    await store.save("s1", STATE)
    assert await store.exists("s1") is True
    await store.delete("s1")
    assert await store.exists("s1") is False
    assert await store.load("s1") is None


async def test_delete_of_a_missing_session_is_not_an_error(store: EncodedSessionStore) -> None:
    """Deleting twice, or deleting what never existed, succeeds."""
    await store.delete("never-saved")
    await store.save("s1", STATE)
    await store.delete("s1")
    await store.delete("s1")


async def test_save_replaces_the_previous_state(store: EncodedSessionStore) -> None:
    """A second save of the same id replaces the state entirely (no merge)."""
    await store.save("s1", STATE)
    await store.save("s1", {"step": 3})
    assert await store.load("s1") == {"step": 3}


async def test_sessions_are_independent(store: EncodedSessionStore) -> None:
    """Saving or deleting one id leaves others alone."""
    await store.save("a", {"n": 1})
    await store.save("b", {"n": 2})
    await store.delete("a")
    assert await store.load("b") == {"n": 2}


async def test_load_returns_what_the_json_round_trip_yields(store: EncodedSessionStore) -> None:
    """Tuples come back as lists, on every backend alike."""
    await store.save("s1", {"pair": (1, 2), "nested": [(3, (4,))]})
    assert await store.load("s1") == {"pair": [1, 2], "nested": [[3, [4]]]}


async def test_loaded_state_is_a_fresh_copy(store: EncodedSessionStore) -> None:
    """Mutating a loaded state does not change what is stored, nor the next load."""
    await store.save("s1", STATE)
    loaded = await store.load("s1")
    assert loaded is not None
    loaded["step"] = 99
    loaded["history"].append({"role": "assistant"})
    assert await store.load("s1") == STATE
    assert await store.load("s1") is not await store.load("s1")


async def test_saved_state_is_copied(store: EncodedSessionStore) -> None:
    """Mutating the dict after save does not change what is stored."""
    state: dict[str, Any] = {"history": ["hi"]}
    await store.save("s1", state)
    state["history"].append("changed")
    state["new"] = True
    assert await store.load("s1") == {"history": ["hi"]}


@pytest.mark.parametrize("ttl", [1, 60, 3600, timedelta(minutes=5), timedelta(days=2), None])
async def test_valid_ttls_are_accepted(store: EncodedSessionStore, ttl: Any) -> None:
    """int seconds, whole-second timedeltas and None (the default TTL) are accepted."""
    await store.save("s1", STATE, ttl=ttl)
    assert await store.load("s1") == STATE


async def test_save_without_ttl_uses_the_default(store: EncodedSessionStore) -> None:
    """The store's default TTL applies when save is called without one."""
    await store.save("s1", STATE)
    assert store.default_ttl == 3600
    assert await store.exists("s1")


@pytest.mark.slow
async def test_sessions_expire_after_their_ttl(store: EncodedSessionStore) -> None:
    """After its TTL a session is gone for load and exists; a longer one is still there."""
    await store.save("short", STATE, ttl=1)
    await store.save("long", STATE, ttl=60)
    await asyncio.sleep(1.2)
    assert await store.load("short") is None
    assert await store.exists("short") is False
    assert await store.load("long") == STATE


@pytest.mark.slow
async def test_saving_again_renews_the_ttl(store: EncodedSessionStore) -> None:
    """A save restarts the session's TTL."""
    await store.save("s1", STATE, ttl=1)
    await asyncio.sleep(0.6)
    await store.save("s1", STATE, ttl=2)
    await asyncio.sleep(0.8)
    assert await store.load("s1") == STATE


@pytest.mark.parametrize("session_id", GOOD_IDS)
async def test_unusual_but_valid_ids_round_trip(
    store: EncodedSessionStore, session_id: str
) -> None:
    """Spaces, glob characters, non-ASCII text and 512-byte ids are valid ids."""
    await store.save(session_id, {"id": session_id})
    assert await store.exists(session_id)
    assert await store.load(session_id) == {"id": session_id}
    await store.delete(session_id)
    assert not await store.exists(session_id)


@pytest.mark.parametrize("session_id", BAD_IDS, ids=repr)
async def test_invalid_ids_raise_on_every_method(
    store: EncodedSessionStore, session_id: Any
) -> None:
    """Every method refuses an invalid id with InvalidSessionIdError (a ValueError)."""
    with pytest.raises(InvalidSessionIdError):
        await store.save(session_id, STATE)
    with pytest.raises(InvalidSessionIdError):
        await store.load(session_id)
    with pytest.raises(InvalidSessionIdError):
        await store.delete(session_id)
    with pytest.raises(InvalidSessionIdError):
        await store.exists(session_id)


async def test_invalid_id_messages_do_not_repeat_the_id(store: EncodedSessionStore) -> None:
    """Ids may be secrets: the message describes the problem without quoting the id."""
    secret = "token-abcdef0123456789\n"
    with pytest.raises(InvalidSessionIdError) as caught:
        await store.load(secret)
    assert "abcdef0123456789" not in str(caught.value)
    assert "control character" in str(caught.value)


@pytest.mark.parametrize("ttl", BAD_TTLS, ids=repr)
async def test_invalid_ttls_raise_and_keep_the_session(
    store: EncodedSessionStore, ttl: Any
) -> None:
    """A bad TTL raises InvalidTTLError and the session saved before is untouched."""
    await store.save("s1", STATE)
    with pytest.raises(InvalidTTLError):
        await store.save("s1", {"step": 99}, ttl=ttl)
    assert await store.load("s1") == STATE


@pytest.mark.parametrize(("state", "path"), BAD_STATES, ids=lambda v: str(v)[:40])
async def test_unstorable_states_raise_with_their_path_and_keep_the_session(
    store: EncodedSessionStore, state: dict[str, Any], path: str
) -> None:
    """A state JSON cannot hold raises SerializationError naming the path; nothing is written."""
    await store.save("s1", STATE)
    with pytest.raises(SerializationError) as caught:
        await store.save("s1", state)
    assert caught.value.path == path
    assert str(caught.value).startswith(path)
    assert await store.load("s1") == STATE


@pytest.mark.parametrize("state", [[1, 2], "text", None, 42, ("a", 1)], ids=repr)
async def test_a_state_that_is_not_a_dict_is_refused(
    store: EncodedSessionStore, state: Any
) -> None:
    """Only a JSON object can be a state."""
    with pytest.raises(SerializationError, match="state must be a dict"):
        await store.save("s1", state)
    assert not await store.exists("s1")


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"", b"NaN", b'{"a": 1'], ids=repr
)
async def test_corrupted_data_raises_and_is_left_in_place(
    store: EncodedSessionStore, raw: bytes
) -> None:
    """A stored value that is not a JSON object raises CorruptedSessionError, and stays."""
    await store._write("s1", raw, 60)
    with pytest.raises(CorruptedSessionError):
        await store.load("s1")
    assert await store.exists("s1")
    await store.delete("s1")
    assert await store.load("s1") is None


async def test_text_and_numbers_round_trip_exactly(store: EncodedSessionStore) -> None:
    """Non-ASCII text, escapes, 64-bit integers and floats survive unchanged."""
    state = {
        "text": 'Olá, 世界 💬 "quoted" \\ back\nslash\ttab \x00 \u2028',
        "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1],
        "floats": [0.1, -0.0, 1e-300, 1.7976931348623157e308, 0.30000000000000004],
        "bools": [True, False, None],
        "empty": {"list": [], "dict": {}, "str": ""},
    }
    await store.save("s1", state)
    assert await store.load("s1") == state


async def test_large_states_round_trip(store: EncodedSessionStore) -> None:
    """A state of about a megabyte is stored and loaded whole."""
    state = {"history": [{"content": "x" * 1000, "n": n} for n in range(1000)]}
    await store.save("big", state)
    assert await store.load("big") == state


async def test_500_concurrent_save_load_pairs_each_see_their_own_state(
    store: EncodedSessionStore,
) -> None:
    """Many tasks at once: every load returns the state its own task saved."""

    async def turn(n: int) -> dict[str, Any] | None:
        await store.save(f"user-{n}", {"n": n, "history": [f"message {n}"]})
        return await store.load(f"user-{n}")

    results = await asyncio.gather(*(turn(n) for n in range(500)))
    assert results == [{"n": n, "history": [f"message {n}"]} for n in range(500)]


async def test_close_is_idempotent_and_the_store_reopens(store: EncodedSessionStore) -> None:
    """close() can be called twice, and a closed store serves the next call."""
    await store.save("s1", STATE)
    await store.close()
    await store.close()
    assert await store.load("s1") == STATE


async def test_errors_share_one_base_class(store: EncodedSessionStore) -> None:
    """Every error the store raises is a SessionStoreError."""
    for call in (store.load(""), store.save("s1", {"x": {1, 2}}), store.save("s1", {}, ttl=0)):
        with pytest.raises(SessionStoreError):
            await call
