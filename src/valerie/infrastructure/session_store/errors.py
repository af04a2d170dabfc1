"""The typed errors every session store raises.

Each error subclasses `SessionStoreError` (catch everything the store raises) and the builtin a
Python user would reach for (`ValueError`, `TypeError`, `ConnectionError`), so existing handlers
keep working; every error about an argument of a call is an `InvalidArgumentError`. Messages
name the problem and the fix; none contains a password, a URL's secret part, a session id or a
stored value.
"""

from __future__ import annotations


class SessionStoreError(Exception):
    """Base class of every error raised by a session store."""


class ConfigurationError(SessionStoreError, ValueError):
    """A setting (environment variable or constructor argument) has a value that is not allowed."""


class InvalidArgumentError(SessionStoreError, TypeError, ValueError):
    """An argument is of the wrong type or out of range; nothing was read or written.

    Both a `TypeError` and a `ValueError`, so either handler catches it. The message names the
    argument and what to pass instead. `InvalidSessionIdError`, `InvalidTTLError` and
    `SerializationError` are the kinds that have a name of their own.
    """


class UpdaterReturnedNoneError(InvalidArgumentError):
    """`update`'s function returned `None` for an existing session; nothing was written.

    The usual cause is a function that changes the state in place and forgets `return state`.
    Return the new state, or `DELETE` to delete the session.
    """


class InvalidSessionIdError(InvalidArgumentError):
    """A session id is not a non-empty `str` of at most 512 UTF-8 bytes without control chars."""


class InvalidTTLError(InvalidArgumentError):
    """A TTL or lease duration is not a positive number of seconds (whole for a TTL)."""


class SerializationError(InvalidArgumentError):
    """A state cannot be stored as JSON; nothing was written.

    Attributes:
        path: Where the offending value sits, e.g. ``state['context']['when']``.
    """

    def __init__(self, message: str, path: str = "state") -> None:
        super().__init__(message)
        self.path = path


class CorruptedSessionError(SessionStoreError, ValueError):
    """A stored value is not the JSON of an object; it is left in place for inspection."""


class UnsupportedCapabilityError(SessionStoreError, NotImplementedError):
    """The store's backend lacks a capability this call needs; nothing was read or written.

    Raised before any I/O. `store.capabilities` tells in advance what a backend offers.

    Attributes:
        capability: The missing capability, e.g. `Capability.LEASES`.
    """

    def __init__(self, message: str, capability: str) -> None:
        super().__init__(message)
        self.capability = capability


class BackendError(SessionStoreError):
    """The backend refused a command (for example: out of memory, missing permission)."""


class BackendUnavailableError(BackendError, ConnectionError):
    """The backend could not be reached, or did not answer within the configured timeouts."""


class AccessDeniedError(BackendError, PermissionError):
    """The backend refused the store's credentials, permissions or TLS certificates.

    A configuration error, not an outage: retrying cannot help, so it is never retried, and it
    is not a `BackendUnavailableError`. The message names the cause and the fix, never a secret.

    Attributes:
        cause: `"authentication"` (wrong password, unknown or disabled ACL user),
            `"permission"` (the ACL user may not run a command or touch a key) or
            `"certificate"` (a TLS certificate check failed, on either side).
    """

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class MissingDependencyError(SessionStoreError, ImportError):
    """An optional dependency that this backend needs is not installed."""


class VersionConflictError(SessionStoreError):
    """The session changed since its version was read; the write was not made.

    Reload with `load_versioned` and try again, or use `update`, which does that for you.
    """


class SessionLockedError(SessionStoreError, TimeoutError):
    """Another holder kept the session's lock for longer than the caller was willing to wait."""


class LockNotOwnedError(SessionStoreError):
    """A lock was released or extended by someone who no longer holds it (it had expired)."""


class ReplicationError(BackendError):
    """A write reached the primary but fewer replicas than `min_replicas` confirmed it in time.

    The write is on the primary (a later read sees it), but a failover now could lose it.

    Attributes:
        acknowledged: How many replicas did confirm it.
    """

    def __init__(self, message: str, acknowledged: int) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged


class StateValidationError(CorruptedSessionError):
    """A stored session does not validate against the typed view's model; it is left in place.

    The message names the field paths and what is wrong with each, never the stored values.

    Attributes:
        session_id: The session whose stored value failed (kept out of the message: ids can
            be secrets).
        paths: Where each failing value sits, e.g. ``("state['messages'][0]['role']",)``.
    """

    def __init__(self, message: str, session_id: str, paths: tuple[str, ...]) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.paths = paths


class NewerSchemaVersionError(SessionStoreError, ValueError):
    """A stored session has a schema version newer than this code knows; nothing was changed.

    Raised on load, and by a save that would replace such a session, so that code of an older
    deploy never overwrites what a newer one wrote.

    Attributes:
        session_id: The session (kept out of the message).
        found: The stored schema version.
        known: The newest version this code knows.
    """

    def __init__(self, message: str, session_id: str, found: int, known: int) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.found = found
        self.known = known


class MigrationError(SessionStoreError, ValueError):
    """A schema migration failed, or returned something other than a dict; nothing was written.

    Attributes:
        session_id: The session (kept out of the message).
        from_version: The version the failing migration starts from.
    """

    def __init__(self, message: str, session_id: str, from_version: int) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.from_version = from_version


class DecryptionError(CorruptedSessionError):
    """A stored value could not be decrypted; it is left in place and never returned.

    Attributes:
        reason: `"plaintext"` (not encrypted, outside migration mode), `"unknown-key"` (sealed
            with a key the keyring lacks), `"tampered"` (failed authentication: altered, copied
            from another session id or store, or another key under the same id) or
            `"malformed"` (an envelope that cannot be read).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class StateTooLargeError(SerializationError):
    """A state's encoded size is over the store's `max_state_bytes`; nothing was written.

    Attributes:
        size: The encoded state's size in bytes.
        limit: The store's `max_state_bytes`.
        largest: The largest parts as (path, bytes), largest first, e.g.
            `[("state['history']", 1_800_000), ...]`.
    """

    def __init__(self, message: str, size: int, limit: int, largest: list[tuple[str, int]]) -> None:
        super().__init__(message, largest[0][0] if largest else "state")
        self.size = size
        self.limit = limit
        self.largest = largest


class SessionExistsError(SessionStoreError, FileExistsError):
    """`rotate_id` was asked to move a session onto an id that holds one; nothing changed."""
