"""Walking a store page by page: ids from the scan, described or loaded a page at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from valerie.infrastructure import EncodedSessionStore
from valerie.infrastructure.session_store import SessionInfo

PAGE = 500
"""Ids handled per round trip while walking the store: the most held in memory at once."""


async def described(
    store: EncodedSessionStore, match: str | None, limit: int | None = None
) -> AsyncIterator[list[tuple[str, SessionInfo]]]:
    """Pages of (id, size and TTL) of the store's sessions: streamed, one page in memory."""
    ids = store.iter_ids(match)
    seen = 0
    while limit is None or seen < limit:
        want = PAGE if limit is None else min(PAGE, limit - seen)
        page = [session_id async for session_id in take(ids, want)]
        if not page:
            return
        infos = await store.describe_many(page)
        found = [(i, info) for i, info in infos.items() if info is not None]
        seen += len(page)
        yield found


async def take(ids: AsyncIterator[str], count: int) -> AsyncIterator[str]:
    """The next `count` ids (fewer at the end of the walk)."""
    for _ in range(count):
        try:
            yield await anext(ids)
        except StopAsyncIteration:
            return
