"""Schema versions: older sessions migrate on load and are written back by compare-and-set;
newer ones are never read as older nor overwritten."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from valerie.infrastructure import (
    ConfigurationError,
    EncodedSessionStore,
    InMemorySessionStore,
    MigrationError,
    NewerSchemaVersionError,
    SessionStoreError,
    StateValidationError,
)
from valerie.infrastructure.session_store.typed import DELETE, TypedSessionStore


class ProfileV1(BaseModel):
    name: str
    said: list[str] = []


class ProfileV3(BaseModel):
    user_name: str
    messages: list[dict[str, str]] = []


def v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """Rename `name` to `user_name`."""
    state["user_name"] = state.pop("name")
    return state


def v2_to_v3(state: dict[str, Any]) -> dict[str, Any]:
    """Turn the list of what the user said into messages with roles."""
    said = state.pop("said", [])
    state["messages"] = [{"role": "user", "content": text} for text in said]
    return state


MIGRATIONS = {1: v1_to_v2, 2: v2_to_v3}
V1: dict[str, Any] = {"name": "Ann", "said": ["hi", "bye"]}
V3 = ProfileV3(
    user_name="Ann",
    messages=[{"role": "user", "content": "hi"}, {"role": "user", "content": "bye"}],
)


def v3_of(store: EncodedSessionStore) -> TypedSessionStore[ProfileV3]:
    return store.typed(ProfileV3, version=3, migrations=MIGRATIONS)


async def test_a_session_without_a_version_is_version_1_and_migrates_on_load(
    base_store: EncodedSessionStore,
) -> None:
    """A value saved before typing runs the whole chain, and the result is written back with
    its new version, keeping the session's expiry."""
    await base_store.save("s1", V1, ttl=500)
    assert await v3_of(base_store).load("s1") == V3
    assert await base_store.load("s1") == {**V3.model_dump(mode="json"), "_schema_version": 3}
    remaining = await base_store.ttl("s1")
    assert remaining is not None
    assert 495 <= remaining <= 500


async def test_a_stored_version_runs_only_the_migrations_after_it(
    base_store: EncodedSessionStore,
) -> None:
    """A version-2 value runs migrations[2] only."""
    calls: list[int] = []

    def counted(start: int) -> Any:
        def migrate(state: dict[str, Any]) -> dict[str, Any]:
            calls.append(start)
            return MIGRATIONS[start](state)

        return migrate

    view = base_store.typed(ProfileV3, version=3, migrations={1: counted(1), 2: counted(2)})
    await base_store.save("s1", {"user_name": "Ann", "said": ["hi", "bye"], "_schema_version": 2})
    assert await view.load("s1") == V3
    assert calls == [2]
    assert await view.load("s1") == V3
    assert calls == [2]  # written back: the second load migrates nothing


async def test_a_version_1_view_round_trips_what_it_saves(base_store: EncodedSessionStore) -> None:
    """Saves stamp the current version; a v1 view reads its own sessions."""
    view = base_store.typed(ProfileV1)
    await view.save("s1", ProfileV1(**V1))
    assert await base_store.load("s1") == {**V1, "_schema_version": 1}
    assert await view.load("s1") == ProfileV1(**V1)


async def test_load_versioned_returns_the_version_of_the_migrated_value(
    base_store: EncodedSessionStore,
) -> None:
    """The version returned after a migration is that of the written-back value."""
    view = v3_of(base_store)
    await base_store.save("s1", V1)
    state, version = await view.load_versioned("s1")
    assert state == V3
    await view.save("s1", V3.model_copy(update={"user_name": "Bo"}), if_version=version)
    assert await view.load("s1") == V3.model_copy(update={"user_name": "Bo"})


async def test_update_and_load_many_migrate_too(base_store: EncodedSessionStore) -> None:
    """update's fn gets the migrated model; load_many migrates the older sessions among
    current ones."""
    view = v3_of(base_store)
    await base_store.save("a", V1)
    await base_store.save("b", V1)
    await view.save("c", V3)

    def rename(profile: ProfileV3 | None) -> ProfileV3:
        assert profile == V3
        return profile.model_copy(update={"user_name": "Cy"})

    assert await view.update("a", rename) == V3.model_copy(update={"user_name": "Cy"})
    assert await view.load_many(["b", "c", "d"]) == {"b": V3, "c": V3, "d": None}
    assert (await base_store.load("b") or {}).get("_schema_version") == 3


async def test_a_custom_version_key(base_store: EncodedSessionStore) -> None:
    """The reserved key can be renamed."""
    view = base_store.typed(ProfileV3, version=3, migrations=MIGRATIONS, version_key="v")
    await base_store.save("s1", {**V1, "v": 1})
    assert await view.load("s1") == V3
    assert (await base_store.load("s1") or {})["v"] == 3


async def test_a_concurrent_write_wins_over_the_write_back() -> None:
    """The write-back is a compare-and-set: a write that lands meanwhile is kept, and load
    returns it."""
    newer = {"user_name": "Written-meanwhile", "messages": [], "_schema_version": 3}

    class AnotherWriterMeanwhile(InMemorySessionStore):
        async def ttl(self, session_id: str) -> int | None:
            # Between the migration's read and its write-back, another process writes.
            await self.save(session_id, newer)
            return await super().ttl(session_id)

    store = AnotherWriterMeanwhile()
    await store.save("s1", V1)
    assert await v3_of(store).load("s1") == ProfileV3(user_name="Written-meanwhile")
    assert await store.load("s1") == newer


async def test_a_session_deleted_while_it_migrates_loads_as_none() -> None:
    """A delete that lands between the migration's read and its write-back wins: load
    returns None and nothing is written back."""

    class DeletedMeanwhile(InMemorySessionStore):
        async def ttl(self, session_id: str) -> int | None:
            await self.delete(session_id)
            return await super().ttl(session_id)

    store = DeletedMeanwhile()
    await store.save("s1", V1)
    assert await v3_of(store).load("s1") is None
    assert not await store.exists("s1")


# Newer than this code


@pytest.mark.parametrize("newer", [2, 3])
async def test_a_newer_session_is_an_error_on_every_read_and_is_never_overwritten(
    base_store: EncodedSessionStore, newer: int
) -> None:
    """Rolling deploy: a v1 view meets a v2 or v3 value. Loads raise NewerSchemaVersionError;
    save, save_many and update raise it too, and the newer value is intact."""
    stored = {**V3.model_dump(mode="json"), "_schema_version": newer}
    await base_store.save("s1", stored)
    old = base_store.typed(ProfileV1)
    calls = [
        old.load("s1"),
        old.load_versioned("s1"),
        old.load_many(["s1"]),
        old.save("s1", ProfileV1(name="old")),
        old.save_many({"s1": ProfileV1(name="old")}),
        old.update("s1", lambda profile: ProfileV1(name="old")),
        old.update("s1", lambda profile: DELETE),
    ]
    for call in calls:
        with pytest.raises(NewerSchemaVersionError) as caught:
            await call
        error = caught.value
        assert (error.found, error.known, error.session_id) == (newer, 1, "s1")
        assert isinstance(error, SessionStoreError)
        assert isinstance(error, ValueError)
        assert f"version {newer} of ProfileV1, newer than the 1 this code knows" in str(error)
        assert "s1" not in str(error)
    assert await base_store.load("s1") == stored


async def test_a_save_many_writes_the_others_and_raises_for_the_newer_one(
    base_store: EncodedSessionStore,
) -> None:
    """Each item of a typed batch is guarded on its own."""
    await v3_of(base_store).save("new", V3)
    old = base_store.typed(ProfileV1)
    with pytest.raises(NewerSchemaVersionError):
        await old.save_many({"a": ProfileV1(name="a"), "new": ProfileV1(name="x")})
    assert await old.load("a") == ProfileV1(name="a")
    assert (await base_store.load("new") or {})["_schema_version"] == 3


@pytest.mark.parametrize("version", ["2", 0, -1, True, 1.0, None, [1]])
async def test_a_malformed_stored_version_is_a_validation_error(
    base_store: EncodedSessionStore, version: Any
) -> None:
    """The reserved key must hold an int >= 1; anything else names its path, and stays."""
    await base_store.save("s1", {**V1, "_schema_version": version})
    with pytest.raises(StateValidationError) as caught:
        await v3_of(base_store).load("s1")
    assert caught.value.paths == ("state['_schema_version']",)
    assert (await base_store.load("s1") or {})["_schema_version"] == version


# Failing migrations


async def test_a_migration_that_raises_writes_nothing(base_store: EncodedSessionStore) -> None:
    """MigrationError names the step and the function, chains the cause, and the session
    stays as it was."""

    def broken(state: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("secret-key-in-state")

    await base_store.save("s1", V1)
    view = base_store.typed(ProfileV3, version=3, migrations={1: v1_to_v2, 2: broken})
    with pytest.raises(MigrationError) as caught:
        await view.load("s1")
    assert "migration 2 -> 3 (broken)" in str(caught.value)
    assert "secret-key-in-state" not in str(caught.value)
    assert isinstance(caught.value.__cause__, KeyError)
    assert caught.value.from_version == 2
    assert await base_store.load("s1") == V1


async def test_a_migration_that_returns_no_dict_writes_nothing(
    base_store: EncodedSessionStore,
) -> None:
    """The usual slip (changing the dict in place, returning nothing) is named."""

    def forgets_return(state: dict[str, Any]) -> None:
        state["user_name"] = state.pop("name")

    await base_store.save("s1", V1)
    view = base_store.typed(ProfileV3, version=3, migrations={1: forgets_return, 2: v2_to_v3})  # type: ignore[dict-item]
    with pytest.raises(MigrationError, match="returned a NoneType, not a dict"):
        await view.update("s1", lambda profile: profile)
    assert await base_store.load("s1") == V1


async def test_a_migrated_value_that_does_not_validate_is_not_written(
    base_store: EncodedSessionStore,
) -> None:
    """A chain that does not produce the model fails validation; nothing is written."""
    await base_store.save("s1", V1)
    view = base_store.typed(ProfileV3, version=3, migrations={1: v2_to_v3, 2: v2_to_v3})
    with pytest.raises(StateValidationError, match=r"state\['user_name'\]"):
        await view.load("s1")
    assert await base_store.load("s1") == V1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


async def test_the_version_key_never_reaches_the_model(base_store: EncodedSessionStore) -> None:
    """A model that forbids extra fields loads: the reserved key is taken off first."""
    view = base_store.typed(Strict, version=2, migrations={1: lambda state: state})
    await view.save("s1", Strict(name="Ann"))
    await base_store.save("s2", {"name": "Bo"})
    assert await view.load("s1") == Strict(name="Ann")
    assert await view.load("s2") == Strict(name="Bo")
    assert await view.load_many(["s1"]) == {"s1": Strict(name="Ann")}
    assert await view.update("s1", lambda strict: strict) == Strict(name="Ann")


# Configuration


class Aliased(BaseModel):
    version: int = Field(alias="_schema_version")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"version": 0}, "version must be an int >= 1"),
        ({"version": True}, "version must be an int >= 1"),
        ({"version": "2"}, "version must be an int >= 1"),
        ({"version": 3, "migrations": {1: v1_to_v2}}, r"missing \[2\]"),
        ({"version": 2, "migrations": {1: v1_to_v2, 2: v2_to_v3}}, r"unexpected \[2\]"),
        ({"version": 2, "migrations": {0: v1_to_v2}}, r"missing \[1\], unexpected \[0\]"),
        ({"version": 2, "migrations": {1: "v1_to_v2"}}, r"migrations\[1\] must be a function"),
        ({"version_key": ""}, "version_key must be a non-empty str"),
        ({"version_key": "user_name"}, "'user_name' is a field of ProfileV3"),
    ],
)
def test_inconsistent_versions_are_configuration_errors(
    arguments: dict[str, Any], message: str
) -> None:
    """The view checks its versions, migrations and key when it is made."""
    with pytest.raises(ConfigurationError, match=message):
        InMemorySessionStore().typed(ProfileV3, **arguments)


def test_a_field_aliased_to_the_version_key_is_refused() -> None:
    """An alias counts as a field name."""
    with pytest.raises(ConfigurationError, match="is a field of Aliased"):
        InMemorySessionStore().typed(Aliased)


async def test_migrations_run_on_a_copy_per_attempt(base_store: EncodedSessionStore) -> None:
    """Under concurrent updates each attempt migrates a fresh copy: 50 updates of a v1
    session end at exactly 50 messages."""
    await base_store.save("s1", {"name": "Ann", "said": []})
    view = v3_of(base_store)

    async def say(profile: ProfileV3 | None) -> ProfileV3:
        await asyncio.sleep(0)
        assert profile is not None
        profile.messages.append({"role": "user", "content": "x"})
        return profile

    await asyncio.gather(*(view.update("s1", say) for _ in range(50)))
    loaded = await view.load("s1")
    assert loaded is not None
    assert len(loaded.messages) == 50
