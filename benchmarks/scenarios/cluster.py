"""Cluster: valerie's Redis store through a 3-primary Redis Cluster against standalone.

The cluster store runs twice, pipelined (the default) and with `pipelining=False`, to show
what automatic pipelining per node gives.

The cluster is started by the scenario, on loopback, without replicas. Both stores use the same
prefix and the same `SESSION_COUNT` UUID ids (whose keys spread over every slot, so over every
primary), filled once before the warm-up; the operations only overwrite them, so nothing is
flushed between rounds. `save`, `load` and a turn at 1 and 64 tasks, the two stores interleaved,
the ratio paired with the standalone store.
"""

from __future__ import annotations

from redis.asyncio import Redis

from benchmarks.contestants import ValerieContestant, close_all, prepopulate
from benchmarks.harness import Cell, Context, Scenario, Section, Table, measure_rounds, summarize
from benchmarks.report import rate, ratio, spread
from benchmarks.scenarios.throughput import OPERATIONS, groups
from benchmarks.servers import ClusterDeployment
from benchmarks.workload import SESSION_COUNT, TTL_SECONDS, session_ids
from valerie.infrastructure.session_store import RedisSessionStore

NAME = "cluster"
PRIMARIES = 3
CONCURRENCIES = (1, 64)
STANDALONE = "valerie RedisSessionStore, standalone"
CLUSTER = "valerie RedisSessionStore, cluster"
CLUSTER_UNPIPELINED = "valerie RedisSessionStore, cluster, pipelining off"
VS_STANDALONE = "vs standalone"
VS_UNPIPELINED = "vs pipelining off"


async def count_keys(cluster: ClusterDeployment) -> list[int]:
    """Return how many keys each primary of `cluster` holds, in port order."""
    counts = []
    for node in sorted(cluster.primaries, key=lambda node: node.port):
        client = Redis.from_url(node.url)
        try:
            counts.append(await client.dbsize())
        finally:
            await client.aclose()
    return counts


async def run(context: Context) -> Section:
    """Measure the Redis store through a cluster it starts and on the standalone server."""
    mode, state = context.mode, context.state
    server = context.servers.standalone()
    ids = session_ids()
    with context.servers.cluster(PRIMARIES) as cluster:
        contestants = [
            ValerieContestant(
                name,
                "redis",
                RedisSessionStore(
                    url,
                    prefix="bench:topology:",
                    default_ttl=TTL_SECONDS,
                    pipelining=pipelining,
                ),
            )
            for name, url, pipelining in (
                (STANDALONE, server.url, True),
                (CLUSTER, cluster.url, True),
                (CLUSTER_UNPIPELINED, cluster.url, False),
            )
        ]
        try:
            await prepopulate(contestants, ids, state)
            keys = await count_keys(cluster)
            samples = await measure_rounds(
                groups(contestants, state, ids, {"redis": CONCURRENCIES}),
                mode,
                mode.slice_seconds,
                NAME,
            )
        finally:
            await close_all(contestants)
    cells = summarize(
        samples,
        "ops/s",
        lambda cell: {
            VS_STANDALONE: Cell(STANDALONE, cell.operation, cell.tasks),
            VS_UNPIPELINED: Cell(CLUSTER_UNPIPELINED, cell.operation, cell.tasks),
        },
    )
    rows = []
    for kind in OPERATIONS:
        for tasks in CONCURRENCIES:
            standalone = cells[Cell(STANDALONE, kind, tasks)]
            clustered = cells[Cell(CLUSTER, kind, tasks)]
            unpipelined = cells[Cell(CLUSTER_UNPIPELINED, kind, tasks)]
            rows.append(
                (
                    kind,
                    str(tasks),
                    rate(standalone),
                    spread(standalone),
                    rate(clustered),
                    spread(clustered),
                    *ratio(clustered.ratios.get(VS_STANDALONE)),
                    rate(unpipelined),
                    *ratio(clustered.ratios.get(VS_UNPIPELINED)),
                )
            )
    return Section(
        scenario=NAME,
        title=(
            f"Cluster: valerie RedisSessionStore through a {PRIMARIES}-primary Redis Cluster "
            f"against the standalone server, ops/s, median of {mode.rounds} rounds; each round "
            f"gives each store {mode.slice_seconds:g} s per cell in {mode.pieces} interleaved "
            "pieces"
        ),
        notes=[
            "ratio = median over rounds of cluster / standalone measured in the same round, "
            "with its (min-max); gain = the same for the cluster store pipelined / with "
            "pipelining=False",
            f"keys per primary: {', '.join(f'{count:,}' for count in keys)} "
            f"(of {SESSION_COUNT:,} ids)",
        ],
        tables=[
            Table(
                (
                    "op",
                    "tasks",
                    "standalone",
                    "spread",
                    "cluster",
                    "spread",
                    "ratio",
                    "(min-max)",
                    "pipelining off",
                    "gain",
                    "(min-max)",
                ),
                rows,
                left=1,
            )
        ],
        cells=cells,
    )


SCENARIO = Scenario(
    NAME, f"the Redis store through a {PRIMARIES}-primary Cluster against standalone", run
)
