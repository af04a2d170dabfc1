"""Update: `update` of valerie's two stores against their own plain `save`, at 1 and 64 tasks.

The function adds 1 to the state's `turn`: on each task's own sessions ("update distinct"),
and with every task on one shared session ("update hot", where the optimistic retries show).
The three operations of one (store, tasks) cell are interleaved, and each update's ratio is
paired with the same store's `save`. After the rounds, the counters held by the sessions are
checked against the updates that returned: none lost, none applied twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from benchmarks import report
from benchmarks.contestants import VALERIE_MEMORY, VALERIE_REDIS
from benchmarks.harness import (
    Cell,
    Context,
    Figure,
    PieceRunner,
    Scenario,
    Section,
    Table,
    measure_rounds,
    summarize,
    timed_calls,
)
from benchmarks.scenarios.valerie_pair import closing, valerie_stores
from benchmarks.workload import SESSION_COUNT, State, session_id, session_ids
from valerie.infrastructure.session_store import (
    EncodedSessionStore,
    SessionState,
    VersionConflictError,
)

NAME = "update"
CONCURRENCIES = (1, 64)
OPERATIONS = ("save", "update distinct", "update hot")
STORES = (VALERIE_REDIS, VALERIE_MEMORY)


def counters_figure(store: str) -> str:
    """The name of the figure that counts `store`'s updates lost or applied twice."""
    return f"updates lost or doubled: {store}"


def lane_ids(kind: str, tasks: int) -> list[str]:
    """Return the ids that the tasks of an operation cycle over.

    `save` and `update distinct` have `SESSION_COUNT` ids each, split between the tasks as in
    the throughput scenario; `update hot` repeats one id, so that every task gets that one.
    """
    if kind == "update hot":
        return [session_id(2 * SESSION_COUNT)] * tasks
    return session_ids(first=SESSION_COUNT if kind == "update distinct" else 0)


@dataclass
class Tally:
    """How many updates of one cell returned, and how many gave up on conflicts."""

    done: int = 0
    gave_up: int = 0


def next_turn(state: SessionState | None) -> SessionState:
    """The update under test: add 1 to the state's `turn` counter."""
    assert state is not None, "an updated session has disappeared"
    state["turn"] += 1
    return state


def update_operation(
    store: EncodedSessionStore, kind: str, state: State, tally: Tally
) -> Callable[[str], Awaitable[None]]:
    """Return the call that one operation of `kind` makes on one session id."""
    if kind == "save":

        async def save(session_id: str) -> None:
            await store.save(session_id, state)

        return save

    async def update(session_id: str) -> None:
        try:
            await store.update(session_id, next_turn)
        except VersionConflictError:
            tally.gave_up += 1
        else:
            tally.done += 1

    return update


async def prepare_updates(store: EncodedSessionStore, state: State) -> None:
    """Save every session of the scenario with its `turn` counter at 0."""
    ids = {session for kind in OPERATIONS for session in lane_ids(kind, 1)}
    await store.save_many({session: {**state, "turn": 0} for session in ids})


@dataclass
class CounterCheck:
    """The increments that an update operation's sessions hold, against the updates done."""

    store: str
    operation: str
    counted: int
    done: int
    gave_up: int


async def check_counters(
    stores: Mapping[str, EncodedSessionStore], tallies: Mapping[Cell, Tally]
) -> list[CounterCheck]:
    """Compare the `turn` counters of each update operation's sessions with its tallies."""
    checks = []
    for name, store in stores.items():
        for kind in OPERATIONS[1:]:
            states = await store.load_many(set(lane_ids(kind, 1)))
            counted = sum(state["turn"] for state in states.values() if state is not None)
            cells = [tallies[Cell(name, kind, tasks)] for tasks in CONCURRENCIES]
            done = sum(tally.done for tally in cells)
            gave_up = sum(tally.gave_up for tally in cells)
            checks.append(CounterCheck(name, kind, counted, done, gave_up))
    return checks


def counter_figures(checks: Sequence[CounterCheck]) -> dict[str, Figure]:
    """Per store, the updates lost or applied twice: how far the counters are from the tallies."""
    figures = {}
    for name in STORES:
        mine = [check for check in checks if check.store == name]
        figures[counters_figure(name)] = Figure(
            sum(abs(check.counted - check.done) for check in mine),
            "updates",
            ", ".join(
                f"{check.operation.removeprefix('update ')} {check.counted:,} counted / "
                f"{check.done:,} done"
                + (f" ({check.gave_up:,} gave up after conflicts)" if check.gave_up else "")
                for check in mine
            ),
        )
    return figures


async def run(context: Context) -> Section:
    """Measure `save` and both shapes of `update`, interleaved, on both valerie stores."""
    mode, state = context.mode, context.state
    server = context.servers.standalone()
    stores = valerie_stores(server.url, "bench:update:")
    tallies = {
        Cell(name, kind, tasks): Tally()
        for name in stores
        for kind in OPERATIONS
        for tasks in CONCURRENCIES
    }
    groups: list[dict[Cell, PieceRunner]] = [
        {
            Cell(name, kind, tasks): partial(
                timed_calls,
                update_operation(store, kind, state, tallies[Cell(name, kind, tasks)]),
                lane_ids(kind, tasks),
                tasks,
            )
            for kind in OPERATIONS
        }
        for name, store in stores.items()
        for tasks in CONCURRENCIES
    ]
    async with closing(stores.values()):
        for store in stores.values():
            await prepare_updates(store, state)
        samples = await measure_rounds(groups, mode, mode.update_slice_seconds, NAME)
        checks = await check_counters(stores, tallies)
    cells = summarize(
        samples, "ops/s", lambda cell: {"vs save": Cell(cell.contestant, "save", cell.tasks)}
    )
    rows: list[tuple[str, ...]] = []
    for name in STORES:
        for tasks in CONCURRENCIES:
            for kind in OPERATIONS:
                stats = cells[Cell(name, kind, tasks)]
                rows.append(
                    (
                        name,
                        kind,
                        str(tasks),
                        *report.measured(stats, "vs save"),
                    )
                )
            rows.append(())
    figures = counter_figures(checks)
    return Section(
        scenario=NAME,
        title=(
            f"Update: ops/s, median of {mode.rounds} rounds; each round gives every operation "
            f"{mode.update_slice_seconds:g} s per cell in {mode.pieces} interleaved pieces"
        ),
        notes=[
            "ratio = median over rounds of the ratio to the same store's save at the same "
            "concurrency, measured in the same round, with its (min-max)",
        ],
        tables=[
            Table(("store", "op", "tasks", "ops/s", "spread", "ratio", "(min-max)"), rows[:-1], 2),
            Table(
                ("store", "counted / done", "lost or doubled"),
                [
                    (name.removeprefix(counters_figure("")), figure.detail, f"{figure.value:,.0f}")
                    for name, figure in figures.items()
                ],
                left=2,
                title="Counters: the sum of the sessions' `turn` (each update adds 1) against "
                "the updates that returned, over the warm-up and every round",
            ),
        ],
        cells=cells,
        figures=figures,
    )


SCENARIO = Scenario(
    NAME, "update on distinct and on one hot session against save, counters checked", run
)
