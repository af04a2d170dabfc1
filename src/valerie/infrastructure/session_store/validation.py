"""Checks of every argument: ids, TTLs, versions, batches and the rest.

Shared by every backend, so they all accept the same input and refuse the rest with the same
typed errors, before anything is read or written.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeAlias

from .errors import (
    ConfigurationError,
    InvalidArgumentError,
    InvalidSessionIdError,
    InvalidTTLError,
)
from .versions import ABSENT

TTL: TypeAlias = int | timedelta
"""A time to live: whole seconds as an `int`, or a `timedelta` of whole seconds."""

MAX_SESSION_ID_BYTES = 512
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
"""Ten years: long enough for any session, short enough for every backend's clock arithmetic."""

_HEX_DIGITS = "0123456789abcdef"


def check_session_id(session_id: object) -> str:
    """Return `session_id` if it is a valid id.

    Raises:
        InvalidSessionIdError: It is not a non-empty `str` of at most 512 UTF-8 bytes without
            control characters. The message describes the id without repeating it, since ids
            may be bearer secrets.
    """
    # The common case, decided in C: printable ASCII is exactly "no control characters".
    if (
        type(session_id) is str
        and session_id.isascii()
        and 0 < len(session_id) <= MAX_SESSION_ID_BYTES
        and session_id.isprintable()
    ):
        return session_id
    if not isinstance(session_id, str):
        raise InvalidSessionIdError(
            f"session_id must be a str, got {type(session_id).__name__}; "
            "pass the conversation's id as text, e.g. str(user_id)"
        )
    if not session_id:
        raise InvalidSessionIdError("session_id must not be empty; pass the conversation's id")
    for position, char in enumerate(session_id):
        category = unicodedata.category(char)
        if category == "Cc":
            raise InvalidSessionIdError(
                f"session_id contains the control character {char!r} at position {position}; "
                "remove it (ids must be printable text)"
            )
        if category == "Cs":
            raise InvalidSessionIdError(
                f"session_id contains a lone surrogate {char!r} at position {position}, which "
                "is not valid Unicode; decode the id from bytes with errors='strict'"
            )
    size = len(session_id.encode("utf-8"))
    if size > MAX_SESSION_ID_BYTES:
        raise InvalidSessionIdError(
            f"session_id is {size} UTF-8 bytes long, more than the {MAX_SESSION_ID_BYTES} "
            "allowed; use a shorter id, such as a hash of the long one"
        )
    return session_id


def ttl_seconds(ttl: object, name: str = "ttl") -> int:
    """Convert a TTL to whole seconds: the one place where TTLs are checked and converted.

    Raises:
        InvalidTTLError: It is not a positive whole number of seconds up to ten years, as an
            `int` or a `timedelta` (`bool`, `float` and others are refused).
    """
    if type(ttl) is int:
        seconds = ttl
    elif isinstance(ttl, timedelta):
        if ttl.microseconds:
            raise InvalidTTLError(
                f"{name} must be whole seconds, got {describe(ttl)}; round it to a whole second"
            )
        seconds = int(ttl.total_seconds())
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        seconds = int(ttl)
    else:
        raise InvalidTTLError(
            f"{name} must be an int of seconds or a timedelta, got {describe(ttl)}; "
            f"pass e.g. {name}=3600 or {name}=timedelta(hours=1)"
        )
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise InvalidTTLError(
            f"{name} must be between 1 and {MAX_TTL_SECONDS} seconds (ten years), got "
            f"{describe(seconds)}; sessions always expire, so pass a positive duration"
        )
    return seconds


def lease_seconds(value: object, name: str, *, zero_allowed: bool = False) -> float:
    """Check a lease duration: a finite number of seconds, positive (or zero if allowed).

    Raises:
        InvalidTTLError: It is not an `int` or `float`, not finite, negative, zero where zero
            is not allowed, or over ten years.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (0 <= value <= MAX_TTL_SECONDS)  # False for NaN too
        or (value == 0 and not zero_allowed)
    ):
        allowed = "a number of seconds >= 0" if zero_allowed else "a positive number of seconds"
        fix = "0 tries once" if zero_allowed else "the lease expires by itself after it"
        raise InvalidTTLError(
            f"{name} must be {allowed}, at most ten years, got {describe(value)}; "
            f"pass e.g. {name}=10 ({fix})"
        )
    return float(value)


def check_version(version: object) -> str:
    """Return `version` if it is a version token: one from `load_versioned`, or `ABSENT`.

    Raises:
        InvalidArgumentError: It is anything else (a version is 40 lowercase hex digits).
    """
    if isinstance(version, str) and (
        version == ABSENT or (len(version) == 40 and not version.strip(_HEX_DIGITS))
    ):
        return version
    raise InvalidArgumentError(
        f"if_version must be a version from load_versioned() or ABSENT, got {describe(version)}; "
        "pass (await store.load_versioned(session_id)).version, or None for no condition"
    )


def check_ids(session_ids: object) -> list[str]:
    """Return the ids of a batch as a list, each checked.

    Raises:
        InvalidArgumentError: `session_ids` is a single `str`, or not an iterable.
        InvalidSessionIdError: One of the ids is not valid.
    """
    if isinstance(session_ids, (str, bytes)):
        # A str is an iterable of one-character ids: never what the caller meant.
        raise InvalidArgumentError(
            f"session_ids must be a collection of ids, not a single {type(session_ids).__name__}"
            "; wrap it: [session_id]"
        )
    try:
        ids = iter(session_ids)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidArgumentError(
            f"session_ids must be an iterable of ids, got {describe(session_ids)}; "
            "pass e.g. [session_id, ...]"
        ) from None
    return [check_session_id(session_id) for session_id in ids]


def check_states(states: object) -> Mapping[Any, Any]:
    """Return `states` if it is a mapping (of session id to state), as `save_many` takes.

    Raises:
        InvalidArgumentError: It is not a `Mapping`.
    """
    if not isinstance(states, Mapping):
        raise InvalidArgumentError(
            f"states must be a mapping of session id to state, got {describe(states)}; "
            "pass e.g. {session_id: state, ...}"
        )
    return states


def check_attempts(attempts: object) -> int:
    """Return `attempts` if it is an `int` >= 1.

    Raises:
        InvalidArgumentError: It is not.
    """
    if type(attempts) is not int or attempts < 1:
        raise InvalidArgumentError(
            f"attempts must be an int >= 1, got {describe(attempts)}; "
            "pass e.g. attempts=64 (the default)"
        )
    return attempts


def check_updater(fn: object) -> None:
    """Check that `fn`, what `update` applies, can be called.

    Raises:
        InvalidArgumentError: It is not callable.
    """
    if not callable(fn):
        raise InvalidArgumentError(
            f"fn must be a function of the current state (sync or async), got {describe(fn)}; "
            "pass e.g. lambda state: {**(state or {}), 'step': 1}"
        )


def check_match(match: object) -> None:
    """Check an `iter_ids` pattern: a `str` or `None`.

    Raises:
        InvalidArgumentError: It is anything else.
    """
    if match is not None and not isinstance(match, str):
        raise InvalidArgumentError(
            f"match must be an fnmatch pattern as a str, or None, got {describe(match)}; "
            "pass e.g. match='user-*'"
        )


def check_refresh_ttl(refresh_ttl: object, default_ttl: int) -> int | None:
    """Return the seconds `load(refresh_ttl=...)` renews to, or None for no renewal.

    Raises:
        InvalidTTLError: It is neither a `bool` nor a valid TTL.
    """
    if refresh_ttl is False:
        return None
    if refresh_ttl is True:
        return default_ttl
    return ttl_seconds(refresh_ttl, "refresh_ttl")


def describe(value: object) -> str:
    """Name a bad argument in a message.

    Numbers are shown; text and containers only by their type, since they may hold an id, a
    state or a password, and may be huge.
    """
    if value is None or isinstance(value, (bool, float, timedelta)):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else f"an int of {value.bit_length()} bits"
    if isinstance(value, (str, bytes)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"


def check_prefix(prefix: object) -> str:
    """Return `prefix` if it can start every key of a store.

    Raises:
        ConfigurationError: It is not a non-empty `str` of printable characters. An empty
            prefix is refused: the store would share its keyspace with every other key.
    """
    if not isinstance(prefix, str) or not prefix or not prefix.isprintable():
        raise ConfigurationError(
            f"prefix must be a non-empty str of printable characters, got {prefix!r}; "
            "use a namespace such as 'myapp:session:'"
        )
    return prefix
