"""Property tests: any valid state round-trips on every backend, any bad input is refused
the same way and loses nothing, and both JSON codecs agree on everything."""

from __future__ import annotations

import datetime
import enum
import json
import math
import struct
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.properties import examples
from tests.support.redis_server import RedisServer
from valerie.infrastructure import (
    ABSENT,
    DELETE,
    EncodedSessionStore,
    InMemorySessionStore,
    InvalidSessionIdError,
    InvalidTTLError,
    Lease,
    RedisSessionStore,
    SerializationError,
    SessionStoreError,
)
from valerie.infrastructure.session_store import StateCodec

# Function-scoped store fixtures are fine here: every example uses fresh ids.
store_settings = settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
states = st.dictionaries(st.text(max_size=10), json_values, max_size=8)

valid_ids = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=128)
control_chars = st.characters(whitelist_categories=["Cc"])
invalid_ids = (
    st.builds(lambda a, c, b: a + c + b, st.text(max_size=5), control_chars, st.text(max_size=5))
    | st.just("")
    | st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=513, max_size=600)
    | st.integers()
    | st.none()
    | st.binary(min_size=1)
)


class Color(enum.Enum):
    RED = "red"


unstorable_leaves = st.sampled_from(
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        2**64,
        -(2**63) - 1,
        {1, 2},
        frozenset(),
        b"bytes",
        datetime.date(2026, 1, 1),
        uuid.UUID(int=7),
        Color.RED,
        object(),
        {1: "int key"},
        {("tuple",): "key"},
        "lone \ud800 surrogate",
    ]
)


def as_json(value: Any) -> Any:
    """What a JSON round trip makes of a valid value: tuples become lists."""
    return json.loads(json.dumps(value))


@store_settings
@given(state=states)
async def test_any_valid_state_round_trips(
    store: EncodedSessionStore, state: dict[str, Any]
) -> None:
    """save then load gives exactly what the JSON round trip gives, on every backend."""
    await store.save("prop", state)
    assert await store.load("prop") == as_json(state)


@store_settings
@given(first=valid_ids, second=valid_ids)
async def test_distinct_valid_ids_are_distinct_sessions(
    store: EncodedSessionStore, first: str, second: str
) -> None:
    """Any two different valid ids never share a key."""
    await store.save(first, {"id": first})
    await store.save(second, {"id": second})
    assert await store.load(second) == {"id": second}
    assert await store.load(first) == ({"id": second} if first == second else {"id": first})
    await store.delete(first)
    await store.delete(second)


@store_settings
@given(session_id=invalid_ids)
async def test_any_invalid_id_is_refused_and_nothing_changes(
    store: EncodedSessionStore, session_id: Any
) -> None:
    """Invalid ids raise InvalidSessionIdError from every method; other sessions are intact."""
    await store.save("keep", {"v": 1})
    for call in (
        store.save(session_id, {"v": 2}),
        store.load(session_id),
        store.exists(session_id),
        store.delete(session_id),
    ):
        with pytest.raises(InvalidSessionIdError):
            await call
    assert await store.load("keep") == {"v": 1}


@store_settings
@given(
    ttl=st.integers(max_value=0)
    | st.floats()
    | st.booleans()
    | st.text()
    | st.timedeltas(max_value=datetime.timedelta(0))
    | st.timedeltas(min_value=datetime.timedelta(seconds=1)).filter(lambda t: t.microseconds != 0)
)
async def test_any_invalid_ttl_is_refused_and_nothing_changes(
    store: EncodedSessionStore, ttl: Any
) -> None:
    """Bad TTLs raise InvalidTTLError; the previous state stays."""
    await store.save("keep", {"v": 1})
    with pytest.raises(InvalidTTLError):
        await store.save("keep", {"v": 2}, ttl=ttl)
    assert await store.load("keep") == {"v": 1}


@st.composite
def state_with_one_bad_leaf(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid state with one unstorable value planted at a known path."""
    state = draw(states)
    keys = draw(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4))
    container: dict[str, Any] = state
    path = "state"
    for key in keys[:-1]:
        child = container.get(key)
        if not isinstance(child, dict):
            child = container[key] = {}
        container, path = child, f"{path}[{key!r}]"
    container[keys[-1]] = draw(unstorable_leaves)
    return state, f"{path}[{keys[-1]!r}]"


@store_settings
@given(case=state_with_one_bad_leaf())
async def test_any_unstorable_value_is_refused_with_its_path_and_nothing_changes(
    store: EncodedSessionStore, case: tuple[dict[str, Any], str]
) -> None:
    """One bad value anywhere: SerializationError naming its path, previous state intact."""
    state, path = case
    await store.save("keep", {"v": 1})
    with pytest.raises(SerializationError) as caught:
        await store.save("keep", state)
    assert caught.value.path == path
    assert await store.load("keep") == {"v": 1}


codecs = [StateCodec(fast=False), StateCodec(fast=True)]


@settings(max_examples=examples(300))
@given(state=states)
def test_both_codecs_encode_the_same_meaning(state: dict[str, Any]) -> None:
    """json and orjson write equivalent JSON, and each reads what the other wrote."""
    plain, fast = (codec.encode(state) for codec in codecs)
    assert json.loads(plain) == json.loads(fast) == as_json(state)
    for codec in codecs:
        assert codec.decode(plain) == codec.decode(fast) == as_json(state)


maybe_bad_values = st.recursive(
    scalars | unstorable_leaves | st.floats(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=examples(300))
@given(state=st.dictionaries(st.text(max_size=5), maybe_bad_values, max_size=5))
def test_both_codecs_accept_and_refuse_exactly_the_same_states(state: dict[str, Any]) -> None:
    """Validation is the codec's, not the encoder's: same verdict and same path from both."""
    verdicts = []
    for codec in codecs:
        try:
            verdicts.append(json.loads(codec.encode(state)))
        except SerializationError as error:
            verdicts.append(error.path)
    assert verdicts[0] == verdicts[1]


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_orjson_would_write_null_for_nan_but_the_codec_refuses(value: float) -> None:
    """The fast encoder's own leniency never reaches the store."""
    with pytest.raises(SerializationError, match="JSON cannot represent"):
        StateCodec(fast=True).encode({"x": value})


any_bits_float = st.integers(min_value=0, max_value=2**64 - 1).map(
    lambda bits: struct.unpack("<d", bits.to_bytes(8, "little"))[0]
)


@settings(max_examples=examples(1000))
@given(value=any_bits_float | st.floats(), others=st.lists(scalars, max_size=6))
def test_the_fast_codec_refuses_every_non_finite_float_and_takes_every_finite_one(
    value: float, others: list[Any]
) -> None:
    """Any 64-bit pattern: NaNs with any sign and payload, infinities, subnormals, among other
    values (negative ints and long strings put 0xFF and 0x7F bytes in marshal's image)."""
    for state in ({"x": value, "others": others}, {"others": [*others, value]}):
        if math.isfinite(value):
            assert json.loads(StateCodec(fast=True).encode(state)) == as_json(state)
        else:
            with pytest.raises(SerializationError, match="JSON cannot represent"):
                StateCodec(fast=True).encode(state)


ID_SET = ("a", "b", "ünï")
ids = st.sampled_from(ID_SET)
small_states = st.dictionaries(st.sampled_from(["n", "m", "t"]), scalars, max_size=3)
# Valid TTLs long enough that nothing expires during an example, and invalid ones.
valid_ttls = [None, 60, 3600, datetime.timedelta(days=2), datetime.timedelta(minutes=5)]
ttls = st.sampled_from([*valid_ttls, 0, -5, 1.5, True, "60", datetime.timedelta(seconds=1.5)])
refreshes = st.sampled_from([True, False, 90, datetime.timedelta(days=1), 0, None, "yes"])
holders = st.sampled_from([0, 1])
lease_durations = st.sampled_from([30, 45, 0, -1, math.inf])
patterns = st.sampled_from(["*", "a*", "?", "[ab]", "[!a]*", "ü*", "*b*", "c", "[", ""])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("save"), ids, small_states, ttls),
        st.tuples(st.just("load"), ids, refreshes),
        st.tuples(st.just("delete"), ids),
        st.tuples(st.just("exists"), ids),
        st.tuples(st.just("ttl"), ids),
        st.tuples(st.just("touch"), ids, ttls),
        st.tuples(st.just("update"), ids, small_states, ttls),
        st.tuples(st.just("update_delete"), ids),
        st.tuples(st.just("save_many"), st.dictionaries(ids, small_states, max_size=3), ttls),
        st.tuples(st.just("load_many"), st.lists(ids, max_size=4)),
        st.tuples(st.just("delete_many"), st.lists(ids, max_size=3)),
        st.tuples(st.just("versioned_save"), ids, small_states),
        st.tuples(st.just("create_only"), ids, small_states),
        st.tuples(st.just("versioned_delete"), ids),
        st.tuples(st.just("acquire"), holders, ids, lease_durations),
        st.tuples(st.just("release"), holders, ids),
        st.tuples(st.just("extend"), holders, ids, lease_durations),
        st.tuples(st.just("iter_ids"), patterns),
        st.tuples(st.just("count")),
        st.tuples(st.just("clear")),
    ),
    max_size=30,
)


class Driver:
    """Runs operations on one store, keeping the lease objects of two holders per id."""

    def __init__(self, store: EncodedSessionStore) -> None:
        self.store = store
        self.leases: dict[tuple[int, str], Lease] = {}

    async def apply(self, operation: tuple[Any, ...]) -> Any:
        """Run one operation; return ("ok", its result) or ("refused", the error's type),
        then the TTL each id it names has left, so a TTL wrongly applied shows at once.

        Only the store's own errors are outcomes: anything else (a crash) fails the test.
        """
        try:
            outcome = "ok", await self._run(*operation)
        except SessionStoreError as error:
            outcome = "refused", type(error).__name__
        named: list[Any] = []
        for arg in operation[1:]:
            named.extend(arg if isinstance(arg, (list, dict)) else [arg])
        ttls = [await self.store.ttl(i) for i in named if isinstance(i, str) and i in ID_SET]
        return outcome, ttls

    async def _run(self, name: str, *args: Any) -> Any:
        store = self.store
        if name == "save":
            return await store.save(args[0], args[1], ttl=args[2])
        if name == "load":
            return await store.load(args[0], refresh_ttl=args[1])
        if name == "update":
            return await store.update(args[0], lambda s: {**(s or {}), **args[1]}, ttl=args[2])
        if name == "update_delete":
            return await store.update(args[0], lambda s: DELETE)
        if name == "versioned_save":
            _, version = await store.load_versioned(args[0])
            await store.save(args[0], args[1], if_version=version)
            return await store.load_versioned(args[0])
        if name == "create_only":
            return await store.save(args[0], args[1], if_version=ABSENT)
        if name == "versioned_delete":
            await store.delete(args[0], if_version=(await store.load_versioned(args[0])).version)
            return await store.load_versioned(args[0])
        if name == "iter_ids":
            return sorted({session_id async for session_id in store.iter_ids(match=args[0])})
        if name in ("acquire", "release", "extend"):
            return await self._lease(name, *args)
        return await getattr(store, name)(*args)

    async def _lease(self, name: str, holder: int, session_id: str, *seconds: Any) -> None:
        if name == "acquire":
            # A holder keeps one lease object (one token) per id: taking it again re-takes.
            fresh = self.store.lock(session_id, timeout=seconds[0], wait=0)
            await self.leases.setdefault((holder, session_id), fresh).acquire()
            return
        lease = self.leases.setdefault((holder, session_id), self.store.lock(session_id, wait=0))
        if name == "release":
            await lease.release()
        else:
            await lease.extend(seconds[0])


# Fewer ids and kinds of call: leases meet each other, and clear, more often.
lease_operations = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), holders, st.sampled_from(["a", "b"]), lease_durations),
        st.tuples(st.just("release"), holders, st.sampled_from(["a", "b"])),
        st.tuples(st.just("extend"), holders, st.sampled_from(["a", "b"]), lease_durations),
        st.tuples(st.just("save"), st.sampled_from(["a", "b"]), small_states, ttls),
        st.tuples(st.just("exists"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("count")),
        st.tuples(st.just("clear")),
    ),
    max_size=20,
)
differential = settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


async def agree(redis_server: RedisServer, script: list[tuple[Any, ...]]) -> None:
    """Run `script` on a memory and a Redis store; each step must have the same outcome."""
    memory = Driver(InMemorySessionStore())
    async with RedisSessionStore(redis_server.url, prefix=f"diff:{uuid.uuid4().hex}:") as store:
        redis = Driver(store)
        try:
            for operation in script:
                assert await redis.apply(operation) == await memory.apply(operation), operation
        finally:
            await store.clear()


@differential
@given(script=operations)
async def test_memory_and_redis_agree_on_any_sequence_of_operations(
    redis_server: RedisServer, script: list[tuple[Any, ...]]
) -> None:
    """Differential test: the same calls, valid or not, give the same results and the same
    refusals (typed errors) on both backends; a crash of either fails the test."""
    await agree(redis_server, script)


@differential
@given(script=lease_operations)
async def test_memory_and_redis_agree_on_leases(
    redis_server: RedisServer, script: list[tuple[Any, ...]]
) -> None:
    """The same, for two holders taking, re-taking, releasing and extending leases on two
    sessions, with saves, counts and clears between."""
    await agree(redis_server, script)
