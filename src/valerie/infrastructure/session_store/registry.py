"""Store types by name: the built-in ones and those that installed packages declare.

`VALERIE_SESSION_STORE` (or `SessionStoreSettings(store=...)`) names one of them. A package adds
a type with an entry point in the group `valerie.session_store.backends`, whose object is a
factory taking the checked `SessionStoreSettings` and returning a store:

    [project.entry-points."valerie.session_store.backends"]
    dynamo = "my_package.sessions:create_store"

Entry points are read once, when a name is first looked up, and loaded only when chosen; the
built-in names (and those given to `register`) take precedence over an entry point's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from .backends.memory import InMemorySessionStore
from .backends.redis import RedisSessionStore
from .contract import SessionStore
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .config import SessionStoreSettings

ENTRY_POINT_GROUP = "valerie.session_store.backends"

StoreFactory = Callable[["SessionStoreSettings"], SessionStore]
"""Makes a store from checked settings (`ttl`, `prefix`, `unmasked_redis_url()`...)."""

_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")


class BackendRegistry:
    """Store types by name, each with the factory that makes its stores.

    Args:
        group: The entry-point group read for third-party types.
    """

    __slots__ = ("_entry_points", "_factories", "_group")

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self._group = group
        self._factories: dict[str, StoreFactory] = {}
        self._entry_points: dict[str, EntryPoint] | None = None

    def register(self, name: str, factory: StoreFactory) -> None:
        """Make `name` (lowercase letters, digits, `-`, `_`) a store type built by `factory`.

        Raises:
            ConfigurationError: `name` is not such a name, is taken, or `factory` is not
                callable.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(
                f"a store type's name must be lowercase letters, digits, '-' or '_', starting "
                f"with a letter, got {name!r}; e.g. 'dynamo'"
            )
        if name in self._factories:
            raise ConfigurationError(f"the store type {name!r} is already registered")
        if not callable(factory):
            raise ConfigurationError(
                f"the factory of {name!r} must be callable (settings -> store), got "
                f"{type(factory).__name__}"
            )
        self._factories[name] = factory

    def names(self) -> tuple[str, ...]:
        """Every registered name: built-in and registered ones first, then entry points."""
        extra = [name for name in self._discovered() if name not in self._factories]
        return (*self._factories, *sorted(extra))

    def factory(self, name: str) -> StoreFactory:
        """Return the factory of `name`, loading its entry point if it comes from one.

        Raises:
            ConfigurationError: `name` is not registered (the message lists those that are),
                or its entry point cannot be loaded or is not callable.
        """
        found = self._factories.get(name)
        if found is not None:
            return found
        entry = self._discovered().get(name)
        if entry is None:
            raise ConfigurationError(
                f"no store type is registered as {name!r}; registered: {', '.join(self.names())}"
            )
        try:
            loaded = entry.load()
        except Exception as error:
            raise ConfigurationError(
                f"the store type {name!r} (entry point {entry.value!r} of {self._group}) could "
                f"not be loaded: {type(error).__name__}: {error}; check that its package is "
                "installed completely"
            ) from error
        if not callable(loaded):
            raise ConfigurationError(
                f"the entry point of the store type {name!r} ({entry.value!r}) is not callable; "
                "it must be a function taking SessionStoreSettings and returning a store"
            )
        factory: StoreFactory = loaded
        return factory

    def _discovered(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            self._entry_points = {entry.name: entry for entry in entry_points(group=self._group)}
        return self._entry_points


def _memory(settings: SessionStoreSettings) -> SessionStore:
    return InMemorySessionStore(
        default_ttl=settings.ttl,
        encryption=settings.encryption,
        max_state_bytes=settings.max_state_bytes,
    )


def _redis(settings: SessionStoreSettings) -> SessionStore:
    return RedisSessionStore(
        settings.unmasked_redis_url(),
        settings.prefix,
        default_ttl=settings.ttl,
        encryption=settings.encryption,
        max_state_bytes=settings.max_state_bytes,
    )


registry = BackendRegistry()
"""The registry `get_session_store()` and `SessionStoreSettings` use."""
registry.register("memory", _memory)
registry.register("redis", _redis)


def registered_backends() -> tuple[str, ...]:
    """Return the name of every store type `VALERIE_SESSION_STORE` may name."""
    return registry.names()
