"""The benchmark's targets, as data: what each measures, its bound, and the issue it comes from.

A target's measure is either a paired ratio between two cells of one scenario (the median over
rounds of their round-by-round ratio; how many rounds met the bound is reported too) or a single
figure of a scenario. A target whose scenario did not run (`--only`) is left out; one whose cells
are missing (a peer not installed, a contestant that does not exist yet) is reported as not
measured, never as met.

Sources: "seed" is the project's first brief (the README's table of targets); "issue N" the
issue that set the goal.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.contestants import (
    LITESTAR_MEMORY,
    LITESTAR_REDIS,
    RAW,
    VALERIE_MEMORY,
    VALERIE_REDIS,
    VALERIE_REDIS_UNPIPELINED,
)
from benchmarks.harness import Cell, Section, paired_ratios, task_count
from benchmarks.scenarios import (
    batches,
    cluster,
    encryption,
    erasure,
    memory,
    scaling,
    telemetry,
    throughput,
    typed,
    update,
)


@dataclass(frozen=True)
class Ratio:
    """`cell` / `baseline`, both cells of `scenario`, paired round by round."""

    scenario: str
    cell: Cell
    baseline: Cell


@dataclass(frozen=True)
class Value:
    """The single figure `figure` of `scenario`."""

    scenario: str
    figure: str


@dataclass(frozen=True)
class Target:
    """A goal: a measure and its bound.

    Attributes:
        description: How the report names it.
        measure: What is read.
        source: The issue that set the goal.
        floor: The measure must be at least this, if given.
        ceiling: The measure must be at most this, if given.
        unit: Printed after the figure (`x` for ratios).
    """

    description: str
    measure: Ratio | Value
    source: str
    floor: float | None = None
    ceiling: float | None = None
    unit: str = "x"

    @property
    def goal(self) -> str:
        """The bound, e.g. `>= 1.10x` or `<= 8`."""
        if self.floor is not None and self.floor == self.ceiling:
            return f"== {self.floor:g}{self.unit}"
        if self.floor is not None:
            return f">= {self.floor:.2f}{self.unit}"
        return f"<= {self.ceiling:g}{self.unit}"

    def meets(self, figure: float) -> bool:
        """Whether `figure` is within the bound."""
        return (self.floor is None or figure >= self.floor) and (
            self.ceiling is None or figure <= self.ceiling
        )


@dataclass
class Verdict:
    """A target checked against a run.

    Attributes:
        target: The target.
        figure: The measure's value; None when it could not be measured.
        met: True or False; None when not measured.
        detail: The ratio's range over rounds and how many rounds met the bound, the figure's
            detail, or why it was not measured.
    """

    target: Target
    figure: float | None
    met: bool | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        """The verdict in a form JSON can hold."""
        target = self.target
        measure = target.measure
        described: dict[str, Any] = {"kind": type(measure).__name__.lower()}
        described["scenario"] = measure.scenario
        if isinstance(measure, Ratio):
            described["cell"] = vars(measure.cell)
            described["baseline"] = vars(measure.baseline)
        else:
            described["figure"] = measure.figure
        return {
            "description": target.description,
            "source": target.source,
            "measure": described,
            "floor": target.floor,
            "ceiling": target.ceiling,
            "figure": self.figure,
            "met": self.met,
            "detail": self.detail,
        }


def check(target: Target, section: Section) -> Verdict:
    """Check `target` against the section of its scenario."""
    measure = target.measure
    if isinstance(measure, Value):
        value = section.figures.get(measure.figure)
        if value is None:
            return Verdict(target, None, None, f"not measured: no figure {measure.figure!r}")
        return Verdict(target, value.value, target.meets(value.value), value.detail)
    samples = section.samples
    missing = [cell.contestant for cell in (measure.cell, measure.baseline) if cell not in samples]
    if missing:
        return Verdict(target, None, None, f"not measured: no {' and no '.join(missing)}")
    ratios = paired_ratios(samples, measure.cell, measure.baseline)
    figure = statistics.median(ratios)
    rounds_met = sum(target.meets(ratio) for ratio in ratios)
    return Verdict(
        target,
        figure,
        target.meets(figure),
        f"rounds {min(ratios):.2f}-{max(ratios):.2f}, {rounds_met} of {len(ratios)} met",
    )


def evaluate(targets: Sequence[Target], sections: Mapping[str, Section]) -> list[Verdict]:
    """Check every target whose scenario ran."""
    return [
        check(target, sections[target.measure.scenario])
        for target in targets
        if target.measure.scenario in sections
    ]


# --- The targets ----------------------------------------------------------------------------


def _ratio_targets(
    scenario: str,
    pair: tuple[str, str],
    label: str,
    cells: Sequence[tuple[str, int]],
    floor: float,
    source: str,
) -> list[Target]:
    name, other = pair
    return [
        Target(
            f"{label}, {kind}, {task_count(tasks)}",
            Ratio(scenario, Cell(name, kind, tasks), Cell(other, kind, tasks)),
            source,
            floor=floor,
        )
        for kind, tasks in cells
    ]


def _cells(operations: Sequence[str], concurrencies: Sequence[int]) -> list[tuple[str, int]]:
    return [(kind, tasks) for kind in operations for tasks in concurrencies]


THROUGHPUT = throughput.NAME
REDIS_VS_RAW = "Redis store / raw redis.asyncio + json"
REDIS_VS_LITESTAR = "Redis store / Litestar RedisStore (msgspec)"
MEMORY_VS_LITESTAR = "Memory store / Litestar MemoryStore (msgspec)"
PIPELINING_OFF = VALERIE_REDIS_UNPIPELINED
"""Today's store in issue 13's terms: the Redis store with `pipelining=False`."""

SEED = [
    *_ratio_targets(
        THROUGHPUT,
        (VALERIE_REDIS, RAW),
        REDIS_VS_RAW,
        _cells(throughput.OPERATIONS, (1, 64)),
        1.1,
        "seed",
    ),
    *_ratio_targets(
        THROUGHPUT,
        (VALERIE_REDIS, LITESTAR_REDIS),
        REDIS_VS_LITESTAR,
        _cells(throughput.OPERATIONS, (1, 64)),
        1.0,
        "seed",
    ),
    *_ratio_targets(
        THROUGHPUT,
        (VALERIE_MEMORY, LITESTAR_MEMORY),
        MEMORY_VS_LITESTAR,
        _cells(("save", "load"), (1, 64)),
        3.0,
        "seed",
    ),
    Target(
        f"Memory store {scaling.COST_RATIO}",
        Value(scaling.NAME, scaling.COST_RATIO),
        "seed",
        ceiling=1.5,
    ),
    Target(
        f"Memory store {memory.PER_JSON}",
        Value(memory.NAME, memory.PER_JSON),
        "seed",
        ceiling=1.15,
    ),
    *[
        Target(
            f"{label} update distinct / save, {task_count(tasks)}",
            Ratio(
                update.NAME,
                Cell(store, "update distinct", tasks),
                Cell(store, "save", tasks),
            ),
            "seed",
            floor=0.5,
        )
        for store, label in ((VALERIE_REDIS, "Redis store"), (VALERIE_MEMORY, "Memory store"))
        for tasks in update.CONCURRENCIES
    ],
    *[
        Target(
            f"{label} update: updates lost or doubled",
            Value(update.NAME, update.counters_figure(store)),
            "seed",
            floor=0,
            ceiling=0,
            unit="",
        )
        for store, label in ((VALERIE_REDIS, "Redis store"), (VALERIE_MEMORY, "Memory store"))
    ],
    *[
        Target(
            f"Redis store {batch} speedup over {singles}",
            Ratio(batches.NAME, Cell(VALERIE_REDIS, batch, 1), Cell(VALERIE_REDIS, singles, 1)),
            "seed",
            floor=5.0,
        )
        for batch, singles in batches.PAIRS
    ],
    *[
        Target(
            f"Redis store cluster / standalone, {kind}, 64 tasks",
            Ratio(
                cluster.NAME, Cell(cluster.CLUSTER, kind, 64), Cell(cluster.STANDALONE, kind, 64)
            ),
            "seed",
            floor=0.8,
        )
        for kind in throughput.OPERATIONS
    ],
]

ISSUE_13 = [
    *_ratio_targets(
        THROUGHPUT,
        (VALERIE_REDIS, RAW),
        REDIS_VS_RAW,
        _cells(throughput.OPERATIONS, (64, 256)),
        2.0,
        "issue 13",
    ),
    *_ratio_targets(
        THROUGHPUT,
        (VALERIE_REDIS, LITESTAR_REDIS),
        REDIS_VS_LITESTAR,
        _cells(throughput.OPERATIONS, (64, 256)),
        1.5,
        "issue 13",
    ),
    *_ratio_targets(
        THROUGHPUT,
        (VALERIE_REDIS, PIPELINING_OFF),
        "Redis store / the store without pipelining",
        _cells(throughput.OPERATIONS, (1,)),
        0.95,
        "issue 13",
    ),
    Target(
        f"Redis store {throughput.sockets_figure('').removesuffix(': ')}",
        Value(THROUGHPUT, throughput.sockets_figure(VALERIE_REDIS)),
        "issue 13",
        ceiling=8,
        unit="",
    ),
    *_ratio_targets(
        THROUGHPUT,
        (VALERIE_MEMORY, LITESTAR_MEMORY),
        MEMORY_VS_LITESTAR,
        _cells(("save", "load"), (1, 64)),
        2.0,
        "issue 13",
    ),
]

ISSUE_9 = [
    Target(
        f"{label} {operation}: cost over the dict API / Pydantic's own {alone}",
        Value(typed.NAME, typed.overhead_figure(store, operation)),
        "issue 9",
        ceiling=1.10,
    )
    for store, label in ((VALERIE_MEMORY, "Memory store"), (VALERIE_REDIS, "Redis store"))
    for operation, _, alone in typed.PAIRS
]

ISSUE_10 = [
    *_ratio_targets(
        encryption.NAME,
        (VALERIE_REDIS + encryption.ENCRYPTED, VALERIE_REDIS),
        "Encrypted Redis store / plaintext (at most 15% slower)",
        _cells(encryption.OPERATIONS, (64,)),
        1 / 1.15,
        "issue 10",
    ),
    Target(
        erasure.FIGURE,
        Value(erasure.NAME, erasure.FIGURE),
        "issue 10",
        ceiling=1000,
        unit=" ms",
    ),
]

ISSUE_11 = [
    Target(
        f"{label} {kind} with OpenTelemetry / without, {task_count(64)}",
        Ratio(
            telemetry.NAME,
            Cell(store + telemetry.WITH_OTEL, kind, 64),
            Cell(store, kind, 64),
        ),
        "issue 11",
        floor=floor,
    )
    for store, label, floor in (
        (VALERIE_REDIS, "Redis store", 0.97),
        (VALERIE_MEMORY, "Memory store", 0.90),
    )
    for kind in telemetry.OPERATIONS
]

TARGETS: list[Target] = [*SEED, *ISSUE_13, *ISSUE_9, *ISSUE_10, *ISSUE_11]
