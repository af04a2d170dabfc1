"""Async session store: a conversation's state kept between turns, in memory or in Redis.

`get_session_store()` returns the store that the `VALERIE_SESSION_*` environment variables
configure; every store has the same async methods (`save`, `load`, `delete`, `exists`) and
raises the same errors, all subclasses of `SessionStoreError`.
"""

from .backends.memory import InMemorySessionStore
from .backends.redis import RedisSessionStore
from .base import EncodedSessionStore, SessionStore
from .codec import MAX_DEPTH, SessionState, StateCodec
from .config import SessionStoreSettings, get_default_ttl, get_session_store
from .errors import (
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    InvalidArgumentError,
    InvalidSessionIdError,
    InvalidTTLError,
    LockNotOwnedError,
    MissingDependencyError,
    ReplicationError,
    SerializationError,
    SessionLockedError,
    SessionStoreError,
    VersionConflictError,
)
from .inspection import SessionInfo, TimedState
from .lease import Lease
from .validation import TTL
from .versions import ABSENT, VersionedState

__all__ = [
    "ABSENT",
    "MAX_DEPTH",
    "TTL",
    "AccessDeniedError",
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "CorruptedSessionError",
    "EncodedSessionStore",
    "InMemorySessionStore",
    "InvalidArgumentError",
    "InvalidSessionIdError",
    "InvalidTTLError",
    "Lease",
    "LockNotOwnedError",
    "MissingDependencyError",
    "RedisSessionStore",
    "ReplicationError",
    "SerializationError",
    "SessionInfo",
    "SessionLockedError",
    "SessionState",
    "SessionStore",
    "SessionStoreError",
    "SessionStoreSettings",
    "StateCodec",
    "TimedState",
    "VersionConflictError",
    "VersionedState",
    "get_default_ttl",
    "get_session_store",
]
