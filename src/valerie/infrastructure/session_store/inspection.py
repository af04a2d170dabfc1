"""What an operator reads about sessions without changing them: size and remaining lifetime."""

from __future__ import annotations

from typing import NamedTuple

from .codec import SessionState


class SessionInfo(NamedTuple):
    """A session's stored size and remaining lifetime, read without its value.

    Attributes:
        size: Bytes stored (the JSON as kept by the backend).
        ttl_ms: Milliseconds left before it expires; -1 for a Redis key without expiry
            (written by something other than a store).
    """

    size: int
    ttl_ms: int


class TimedState(NamedTuple):
    """A session's state with its remaining lifetime, read together (for an export).

    Attributes:
        state: The state, as `load` returns it.
        ttl_ms: Milliseconds left before it expires; -1 as in `SessionInfo`.
    """

    state: SessionState
    ttl_ms: int
