"""Scaling of `InMemorySessionStore`: µs per `save` of a new session as the store grows.

A fresh store is filled with 1k, 10k or 100k sessions, then a batch of new sessions is saved and
timed; the sizes are taken in an order rotated every repetition. The figure is the median cost at
the largest size over the median at the smallest.
"""

from __future__ import annotations

import gc
import statistics
import time

from benchmarks.contestants import VALERIE_MEMORY
from benchmarks.harness import Cell, Context, Figure, Mode, Scenario, Section, Table, summarize
from benchmarks.workload import TTL_SECONDS, State, session_id
from valerie.infrastructure.session_store import InMemorySessionStore

NAME = "scaling"
SIZES = (1_000, 10_000, 100_000)
COST_RATIO = f"save cost at {SIZES[-1]:,} / at {SIZES[0]:,} sessions"


def size_cell(size: int) -> Cell:
    """The cell of a `save` into a store holding `size` sessions."""
    return Cell(VALERIE_MEMORY, f"save new, {size:,} live", 1)


async def save_cost(store_size: int, batch: int, state: State) -> float:
    """Return µs per `save` of a new session into a memory store holding `store_size` sessions."""
    store = InMemorySessionStore(default_ttl=TTL_SECONDS)
    for number in range(store_size):
        await store.save(session_id(number), state)
    new_ids = [session_id(store_size + number) for number in range(batch)]
    gc.collect()
    start = time.perf_counter()
    for session in new_ids:
        await store.save(session, state)
    elapsed = time.perf_counter() - start
    del store
    gc.collect()
    return elapsed / batch * 1e6


async def measure_scaling(mode: Mode, state: State) -> dict[int, list[float]]:
    """Return µs per `save` of a new session for each store size, sizes rotated per repetition."""
    costs: dict[int, list[float]] = {size: [] for size in SIZES}
    for repetition in range(mode.scaling_repetitions):
        shift = repetition % len(SIZES)
        for size in (*SIZES[shift:], *SIZES[:shift]):
            costs[size].append(await save_cost(size, mode.scaling_batch, state))
    return costs


async def run(context: Context) -> Section:
    """Measure the cost of a new session's `save` at each store size."""
    mode = context.mode
    costs = await measure_scaling(mode, context.state)
    cells = summarize({size_cell(size): values for size, values in costs.items()}, "µs/save")
    medians = {size: statistics.median(values) for size, values in costs.items()}
    ratio = medians[SIZES[-1]] / medians[SIZES[0]]
    return Section(
        scenario=NAME,
        title=(
            f"Memory store scaling: µs per save of a NEW session (batch of "
            f"{mode.scaling_batch:,}, median of {mode.scaling_repetitions})"
        ),
        notes=[f"{COST_RATIO}: {ratio:.2f}x"],
        tables=[
            Table(
                ("live sessions", "µs", "all"),
                [
                    (
                        f"{size:,}",
                        f"{medians[size]:.2f}",
                        ", ".join(f"{value:.2f}" for value in costs[size]),
                    )
                    for size in SIZES
                ],
                left=0,
            ),
        ],
        cells=cells,
        figures={COST_RATIO: Figure(ratio, "x")},
    )


SCENARIO = Scenario(NAME, "memory store: cost of a save at 1k, 10k and 100k live sessions", run)
