"""The JSON codec's rules at their edges, identical with and without orjson."""

from __future__ import annotations

import collections
import enum
import json
import subprocess
import sys
from typing import Any

import orjson
import pytest

from tests.support.children import python_env
from valerie.infrastructure import (
    ConfigurationError,
    CorruptedSessionError,
    InvalidArgumentError,
    SerializationError,
)
from valerie.infrastructure.session_store import MAX_DEPTH, StateCodec

CODECS = [StateCodec(fast=False), StateCodec(fast=True)]


class Level(enum.IntEnum):
    HIGH = 2


class Mood(enum.StrEnum):
    HAPPY = "happy"


class Point(collections.namedtuple("Point", "x y")):
    """A tuple subclass."""


def nested(depth: int) -> dict[str, Any]:
    """A state of `depth` levels of dicts, the top one included."""
    state: dict[str, Any] = {}
    for _ in range(depth - 1):
        state = {"a": state}
    return state


@pytest.fixture(params=CODECS, ids=lambda codec: codec.name)
def codec(request: pytest.FixtureRequest) -> StateCodec:
    return request.param  # type: ignore[no-any-return]


def test_max_depth_is_accepted_and_one_more_is_refused(codec: StateCodec) -> None:
    """MAX_DEPTH levels of nesting round-trip; one more raises with the path."""
    assert codec.decode(codec.encode(nested(MAX_DEPTH))) == nested(MAX_DEPTH)
    with pytest.raises(SerializationError, match="nested more than") as caught:
        codec.encode(nested(MAX_DEPTH + 1))
    assert caught.value.path == "state" + "['a']" * MAX_DEPTH


def nested_tuples(depth: int) -> dict[str, Any]:
    """A state of `depth` levels, the top dict and then tuples (orjson does not count them)."""
    value: Any = 1
    for _ in range(depth - 1):
        value = (value,)
    return {"a": value} if depth > 1 else {}


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 1100])
def test_tuples_count_towards_the_depth_for_every_way_of_encoding(
    codec: StateCodec, depth: int
) -> None:
    """Nested tuples are levels too: orjson's own limit does not count them, the codec does
    (for save's encoding and update's), and a refused state is a SerializationError."""
    state = nested_tuples(depth)
    for encode in (codec.encode, lambda s: codec.encode_with_copy(s)[0]):
        if depth <= MAX_DEPTH:
            assert codec.decode(encode(state)) == json.loads(json.dumps(state))
        else:
            with pytest.raises(SerializationError, match="nested more than"):
                encode(state)


def test_max_depth_is_orjsons_own_limit() -> None:
    """If an orjson release moves its recursion limit, this fails before the codecs disagree."""
    orjson.dumps(nested(MAX_DEPTH))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(nested(MAX_DEPTH + 1))


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (Level.HIGH, 2),
        (Mood.HAPPY, "happy"),
        (Point(1, 2), [1, 2]),
        (collections.OrderedDict(b=1, a=2), {"b": 1, "a": 2}),
        (True, True),
        (2**64 - 1, 2**64 - 1),
        (-(2**63), -(2**63)),
    ],
    ids=repr,
)
def test_subclasses_and_edge_values_are_stored_as_their_json(
    codec: StateCodec, value: Any, stored: Any
) -> None:
    """Subclasses of JSON types are stored as their base type, the same by both codecs."""
    data = codec.encode({"v": value})
    assert json.loads(data) == {"v": stored}
    assert codec.decode(data) == {"v": stored}


def test_encoding_is_compact_utf8(codec: StateCodec) -> None:
    """No spaces, no ASCII escapes: the bytes another service will GET."""
    assert codec.encode({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()


def test_mappings_that_are_not_dicts_are_stored_as_objects(codec: StateCodec) -> None:
    """A top-level Mapping (e.g. MappingProxyType) is accepted as a dict."""
    import types

    assert codec.decode(codec.encode(types.MappingProxyType({"a": 1}))) == {"a": 1}


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": NaN}', b'{"a": Infinity}', b"\xef\xbb\xbf{}"])
def test_non_standard_json_is_corrupted_for_both(codec: StateCodec, raw: bytes) -> None:
    """Neither codec accepts what the other would refuse (NaN, Infinity, a BOM)."""
    with pytest.raises(CorruptedSessionError):
        codec.decode(raw)


def test_error_messages_name_the_fix(codec: StateCodec) -> None:
    """The message says how to make the value storable."""
    import datetime

    with pytest.raises(SerializationError, match=r"isoformat\(\)"):
        codec.encode({"when": datetime.datetime(2026, 1, 1)})
    with pytest.raises(SerializationError, match="JSON object keys must be str"):
        codec.encode({"ids": {7: "seven"}})
    with pytest.raises(SerializationError) as caught:
        codec.encode({"what": [object()]})
    assert str(caught.value) == (
        "state['what'][0] is a object, which JSON cannot represent; convert it to str, int, "
        "float, bool, None, list or dict; nothing was saved"
    )


def test_orjson_is_used_when_installed_unless_fast_is_false() -> None:
    """fast=None (the default) takes orjson when it is installed, as the default codec does;
    fast=False takes the standard library. Both read and write the same."""
    state = {"text": "Olá", "n": [1, 2.5, None, True]}
    made = {fast: StateCodec(fast=fast) for fast in (None, True, False)}
    assert {fast: codec.name for fast, codec in made.items()} == {
        None: "orjson",
        True: "orjson",
        False: "json",
    }
    for codec in made.values():
        data = codec.encode(state)
        assert data == '{"text":"Olá","n":[1,2.5,null,true]}'.encode()
        assert codec.decode(data) == state


@pytest.mark.parametrize("data", [5, None, ["{}"], {"a": 1}], ids=repr)
def test_decoding_what_is_not_bytes_is_an_argument_error(codec: StateCodec, data: Any) -> None:
    """decode takes stored bytes (or text); anything else is an InvalidArgumentError, from
    both codecs alike, not a crash nor a corrupted session."""
    with pytest.raises(InvalidArgumentError, match="data must be the bytes"):
        codec.decode(data)


@pytest.mark.parametrize("data", [bytearray(b'{"a":1}'), memoryview(b'{"a":1}'), '{"a":1}'])
def test_decoding_accepts_every_bytes_like_and_text(codec: StateCodec, data: Any) -> None:
    """Both codecs read the same inputs."""
    assert codec.decode(data) == {"a": 1}


@pytest.mark.parametrize("fast", ["yes", 1, 0.0], ids=repr)
def test_fast_must_be_a_bool_or_none(fast: Any) -> None:
    """A truthy non-bool is refused rather than taken for True."""
    with pytest.raises(ConfigurationError, match="fast must be True, False or None"):
        StateCodec(fast=fast)


def test_fast_without_orjson_names_the_extra_to_install() -> None:
    """StateCodec(fast=True) without orjson is a MissingDependencyError (an ImportError)."""
    script = """
import sys
sys.modules["orjson"] = None  # as if orjson were not installed
from valerie.infrastructure import MissingDependencyError
from valerie.infrastructure.session_store import StateCodec
assert StateCodec().name == "json"
try:
    StateCodec(fast=True)
except MissingDependencyError as error:
    assert isinstance(error, ImportError)
    print(error)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=python_env()
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'valerie[fast]'" in result.stdout
