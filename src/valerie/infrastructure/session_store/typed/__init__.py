"""Typed sessions: states as Pydantic models, with schema versions and migrations.

Needs the `pydantic` extra (`pip install 'valerie[pydantic]'`); importing this package without
it raises `MissingDependencyError`. Obtain a view with `store.typed(Model, ...)`.
"""

from ..contract import DELETE
from .models import ModelCodec
from .schema import DEFAULT_VERSION_KEY, Migration, SchemaVersions
from .view import TypedSessionStore, TypedUpdater, TypedVersionedState

__all__ = [
    "DEFAULT_VERSION_KEY",
    "DELETE",
    "Migration",
    "ModelCodec",
    "SchemaVersions",
    "TypedSessionStore",
    "TypedUpdater",
    "TypedVersionedState",
]
