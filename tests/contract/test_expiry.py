"""Expiry controls, run once per backend: touch, ttl and load(refresh_ttl=)."""

from __future__ import annotations

import asyncio

import pytest

from valerie.infrastructure import (
    EncodedSessionStore,
    InvalidTTLError,
)


async def test_touch_renews_and_reports_existence(store: EncodedSessionStore) -> None:
    """touch is False for a missing session, True for one, and sets the new TTL."""
    assert await store.touch("s1") is False
    await store.save("s1", {"v": 1}, ttl=10)
    assert await store.touch("s1", ttl=500) is True
    remaining = await store.ttl("s1")
    assert remaining is not None
    assert 499 <= remaining <= 500
    assert await store.load("s1") == {"v": 1}


async def test_ttl_reports_whole_seconds_left(store: EncodedSessionStore) -> None:
    """ttl() is None for a missing session and the rounded-up seconds left otherwise."""
    assert await store.ttl("s1") is None
    await store.save("s1", {}, ttl=90)
    assert await store.ttl("s1") == 90


async def test_load_with_refresh_ttl_renews(store: EncodedSessionStore) -> None:
    """load(refresh_ttl=True) renews to the default TTL, a TTL value to that value."""
    await store.save("s1", {"v": 1}, ttl=5)
    assert await store.load("s1", refresh_ttl=True) == {"v": 1}
    assert await store.ttl("s1") == store.default_ttl
    assert await store.load("s1", refresh_ttl=120) == {"v": 1}
    assert await store.ttl("s1") == 120
    assert await store.load("missing", refresh_ttl=True) is None
    with pytest.raises(InvalidTTLError):
        await store.load("s1", refresh_ttl=0)


@pytest.mark.slow
async def test_sliding_expiry_keeps_an_active_session_alive(store: EncodedSessionStore) -> None:
    """Touching within the TTL keeps a session past its original deadline."""
    await store.save("s1", {"v": 1}, ttl=1)
    for _ in range(3):
        await asyncio.sleep(0.5)
        assert await store.touch("s1", ttl=1)
    assert await store.load("s1") == {"v": 1}
    await asyncio.sleep(1.2)
    assert await store.load("s1") is None
