"""Valerie's two stores as the paired scenarios build, seed, call, compare and close them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

from benchmarks.contestants import VALERIE_MEMORY, VALERIE_REDIS
from benchmarks.harness import Cell
from benchmarks.workload import TTL_SECONDS, State
from valerie.infrastructure.session_store import (
    EncodedSessionStore,
    Encryption,
    InMemorySessionStore,
    Observer,
    RedisSessionStore,
    SessionState,
)


def valerie_stores(
    redis_url: str,
    prefix: str,
    suffix: str = "",
    *,
    encryption: Encryption | None = None,
    observers: Callable[[], Sequence[Observer]] = tuple,
) -> dict[str, EncodedSessionStore]:
    """Return the Redis and the memory store, named by their contestant name plus `suffix`.

    `observers` is called once per store, so each store may get observers of its own.
    """
    return {
        VALERIE_REDIS + suffix: RedisSessionStore(
            redis_url,
            prefix=prefix,
            default_ttl=TTL_SECONDS,
            observers=observers(),
            encryption=encryption,
        ),
        VALERIE_MEMORY + suffix: InMemorySessionStore(
            default_ttl=TTL_SECONDS, observers=observers(), encryption=encryption
        ),
    }


async def seed(stores: Iterable[EncodedSessionStore], ids: Iterable[str], state: State) -> None:
    """Save `state` under every id in every store, so that loads find it."""
    for store in stores:
        await store.save_many(dict.fromkeys(ids, state))


@asynccontextmanager
async def closing(
    stores: Iterable[EncodedSessionStore], *, clear: bool = False
) -> AsyncIterator[None]:
    """Close every store on the way out (clearing it first if `clear`), even on an error."""
    try:
        yield
    finally:
        for store in stores:
            if clear:
                await store.clear()
            await store.close()


def next_turn(state: SessionState | None) -> SessionState:
    """The update function of the `update` operation: count one more turn."""
    state = dict(state or {})
    state["turn"] = state.get("turn", 0) + 1
    return state


def operation(
    store: EncodedSessionStore, kind: str, state: State
) -> Callable[[str], Awaitable[object]]:
    """Return the call that one `kind` operation (save, load or update) makes on one id."""
    if kind == "save":
        return lambda session_id: store.save(session_id, state)
    if kind == "load":
        return store.load
    return lambda session_id: store.update(session_id, next_turn)


def versus_plain(suffix: str, label: str) -> Callable[[Cell], dict[str, Cell]]:
    """Pair each cell of a contestant named with `suffix` with the same cell without it."""

    def pairs(cell: Cell) -> dict[str, Cell]:
        if not cell.contestant.endswith(suffix):
            return {}
        return {label: Cell(cell.contestant.removesuffix(suffix), cell.operation, cell.tasks)}

    return pairs
