"""What redis-py's errors mean for the store, and the store's errors that say so.

Reads only redis-py's public exception classes. Every message names where the store points
(masked: never a credential), what happened and what to check.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    ClusterError,
    ConnectionError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
)

from ...errors import (
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    CorruptedSessionError,
    ReplicationError,
)

_UNAVAILABLE = (ConnectionError, TimeoutError, ClusterError, RedisClusterException, OSError)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a store points and how it is bounded, as its error messages tell it.

    Attributes:
        where: e.g. "Redis at redis://:***@host:6379", never a credential.
        injected: The store was given a client (so its settings are the client's).
        master_name: The Sentinel master the URL names, if any.
        prefix: The store's key prefix.
        timeout: Seconds a connection attempt or a command may take.
        retries: Further attempts after a connection error or timeout.
    """

    where: str
    injected: bool
    master_name: str | None
    prefix: str
    timeout: float
    retries: int

    @property
    def settings(self) -> str:
        """Where the user sets what the store connects to."""
        return "the client's settings" if self.injected else "the URL (VALERIE_SESSION_REDIS_URL)"


def translate(
    error: Exception, command: str, place: Place, *, once: bool = False, large: int = 0
) -> Exception:
    """Return the store's error for `error`, or `error` itself if it has none.

    Args:
        error: What redis-py raised, or the error reply it returned for the command.
        command: The command's name, e.g. "SET".
        place: Where the store points.
        once: The command was sent once, not retried (it must not run twice).
        large: The bytes of a write sent once because it is large, else 0.
    """
    cause = access_denial(error)
    if cause is not None:
        return AccessDeniedError(_denied_message(cause, error, command, place), cause)
    where = place.where
    answered = missing_master(error)
    if answered is not None:
        master = place.master_name or "the master"
        if answered:
            return BackendUnavailableError(
                f"{where}: no Sentinel knows a primary named {master!r} that is up; check "
                f"the master name in {place.settings}, or wait for a failover to end"
            )
        return BackendUnavailableError(
            f"{where} is unavailable: no Sentinel answered; check that the Sentinels are "
            f"running and reachable, and {place.settings}"
        )
    if isinstance(error, _UNAVAILABLE):
        what = f"{type(error).__name__}: {shorten(str(error))}"
        if large:
            return BackendUnavailableError(
                f"{where} did not confirm a {command} of {large / 2**20:.1f} MiB "
                f"({what}); it was sent once, not retried, and may have been applied: "
                f"raise timeout (now {place.timeout:g}s) if the server is merely slow to "
                "take it, or store a smaller state"
            )
        if once:
            return BackendUnavailableError(
                f"{where} did not answer {command} ({what}); it was sent once, not retried "
                "(it must not run twice), so it may or may not have been applied; check "
                f"that the server is running and reachable, and {place.settings}"
            )
        return BackendUnavailableError(
            f"{where} is unavailable ({what}) after {place.retries + 1} attempt(s) of at "
            f"most {place.timeout:g}s; check that the server is running and reachable, and "
            f"{place.settings}"
        )
    if isinstance(error, ResponseError) and "WRONGTYPE" in str(error):
        return CorruptedSessionError(
            f"a key of this store (prefix {place.prefix!r}) holds a Redis type other than a "
            "string; it was left in place: inspect it, or delete the session to start over"
        )
    if isinstance(error, RedisError):
        return BackendError(f"{where} refused {command}: {shorten(str(error))}")
    return error


def connections_busy(place: Place, max_connections: int) -> BackendUnavailableError:
    """The error of a call that waited `place.timeout` for a connection, in vain."""
    return BackendUnavailableError(
        f"all {max_connections} connections to {place.where} stayed busy for "
        f"{place.timeout:g}s; raise max_connections, or check why the server is slow"
    )


def not_replicated(acknowledged: int, required: int, replica_timeout: float) -> ReplicationError:
    """The error of a write that fewer than `required` replicas confirmed."""
    return ReplicationError(
        f"the write reached the primary, but {acknowledged} of the "
        f"{required} replicas required confirmed it within "
        f"{replica_timeout:g}s: a failover now could lose it; check the replicas "
        "(INFO replication), or lower min_replicas",
        acknowledged,
    )


def access_denial(error: BaseException) -> str | None:
    """Return why the server refused access: authentication, permission or certificate.

    None for any other error (an outage, a refused command...).

    The cause may sit anywhere in the chain of exceptions (redis-py wraps TLS errors in its
    `ConnectionError`, and a Cluster's first connection errors in `RedisClusterException`);
    a Sentinel lookup only keeps the text of what went wrong with each Sentinel.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (AuthenticationError, AuthenticationWrongNumberOfArgsError)):
            return "authentication"
        if isinstance(seen, AuthorizationError):
            return "permission"
        if isinstance(seen, NoPermissionError):
            return "permission"
        if isinstance(seen, ssl.SSLCertVerificationError) or (
            isinstance(seen, ssl.SSLError) and "CERTIFICATE" in str(seen.reason)
        ):
            return "certificate"
        if isinstance(seen, MasterNotFoundError):
            text = str(seen)
            if "AuthenticationError" in text:
                return "authentication"
            if "CERTIFICATE" in text:
                return "certificate"
        seen = seen.__cause__ or seen.__context__
    return None


def denial_detail(error: BaseException) -> str:
    """A short account of a refusal of access, from the server or the TLS library, or ""."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) and seen.verify_message:
            return f"certificate verify failed: {seen.verify_message}"
        if isinstance(seen, ssl.SSLError) and seen.reason:
            return str(seen.reason).lower().replace("_", " ")
        if isinstance(seen, (AuthenticationError, AuthorizationError, NoPermissionError)):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    # A Sentinel lookup keeps only the names of what went wrong: nothing more to say.
    return "" if isinstance(error, MasterNotFoundError) else str(error)


def missing_master(error: BaseException) -> bool | None:
    """Tell a Sentinel's "no master found" apart: some Sentinel answered, or none did.

    True if some Sentinel answered (none knows a primary of that name that is up), False if
    none did; None for any other error.
    """
    if not isinstance(error, MasterNotFoundError):
        return None
    # redis-py appends " : <what failed with each Sentinel>" when Sentinels could not be asked.
    return " : " not in str(error)


def shorten(text: str, limit: int = 300) -> str:
    """`text`, cut to `limit` characters with "..." if longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _denied_message(cause: str, error: Exception, command: str, place: Place) -> str:
    detail = shorten(denial_detail(error))
    detail = f" ({detail})" if detail else ""
    where = place.where
    if missing_master(error) is not None:
        where = f"the Sentinels of {where}"
        credentials = "?sentinel_username= and ?sentinel_password= in the URL"
    elif place.injected:
        credentials = "the user name and password of the client"
    else:
        credentials = "the user name and password in the URL (VALERIE_SESSION_REDIS_URL)"
    if cause == "authentication":
        return (
            f"{where} refused the store's credentials{detail}; nothing was retried: "
            f"check {credentials}, and that the ACL user exists and is enabled"
        )
    if cause == "permission":
        return (
            f"{where} refused {command}: the ACL user lacks a permission{detail}; grant "
            "it the commands and the key pattern the store needs (see the README), or use "
            "a prefix it may write"
        )
    return (
        f"{where}: the TLS certificate check failed{detail}; nothing was retried: check "
        "ssl_ca_certs (the CA that signed the server's certificate) and the host name, "
        "and ssl_certfile / ssl_keyfile if the server requires a client certificate"
    )
