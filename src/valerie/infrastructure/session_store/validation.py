"""Checks of session ids and TTLs, shared by every backend so they all accept the same input."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import TypeAlias

from .errors import ConfigurationError, InvalidSessionIdError, InvalidTTLError

TTL: TypeAlias = int | timedelta
"""A time to live: whole seconds as an `int`, or a `timedelta` of whole seconds."""

MAX_SESSION_ID_BYTES = 512
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
"""Ten years: long enough for any session, short enough for every backend's clock arithmetic."""


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
        raise InvalidSessionIdError("session_id must not be empty")
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
                f"{name} must be whole seconds, got {ttl!r}; round it to a whole second"
            )
        seconds = int(ttl.total_seconds())
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        seconds = int(ttl)
    else:
        raise InvalidTTLError(
            f"{name} must be an int of seconds or a timedelta, got {type(ttl).__name__} "
            f"{ttl!r}; pass e.g. 3600 or timedelta(hours=1)"
        )
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise InvalidTTLError(
            f"{name} must be between 1 and {MAX_TTL_SECONDS} seconds, got {seconds}; "
            "sessions always expire, so pass a positive duration"
        )
    return seconds


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
