"""Versions, run once per backend: load_versioned and compare-and-set with if_version."""

from __future__ import annotations

from typing import Any

import pytest

from valerie.infrastructure import (
    ABSENT,
    EncodedSessionStore,
    InvalidArgumentError,
    VersionConflictError,
)


async def test_load_versioned_of_a_missing_session_is_absent(store: EncodedSessionStore) -> None:
    """No session: state None, version ABSENT."""
    assert await store.load_versioned("s1") == (None, ABSENT)


async def test_load_versioned_returns_the_state_and_its_version(
    store: EncodedSessionStore,
) -> None:
    """load_versioned gives what load gives, with a version that changes with the state and
    only with it."""
    await store.save("s1", {"n": 1, "pair": (1, 2)})
    first = await store.load_versioned("s1")
    assert first.state == {"n": 1, "pair": [1, 2]}
    assert first.state == await store.load("s1")
    await store.save("s1", {"n": 1, "pair": (1, 2)})
    assert (await store.load_versioned("s1")).version == first.version
    await store.save("s1", {"n": 2})
    second = await store.load_versioned("s1")
    assert second.state == {"n": 2}
    assert second.version not in (first.version, ABSENT)


async def test_if_version_absent_creates_only(store: EncodedSessionStore) -> None:
    """ABSENT writes when there is no session and conflicts when there is one."""
    await store.save("s1", {"v": 1}, if_version=ABSENT)
    with pytest.raises(VersionConflictError):
        await store.save("s1", {"v": 2}, if_version=ABSENT)
    assert await store.load("s1") == {"v": 1}


async def test_first_writer_wins_and_the_second_gets_a_conflict(
    store: EncodedSessionStore,
) -> None:
    """Two readers of the same version: the first save wins, the second raises, the winner's
    state is intact."""
    await store.save("s1", {"turn": 0})
    first = await store.load_versioned("s1")
    second = await store.load_versioned("s1")
    assert first.version == second.version != ABSENT
    await store.save("s1", {"turn": 1, "by": "first"}, if_version=first.version)
    with pytest.raises(VersionConflictError, match=r"^the session changed since its version "):
        await store.save("s1", {"turn": 1, "by": "second"}, if_version=second.version)
    assert await store.load("s1") == {"turn": 1, "by": "first"}
    assert (await store.load_versioned("s1")).version != first.version


async def test_a_stale_version_cannot_delete(store: EncodedSessionStore) -> None:
    """delete(if_version=) deletes only the version it names."""
    await store.save("s1", {"v": 1})
    stale = (await store.load_versioned("s1")).version
    await store.save("s1", {"v": 2})
    with pytest.raises(VersionConflictError):
        await store.delete("s1", if_version=stale)
    assert await store.load("s1") == {"v": 2}
    await store.delete("s1", if_version=(await store.load_versioned("s1")).version)
    assert not await store.exists("s1")


async def test_a_version_of_a_deleted_session_conflicts(store: EncodedSessionStore) -> None:
    """A session deleted since it was read cannot be saved over with its old version."""
    await store.save("s1", {"v": 1})
    version = (await store.load_versioned("s1")).version
    await store.delete("s1")
    with pytest.raises(VersionConflictError):
        await store.save("s1", {"v": 2}, if_version=version)
    assert not await store.exists("s1")


async def test_if_version_none_means_no_condition(store: EncodedSessionStore) -> None:
    """if_version=None (the default) saves and deletes unconditionally."""
    await store.save("s1", {"v": 1}, if_version=None)
    await store.save("s1", {"v": 2}, if_version=None)
    assert await store.load("s1") == {"v": 2}
    await store.delete("s1", if_version=None)
    assert not await store.exists("s1")


@pytest.mark.parametrize(
    "version", ["", 7, "abc", "A" * 40, "g" * 40, "0" * 41, b"0" * 40, "Absent"], ids=repr
)
async def test_a_malformed_version_is_refused_by_save_and_delete_and_changes_nothing(
    store: EncodedSessionStore, version: Any
) -> None:
    """if_version takes a token from load_versioned (40 hex digits) or ABSENT; anything else
    is an InvalidArgumentError (also a TypeError) before anything is written or deleted."""
    await store.save("s1", {"v": 1}, ttl=600)
    with pytest.raises(InvalidArgumentError, match="if_version"):
        await store.save("s1", {"v": 2}, ttl=5, if_version=version)
    with pytest.raises(TypeError, match="if_version"):
        await store.delete("s1", if_version=version)
    with pytest.raises(InvalidArgumentError, match="if_version"):
        await store.save("new", {"v": 2}, if_version=version)
    assert await store.load("s1") == {"v": 1}
    assert await store.ttl("s1") == 600
    assert not await store.exists("new")


async def test_a_refused_versioned_save_or_delete_changes_nothing(
    store: EncodedSessionStore,
) -> None:
    """A save or delete refused for its stale version leaves the state and its TTL as the
    winning write left them."""
    await store.save("s1", {"v": 1}, ttl=600)
    stale = (await store.load_versioned("s1")).version
    await store.save("s1", {"v": 2}, ttl=500)
    with pytest.raises(VersionConflictError):
        await store.save("s1", {"v": 3}, ttl=50, if_version=stale)
    with pytest.raises(VersionConflictError):
        await store.save("s1", {"v": 3}, ttl=50, if_version=ABSENT)
    with pytest.raises(VersionConflictError):
        await store.delete("s1", if_version=stale)
    assert await store.load("s1") == {"v": 2}
    assert await store.ttl("s1") == 500
