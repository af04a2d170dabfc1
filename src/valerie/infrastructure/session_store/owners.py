"""Owners: which user a session belongs to, checked once for every store."""

from __future__ import annotations

from .backend import Owners
from .errors import InvalidArgumentError
from .validation import MAX_SESSION_ID_BYTES


def check_owner(owner: object) -> str:
    """Return `owner` if it is a valid owner: the same rules as a session id.

    Raises:
        InvalidArgumentError: It is not a non-empty `str` of at most 512 UTF-8 bytes without
            control characters. The message never repeats it: a user id is personal data.
    """
    # isprintable() is False for control characters and lone surrogates alike.
    if (
        type(owner) is str
        and owner.isprintable()
        and 0 < len(owner.encode("utf-8")) <= MAX_SESSION_ID_BYTES
    ):
        return owner
    raise InvalidArgumentError(
        f"owner must be a non-empty str of at most {MAX_SESSION_ID_BYTES} UTF-8 bytes without "
        f"control characters, got {_described(owner)}; pass the user's id as text, e.g. "
        "str(user.id)"
    )


def _described(owner: object) -> str:
    if not isinstance(owner, str):
        return f"a value of type {type(owner).__name__}"
    if not owner:
        return "an empty str"
    return f"a str of {len(owner)} characters that breaks the rule"


class Owning:
    """One write's owner, and the backend that indexes it: the steps around the write.

    `before` indexes the id (so a live session is never missing from its owner's index),
    `after` puts the entry back if an erasure took it while the session was being written.
    """

    __slots__ = ("backend", "owner")

    def __init__(self, backend: Owners, owner: str) -> None:
        self.backend = backend
        self.owner = owner

    async def before(self, session_ids: list[str], ttl_seconds: int) -> None:
        """Index the ids under the owner; call before writing them."""
        await self.backend.index_owner(self.owner, session_ids, ttl_seconds)

    async def after(self, session_ids: list[str], ttl_seconds: int) -> None:
        """Make sure the entries are there; call after writing."""
        await self.backend.confirm_owner(self.owner, session_ids, ttl_seconds)
