"""A session written for a new owner is no longer its previous owner's, on every backend."""

from __future__ import annotations

from tests.protection.conftest import Backend


async def test_a_session_saved_for_a_new_owner_leaves_the_previous_owners_listing(
    backend: Backend,
) -> None:
    """save(owner=alice) then save(owner=bob): only bob lists it, and erasing alice keeps it."""
    store = backend.open(None)
    await store.save("s1", {"who": "alice"}, owner="alice")
    await store.save("a1", {"who": "alice"}, owner="alice")
    await store.save("s1", {"who": "bob"}, owner="bob")
    assert await store.sessions_of("alice") == ["a1"]
    assert await store.sessions_of("bob") == ["s1"]
    assert await store.erase_owner("alice") == ["a1"]
    assert await store.load("s1") == {"who": "bob"}
    assert await store.sessions_of("bob") == ["s1"]


async def test_a_session_given_back_to_its_first_owner_is_listed_for_it_again(
    backend: Backend,
) -> None:
    """alice, then bob, then alice again: alice's, and erasing bob leaves it."""
    store = backend.open(None)
    await store.save("s1", {"v": 1}, owner="alice")
    await store.update("s1", lambda state: {"v": 2}, owner="bob")
    await store.save_many({"s1": {"v": 3}}, owner="alice")
    assert await store.sessions_of("alice") == ["s1"]
    assert await store.sessions_of("bob") == []
    assert await store.erase_owner("bob") == []
    assert await store.erase_owner("alice") == ["s1"]
    assert not await store.exists("s1")
