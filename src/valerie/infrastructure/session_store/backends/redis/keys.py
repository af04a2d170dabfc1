"""The key layout in Redis: a session is `prefix + session_id`; its lock and owners aside.

A lock is `prefix + session_id + LOCK_SUFFIX`; an owner's index `prefix + OWNER_INFIX + owner`;
a session's current owner `prefix + session_id + OWNED_BY_SUFFIX`.

Other services read these keys directly (`GET prefix+id`), so this layout is part of the public
contract: change nothing here without a migration.
"""

from __future__ import annotations

DEFAULT_PREFIX = "valerie:session:"

LOCK_SUFFIX = "\x1flock"
"""A session's lock is the key `prefix + session_id + LOCK_SUFFIX`. Ids cannot hold control
characters, so no session key can ever equal a lock key."""


OWNER_INFIX = "\x1fowner\x1f"
"""An owner's index is the sorted set `prefix + OWNER_INFIX + owner` (members: session ids).
Ids and owners cannot hold control characters, so it never equals a session or a lock key,
and scans skip it (`session_id_of`)."""


OWNED_BY_SUFFIX = "\x1fowned-by"
"""The owner a session's last owned write named is the string `prefix + session_id +
OWNED_BY_SUFFIX`, kept a grace period beyond that write's TTL: a session written for a new
owner is no longer its previous owner's. Scans skip it, like a lock."""


def owned_by_key(prefix: str, session_id: str) -> str:
    """The key naming the owner of a session's last owned write."""
    return prefix + session_id + OWNED_BY_SUFFIX


def owner_key(prefix: str, owner: str) -> str:
    """The key of an owner's index of sessions."""
    return prefix + OWNER_INFIX + owner


def session_key(prefix: str, session_id: str) -> str:
    """The key holding a session's state."""
    return prefix + session_id


def lock_key(prefix: str, session_id: str) -> str:
    """The key holding a session's lock (its holder's token)."""
    return prefix + session_id + LOCK_SUFFIX


def scan_pattern(prefix: str) -> str:
    """The SCAN MATCH pattern of every key that starts with `prefix`, sessions and locks."""
    return glob_escape(prefix) + "*"


def glob_escape(text: str) -> str:
    """Escape the characters that SCAN's MATCH treats as a pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def session_id_of(key: bytes, start: int) -> str | None:
    """Return the session id in a key of this store, or None for a lock or a foreign key.

    Args:
        key: A key SCAN returned.
        start: The length of the store's prefix in bytes (UTF-8).
    """
    try:
        session_id = key[start:].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if not session_id or LOCK_SUFFIX[0] in session_id else session_id
