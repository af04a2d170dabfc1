"""Throughput: `save`, `load` and a turn, valerie's stores against raw redis-py and peers.

Every contestant of `benchmarks.contestants` does `save`, `load` and a conversation turn
(`load`, then `save` of the same id) with the ~2 KB state, its concurrent asyncio tasks each
looping over their own share of `SESSION_COUNT` UUID ids: 1, 64 and 256 tasks on Redis, 1 and 64
on memory. The contestants of one (operation, tasks) cell are interleaved; between rounds the
private server is flushed and every store filled again.

Beside the figures, on the same private server:

- The server's ceiling: `redis-benchmark` SET and GET of values of the state's size, with as
  many connections as tasks and one request in flight on each, after every round. A turn's
  ceiling is one GET and one SET: 1 / (1/GET + 1/SET) per second.
- The sockets each Redis contestant opens at 256 tasks: a fresh contestant, alone on the
  server, runs turns at 256 tasks; the server's `total_connections_received` and
  `connected_clients` are read before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from redis.asyncio import Redis

from benchmarks import report
from benchmarks.contestants import (
    BASELINES,
    RAW_ORJSON,
    SPECS,
    Contestant,
    Spec,
    close_all,
    installed,
    operation,
    prepopulate,
)
from benchmarks.harness import (
    Cell,
    CellStats,
    Context,
    Figure,
    Mode,
    PieceRunner,
    Scenario,
    Section,
    Table,
    measure_rounds,
    progress,
    summarize,
    timed_calls,
)
from benchmarks.servers import RedisServer, connection_counts, redis_benchmark
from benchmarks.workload import SESSION_COUNT, State, session_ids
from valerie.infrastructure.session_store import StateCodec

NAME = "throughput"
OPERATIONS = ("save", "load", "turn")
CONCURRENCIES = {"redis": (1, 64, 256), "memory": (1, 64)}
SOCKET_TASKS = 256
CEILING = "server ceiling: redis-benchmark"
CEILING_COMMANDS = {"save": "SET", "load": "GET", "turn": "GET + SET"}
CEILING_LABEL = "of ceiling"
RATIO_LABEL = "vs baseline"


def sockets_figure(contestant: str) -> str:
    """The name of the figure that counts the sockets `contestant` opened at 256 tasks."""
    return f"sockets opened at {SOCKET_TASKS} tasks: {contestant}"


def groups(
    contestants: Sequence[Contestant],
    state: State,
    ids: Sequence[str],
    concurrencies: Mapping[str, Sequence[int]] = CONCURRENCIES,
) -> list[dict[Cell, PieceRunner]]:
    """One group per (operation, tasks): the contestants that run at that concurrency.

    Args:
        contestants: Who runs.
        state: What `save` writes.
        ids: The session ids, split between the tasks.
        concurrencies: Per backend, the numbers of tasks its contestants run with.
    """
    all_tasks = sorted({tasks for values in concurrencies.values() for tasks in values})
    return [
        {
            Cell(contestant.name, kind, tasks): partial(
                timed_calls, operation(contestant, kind, state), ids, tasks
            )
            for contestant in contestants
            if tasks in concurrencies[contestant.backend]
        }
        for kind in OPERATIONS
        for tasks in all_tasks
    ]


async def ceiling(server: RedisServer, mode: Mode, value_bytes: int) -> dict[Cell, float]:
    """Measure the server's ceiling with `redis-benchmark` at each Redis concurrency."""
    cells = {}
    for tasks in CONCURRENCIES["redis"]:
        rps = await redis_benchmark(
            server, tasks, value_bytes, mode.ceiling_requests, SESSION_COUNT
        )
        cells[Cell(CEILING, "save", tasks)] = rps["SET"]
        cells[Cell(CEILING, "load", tasks)] = rps["GET"]
        cells[Cell(CEILING, "turn", tasks)] = 1 / (1 / rps["GET"] + 1 / rps["SET"])
    return cells


async def _settle(admin: Redis, connected: int) -> None:
    """Wait, up to 2 s, until at most `connected` clients are connected (closes noticed)."""
    for _ in range(200):
        if (await connection_counts(admin)).connected <= connected:
            return
        await asyncio.sleep(0.01)


async def count_sockets(
    spec: Spec, server: RedisServer, ids: Sequence[str], state: State, seconds: float
) -> Figure:
    """Count the connections a fresh `spec` contestant opens doing turns at 256 tasks, alone.

    Returns:
        The connections the server accepted while the contestant ran (its `detail` says how
        many of them were still open after the turns, before the contestant was closed).
    """
    admin = Redis.from_url(server.url)
    try:
        idle = await connection_counts(admin)
        filler = spec.make(server.url)
        try:
            await prepopulate([filler], ids, state)
        finally:
            await filler.close()
        await _settle(admin, idle.connected)
        before = await connection_counts(admin)
        contestant = spec.make(server.url)
        try:
            await timed_calls(operation(contestant, "turn", state), ids, SOCKET_TASKS, seconds)
            after = await connection_counts(admin)
        finally:
            await contestant.close()
        await _settle(admin, idle.connected)
    finally:
        await admin.aclose()
    still_open = after.connected - before.connected
    return Figure(after.received - before.received, "sockets", f"{still_open} still open")


def baselines_of(backends: Mapping[str, str]) -> Callable[[Cell], dict[str, Cell]]:
    """Each contestant's cell is compared with its backend's baseline, and with the ceiling."""

    def baselines(cell: Cell) -> dict[str, Cell]:
        backend = backends.get(cell.contestant)
        if backend is None:  # the ceiling itself
            return {}
        compared = {RATIO_LABEL: Cell(BASELINES[backend], cell.operation, cell.tasks)}
        if backend == "redis":
            compared[CEILING_LABEL] = Cell(CEILING, cell.operation, cell.tasks)
        return compared

    return baselines


def _row(stats: CellStats, with_ceiling: bool) -> tuple[str, ...]:
    cell = stats.cell
    row: tuple[str, ...] = (
        cell.contestant,
        cell.operation,
        str(cell.tasks),
        *report.measured(stats, RATIO_LABEL),
    )
    if with_ceiling:
        of_ceiling = stats.ratios.get(CEILING_LABEL)
        row = (*row, "-" if of_ceiling is None else f"{100 * of_ceiling.median:.0f}%")
    return row


def _table(cells: Mapping[Cell, CellStats], backends: Mapping[str, str], backend: str) -> Table:
    """One backend's contestants, by operation and tasks; the Redis one with the ceiling."""
    redis = backend == "redis"
    header = ("contestant", "op", "tasks", "ops/s", "spread", "ratio", "(min-max)")
    rows: list[tuple[str, ...]] = []
    for kind in OPERATIONS:
        for tasks in CONCURRENCIES[backend]:
            rows += [
                _row(stats, redis)
                for cell, stats in cells.items()
                if backends.get(cell.contestant) == backend
                and (cell.operation, cell.tasks) == (kind, tasks)
            ]
            server = cells.get(Cell(CEILING, kind, tasks))
            if redis and server is not None:
                name = f"{CEILING} {CEILING_COMMANDS[kind]}"
                rows.append((name, kind, str(tasks), report.rate(server), report.spread(server)))
            rows.append(())
    title = f"{backend.capitalize()}-backed: ratio vs {BASELINES[backend]}"
    if redis:
        return Table((*header, CEILING_LABEL), rows[:-1], 2, f"{title}; ceiling on the same server")
    return Table(header, rows[:-1], 2, title)


def tables(
    cells: Mapping[Cell, CellStats], backends: Mapping[str, str], sockets: Mapping[str, Figure]
) -> list[Table]:
    """The Redis table (with the ceiling), the memory table, and the sockets table."""
    result = [_table(cells, backends, "redis"), _table(cells, backends, "memory")]
    if sockets:
        result.append(
            Table(
                ("contestant", "opened", ""),
                [(name, f"{figure.value:,.0f}", figure.detail) for name, figure in sockets.items()],
                title=f"Sockets each Redis contestant opened doing turns at {SOCKET_TASKS} "
                "tasks, alone on the server (INFO: total_connections_received, connected_clients)",
            )
        )
    return result


async def run(context: Context) -> Section:
    """Measure every installed contestant, the server's ceiling, and the sockets at 256 tasks."""
    mode, state = context.mode, context.state
    specs, skipped = installed(SPECS)
    server = context.servers.standalone()
    backends = {spec.name: spec.backend for spec in specs}
    ids = session_ids()
    value_bytes = len(StateCodec().encode(state))
    admin = Redis.from_url(server.url)
    contestants = [spec.make(server.url) for spec in specs]

    async def refill() -> None:
        await admin.flushall()
        await prepopulate(contestants, ids, state)

    try:
        samples = await measure_rounds(
            groups(contestants, state, ids),
            mode,
            mode.slice_seconds,
            NAME,
            prepare=refill,
            extra=partial(ceiling, server, mode, value_bytes),
        )
    finally:
        await close_all(contestants)
        await admin.aclose()
    sockets = {}
    for spec in specs:
        if spec.backend == "redis":
            sockets[spec.name] = await count_sockets(spec, server, ids, state, mode.socket_seconds)
    progress(f"{NAME}: sockets counted")
    cells = summarize(samples, "ops/s", baselines_of(backends))
    return Section(
        scenario=NAME,
        title=(
            f"Throughput: ops/s, median of {mode.rounds} rounds; each round gives every "
            f"contestant {mode.slice_seconds:g} s per cell in {mode.pieces} interleaved pieces"
        ),
        notes=[
            "spread = (max-min)/median of ops/s over rounds; ratio = median over rounds of the "
            "ratio to the baseline measured in the same round, with its (min-max)",
            f"of ceiling = ops/s over redis-benchmark's on the same server in the same round "
            f"({value_bytes:,}-byte values, as many connections as tasks, no pipelining)",
            f"the '{RAW_ORJSON}' row is a reference, not a "
            "target: what a bare client gets from the encoder of valerie's `fast` extra",
        ],
        tables=tables(cells, backends, sockets),
        cells=cells,
        figures={sockets_figure(name): figure for name, figure in sockets.items()},
        skipped=skipped,
    )


SCENARIO = Scenario(
    NAME,
    "save, load and turn at 1, 64 and 256 tasks against raw redis-py and peers; "
    "the server's ceiling; sockets at 256 tasks",
    run,
)
