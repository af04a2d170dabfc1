"""Async session store: a conversation's state kept between turns, in memory or in Redis.

`get_session_store()` returns the store that the `VALERIE_SESSION_*` environment variables
configure, typed `SessionStore` (the whole API); every store has the same async methods and
raises the same errors, all subclasses of `SessionStoreError`. Each store is the one core
(`EncodedSessionStore`) over a backend (`backend.Backend`), with a codec, optional byte
transforms and optional observers.
"""

from .backend import Backend, Capability
from .backends.memory import InMemorySessionStore, MemoryBackend
from .backends.redis import RedisBackend, RedisSessionStore
from .codec import MAX_DEPTH, Codec, SessionState, StateCodec
from .config import SessionStoreSettings, get_default_ttl, get_session_store
from .contract import DELETE, SessionStore, Updater
from .encryption import Encryption, EncryptionKey, Keyring
from .errors import (
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptedSessionError,
    DecryptionError,
    InvalidArgumentError,
    InvalidSessionIdError,
    InvalidTTLError,
    LockNotOwnedError,
    MigrationError,
    MissingDependencyError,
    NewerSchemaVersionError,
    ReplicationError,
    SerializationError,
    SessionExistsError,
    SessionLockedError,
    SessionStoreError,
    StateTooLargeError,
    StateValidationError,
    UnsupportedCapabilityError,
    UpdaterReturnedNoneError,
    VersionConflictError,
)
from .inspection import SessionInfo, TimedState
from .instrumentation import (
    ConnectionWaitEvent,
    Observer,
    OperationEvent,
    Outcome,
    StateFailureEvent,
)
from .lease import Lease
from .protection import RotationReport
from .registry import registered_backends
from .store import EncodedSessionStore
from .transforms import Compression, Transform
from .validation import TTL
from .versions import ABSENT, VersionedState

__all__ = [
    "ABSENT",
    "DELETE",
    "MAX_DEPTH",
    "TTL",
    "AccessDeniedError",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "Capability",
    "Codec",
    "Compression",
    "ConfigurationError",
    "ConnectionWaitEvent",
    "CorruptedSessionError",
    "DecryptionError",
    "EncodedSessionStore",
    "Encryption",
    "EncryptionKey",
    "InMemorySessionStore",
    "InvalidArgumentError",
    "InvalidSessionIdError",
    "InvalidTTLError",
    "Keyring",
    "Lease",
    "LockNotOwnedError",
    "MemoryBackend",
    "MigrationError",
    "MissingDependencyError",
    "NewerSchemaVersionError",
    "Observer",
    "OperationEvent",
    "Outcome",
    "RedisBackend",
    "RedisSessionStore",
    "ReplicationError",
    "RotationReport",
    "SerializationError",
    "SessionExistsError",
    "SessionInfo",
    "SessionLockedError",
    "SessionState",
    "SessionStore",
    "SessionStoreError",
    "SessionStoreSettings",
    "StateCodec",
    "StateFailureEvent",
    "StateTooLargeError",
    "StateValidationError",
    "TimedState",
    "Transform",
    "UnsupportedCapabilityError",
    "Updater",
    "UpdaterReturnedNoneError",
    "VersionConflictError",
    "VersionedState",
    "get_default_ttl",
    "get_session_store",
    "registered_backends",
]
