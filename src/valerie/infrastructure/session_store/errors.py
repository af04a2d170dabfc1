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
