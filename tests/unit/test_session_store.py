"""The behaviour every store shares, run once per backend (memory and Redis)."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import inspect
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.support.backends import backend_params, open_store
from valerie.infrastructure import (
    CorruptedSessionError,
    EncodedSessionStore,
    InvalidArgumentError,
    InvalidSessionIdError,
    InvalidTTLError,
    Lease,
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
    """Deleting twice, or deleting what never existed, succeeds, creates nothing and leaves
    the other sessions alone."""
    await store.save("other", STATE)
    await store.delete("never-saved")
    assert not await store.exists("never-saved")
    await store.save("s1", STATE)
    await store.delete("s1")
    await store.delete("s1")
    assert await store.load("s1") is None
    assert await store.load("other") == STATE
    assert [session_id async for session_id in store.iter_ids()] == ["other"]


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


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [
        (1, 1),
        (60, 60),
        (3600, 3600),
        (timedelta(minutes=5), 300),
        (timedelta(days=2), 172_800),
        (timedelta(days=3650), 315_360_000),
        (None, 3600),
    ],
    ids=repr,
)
async def test_valid_ttls_are_applied(store: EncodedSessionStore, ttl: Any, seconds: int) -> None:
    """int seconds, whole-second timedeltas (days included) and None (the default TTL) are
    stored as that many seconds."""
    await store.save("s1", STATE, ttl=ttl)
    assert await store.ttl("s1") == seconds
    assert await store.load("s1") == STATE


DEFAULT_TTL = timedelta(minutes=2, seconds=17)  # 137 s, unlike any default of the library


@pytest.fixture(params=backend_params())
async def store_137(request: pytest.FixtureRequest) -> AsyncIterator[EncodedSessionStore]:
    """Each backend in turn, made with default_ttl=DEFAULT_TTL."""
    async with open_store(request, request.param, default_ttl=DEFAULT_TTL) as store:
        yield store


async def test_every_write_without_a_ttl_applies_the_default(
    store_137: EncodedSessionStore,
) -> None:
    """save, update, save_many, touch and load(refresh_ttl=True) without a TTL all set the
    store's own default_ttl (137 s here)."""
    store = store_137
    assert store.default_ttl == 137
    await store.save("save", STATE)
    await store.update("update", lambda state: {"n": 1})
    await store.save_many({"batch-1": STATE, "batch-2": STATE})
    for session_id in ("touch", "refresh"):
        await store.save(session_id, STATE, ttl=10)
    assert await store.touch("touch")
    assert await store.load("refresh", refresh_ttl=True) == STATE
    for session_id in ("save", "update", "batch-1", "batch-2", "touch", "refresh"):
        assert await store.ttl(session_id) == 137, session_id


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
    await store.backend.write("s1", raw, 60)
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


async def test_ping_reports_a_plausible_latency(store: EncodedSessionStore) -> None:
    """ping() measures its round trip in milliseconds: positive, within the call's own time,
    and not a thousand times smaller (seconds)."""
    ratios = []
    for _ in range(5):
        started = time.perf_counter()
        facts = await store.ping()
        elapsed_ms = (time.perf_counter() - started) * 1000
        latency = facts["latency_ms"]
        assert isinstance(latency, float)
        assert 0 < latency <= elapsed_ms
        ratios.append(latency / elapsed_ms)
    # The best of five, so that a pause of the process outside the measured part is no failure.
    assert max(ratios) > 0.01


async def test_ping_names_the_topology(
    store: EncodedSessionStore, request: pytest.FixtureRequest
) -> None:
    """ping() says what serves the store, for a readiness probe to report."""
    backend = request.node.callspec.params["store"]
    expected = {"memory": "memory", "redis-sentinel": "sentinel", "redis-cluster": "cluster"}
    facts = await store.ping()
    assert facts["topology"] == expected.get(backend, "standalone")
    if backend == "memory":
        await store.save("s1", STATE)
        assert (await store.ping())["sessions"] == 1


async def test_errors_share_one_base_class(store: EncodedSessionStore) -> None:
    """Every error the store raises is a SessionStoreError."""
    for call in (store.load(""), store.save("s1", {"x": {1, 2}}), store.save("s1", {}, ttl=0)):
        with pytest.raises(SessionStoreError):
            await call


# Every argument of every public method, refused with a typed error that names it

V = "victim-5e3c1b"  # saved before each bad call; no message may quote it
VICTIM_STATE = {"secret": "Lisbon-7f2a", "step": 4}
ARG, ID, TTL, SER = InvalidArgumentError, InvalidSessionIdError, InvalidTTLError, SerializationError

Call = Callable[[Any], Awaitable[Any]]


def bump(state: dict[str, Any] | None) -> dict[str, Any]:
    return {**(state or {}), "step": 5}


async def enter(lease: Lease) -> None:
    async with lease:
        pass


async def drain(ids: AsyncIterator[str]) -> list[str]:
    return [session_id async for session_id in ids]


async def extend_by(store: EncodedSessionStore, seconds: Any) -> None:
    lease = store.lock("holder", timeout=5)
    await lease.acquire()
    try:
        await lease.extend(seconds)
    finally:
        await lease.release()


# "method parameter=value", the call, the error, a fragment of the fix its message gives
BAD_ARGUMENTS: list[tuple[str, Call, type[InvalidArgumentError], str]] = [
    ("save session_id=None", lambda s: s.save(None, {}), ID, "str(user_id)"),
    ("save state=list", lambda s: s.save(V, [{}]), SER, "must be a dict"),
    ("save ttl='60'", lambda s: s.save(V, {}, ttl="60"), TTL, "ttl=3600"),
    ("save ttl=0", lambda s: s.save(V, {}, ttl=0), TTL, "positive duration"),
    ("save ttl=10**5000", lambda s: s.save(V, {}, ttl=10**5000), TTL, "positive duration"),
    ("save ttl=1.5", lambda s: s.save(V, {}, ttl=1.5), TTL, "ttl=3600"),
    ("save if_version=7", lambda s: s.save(V, {}, if_version=7), ARG, "load_versioned"),
    ("save if_version=''", lambda s: s.save(V, {}, if_version=""), ARG, "load_versioned"),
    ("save if_version=short", lambda s: s.save(V, {}, if_version="ab12"), ARG, "load_versioned"),
    ("save if_version=upper", lambda s: s.save(V, {}, if_version="A" * 40), ARG, "load_versioned"),
    ("save if_version=dict", lambda s: s.save(V, {}, if_version={}), ARG, "load_versioned"),
    ("load session_id=5", lambda s: s.load(5), ID, "str(user_id)"),
    ("load refresh_ttl=0", lambda s: s.load(V, refresh_ttl=0), TTL, "positive duration"),
    ("load refresh_ttl=None", lambda s: s.load(V, refresh_ttl=None), TTL, "refresh_ttl=3600"),
    ("load refresh_ttl='1'", lambda s: s.load(V, refresh_ttl="1"), TTL, "refresh_ttl=3600"),
    ("delete session_id=''", lambda s: s.delete(""), ID, "pass the conversation's id"),
    ("delete if_version=7", lambda s: s.delete(V, if_version=7), ARG, "load_versioned"),
    ("delete if_version=junk", lambda s: s.delete(V, if_version="junk"), ARG, "load_versioned"),
    ("exists session_id=bytes", lambda s: s.exists(b"v"), ID, "str(user_id)"),
    ("load_versioned session_id=''", lambda s: s.load_versioned(""), ID, "conversation's id"),
    ("update session_id=None", lambda s: s.update(None, bump), ID, "str(user_id)"),
    ("update fn=dict", lambda s: s.update(V, VICTIM_STATE), ARG, "lambda state"),
    ("update state=list", lambda s: s.update(V, lambda state: [state]), SER, "must be a dict"),
    ("update ttl=-1", lambda s: s.update(V, bump, ttl=-1), TTL, "positive duration"),
    ("update attempts=0", lambda s: s.update(V, bump, attempts=0), ARG, "attempts=64"),
    ("update attempts=1.5", lambda s: s.update(V, bump, attempts=1.5), ARG, "attempts=64"),
    ("update attempts=True", lambda s: s.update(V, bump, attempts=True), ARG, "attempts=64"),
    ("touch session_id=None", lambda s: s.touch(None), ID, "str(user_id)"),
    ("touch ttl=1.5", lambda s: s.touch(V, ttl=1.5), TTL, "ttl=3600"),
    ("ttl session_id=7", lambda s: s.ttl(7), ID, "str(user_id)"),
    ("lock session_id=''", lambda s: enter(s.lock("")), ID, "conversation's id"),
    ("lock timeout=0", lambda s: enter(s.lock(V, timeout=0)), TTL, "timeout=10"),
    ("lock timeout='30'", lambda s: enter(s.lock(V, timeout="30")), TTL, "timeout=10"),
    ("lock timeout=nan", lambda s: enter(s.lock(V, timeout=math.nan)), TTL, "timeout=10"),
    ("lock timeout=1e12", lambda s: enter(s.lock(V, timeout=1e12)), TTL, "ten years"),
    ("lock wait=-1", lambda s: enter(s.lock(V, wait=-1)), TTL, "wait=10"),
    ("lock wait=None", lambda s: enter(s.lock(V, wait=None)), TTL, "wait=10"),
    ("extend seconds=0", lambda s: extend_by(s, 0), TTL, "seconds=10"),
    ("extend seconds=inf", lambda s: extend_by(s, math.inf), TTL, "seconds=10"),
    ("load_many session_ids='abc'", lambda s: s.load_many(V), ARG, "[session_id]"),
    ("load_many session_ids=5", lambda s: s.load_many(5), ARG, "[session_id, ...]"),
    ("load_many session_ids=None", lambda s: s.load_many(None), ARG, "[session_id, ...]"),
    ("load_many session_id=None", lambda s: s.load_many([V, None]), ID, "str(user_id)"),
    ("save_many states=list", lambda s: s.save_many([(V, {})]), ARG, "{session_id: state"),
    ("save_many states=None", lambda s: s.save_many(None), ARG, "{session_id: state"),
    ("save_many session_id=''", lambda s: s.save_many({V: {}, "": {}}), ID, "conversation's id"),
    ("save_many state=set", lambda s: s.save_many({V: {}, "x": {"v": {1}}}), SER, "sorted("),
    ("save_many ttl=0", lambda s: s.save_many({V: {}}, ttl=0), TTL, "positive duration"),
    ("delete_many session_ids='abc'", lambda s: s.delete_many(V), ARG, "[session_id]"),
    ("delete_many session_ids=5", lambda s: s.delete_many(5), ARG, "[session_id, ...]"),
    ("delete_many session_id='a\\nb'", lambda s: s.delete_many([V, "a\nb"]), ID, "remove it"),
    ("iter_ids match=5", lambda s: drain(s.iter_ids(match=5)), ARG, "match='user-*'"),
    ("iter_ids match=bytes", lambda s: drain(s.iter_ids(match=b"*")), ARG, "match='user-*'"),
]


@pytest.mark.parametrize(
    ("label", "call", "error", "fix"), BAD_ARGUMENTS, ids=[row[0] for row in BAD_ARGUMENTS]
)
async def test_every_bad_argument_is_a_typed_error_that_changes_nothing(
    store: EncodedSessionStore, label: str, call: Call, error: type[Exception], fix: str
) -> None:
    """Each bad argument of each public method raises its InvalidArgumentError (a
    SessionStoreError, TypeError and ValueError) naming the parameter and the fix, quoting no
    id nor state; the session stored before keeps its state and TTL, and nothing else is
    written or locked."""
    parameter = label.split()[1].partition("=")[0]
    await store.save(V, VICTIM_STATE, ttl=600)
    with pytest.raises(error) as caught:
        await call(store)
    assert isinstance(caught.value, InvalidArgumentError)
    assert isinstance(caught.value, SessionStoreError)
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert parameter in message
    assert fix in message
    assert V not in message
    assert "Lisbon" not in message
    assert await store.load(V) == VICTIM_STATE
    assert await store.ttl(V) == 600
    assert [session_id async for session_id in store.iter_ids()] == [V]
    async with store.lock(V, wait=0), store.lock("holder", wait=0):
        pass


@pytest.mark.parametrize(
    "session_id", ["secret-token-" + "x" * 600, "secret-token-" + "é" * 260], ids=["ascii", "utf8"]
)
async def test_a_too_long_id_is_never_quoted(store: EncodedSessionStore, session_id: str) -> None:
    """Ids may be bearer tokens: an id over 512 bytes is refused by every method with a
    message that gives its size, not any part of it."""
    calls: list[Call] = [
        lambda s: s.save(session_id, {}),
        lambda s: s.load(session_id),
        lambda s: s.delete(session_id),
        lambda s: s.exists(session_id),
        lambda s: s.load_versioned(session_id),
        lambda s: s.update(session_id, bump),
        lambda s: s.touch(session_id),
        lambda s: s.ttl(session_id),
        lambda s: enter(s.lock(session_id)),
        lambda s: s.load_many(["ok", session_id]),
        lambda s: s.save_many({"ok": {}, session_id: {}}),
        lambda s: s.delete_many(["ok", session_id]),
    ]
    for call in calls:
        with pytest.raises(InvalidSessionIdError) as caught:
            await call(store)
        message = str(caught.value)
        assert "secret" not in message
        assert "xxxx" not in message
        assert "éé" not in message
        assert "512" in message
    assert await store.count() == 0


BAD_ARGUMENT_MESSAGES: list[tuple[str, Call, str]] = [
    (
        "attempts=0",
        lambda s: s.update("s1", bump, attempts=0),
        "attempts must be an int >= 1, got 0; pass e.g. attempts=64 (the default)",
    ),
    ("attempts=True", lambda s: s.update("s1", bump, attempts=True), "got True;"),
    ("attempts=1.5", lambda s: s.update("s1", bump, attempts=1.5), "got 1.5;"),
    (
        "attempts=-(2**64-1)",
        lambda s: s.update("s1", bump, attempts=-(2**64 - 1)),
        "got -18446744073709551615;",
    ),
    (
        "attempts=-(2**64)",
        lambda s: s.update("s1", bump, attempts=-(2**64)),
        "got an int of 65 bits;",
    ),
    ("attempts='64'", lambda s: s.update("s1", bump, attempts="64"), "got a str of length 2;"),
    ("attempts=[64]", lambda s: s.update("s1", bump, attempts=[64]), "got a list;"),
    ("attempts=None", lambda s: s.update("s1", bump, attempts=None), "got None;"),
    (
        "fn=5",
        lambda s: s.update("s1", 5),
        "fn must be a function of the current state (sync or async), got 5; "
        "pass e.g. lambda state: {**(state or {}), 'step': 1}",
    ),
    (
        "states=[...]",
        lambda s: s.save_many([("s1", {})]),
        "states must be a mapping of session id to state, got a list; "
        "pass e.g. {session_id: state, ...}",
    ),
    (
        "if_version=b'...'",
        lambda s: s.save("s1", {}, if_version=b"secret"),
        "if_version must be a version from load_versioned() or ABSENT, got a bytes of length "
        "6; pass (await store.load_versioned(session_id)).version, or None for no condition",
    ),
    (
        "match=5",
        lambda s: s.iter_ids(match=5),
        "match must be an fnmatch pattern as a str, or None, got 5; pass e.g. match='user-*'",
    ),
    (
        "timeout=timedelta",
        lambda s: enter(s.lock("s1", timeout=timedelta(seconds=5))),
        "timeout must be a positive number of seconds, at most ten years, got "
        "datetime.timedelta(seconds=5); pass e.g. timeout=10 (the lease expires by itself "
        "after it)",
    ),
]


@pytest.mark.parametrize(
    ("call", "message"),
    [(call, message) for _, call, message in BAD_ARGUMENT_MESSAGES],
    ids=[name for name, _, _ in BAD_ARGUMENT_MESSAGES],
)
async def test_a_bad_argument_is_described_by_its_value_or_its_type(
    store: EncodedSessionStore, call: Call, message: str
) -> None:
    """A refused argument's message shows a number as it is (a huge int by its size) and
    anything else by its type: text and containers may hold an id, a state or a secret."""

    async def refused() -> None:
        result = call(store)  # iter_ids refuses at the call, the others when awaited
        if inspect.isawaitable(result):
            await result

    with pytest.raises(InvalidArgumentError) as caught:
        await refused()
    text = str(caught.value)
    if message.endswith(";"):  # the value's part only
        assert message in text
    else:
        assert text == message
