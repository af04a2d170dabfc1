"""The export format: JSON Lines, one session per line, with its remaining lifetime.

`{"id": "chat:ada", "ttl_ms": 299512, "expires_at": "2026-11-29T11:47:03.118Z", "state": {...}}`

`ttl_ms` is what was left at export; `expires_at` (UTC, from the exporting machine's clock) is
when the session would have expired. `ttl_ms` and `expires_at` are `null` for a key that had
no expiry. Any JSON Lines reader can read it; `import` reads it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from valerie.infrastructure import SessionState


def line(session_id: str, state: SessionState, ttl_ms: int, now: datetime) -> str:
    """One session as one line of the export (without the newline)."""
    expires = None
    ttl: int | None = None
    if ttl_ms >= 0:
        ttl = ttl_ms
        expires = (now + timedelta(milliseconds=ttl_ms)).isoformat(timespec="milliseconds")
        expires = expires.replace("+00:00", "Z")
    record = {"id": session_id, "ttl_ms": ttl, "expires_at": expires, "state": state}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Record:
    """One line read back: the session, and the TTL to give it (None: the store's default)."""

    session_id: str
    state: dict[str, Any]
    ttl_seconds: int | None
    expired: bool = False


def parse(text: str, now: datetime, *, restart_ttl: bool) -> Record:
    """Read one line of an export.

    The TTL is the time left until `expires_at` (so a session expires when it would have), or,
    with `restart_ttl`, the `ttl_ms` it had at export, counted from now; rounded to the nearest
    second (the store's TTLs are whole seconds), at least 1.

    Raises:
        ValueError: The line is not such a record; the message says what is wrong.
    """
    try:
        record = json.loads(text)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    session_id, state = record.get("id"), record.get("state")
    if not isinstance(session_id, str):
        raise ValueError('"id" is missing or not a string')
    if not isinstance(state, dict):
        raise ValueError('"state" is missing or not an object')
    ttl_ms, expires_at = record.get("ttl_ms"), record.get("expires_at")
    if ttl_ms is None and expires_at is None:
        return Record(session_id, state, None)
    if restart_ttl:
        if type(ttl_ms) is not int or ttl_ms < 0:
            raise ValueError('"ttl_ms" is not a whole number of milliseconds')
        left = ttl_ms / 1000
    else:
        if not isinstance(expires_at, str):
            raise ValueError('"expires_at" is not a time')
        try:
            when = datetime.fromisoformat(expires_at)
        except ValueError:
            raise ValueError('"expires_at" is not an ISO 8601 time') from None
        if when.tzinfo is None:
            raise ValueError('"expires_at" has no time zone')
        left = (when - now).total_seconds()
    if left <= 0:
        return Record(session_id, state, None, expired=True)
    return Record(session_id, state, max(1, round(left)))


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)
