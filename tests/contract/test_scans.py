"""Scans, run once per backend: count, iter_ids (with match) and clear."""

from __future__ import annotations

import asyncio

import pytest

from valerie.infrastructure import (
    EncodedSessionStore,
)


async def test_count_iter_ids_and_clear_with_10000_sessions(store: EncodedSessionStore) -> None:
    """All sessions are counted and listed once, and clear removes them all."""
    ids = {f"user-{n:05d}" for n in range(10_000)}
    await store.save_many({key: {"v": 1} for key in ids})
    assert await store.count() == 10_000
    assert {session_id async for session_id in store.iter_ids()} == ids
    assert await store.clear() == 10_000
    assert await store.count() == 0
    assert await store.load("user-00001") is None


async def test_iter_ids_filters_with_a_glob_pattern(store: EncodedSessionStore) -> None:
    """match is an fnmatch pattern over ids, the same on every backend."""
    await store.save_many({key: {} for key in ["user-1", "user-2", "bot-1", "user-*", "u[x]"]})
    assert {i async for i in store.iter_ids(match="user-?")} == {"user-1", "user-2", "user-*"}
    assert {i async for i in store.iter_ids(match="*-1")} == {"user-1", "bot-1"}
    assert {i async for i in store.iter_ids(match="u[[]x]")} == {"u[x]"}


@pytest.mark.slow
async def test_expired_sessions_are_not_counted(store: EncodedSessionStore) -> None:
    """count and iter_ids see live sessions only."""
    await store.save("short", {}, ttl=1)
    await store.save("long", {}, ttl=60)
    await asyncio.sleep(1.2)
    assert await store.count() == 1
    assert [i async for i in store.iter_ids()] == ["long"]
