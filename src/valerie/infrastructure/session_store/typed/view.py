"""A typed view of a store: the same operations, taking and returning model instances."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from ..codec import SessionState, StateCodec
from ..contract import DELETE, Deletion
from ..errors import (
    MigrationError,
    NewerSchemaVersionError,
    StateValidationError,
    UpdaterReturnedNoneError,
    VersionConflictError,
)
from ..store import EncodedSessionStore
from ..validation import (
    TTL,
    check_session_id,
    check_states,
    check_updater,
)
from .models import ModelCodec
from .schema import DEFAULT_VERSION_KEY, Migration, SchemaVersions

if TYPE_CHECKING:
    from ..contract import SessionStore
    from ..lease import Lease

M = TypeVar("M")


TypedUpdater = Callable[[M | None], "M | Deletion | Awaitable[M | Deletion | None] | None"]
"""What a typed `update` applies: the current model (or None) to the new one, or `DELETE`."""

_BATCH_WRITES_IN_FLIGHT = 16
"""Guarded writes a typed `save_many` runs at once: a batch must not take every connection."""

_TYPED_FAILURES = (MigrationError, NewerSchemaVersionError, StateValidationError)

_MIGRATION_ROUNDS = 8
"""Reads a load may make while migrating a session that others keep rewriting."""


class TypedVersionedState(NamedTuple, Generic[M]):
    """A loaded model and the version it had; pass the version to `save(..., if_version=)`."""

    state: M | None
    version: str


class TypedSessionStore(Generic[M]):
    """A view of a store whose states are instances of one model, with schema versions.

    Stored as the JSON object of the model's JSON dump plus the schema version under
    `version_key`, so the dict API, another service or another language reads the same key.
    The type comes from the code, never from the data. Loading a session of an older version
    runs the migrations and writes the result back with compare-and-set (a concurrent write
    wins); a session of a newer version raises `NewerSchemaVersionError`, and `save` never
    replaces one. Obtain it with `store.typed(Model, ...)`.

    Args:
        store: The store that holds the sessions; the view neither owns nor closes it.
        model: A Pydantic v2 model, a dataclass or a `typing_extensions.TypedDict`.
        version: The schema version this code writes.
        migrations: `migrations[n]` turns a version-n dict into a version-n+1 dict, for every
            n from 1 to `version - 1`.
        version_key: The top-level key that holds the version; not one of the model's fields.

    Raises:
        ConfigurationError: Pydantic cannot take `model`, or the versions are not as above.
    """

    __slots__ = ("_codec", "_encoded", "_schema", "store")

    def __init__(
        self,
        store: SessionStore,
        model: type[M],
        *,
        version: int = 1,
        migrations: Mapping[int, Migration] | None = None,
        version_key: str = DEFAULT_VERSION_KEY,
    ) -> None:
        self.store = store
        # A store whose codec writes plain JSON hands its bytes over: validated directly.
        self._encoded = (
            store
            if isinstance(store, EncodedSessionStore) and isinstance(store.codec, StateCodec)
            else None
        )
        self._codec = ModelCodec(model)
        self._schema = SchemaVersions(
            self._codec.name, version, migrations, version_key, self._codec.fields()
        )

    def __repr__(self) -> str:
        return (
            f"TypedSessionStore({self._codec.name}, version={self._schema.version}, "
            f"store={self.store!r})"
        )

    @property
    def version(self) -> int:
        """The schema version this view writes."""
        return self._schema.version

    async def save(
        self, session_id: str, state: M, ttl: TTL | None = None, *, if_version: str | None = None
    ) -> None:
        """Store `state`, unless the stored session has a newer schema version.

        Without `if_version`, a compare-and-set too (as `update`): the stored session is
        replaced only if its schema version is not newer than this view's.

        Raises:
            SerializationError: `state` is not a model instance or cannot be dumped to JSON;
                nothing was written.
            NewerSchemaVersionError: The stored session is newer; nothing was written.
            VersionConflictError: `if_version` was given and the session has changed.
        """
        data = self._dump(state)
        if if_version is not None:
            # The version was read by this view's load_versioned, which checked the schema.
            await self.store.save(session_id, data, ttl, if_version=if_version)
        else:
            await self._save_unless_newer(session_id, data, ttl)

    async def _save_unless_newer(
        self, session_id: str, data: SessionState, ttl: TTL | None
    ) -> None:
        def replace_unless_newer(current: SessionState | None) -> SessionState:
            if current is not None:
                self._schema.check_not_newer(session_id, current)
            return data

        await self.store.update(session_id, replace_unless_newer, ttl)

    async def load(self, session_id: str, *, refresh_ttl: bool | TTL = False) -> M | None:
        """Return the session as a model, or `None`; an older schema is migrated and written back.

        Raises:
            StateValidationError: The stored value does not validate; it is left in place.
            NewerSchemaVersionError: The stored session is newer than this code knows.
            MigrationError: A migration failed; nothing was written.
        """
        encoded = self._encoded
        with self._reporting("load"):
            if refresh_ttl is not False or encoded is None:
                state = await self.store.load(session_id, refresh_ttl=refresh_ttl)
                return None if state is None else await self._model_or_migrate(session_id, state)
            # Validated from the stored JSON, not from a decoded dict: half the work.
            data = await encoded.load_encoded(session_id)
            if data is None:
                return None
            plain = self._schema.current_without_stamp(data)
            if plain is not None:
                return self._codec.load_json(session_id, plain)
            return await self._model_or_migrate(session_id, encoded.codec.decode(data))

    @contextlib.contextmanager
    def _reporting(self, operation: str) -> Iterator[None]:
        """Report a stored state this view could not take to the store's observers.

        Only failures of this view's own work after a store call (the store reports what
        happens within its calls, such as a function given to `update`).
        """
        try:
            yield
        except _TYPED_FAILURES as error:
            if isinstance(self.store, EncodedSessionStore):
                self.store.report_state_failure(operation, error)
            raise

    async def _model_or_migrate(self, session_id: str, state: SessionState) -> M | None:
        """Validate a stored state of the current version; migrate (and write back) older.

        None if the session was deleted (or expired) while it was migrated.
        """
        if self._schema.take(session_id, state) == self._schema.version:
            return self._codec.load(session_id, state)
        return (await self._load_versioned(session_id)).state

    async def load_versioned(self, session_id: str) -> TypedVersionedState[M]:
        """Return the model (or `None`) and its version, for a later `save(if_version=...)`.

        A session of an older schema is migrated and written back first (compare-and-set), so
        the version returned is that of the migrated value.

        Raises:
            StateValidationError, NewerSchemaVersionError, MigrationError: As `load`.
            VersionConflictError: Others kept rewriting the session while it was migrated.
        """
        with self._reporting("load_versioned"):
            return await self._load_versioned(session_id)

    async def _load_versioned(self, session_id: str) -> TypedVersionedState[M]:
        for _ in range(_MIGRATION_ROUNDS):
            state, version = await self.store.load_versioned(session_id)
            if state is None:
                return TypedVersionedState(None, version)
            found = self._schema.take(session_id, state)
            if found == self._schema.version:
                return TypedVersionedState(self._codec.load(session_id, state), version)
            model = self._codec.load(session_id, self._schema.migrate(session_id, state, found))
            remaining = await self.store.ttl(session_id)
            # A conflict means someone else wrote (or it expired) meanwhile: read again.
            with contextlib.suppress(VersionConflictError):
                await self.store.save(session_id, self._dump(model), remaining, if_version=version)
        raise VersionConflictError(
            f"load gave up migrating a session after {_MIGRATION_ROUNDS} reads, each meeting "
            "a concurrent change; retry later"
        )

    async def update(
        self, session_id: str, fn: TypedUpdater[M], ttl: TTL | None = None, *, attempts: int = 64
    ) -> M | None:
        """Apply `fn` to the session's model atomically; no concurrent update is ever lost.

        `fn` (sync or async) receives the current model (migrated if older), or `None` when
        there is none, and returns the new model, or `DELETE` to delete the session. Returning
        `None` for an existing session is an error (the usual slip of changing the model in
        place and forgetting `return`), and nothing is written. As with the store's `update`,
        `fn` may run several times.

        Returns:
            The new model as stored (what `load` would return), or `None` if deleted.

        Raises:
            UpdaterReturnedNoneError: `fn` returned `None` for an existing session.
            SerializationError: `fn` returned something that is not a model instance or cannot
                be dumped; nothing was written.
            NewerSchemaVersionError, StateValidationError, MigrationError: As `load`.
        """
        check_updater(fn)

        async def apply(current: SessionState | None) -> SessionState | Deletion:
            model = None if current is None else self._model_of(session_id, current)
            result = fn(model)
            new = await result if inspect.isawaitable(result) else result
            if new is DELETE:
                return DELETE
            if new is None:
                if current is None:
                    return DELETE  # nothing there, nothing to write
                raise UpdaterReturnedNoneError(
                    "update's function returned None for an existing session, so nothing was "
                    "written; return the new state (did it change the model in place and "
                    "forget `return`?), or return DELETE to delete the session"
                )
            return self._dump(new)

        stored = await self.store.update(session_id, apply, ttl, attempts=attempts)
        with self._reporting("update"):
            return None if stored is None else self._model_of(session_id, stored)

    async def delete(self, session_id: str, *, if_version: str | None = None) -> None:
        """Remove the session; see the store's `delete`."""
        await self.store.delete(session_id, if_version=if_version)

    async def exists(self, session_id: str) -> bool:
        """Return whether the session is stored; see the store's `exists`."""
        return await self.store.exists(session_id)

    async def touch(self, session_id: str, ttl: TTL | None = None) -> bool:
        """Renew the session's TTL without rewriting it; see the store's `touch`."""
        return await self.store.touch(session_id, ttl)

    async def ttl(self, session_id: str) -> int | None:
        """Return the session's remaining whole seconds, or `None`; see the store's `ttl`."""
        return await self.store.ttl(session_id)

    def lock(self, session_id: str, *, timeout: float = 30.0, wait: float = 10.0) -> Lease:
        """Return a lease on the session's turn; see the store's `lock`."""
        return self.store.lock(session_id, timeout=timeout, wait=wait)

    async def load_many(self, session_ids: Iterable[str]) -> dict[str, M | None]:
        """Return the models of many sessions (`None` for missing ones) in one round trip.

        Older sessions among them are migrated (and written back) one by one.
        """
        found = await self.store.load_many(session_ids)
        with self._reporting("load_many"):
            return {
                session_id: (
                    None if state is None else await self._model_or_migrate(session_id, state)
                )
                for session_id, state in found.items()
            }

    async def save_many(self, states: Mapping[str, M], ttl: TTL | None = None) -> None:
        """Store many sessions; every id and model is checked before any is written.

        Each session is a guarded write as in `save` (never over a newer schema), 16 at a
        time: not one round trip as the store's `save_many`, and not a transaction. Every
        write is attempted; then the first error, if any, is raised.

        Raises:
            InvalidArgumentError, InvalidSessionIdError, InvalidTTLError, SerializationError:
                An argument is not valid; nothing was written.
            NewerSchemaVersionError: A stored session is newer; that one was not written.
        """
        dumped = {
            check_session_id(session_id): self._dump(state)
            for session_id, state in check_states(states).items()
        }
        slots = asyncio.Semaphore(_BATCH_WRITES_IN_FLIGHT)

        async def write(session_id: str, data: SessionState) -> None:
            async with slots:
                await self._save_unless_newer(session_id, data, ttl)

        outcomes = await asyncio.gather(
            *(write(session_id, data) for session_id, data in dumped.items()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def delete_many(self, session_ids: Iterable[str]) -> None:
        """Remove many sessions in one round trip; see the store's `delete_many`."""
        await self.store.delete_many(session_ids)

    def iter_ids(self, match: str | None = None) -> AsyncIterator[str]:
        """Yield the ids of the store's sessions; see the store's `iter_ids`."""
        return self.store.iter_ids(match)

    async def count(self) -> int:
        """Return how many sessions the store holds; see the store's `count`."""
        return await self.store.count()

    def _dump(self, state: object) -> SessionState:
        return self._schema.stamp(self._codec.dump(state))

    def _model_of(self, session_id: str, state: SessionState) -> M:
        """Validate a stored state, migrating it in memory first if it is older."""
        found = self._schema.take(session_id, state)
        if found != self._schema.version:
            state = self._schema.migrate(session_id, state, found)
        return self._codec.load(session_id, state)
