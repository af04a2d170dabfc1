"""Batches: `load_many` and `save_many` of 100 sessions against 100 single calls.

On valerie's two stores, by one task: a batch call against its 100 single calls (`load` or
`save`) awaited one after the other, the two interleaved; the speedup is paired round by round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial

from benchmarks.contestants import VALERIE_MEMORY, VALERIE_REDIS
from benchmarks.harness import (
    Cell,
    Context,
    PieceRunner,
    Scenario,
    Section,
    Table,
    measure_rounds,
    summarize,
    timed_calls,
)
from benchmarks.report import ratio, spread
from benchmarks.scenarios.valerie_pair import closing, valerie_stores
from benchmarks.workload import SESSION_COUNT, State, session_ids
from valerie.infrastructure.session_store import (
    EncodedSessionStore,
)

NAME = "batches"
BATCH_SIZE = 100
LOADS = f"{BATCH_SIZE} loads"
SAVES = f"{BATCH_SIZE} saves"
PAIRS = (("load_many", LOADS), ("save_many", SAVES))
"""(one batch call, its single calls)"""
STORES = (VALERIE_REDIS, VALERIE_MEMORY)
SPEEDUP = "speedup"

Batch = dict[str, State]
"""Session id -> the state that save_many or the single saves write."""


def make_batches(state: State) -> list[Batch]:
    """Return the batches of `BATCH_SIZE` sessions that the scenario cycles over."""
    ids = session_ids(SESSION_COUNT // BATCH_SIZE * BATCH_SIZE)
    return [
        dict.fromkeys(ids[first : first + BATCH_SIZE], state)
        for first in range(0, len(ids), BATCH_SIZE)
    ]


def batch_operation(store: EncodedSessionStore, kind: str) -> Callable[[Batch], Awaitable[object]]:
    """Return the call that one operation of `kind` makes on one batch of sessions."""
    if kind == "load_many":
        return store.load_many
    if kind == "save_many":
        return store.save_many
    if kind == LOADS:

        async def loads(batch: Batch) -> None:
            for session in batch:
                await store.load(session)

        return loads

    async def saves(batch: Batch) -> None:
        for session, state in batch.items():
            await store.save(session, state)

    return saves


async def prepare_batches(stores: Iterable[EncodedSessionStore], batches: Sequence[Batch]) -> None:
    """Save every session of the batches, and check that `load_many` finds them all."""
    for store in stores:
        for batch in batches:
            await store.save_many(batch)
            found = await store.load_many(batch)
            assert found == batch, f"{store!r}: load_many did not return what save_many wrote"


async def run(context: Context) -> Section:
    """Measure each batch call and its single calls, interleaved, in batches per second."""
    mode = context.mode
    server = context.servers.standalone()
    stores = valerie_stores(server.url, "bench:batches:")
    batches = make_batches(context.state)
    groups: list[dict[Cell, PieceRunner]] = [
        {
            Cell(name, kind, 1): partial(timed_calls, batch_operation(store, kind), batches, 1)
            for kind in pair
        }
        for name, store in stores.items()
        for pair in PAIRS
    ]
    async with closing(stores.values()):
        await prepare_batches(stores.values(), batches)
        samples = await measure_rounds(groups, mode, mode.batch_slice_seconds, NAME)
    singles_of = {batch: singles for batch, singles in PAIRS}
    cells = summarize(
        samples,
        "batches/s",
        lambda cell: (
            {SPEEDUP: Cell(cell.contestant, singles_of[cell.operation], 1)}
            if cell.operation in singles_of
            else {}
        ),
    )
    rows = []
    for name in STORES:
        for batch, singles in PAIRS:
            columns: list[str] = [name]
            for kind in (batch, singles):
                stats = cells[Cell(name, kind, 1)]
                columns += [kind, f"{1e6 / stats.median:,.0f}", spread(stats)]
            columns += ratio(cells[Cell(name, batch, 1)].ratios.get(SPEEDUP), digits=1)
            rows.append(tuple(columns))
    return Section(
        scenario=NAME,
        title=(
            f"Batches of {BATCH_SIZE}: µs per batch, one task, median of {mode.rounds} rounds; "
            f"each round gives every call {mode.batch_slice_seconds:g} s in {mode.pieces} "
            "interleaved pieces"
        ),
        notes=[
            f"speedup = median over rounds of the time of {BATCH_SIZE} single calls (awaited one "
            "after the other) over one batch call's, measured in the same round, with its "
            "(min-max); the cells' samples are batches per second",
        ],
        tables=[
            Table(
                (
                    "store",
                    "batch call",
                    "µs",
                    "spread",
                    "single calls",
                    "µs",
                    "spread",
                    "speedup",
                    "(min-max)",
                ),
                rows,
                left=2,
            )
        ],
        cells=cells,
    )


SCENARIO = Scenario(NAME, "load_many and save_many of 100 against 100 single calls", run)
