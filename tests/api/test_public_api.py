"""The import paths and the abstract contract that applications and custom backends rely on."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

import valerie.infrastructure as infrastructure
import valerie.infrastructure.session_store as session_store
from tests.support.dict_store import DictStore
from tests.support.paths import REPO
from valerie.infrastructure import (
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    EncodedSessionStore,
    InMemorySessionStore,
    InvalidArgumentError,
    InvalidSessionIdError,
    InvalidTTLError,
    LockNotOwnedError,
    MigrationError,
    MissingDependencyError,
    NewerSchemaVersionError,
    RedisSessionStore,
    ReplicationError,
    SerializationError,
    SessionLockedError,
    SessionStore,
    SessionStoreError,
    StateValidationError,
    VersionConflictError,
    get_default_ttl,
    get_session_store,
)
from valerie.infrastructure.session_store import (
    DELETE,
    Backend,
    Capability,
    DecryptionError,
    SessionExistsError,
    StateTooLargeError,
    UnsupportedCapabilityError,
    UpdaterReturnedNoneError,
)
from valerie.infrastructure.session_store.backend import CompareAndSet
from valerie.infrastructure.session_store.versions import version_of

CONTRACT = [
    "SessionStore",
    "InMemorySessionStore",
    "RedisSessionStore",
    "get_session_store",
    "get_default_ttl",
]


@pytest.mark.parametrize("name", CONTRACT)
def test_contract_names_import_from_both_paths(name: str) -> None:
    """valerie.infrastructure and valerie.infrastructure.session_store export the same objects."""
    assert getattr(infrastructure, name) is getattr(session_store, name)
    assert name in infrastructure.__all__
    assert name in session_store.__all__


def test_session_store_is_abstract_over_exactly_the_four_methods() -> None:
    """SessionStore cannot be instantiated; save, load, delete, exists are abstract."""
    assert SessionStore.__abstractmethods__ == {"save", "load", "delete", "exists"}
    with pytest.raises(TypeError):
        SessionStore()  # type: ignore[abstract]
    for name in ("save", "load", "delete", "exists", "close"):
        assert inspect.iscoroutinefunction(getattr(SessionStore, name))


async def test_a_user_backend_subclassing_session_store_works() -> None:
    """A store written from scratch against SessionStore works for the four seed methods."""

    async with DictStore() as store:
        await store.save("s1", {"n": 1})
        assert await store.load("s1") == {"n": 1}
        assert await store.load_many(["s1", "s2"]) == {"s1": {"n": 1}, "s2": None}
        with pytest.raises(InvalidArgumentError):
            await store.load_many("s1")
        assert store.capabilities == frozenset()
        with pytest.raises(UnsupportedCapabilityError, match="DictStore does not offer"):
            await store.update("s1", lambda state: DELETE)
    assert store.data == {"s1": {"n": 1}}


class FourPrimitives(Backend):
    """A backend with only the required primitives."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.ttls: dict[str, int] = {}

    async def write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        self.data[session_id] = data
        self.ttls[session_id] = ttl_seconds

    async def read(self, session_id: str) -> bytes | None:
        return self.data.get(session_id)

    async def remove(self, session_id: str) -> None:
        self.data.pop(session_id, None)

    async def contains(self, session_id: str) -> bool:
        return session_id in self.data

    async def ping(self) -> dict[str, Any]:
        return {"topology": "dict"}


async def test_a_user_backend_on_encoded_session_store_gets_validation_for_free() -> None:
    """Implementing the required primitives gives ids, TTLs and states checked as ours."""
    backend = FourPrimitives()
    store = EncodedSessionStore(backend, default_ttl=60)
    await store.save("s1", {"pair": (1, 2)})
    assert (backend.data["s1"], backend.ttls["s1"]) == (b'{"pair":[1,2]}', 60)
    assert await store.load("s1") == {"pair": [1, 2]}
    with pytest.raises(SerializationError):
        await store.save("s1", {"bad": {1}})
    with pytest.raises(InvalidSessionIdError):
        await store.load("")


async def test_batches_default_to_loops_over_the_four_primitives() -> None:
    """save_many, load_many and delete_many work on a backend that has only the four."""
    backend = FourPrimitives()
    store = EncodedSessionStore(backend)
    await store.save_many({"a": {"n": 1}, "b": {"n": 2}})
    assert await store.load_many(["a", "b", "c"]) == {"a": {"n": 1}, "b": {"n": 2}, "c": None}
    await store.delete_many(["a"])
    assert backend.data == {"b": b'{"n":2}'}


class VersionedPrimitives(FourPrimitives, CompareAndSet):
    """The four, plus the two compare-and-set primitives: enough for update and versions."""

    async def write_if(self, session_id: str, data: bytes, ttl_seconds: int, version: str) -> bool:
        if version_of(self.data.get(session_id)) != version:
            return False
        await self.write(session_id, data, ttl_seconds)
        return True

    async def remove_if(self, session_id: str, version: str) -> bool:
        if version_of(self.data.get(session_id)) != version:
            return False
        self.data.pop(session_id, None)
        return True


async def test_update_on_a_backend_with_the_compare_and_set_primitives() -> None:
    """update works on any backend with write_if and remove_if: it writes the id, state and
    TTL given, runs fn again on what another writer stored meanwhile, and deletes on DELETE."""
    backend = VersionedPrimitives()
    store = EncodedSessionStore(backend)
    assert store.capabilities == {Capability.COMPARE_AND_SET}
    assert await store.update("a", lambda state: {"n": 1}, ttl=60) == {"n": 1}
    assert (backend.data, backend.ttls) == ({"a": b'{"n":1}'}, {"a": 60})
    seen: list[Any] = []

    def add_one(state: Any) -> Any:
        seen.append(state)
        if len(seen) == 1:
            backend.data["a"] = b'{"n":10}'  # another writer, between the read and the write
        return {"n": state["n"] + 1}

    assert await store.update("a", add_one, ttl=30) == {"n": 11}
    assert seen == [{"n": 1}, {"n": 10}]
    assert (backend.data, backend.ttls) == ({"a": b'{"n":11}'}, {"a": 30})
    assert await store.update("a", lambda state: DELETE) is None
    assert backend.data == {}


@pytest.mark.parametrize(
    ("capability", "method", "call"),
    [
        ("compare-and-set", "save(if_version=...)", lambda s: s.save("a", {}, if_version="absent")),
        ("compare-and-set", "delete(if_version=...)", lambda s: s.delete("a", if_version="absent")),
        ("compare-and-set", "update()", lambda s: s.update("a", lambda state: DELETE)),
        ("compare-and-set", "update()", lambda s: s.update("b", lambda state: {})),
        ("expiry control", "load(refresh_ttl=...)", lambda s: s.load("a", refresh_ttl=True)),
        ("expiry control", "touch()", lambda s: s.touch("a")),
        ("expiry control", "ttl()", lambda s: s.ttl("a")),
        ("scans", "count()", lambda s: s.count()),
        ("scans", "clear()", lambda s: s.clear()),
    ],
)
async def test_a_missing_capability_is_named_by_the_error(
    capability: str, method: str, call: Any
) -> None:
    """A method that needs a capability the backend lacks raises UnsupportedCapabilityError
    (a NotImplementedError) naming the backend, the capability and the method, before any I/O."""
    backend = FourPrimitives()
    backend.data["a"] = b"{}"
    store = EncodedSessionStore(backend)
    reads: list[str] = []
    original_read = backend.read

    async def counting_read(session_id: str) -> bytes | None:
        reads.append(session_id)
        return await original_read(session_id)

    backend.read = counting_read  # type: ignore[method-assign]
    with pytest.raises(UnsupportedCapabilityError) as raised:
        await call(store)
    assert isinstance(raised.value, NotImplementedError)
    assert raised.value.capability == capability
    assert str(raised.value) == (
        f"FourPrimitives (the backend of EncodedSessionStore) does not offer {capability}, "
        f"which {method} needs; nothing was read or written: use a backend that has it "
        "(see store.capabilities)"
    )
    assert (backend.data, reads) == ({"a": b"{}"}, [])


@pytest.mark.parametrize(
    ("capability", "call"),
    [("leases", lambda s: s.lock("a")), ("scans", lambda s: s.iter_ids())],
)
def test_a_missing_capability_is_refused_at_the_call(capability: str, call: Any) -> None:
    """lock() and iter_ids(), which return objects, refuse at once, before anything awaits."""
    store = EncodedSessionStore(FourPrimitives())
    with pytest.raises(UnsupportedCapabilityError) as raised:
        call(store)
    assert raised.value.capability == capability


def test_a_backend_declaring_a_capability_must_implement_it() -> None:
    """Declaring a capability without its primitives fails when the backend is created."""

    class Half(FourPrimitives, CompareAndSet):
        async def write_if(self, session_id: str, data: bytes, ttl: int, version: str) -> bool:
            return False

    with pytest.raises(TypeError, match="remove_if"):
        Half()  # type: ignore[abstract]


# Every error the README's table lists, each with what else it is. Written out by hand, so
# that a class losing its base fails here, whatever the package exports.
ERRORS: list[tuple[type[Exception], tuple[type[Exception], ...]]] = [
    (ConfigurationError, (ValueError,)),
    (InvalidArgumentError, (TypeError, ValueError)),
    (InvalidSessionIdError, (InvalidArgumentError, TypeError, ValueError)),
    (InvalidTTLError, (InvalidArgumentError, TypeError, ValueError)),
    (SerializationError, (InvalidArgumentError, TypeError, ValueError)),
    (CorruptedSessionError, (ValueError,)),
    (BackendError, ()),
    (BackendUnavailableError, (BackendError, ConnectionError)),
    (ReplicationError, (BackendError,)),
    (AccessDeniedError, (BackendError, PermissionError)),
    (VersionConflictError, ()),
    (SessionLockedError, (TimeoutError,)),
    (LockNotOwnedError, ()),
    (MissingDependencyError, (ImportError,)),
    (UnsupportedCapabilityError, (NotImplementedError,)),
    (UpdaterReturnedNoneError, (InvalidArgumentError, TypeError, ValueError)),
    (StateValidationError, (CorruptedSessionError, ValueError)),
    (NewerSchemaVersionError, (ValueError,)),
    (MigrationError, (ValueError,)),
    (DecryptionError, (CorruptedSessionError, ValueError)),
    (StateTooLargeError, (SerializationError, InvalidArgumentError, TypeError, ValueError)),
    (SessionExistsError, (FileExistsError,)),
]


@pytest.mark.parametrize(
    ("error", "builtins"), ERRORS, ids=lambda value: getattr(value, "__name__", "")
)
def test_errors_subclass_the_base_and_the_builtin_users_catch(
    error: type[Exception], builtins: tuple[type[Exception], ...]
) -> None:
    """Every error is a SessionStoreError and the builtin a Python user would reach for."""
    assert issubclass(error, SessionStoreError)
    for builtin in builtins:
        assert issubclass(error, builtin)


@pytest.mark.parametrize("package", [infrastructure, session_store], ids=lambda p: p.__name__)
def test_every_exported_error_is_a_session_store_error(package: Any) -> None:
    """Each exception class either package exports is a SessionStoreError and is listed
    in ERRORS above (and so in the README's table)."""
    exported = {
        value
        for value in (getattr(package, name) for name in package.__all__)
        if inspect.isclass(value) and issubclass(value, BaseException)
    }
    assert exported == {SessionStoreError} | {error for error, _ in ERRORS}
    for error in exported:
        assert issubclass(error, SessionStoreError)


def test_the_readme_lists_every_error() -> None:
    """The README's errors table has a row for each error, naming what else it is."""
    readme = (REPO / "README.md").read_text()
    for error, builtins in ERRORS:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{error.__name__}`"))
        for builtin in builtins:
            assert builtin.__name__ in row, (error.__name__, builtin.__name__)


def test_every_test_the_readme_names_exists() -> None:
    """Each test named in "Where each promise is tested" is a test function of its file."""
    readme = (REPO / "README.md").read_text()
    table = readme.split("### Where each promise is tested", 1)[1].split("\n#", 1)[0]
    short = {"C": "tests/unit/test_session_store.py"}
    named = 0
    for row in table.splitlines():
        path = None
        for reference in re.findall(r"`([^`\s]+)::(test_\w+)`", row):
            where, test = reference
            path = short.get(where, path if where == "…" else where)
            assert path is not None, row
            source = (REPO / path).read_text()
            assert re.search(rf"^(async )?def {test}\(", source, re.M), f"{path}::{test}"
            named += 1
    assert named > 100


def test_every_public_name_has_a_docstring() -> None:
    """The public API documents itself."""
    for name in session_store.__all__:
        value = getattr(session_store, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__doc__, name


def test_public_callables_are_typed() -> None:
    """get_session_store and get_default_ttl take an optional mapping and return typed values."""
    assert inspect.signature(get_session_store).parameters["environ"].default is None
    assert inspect.signature(get_default_ttl).parameters["environ"].default is None
    assert issubclass(InMemorySessionStore, SessionStore)
    assert issubclass(RedisSessionStore, SessionStore)
