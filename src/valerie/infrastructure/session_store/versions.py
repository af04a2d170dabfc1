"""Version tokens for compare-and-set: derived from the stored bytes, so values stay plain JSON."""

from __future__ import annotations

import hashlib
from typing import Final, NamedTuple

from .codec import SessionState

ABSENT: Final = "absent"
"""The version of a session that does not exist: `save(..., if_version=ABSENT)` only creates."""


class VersionedState(NamedTuple):
    """A loaded state and the version it had; pass the version to `save(..., if_version=)`."""

    state: SessionState | None
    version: str


def version_of(data: bytes | None) -> str:
    """Return the version token of stored bytes: their SHA-1, which Redis scripts compute too.

    Two writes of the same bytes have the same version; that is harmless for compare-and-set,
    since a writer that expects those bytes gets exactly them.
    """
    return ABSENT if data is None else hashlib.sha1(data, usedforsecurity=False).hexdigest()
