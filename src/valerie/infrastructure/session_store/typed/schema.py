"""Schema versions of typed sessions: the reserved key, and the chain of migrations.

Standard library only. A stored session carries its schema version under one reserved key; a
session without it is version 1, so sessions saved before typing migrate too. `migrations[n]`
turns a version-n dict into a version-n+1 dict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..errors import (
    ConfigurationError,
    MigrationError,
    NewerSchemaVersionError,
    StateValidationError,
)

Migration = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the dict of a session at version n into the dict at version n + 1."""

DEFAULT_VERSION_KEY = "_schema_version"


class SchemaVersions:
    """The current version, the migrations that reach it, and the key that holds the version.

    Args:
        model_name: The model's name, for messages.
        version: The version this code writes (an int >= 1).
        migrations: `migrations[n]` for every n from 1 to `version - 1`, no other.
        key: The reserved top-level key; it must not be one of the model's fields.
        fields: The model's top-level JSON keys, to refuse a key that clashes.

    Raises:
        ConfigurationError: Any of the above is not so.
    """

    __slots__ = ("_model_name", "_suffix", "key", "migrations", "version")

    def __init__(
        self,
        model_name: str,
        version: int,
        migrations: Mapping[int, Migration] | None,
        key: str,
        fields: Collection[str],
    ) -> None:
        if type(version) is not int or version < 1:
            raise ConfigurationError(
                f"version must be an int >= 1, got {version!r}; the first schema is version 1"
            )
        if type(key) is not str or not key:
            raise ConfigurationError(
                f"version_key must be a non-empty str, got {key!r}; e.g. {DEFAULT_VERSION_KEY!r}"
            )
        if key in fields:
            raise ConfigurationError(
                f"version_key {key!r} is a field of {model_name}; pick a key the model does "
                f"not use, e.g. {DEFAULT_VERSION_KEY!r}"
            )
        given = dict(migrations or {})
        needed = set(range(1, version))
        if set(given) != needed:
            missing = sorted(needed - set(given))
            extra = sorted(set(given) - needed, key=repr)
            raise ConfigurationError(
                f"migrations must have one function for each version from 1 to {version - 1} "
                f"(migrations[n] turns version n into n + 1); missing {missing}, unexpected "
                f"{extra}"
            )
        for start, migration in given.items():
            if not callable(migration):
                raise ConfigurationError(
                    f"migrations[{start}] must be a function from a dict to a dict, got a "
                    f"{type(migration).__name__}"
                )
        self._model_name = model_name
        self.version = version
        self.migrations = given
        self.key = key
        # How compact JSON ends when the stamp is its last member (after another), as `stamp`
        # leaves it.
        self._suffix = f",{json.dumps(key, ensure_ascii=False)}:{version}}}".encode()

    def current_without_stamp(self, data: bytes) -> bytes | None:
        """Return stored JSON without its stamp if it plainly is of the current version.

        True when the JSON ends with the stamp as `stamp` leaves it (compact JSON, the stamp
        last): then the object's last member is the version, so no parse is needed to know it.
        Any other layout returns None, and the caller decodes the JSON to find the version.
        """
        suffix = self._suffix
        return data[: -len(suffix)] + b"}" if data.endswith(suffix) else None

    def stamp(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add the current version to a model's JSON dump (in place) and return it."""
        data[self.key] = self.version
        return data

    def take(self, session_id: str, state: dict[str, Any]) -> int:
        """Remove the version from a stored state (in place) and return it.

        Raises:
            StateValidationError: The version is not an int >= 1.
            NewerSchemaVersionError: It is newer than `version`.
        """
        found = state.pop(self.key, 1)
        self._check(session_id, found)
        return int(found)

    def check_not_newer(self, session_id: str, state: Mapping[str, Any]) -> None:
        """Raise unless the stored state may be replaced by this code's version.

        Raises:
            StateValidationError, NewerSchemaVersionError: As `take`.
        """
        self._check(session_id, state.get(self.key, 1))

    def _check(self, session_id: str, found: object) -> None:
        if type(found) is not int or found < 1:
            path = f"state[{self.key!r}]"
            raise StateValidationError(
                f"a stored session is not a valid {self._model_name}: {path} must be a schema "
                "version, an int >= 1; it was left in place: inspect it, or delete the session",
                session_id,
                (path,),
            )
        if found > self.version:
            raise NewerSchemaVersionError(
                f"a stored session has schema version {found} of {self._model_name}, newer than "
                f"the {self.version} this code knows; nothing was changed: deploy the code "
                "that knows it (a rolling deploy finishes this by itself)",
                session_id,
                found,
                self.version,
            )

    def migrate(self, session_id: str, state: dict[str, Any], found: int) -> dict[str, Any]:
        """Run the migrations from version `found` up to the current one.

        Raises:
            MigrationError: A migration raised or did not return a dict.
        """
        for start in range(found, self.version):
            migration = self.migrations[start]
            name = getattr(migration, "__name__", type(migration).__name__)
            try:
                state = migration(state)
            except Exception as error:
                raise MigrationError(
                    f"migration {start} -> {start + 1} ({name}) of {self._model_name} raised "
                    f"{type(error).__name__}; the session was left in place at version {found}: "
                    "fix the migration",
                    session_id,
                    start,
                ) from error
            if type(state) is not dict:
                raise MigrationError(
                    f"migration {start} -> {start + 1} ({name}) of {self._model_name} returned "
                    f"a {type(state).__name__}, not a dict; the session was left in place at "
                    f"version {found}: return the migrated dict",
                    session_id,
                    start,
                )
        return state
