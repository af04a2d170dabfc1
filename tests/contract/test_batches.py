"""Batches, run once per backend: save_many, load_many and delete_many check everything first."""

from __future__ import annotations

from typing import Any

import pytest

from valerie.infrastructure import (
    EncodedSessionStore,
    InvalidSessionIdError,
    SerializationError,
)


async def test_save_many_then_load_many(store: EncodedSessionStore) -> None:
    """A batch round-trips; load_many gives None for missing ids, in the order asked."""
    await store.save_many({f"s{n}": {"n": n} for n in range(150)}, ttl=60)
    loaded = await store.load_many(["s3", "missing", "s149", "s0"])
    assert list(loaded) == ["s3", "missing", "s149", "s0"]
    assert loaded == {"s3": {"n": 3}, "missing": None, "s149": {"n": 149}, "s0": {"n": 0}}
    assert await store.ttl("s42") == 60


async def test_delete_many(store: EncodedSessionStore) -> None:
    """delete_many removes the ids given (missing ones are fine) and no others."""
    await store.save_many({f"s{n}": {"n": n} for n in range(10)})
    await store.delete_many(["s0", "s3", "s4", "missing", "s9", "s3"])
    assert sorted([i async for i in store.iter_ids()]) == ["s1", "s2", "s5", "s6", "s7", "s8"]
    assert await store.load("s5") == {"n": 5}
    await store.delete_many(iter({"s1", "s2"}))  # any iterable of ids
    assert sorted([i async for i in store.iter_ids()]) == ["s5", "s6", "s7", "s8"]


async def test_delete_many_checks_every_id_before_deleting_any(store: EncodedSessionStore) -> None:
    """One invalid id: InvalidSessionIdError, and none of the batch is deleted."""
    await store.save_many({"a": {}, "b": {}})
    bad_ids: list[Any] = ["", "x\n", None, "x" * 513]
    for bad in bad_ids:
        with pytest.raises(InvalidSessionIdError):
            await store.delete_many(["a", "b", bad])
    assert sorted([i async for i in store.iter_ids()]) == ["a", "b"]


async def test_empty_batches_are_no_ops(store: EncodedSessionStore) -> None:
    """Empty inputs return empty results and leave every session, and its TTL, alone."""
    await store.save("keep", {"v": 1}, ttl=600)
    await store.save_many({})
    await store.save_many({}, ttl=5)
    await store.delete_many([])
    await store.delete_many(iter([]))
    assert await store.load_many([]) == {}
    assert await store.load_many(iter(())) == {}
    assert [i async for i in store.iter_ids()] == ["keep"]
    assert await store.load("keep") == {"v": 1}
    assert await store.ttl("keep") == 600


async def test_a_bad_item_fails_the_whole_batch_before_writing(
    store: EncodedSessionStore,
) -> None:
    """One invalid id or state: nothing of the batch is written."""
    with pytest.raises(SerializationError):
        await store.save_many({"ok": {"v": 1}, "bad": {"v": {1}}})
    with pytest.raises(InvalidSessionIdError):
        await store.save_many({"ok": {"v": 1}, "": {"v": 2}})
    assert await store.count() == 0
    with pytest.raises(InvalidSessionIdError):
        await store.load_many(["ok", "bad\n"])


@pytest.mark.parametrize("call", ["load_many", "delete_many"])
async def test_a_single_str_is_not_a_batch_of_ids(store: EncodedSessionStore, call: str) -> None:
    """Passing 'abc' where a list of ids is expected raises instead of using 'a', 'b', 'c'."""
    await store.save("a", {})
    with pytest.raises(TypeError, match="single str"):
        await getattr(store, call)("abc")
    assert await store.exists("a")
