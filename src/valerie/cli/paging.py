"""Walking a store page by page: ids from the scan, described or loaded a page at a time.

A key under the prefix that is not a session (not JSON, or another Redis type) fails the
store's batch read; its page is then read one id at a time, and that key comes out as
`Unreadable`, so one broken session never hides the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from valerie.infrastructure import CorruptedSessionError, SessionStore
from valerie.infrastructure.session_store import SessionInfo, TimedState

from .errors import CommandFailure
from .exit_codes import ExitCode

PAGE = 500
"""Ids handled per round trip while walking the store: the most held in memory at once."""

T = TypeVar("T")


@dataclass(frozen=True)
class Unreadable:
    """A key of the store that holds no session; `reason` says what it holds instead."""

    reason: str


async def described(
    store: SessionStore, match: str | None, limit: int | None = None
) -> AsyncIterator[list[tuple[str, SessionInfo | Unreadable]]]:
    """Pages of (id, size and TTL) of the store's sessions: streamed, one page in memory.

    Sessions that vanish during the walk are left out.
    """
    ids = store.iter_ids(match)
    seen = 0
    while limit is None or seen < limit:
        want = PAGE if limit is None else min(PAGE, limit - seen)
        page = [session_id async for session_id in take(ids, want)]
        if not page:
            return
        seen += len(page)
        yield await read_page(store.describe_many, page)


async def loaded(store: SessionStore, page: list[str]) -> list[tuple[str, TimedState | Unreadable]]:
    """The states of `page` with their TTLs (vanished sessions left out)."""
    return await read_page(store.load_many_with_ttl, page)


async def read_page(
    read: Callable[[Iterable[str]], Awaitable[dict[str, T | None]]], page: list[str]
) -> list[tuple[str, T | Unreadable]]:
    """`read(page)`, or, if a key of it is not a session, `read` of each id alone."""
    try:
        return [(i, item) for i, item in (await read(page)).items() if item is not None]
    except CorruptedSessionError:
        pass
    found: list[tuple[str, T | Unreadable]] = []
    for session_id in page:
        try:
            item = (await read([session_id]))[session_id]
        except CorruptedSessionError as error:
            found.append((session_id, Unreadable(str(error))))
            continue
        if item is not None:
            found.append((session_id, item))
    return found


def unreadable_failure(count: int) -> CommandFailure:
    """The failure (exit code 7) a walk that met `count` unreadable keys ends with."""
    return CommandFailure(
        f"keys under the prefix that hold no session (a value that is not a session's JSON, "
        f"or another Redis type): {count}, shown by id; `get ID` says what each holds, "
        "`rm ID` deletes it",
        ExitCode.DATA,
    )


async def take(ids: AsyncIterator[str], count: int) -> AsyncIterator[str]:
    """The next `count` ids (fewer at the end of the walk)."""
    for _ in range(count):
        try:
            yield await anext(ids)
        except StopAsyncIteration:
            return
