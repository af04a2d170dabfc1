"""Async session store: a conversation's state kept between turns, in memory or in Redis.

`get_session_store()` returns the store that the `VALERIE_SESSION_*` environment variables
configure; every store has the same async methods (`save`, `load`, `delete`, `exists`) and
raises the same errors, all subclasses of `SessionStoreError`.
"""

from .base import EncodedSessionStore, SessionStore
from .codec import MAX_DEPTH, SessionState, StateCodec
from .config import SessionStoreSettings, get_default_ttl, get_session_store
from .errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    InvalidSessionIdError,
    InvalidTTLError,
    MissingDependencyError,
    SerializationError,
    SessionStoreError,
)
from .memory import InMemorySessionStore
from .redis import RedisSessionStore
from .validation import TTL

__all__ = [
    "MAX_DEPTH",
    "TTL",
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "CorruptedSessionError",
    "EncodedSessionStore",
    "InMemorySessionStore",
    "InvalidSessionIdError",
    "InvalidTTLError",
    "MissingDependencyError",
    "RedisSessionStore",
    "SerializationError",
    "SessionState",
    "SessionStore",
    "SessionStoreError",
    "SessionStoreSettings",
    "StateCodec",
    "get_default_ttl",
    "get_session_store",
]
