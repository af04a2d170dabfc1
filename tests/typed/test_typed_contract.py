"""The contract suite's behaviours, run through the typed view on memory and standalone Redis.

`ThroughTheTypedView` serves the dict API by way of `store.typed(dict[str, Any])`: every call
takes the typed path (the dump, the version key, the guarded save, validation from JSON), and
the contract tests imported below run against it unchanged. Left out: the tests of the dict
API's own JSON rules (a `dict[str, Any]` model dumps a datetime as text, by design), of the
exact messages and checks of each argument (covered for the typed view in its own tests),
and of backend specifics (ping, the update cache, raw bytes). Also left out:
`test_update_raises_after_attempts_real_conflicts`: a typed `save` is itself an `update`, so on
Redis the update cache holds its write, and the first conflict after it counts as a stale copy
(no attempt used), as documented for the store: `fn` runs `attempts + 1` times there.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import pytest

from tests.contract.test_batches import (  # noqa: F401 - collected here, on the typed view
    test_delete_many,
    test_empty_batches_are_no_ops,
    test_save_many_then_load_many,
)
from tests.contract.test_expiry import (  # noqa: F401 - collected here, on the typed view
    test_load_with_refresh_ttl_renews,
    test_touch_renews_and_reports_existence,
    test_ttl_reports_whole_seconds_left,
)
from tests.contract.test_leases import (  # noqa: F401 - collected here, on the typed view
    test_a_holder_cannot_release_or_extend_its_expired_lease,
    test_a_lease_can_be_extended_by_its_holder_only,
    test_a_lease_expires_by_itself,
    test_a_lease_is_exclusive,
    test_a_non_holder_cannot_release,
    test_tasks_under_the_lease_never_interleave,
)
from tests.contract.test_scans import (  # noqa: F401 - collected here, on the typed view
    test_count_iter_ids_and_clear_with_10000_sessions,
    test_iter_ids_filters_with_a_glob_pattern,
)
from tests.contract.test_update import (  # noqa: F401 - collected here, on the typed view
    test_200_concurrent_updates_lose_nothing,
    test_a_concurrent_write_of_the_same_state_is_no_conflict,
    test_plain_load_then_save_loses_updates,
    test_update_applies_the_ttl,
    test_update_creates_changes_and_returns_the_stored_state,
    test_update_returning_delete_deletes,
    test_update_succeeds_after_one_conflict_fewer_than_attempts,
    test_update_with_an_async_function,
)
from tests.contract.test_versions import (  # noqa: F401 - collected here, on the typed view
    test_a_stale_version_cannot_delete,
    test_a_version_of_a_deleted_session_conflicts,
    test_first_writer_wins_and_the_second_gets_a_conflict,
    test_if_version_absent_creates_only,
    test_if_version_none_means_no_condition,
    test_load_versioned_of_a_missing_session_is_absent,
    test_load_versioned_returns_the_state_and_its_version,
)
from tests.support.backends import backend_params
from tests.typed.conftest import TYPED_BACKENDS
from tests.unit.test_session_store import (  # noqa: F401 - collected here, on the typed view
    test_500_concurrent_save_load_pairs_each_see_their_own_state,
    test_delete_of_a_missing_session_is_not_an_error,
    test_exists_reflects_save_and_delete,
    test_invalid_id_messages_do_not_repeat_the_id,
    test_invalid_ids_raise_on_every_method,
    test_invalid_ttls_raise_and_keep_the_session,
    test_large_states_round_trip,
    test_load_of_a_missing_session_returns_none,
    test_load_returns_what_the_json_round_trip_yields,
    test_loaded_state_is_a_fresh_copy,
    test_save_replaces_the_previous_state,
    test_save_then_load_returns_the_state,
    test_saved_state_is_copied,
    test_saving_again_renews_the_ttl,
    test_sessions_are_independent,
    test_sessions_expire_after_their_ttl,
    test_text_and_numbers_round_trip_exactly,
    test_unusual_but_valid_ids_round_trip,
    test_valid_ttls_are_applied,
)
from valerie.infrastructure import EncodedSessionStore, InMemorySessionStore, RedisSessionStore
from valerie.infrastructure.session_store.typed import TypedVersionedState

State = dict[str, Any]


class ThroughTheTypedView:
    """The dict API of `store`, each call made through `store.typed(dict[str, Any])`.

    What the view does not type (close, clear, ping, the default TTL) goes to the store.
    """

    def __init__(self, store: EncodedSessionStore) -> None:
        self._store = store
        self._view = store.typed(dict[str, Any])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def save(
        self, session_id: str, state: State, ttl: Any = None, *, if_version: str | None = None
    ) -> None:
        await self._view.save(session_id, state, ttl, if_version=if_version)

    async def load(self, session_id: str, *, refresh_ttl: Any = False) -> State | None:
        return await self._view.load(session_id, refresh_ttl=refresh_ttl)

    async def load_versioned(self, session_id: str) -> TypedVersionedState[State]:
        return await self._view.load_versioned(session_id)

    async def update(
        self,
        session_id: str,
        fn: Callable[[State | None], Any],
        ttl: Any = None,
        *,
        attempts: int = 64,
    ) -> State | None:
        return await self._view.update(session_id, fn, ttl, attempts=attempts)

    async def delete(self, session_id: str, *, if_version: str | None = None) -> None:
        await self._view.delete(session_id, if_version=if_version)

    async def exists(self, session_id: str) -> bool:
        return await self._view.exists(session_id)

    async def touch(self, session_id: str, ttl: Any = None) -> bool:
        return await self._view.touch(session_id, ttl)

    async def ttl(self, session_id: str) -> int | None:
        return await self._view.ttl(session_id)

    def lock(self, session_id: str, **options: Any) -> Any:
        return self._view.lock(session_id, **options)

    async def load_many(self, session_ids: Iterable[str]) -> dict[str, State | None]:
        return await self._view.load_many(session_ids)

    async def save_many(self, states: Mapping[str, State], ttl: Any = None) -> None:
        await self._view.save_many(states, ttl)

    async def delete_many(self, session_ids: Iterable[str]) -> None:
        await self._view.delete_many(session_ids)

    def iter_ids(self, match: str | None = None) -> AsyncIterator[str]:
        return self._view.iter_ids(match)

    async def count(self) -> int:
        return await self._view.count()


@pytest.fixture(params=backend_params(TYPED_BACKENDS))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The memory store, then standalone Redis, each behind the typed view."""
    if request.param == "memory":
        async with InMemorySessionStore() as memory:
            yield ThroughTheTypedView(memory)
    else:
        url = request.getfixturevalue("redis_server").url
        async with RedisSessionStore(url, prefix=f"typed:{uuid.uuid4().hex}:") as redis:
            yield ThroughTheTypedView(redis)


async def test_the_adapter_goes_through_the_typed_view(store: Any) -> None:
    """What the imported tests save carries the typed view's version key."""
    await store.save("s1", {"n": 1})
    assert await store._store.load("s1") == {"n": 1, "_schema_version": 1}
