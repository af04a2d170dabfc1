"""Encryption: encrypted `save` and `load` of the ~2 KB state against plaintext, same run.

Each valerie store (Redis, memory) runs twice: without encryption and with AES-256-GCM
(`Encryption` with one key). The two of one (store, operation, tasks) cell are interleaved,
and each encrypted rate is paired with the plaintext rate of the same round. Issue 10's goal:
at most 15% slower at 64 tasks on Redis, i.e. an encrypted / plaintext ratio of at least 0.87.
"""

from __future__ import annotations

import os
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
from benchmarks.scenarios.valerie_pair import closing, operation, seed, valerie_stores, versus_plain
from benchmarks.workload import session_ids
from valerie.infrastructure.session_store import (
    Encryption,
    EncryptionKey,
    Keyring,
)

NAME = "encryption"
OPERATIONS = ("save", "load")
CONCURRENCIES = (1, 64)
ENCRYPTED = " encrypted"
STORES = (VALERIE_REDIS, VALERIE_REDIS + ENCRYPTED, VALERIE_MEMORY, VALERIE_MEMORY + ENCRYPTED)
RATIO_LABEL = "vs plaintext"


async def run(context: Context) -> Section:
    """Measure plaintext and encrypted save and load, interleaved, on both valerie stores."""
    mode, state = context.mode, context.state
    server = context.servers.standalone()
    encryption = Encryption(Keyring([EncryptionKey("bench", os.urandom(32))]))
    stores = {
        **valerie_stores(server.url, "bench:plain:"),
        **valerie_stores(server.url, "bench:sealed:", ENCRYPTED, encryption=encryption),
    }
    ids = session_ids()
    groups: list[dict[Cell, PieceRunner]] = [
        {
            Cell(name, kind, tasks): partial(timed_calls, operation(store, kind, state), ids, tasks)
            for name, store in stores.items()
            if name.startswith(backend)
        }
        for backend in (VALERIE_REDIS, VALERIE_MEMORY)
        for kind in OPERATIONS
        for tasks in CONCURRENCIES
    ]
    async with closing(stores.values(), clear=True):
        await seed(stores.values(), ids, state)
        samples = await measure_rounds(groups, mode, mode.slice_seconds, NAME)
    cells = summarize(samples, "ops/s", versus_plain(ENCRYPTED, RATIO_LABEL))
    rows: list[tuple[str, ...]] = []
    for name in STORES:
        for kind in OPERATIONS:
            for tasks in CONCURRENCIES:
                stats = cells[Cell(name, kind, tasks)]
                rows.append(
                    (
                        name,
                        kind,
                        str(tasks),
                        *report.measured(stats, RATIO_LABEL),
                    )
                )
        rows.append(())
    return Section(
        scenario=NAME,
        title=(
            f"Encryption: ops/s, median of {mode.rounds} rounds; each round gives every cell "
            f"{mode.slice_seconds:g} s in {mode.pieces} interleaved pieces"
        ),
        notes=[
            "ratio = median over rounds of the encrypted rate over the plaintext rate of the "
            "same store, operation and concurrency, measured in the same round, with its "
            "(min-max)",
        ],
        tables=[
            Table(("store", "op", "tasks", "ops/s", "spread", "ratio", "(min-max)"), rows[:-1], 2)
        ],
        cells=cells,
    )


SCENARIO = Scenario(NAME, "encrypted save and load against plaintext, memory and Redis", run)
