"""Codec layers: codec= on every store, byte transforms between codec and storage."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

import pytest

from tests.core.conftest import MakeStore, raw_bytes
from valerie.infrastructure import (
    Codec,
    Compression,
    ConfigurationError,
    CorruptedSessionError,
    InMemorySessionStore,
    SessionState,
    StateCodec,
    Transform,
)
from valerie.infrastructure.session_store import codec as codec_module


class SortedJson:
    """A codec of the user's own: JSON with sorted keys and a marker, to tell it apart."""

    def encode(self, state: Mapping[str, Any]) -> bytes:
        return b"sorted:" + json.dumps(dict(state), sort_keys=True).encode()

    def decode(self, data: bytes) -> SessionState:
        if not data.startswith(b"sorted:"):
            raise CorruptedSessionError("not written by SortedJson")
        state: SessionState = json.loads(data[len(b"sorted:") :])
        return state


class Reverse:
    """A transform that reverses the bytes after a tag: shows the order transforms run in."""

    def __init__(self, tag: bytes) -> None:
        self.tag = tag

    def encode(self, data: bytes) -> bytes:
        return self.tag + data[::-1]

    def decode(self, data: bytes) -> bytes:
        return data[len(self.tag) :][::-1] if data.startswith(self.tag) else data


async def test_every_store_takes_a_codec(make_store: MakeStore) -> None:
    """save, load, update, batches and versions all go through the store's codec."""
    store = make_store(codec=SortedJson())
    assert isinstance(store.codec, Codec)
    await store.save("s1", {"b": 1, "a": 2})
    assert await raw_bytes(store, "s1") == b'sorted:{"a": 2, "b": 1}'
    assert await store.load("s1") == {"a": 2, "b": 1}
    assert await store.update("s1", lambda state: {**(state or {}), "c": 3}) == {
        "a": 2,
        "b": 1,
        "c": 3,
    }
    await store.save_many({"s2": {"z": 0}})
    assert await raw_bytes(store, "s2") == b'sorted:{"z": 0}'
    assert await store.load_many(["s1", "s2"]) == {"s1": {"a": 2, "b": 1, "c": 3}, "s2": {"z": 0}}
    _, version = await store.load_versioned("s2")
    await store.save("s2", {"z": 1}, if_version=version)
    assert await store.load("s2") == {"z": 1}


async def test_the_default_codec_is_the_strict_json_one(make_store: MakeStore) -> None:
    """Without codec=, states are stored as compact JSON, the seed's format."""
    store = make_store()
    assert isinstance(store.codec, StateCodec)
    await store.save("s1", {"a": [1, 2]})
    assert await raw_bytes(store, "s1") == b'{"a":[1,2]}'


def test_the_module_global_codec_is_gone() -> None:
    """Each store has its own codec: nothing module-wide to patch or to share by accident."""
    assert not hasattr(codec_module, "DEFAULT_CODEC")
    assert InMemorySessionStore().codec is not InMemorySessionStore().codec


@pytest.mark.parametrize("bad", [object(), "json", json])
def test_a_codec_without_encode_and_decode_is_refused(bad: Any) -> None:
    """codec= must have encode and decode; the error says so."""
    with pytest.raises(ConfigurationError, match=r"codec must have encode\(state\) -> bytes"):
        InMemorySessionStore(codec=bad)


@pytest.mark.parametrize(
    ("name", "value"),
    [("transforms", [object()]), ("transforms", "zlib"), ("observers", [object()])],
)
def test_transforms_and_observers_are_checked(name: str, value: Any) -> None:
    """transforms= and observers= must be lists of the right objects."""
    with pytest.raises(ConfigurationError, match=f"{name} must"):
        InMemorySessionStore(**{name: value})


async def test_transforms_run_in_order_on_write_and_in_reverse_on_read(
    make_store: MakeStore,
) -> None:
    """transforms=[a, b] stores b(a(json)); reads undo b, then a."""
    store = make_store(transforms=[Reverse(b"A"), Reverse(b"B")])
    assert all(isinstance(transform, Transform) for transform in [Reverse(b"A")])
    await store.save("s1", {"n": 1})
    assert await raw_bytes(store, "s1") == b"B" + (b"A" + b'{"n":1}'[::-1])[::-1]
    assert await store.load("s1") == {"n": 1}


async def test_compression_stores_large_states_compressed(make_store: MakeStore) -> None:
    """A state at or over min_size is stored as the tag plus zlib data, and reads back."""
    store = make_store(transforms=[Compression(min_size=100)])
    state = {"history": ["the same message, again and again"] * 200}
    await store.save("s1", state)
    stored = await raw_bytes(store, "s1")
    assert stored is not None
    assert stored.startswith(Compression.TAG)
    plain = json.dumps(state, separators=(",", ":")).encode()
    assert zlib.decompress(stored[len(Compression.TAG) :]) == plain
    assert len(stored) < len(plain) / 10
    assert await store.load("s1") == state
    assert await store.update("s1", lambda s: {**(s or {}), "n": 1}) == {**state, "n": 1}


async def test_compression_leaves_small_states_as_they_are(make_store: MakeStore) -> None:
    """Below min_size the stored value stays the plain JSON other services read."""
    store = make_store(transforms=[Compression(min_size=100)])
    await store.save("s1", {"n": 1})
    assert await raw_bytes(store, "s1") == b'{"n":1}'


async def test_values_written_before_compression_still_read(make_store: MakeStore) -> None:
    """Adding Compression to a store does not strand the sessions it already holds."""
    store = make_store(transforms=[Compression(min_size=0)])
    await store.backend.write("old", b'{"written":"before"}', 60)
    assert await store.load("old") == {"written": "before"}
    assert await store.update("old", lambda s: {**(s or {}), "n": 1}) == {
        "written": "before",
        "n": 1,
    }
    stored = await raw_bytes(store, "old")
    assert stored is not None
    assert stored.startswith(Compression.TAG)


async def test_versions_are_hashes_of_the_stored_bytes(make_store: MakeStore) -> None:
    """Compare-and-set works through transforms: the version is of the compressed bytes."""
    store = make_store(transforms=[Compression(min_size=0)])
    await store.save("s1", {"n": 1})
    _, version = await store.load_versioned("s1")
    await store.save("s1", {"n": 2}, if_version=version)
    assert await store.load("s1") == {"n": 2}


@pytest.mark.parametrize(
    "raw", [Compression.TAG + b"not zlib", Compression.TAG + zlib.compress(b"x" * 2000)[:20]]
)
async def test_a_corrupt_compressed_value_is_reported_and_left(
    make_store: MakeStore, raw: bytes
) -> None:
    """A tagged value that does not decompress raises CorruptedSessionError and stays."""
    store = make_store(transforms=[Compression()])
    await store.backend.write("s1", raw, 60)
    with pytest.raises(CorruptedSessionError):
        await store.load("s1")
    assert await raw_bytes(store, "s1") == raw


async def test_decompression_is_bounded() -> None:
    """A value that would decompress beyond max_size is refused, not inflated."""
    store = InMemorySessionStore(transforms=[Compression(max_size=1000)])
    bomb = Compression.TAG + zlib.compress(b'{"a":"' + b"x" * 100_000 + b'"}')
    await store.backend.write("s1", bomb, 60)
    with pytest.raises(CorruptedSessionError, match="max_size"):
        await store.load("s1")


@pytest.mark.parametrize(
    "options", [{"level": 0}, {"level": 10}, {"level": True}, {"min_size": -1}, {"max_size": "1"}]
)
def test_compression_checks_its_arguments(options: dict[str, Any]) -> None:
    """Out-of-range settings raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Compression(**options)
