"""Erasure: `erase_owner` of a user with 10,000 sessions among 100,000 of other users.

On the private standalone server, 100 other users get 1,000 sessions each and the user under
test 10,000, all saved with `owner=`; each round saves the user's sessions again and times one
`erase_owner`. The figure is the median over rounds, in milliseconds; each round also checks that
exactly the user's 10,000 sessions went and the 100,000 others stayed. Issue 10's goal:
within a second.
"""

from __future__ import annotations

import statistics
import time

from benchmarks.harness import Context, Figure, Scenario, Section, Table, progress
from benchmarks.workload import TTL_SECONDS, State
from valerie.infrastructure.session_store import RedisSessionStore

NAME = "erasure"
OTHERS, PER_OTHER, MINE = 100, 1000, 10_000
FIGURE = "erase_owner: 10,000 sessions among 100,000, ms"


async def run(context: Context) -> Section:
    """Time erase_owner once per round, after saving the user's sessions again."""
    mode = context.mode
    server = context.servers.standalone()
    store = RedisSessionStore(server.url, prefix="bench:erasure:", default_ttl=TTL_SECONDS)
    # A small state: what is measured is the index and the deletes, not the values' size.
    small: State = {"turn": 0}
    timings: list[float] = []
    try:
        for other in range(OTHERS):
            await store.save_many(
                {f"u{other}-{j}": small for j in range(PER_OTHER)}, owner=f"user{other}"
            )
        for round_number in range(1, mode.rounds + 1):
            await store.save_many({f"target-{j}": small for j in range(MINE)}, owner="target")
            started = time.perf_counter()
            erased = await store.erase_owner("target")
            timings.append(time.perf_counter() - started)
            assert len(set(erased)) == MINE, "erase_owner did not delete exactly the user's"
            progress(f"{NAME} round {round_number}/{mode.rounds}: {timings[-1]:.3f} s")
        assert await store.count() == OTHERS * PER_OTHER, "erase_owner deleted other users'"
    finally:
        await store.clear()
        await store.close()
    median = statistics.median(timings) * 1000
    detail = f"rounds {min(timings) * 1000:,.0f}-{max(timings) * 1000:,.0f} ms"
    return Section(
        scenario=NAME,
        title=f"Erasure: erase_owner on one Redis server, median of {mode.rounds} rounds",
        notes=["each round deletes exactly the user's 10,000 sessions; the others all stay"],
        tables=[Table(("measure", "ms", "rounds"), [(FIGURE, f"{median:,.0f}", detail)], 1)],
        figures={FIGURE: Figure(median, "ms", detail)},
    )


SCENARIO = Scenario(NAME, "erase_owner of 10,000 sessions among 100,000, on one Redis", run)
