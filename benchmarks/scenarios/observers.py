"""Observers: what the instrumentation seam costs, with no observer and with one no-op observer.

Three ways to make the same call on each of valerie's stores, interleaved in one run: the core's
own work without the public method around it (`baseline`: the private coroutine the public
method awaits, so what is left is exactly the seam's cost), the public method with no observer
attached (what every user runs), and the public method with one observer that does nothing (the
cost of timing the call and building its event). `save` and `load` at 1 and 64 tasks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from benchmarks import report
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
from benchmarks.scenarios.valerie_pair import closing, seed, valerie_stores
from benchmarks.workload import State, session_ids
from valerie.infrastructure.session_store import (
    EncodedSessionStore,
    Observer,
)

NAME = "observers"
CONCURRENCIES = (1, 64)
OPERATIONS = ("save", "load")
WAYS = ("baseline", "no observer", "no-op observer")


def contestant(store: str, way: str) -> str:
    """The name of one way of calling one store."""
    return f"{store}, {way}"


def call(
    store: EncodedSessionStore, operation: str, way: str, state: State
) -> Callable[[str], Awaitable[object]]:
    """Return the call one worker makes on one session id."""
    if way == "baseline":
        if operation == "save":
            return lambda session_id: store._save(session_id, state, None, None)
        return lambda session_id: store._load(session_id, False)
    if operation == "save":
        return lambda session_id: store.save(session_id, state)
    return lambda session_id: store.load(session_id)


async def run(context: Context) -> Section:
    """Measure the three ways, interleaved per store, operation and concurrency."""
    mode, state = context.mode, context.state
    server = context.servers.standalone()
    stores: dict[tuple[str, str], EncodedSessionStore] = {}
    for way in WAYS:
        observers = [Observer()] if way == "no-op observer" else []
        pair = valerie_stores(server.url, "bench:observers:", observers=partial(list, observers))
        for name, store in pair.items():
            stores[name, way] = store
    ids = session_ids()
    groups: list[dict[Cell, PieceRunner]] = [
        {
            Cell(contestant(name, way), operation, tasks): partial(
                timed_calls, call(stores[name, way], operation, way, state), ids, tasks
            )
            for way in WAYS
        }
        for name in (VALERIE_REDIS, VALERIE_MEMORY)
        for operation in OPERATIONS
        for tasks in CONCURRENCIES
    ]
    async with closing(stores.values()):
        await seed(stores.values(), ids, state)
        samples = await measure_rounds(groups, mode, mode.update_slice_seconds, NAME)
    cells = summarize(
        samples,
        "ops/s",
        lambda cell: {
            "vs baseline": Cell(
                contestant(cell.contestant.rsplit(", ", 1)[0], "baseline"),
                cell.operation,
                cell.tasks,
            )
        },
    )
    rows: list[tuple[str, ...]] = []
    for name in (VALERIE_REDIS, VALERIE_MEMORY):
        for operation in OPERATIONS:
            for tasks in CONCURRENCIES:
                for way in WAYS:
                    stats = cells[Cell(contestant(name, way), operation, tasks)]
                    rows.append(
                        (
                            name,
                            way,
                            operation,
                            str(tasks),
                            *report.measured(stats, "vs baseline", 3),
                        )
                    )
                rows.append(())
    return Section(
        scenario=NAME,
        title=(
            f"Observers: ops/s, median of {mode.rounds} rounds; each round gives every way "
            f"{mode.update_slice_seconds:g} s per cell in {mode.pieces} interleaved pieces"
        ),
        notes=[
            "baseline = the core's private coroutine, without the public method's observer "
            "check; ratio = median over rounds of the ratio to the baseline measured in the "
            "same round, with its (min-max)",
        ],
        tables=[
            Table(
                ("store", "way", "op", "tasks", "ops/s", "spread", "ratio", "(min-max)"),
                rows[:-1],
                4,
            )
        ],
        cells=cells,
    )


SCENARIO = Scenario(NAME, "the cost of the observer seam: none attached, one no-op, baseline", run)
