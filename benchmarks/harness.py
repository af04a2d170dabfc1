"""The harness: timed calls, interleaved rounds, paired ratios, spreads, and what a scenario is.

The noise model. The machine is assumed noisy: a shared 2-core VM whose speed swings by tens of
percent between seconds, more while other work runs on it. So the harness never compares figures
taken at different times:

- Cells that are compared (the contestants of one operation and concurrency, or the operations
  of one store) form a group. Every round gives each cell of a group the same time, cut into
  short pieces that the cells take in turns, in an order rotated every piece and every round
  (`interleaved_rates`), so that noise, slow or sudden, hits all of them alike.
- A ratio is paired: computed round by round between two cells measured in the same round,
  then summarized as the median over rounds with its min-max (`ratio_stats`). A slow round
  slows both sides.
- The spread of a cell, (max - min) / median of its rates over rounds, shows the machine's
  noise more than the contestant's: read ratios, not ops/s.

A scenario (`Scenario`, one module of `benchmarks.scenarios`) builds its groups, runs them with
`measure_rounds`, and returns a `Section`: its cells with their samples and ratios, its single
figures, and the tables that `benchmarks.report` prints. Targets (`benchmarks.targets`) are
checked against sections.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from benchmarks.servers import Servers
    from benchmarks.workload import State

Item = TypeVar("Item")  # what a timed call receives: a session id, or a batch
Key = TypeVar("Key")
PieceRunner = Callable[[float], Awaitable[tuple[int, float]]]
"""Calls something for the given seconds; returns the number of calls and the seconds taken."""


@dataclass(frozen=True)
class Mode:
    """How long each part of the benchmark runs.

    Attributes:
        name: `full` or `quick`; names the results file.
        rounds: Measured rounds per scenario (after one warm-up round).
        slice_seconds: Time each cell gets per round in the throughput and cluster scenarios.
        pieces: How many interleaved pieces a cell's time per round is cut into.
        warmup_seconds: Time per cell of the warm-up round, which is not recorded.
        update_slice_seconds: Time per cell per round in the update scenario.
        batch_slice_seconds: Time per cell per round in the batch scenario.
        scaling_repetitions: Measurements per store size in the scaling scenario.
        scaling_batch: New sessions saved per measurement in the scaling scenario.
        memory_sessions: Sessions saved in the memory scenario.
        ceiling_requests: Requests per `redis-benchmark` test, per concurrency and round.
        socket_seconds: How long each Redis contestant runs alone while its sockets are counted.
    """

    name: str
    rounds: int
    slice_seconds: float
    pieces: int
    warmup_seconds: float
    update_slice_seconds: float
    batch_slice_seconds: float
    scaling_repetitions: int
    scaling_batch: int
    memory_sessions: int
    ceiling_requests: int
    socket_seconds: float


FULL = Mode(
    name="full",
    rounds=9,
    slice_seconds=0.4,
    pieces=4,
    warmup_seconds=0.05,
    update_slice_seconds=0.6,
    batch_slice_seconds=0.4,
    scaling_repetitions=5,
    scaling_batch=2_000,
    memory_sessions=20_000,
    ceiling_requests=20_000,
    socket_seconds=0.5,
)
QUICK = Mode(
    name="quick",
    rounds=2,
    slice_seconds=0.05,
    pieces=1,
    warmup_seconds=0.01,
    update_slice_seconds=0.05,
    batch_slice_seconds=0.05,
    scaling_repetitions=1,
    scaling_batch=500,
    memory_sessions=20_000,
    ceiling_requests=2_000,
    socket_seconds=0.1,
)


@dataclass(frozen=True)
class Cell:
    """One measured thing: a contestant doing one operation with a number of concurrent tasks."""

    contestant: str
    operation: str
    tasks: int


Samples = dict[Cell, list[float]]
"""Per cell, one rate per measured round."""


def progress(message: str) -> None:
    """Tell the person waiting how far the run is (on stderr, apart from the results)."""
    print(f"  {message}", file=sys.stderr, flush=True)


# --- Timing ---------------------------------------------------------------------------------


async def worker(
    call: Callable[[Item], Awaitable[object]], items: Sequence[Item], deadline: float
) -> int:
    """Call `call` on `items`, cycling, until `deadline`; return the number of calls."""
    for done, item in enumerate(itertools.cycle(items), start=1):
        await call(item)
        # Checked after every call: with 64 tasks, a task waits for all the others between two
        # of its calls, and a coarser check would leave a long tail with fewer tasks running.
        if time.perf_counter() >= deadline:
            return done
    raise AssertionError("unreachable: itertools.cycle never ends")


async def timed_calls(
    call: Callable[[Item], Awaitable[object]], items: Sequence[Item], tasks: int, seconds: float
) -> tuple[int, float]:
    """Run `tasks` workers for `seconds`, worker `i` on `items[i::tasks]`.

    Args:
        call: What each worker calls, on one item at a time.
        items: Session ids (or batches of them); each worker cycles over its own share, so
            there must be at least `tasks` of them (repeat an id to share it).
        tasks: How many workers run concurrently.
        seconds: How long they run; a call under way at the deadline is finished and counted.

    Returns:
        The number of calls made and the seconds they took.
    """
    start = time.perf_counter()
    deadline = start + seconds
    counts = await asyncio.gather(
        *(worker(call, items[task::tasks], deadline) for task in range(tasks))
    )
    return sum(counts), time.perf_counter() - start


async def interleaved_rates(
    runners: Mapping[Key, PieceRunner], slice_seconds: float, pieces: int, number: int
) -> dict[Key, float]:
    """Give every runner `slice_seconds` cut into `pieces`, taken in turns; return calls/s.

    The order of the turns is rotated every piece (and every round, by the round `number`), so
    that noise on the machine, slow or sudden, hits all of them alike.
    """
    keys = list(runners)
    calls = dict.fromkeys(keys, 0)
    seconds = dict.fromkeys(keys, 0.0)
    gc.collect()
    for piece in range(pieces):
        shift = (number + piece) % len(keys)
        for key in [*keys[shift:], *keys[:shift]]:
            count, elapsed = await runners[key](slice_seconds / pieces)
            calls[key] += count
            seconds[key] += elapsed
    return {key: calls[key] / seconds[key] for key in keys}


async def run_round(
    groups: Sequence[Mapping[Cell, PieceRunner]], slice_seconds: float, pieces: int, number: int
) -> dict[Cell, float]:
    """Run every group once, its cells interleaved; return each cell's calls per second."""
    rates: dict[Cell, float] = {}
    for group in groups:
        if group:
            rates.update(await interleaved_rates(group, slice_seconds, pieces, number))
    return rates


async def measure_rounds(
    groups: Sequence[Mapping[Cell, PieceRunner]],
    mode: Mode,
    slice_seconds: float,
    label: str,
    *,
    prepare: Callable[[], Awaitable[None]] | None = None,
    extra: Callable[[], Awaitable[Mapping[Cell, float]]] | None = None,
) -> Samples:
    """Run a warm-up round and `mode.rounds` measured rounds; return each cell's rate per round.

    Args:
        groups: Cells measured against one another; each group is interleaved on its own.
        mode: How many rounds, pieces and warm-up seconds.
        slice_seconds: Time each cell gets per round.
        label: Names the scenario in the progress lines.
        prepare: Run, untimed, before the warm-up and before each round (flush, fill).
        extra: Run after each measured round; what it returns is recorded with the round (a
            measure taken by other means, such as the server's ceiling).
    """
    if prepare is not None:
        await prepare()
    # Warm-up: opens every connection pool to its full size and fills caches.
    await run_round(groups, mode.warmup_seconds, 1, 0)
    samples: Samples = {}
    for number in range(mode.rounds):
        if prepare is not None:
            await prepare()
        started = time.perf_counter()
        rates = await run_round(groups, slice_seconds, mode.pieces, number)
        if extra is not None:
            rates.update(await extra())
        for cell, rate in rates.items():
            samples.setdefault(cell, []).append(rate)
        progress(
            f"{label} round {number + 1}/{mode.rounds} done in "
            f"{time.perf_counter() - started:.1f} s"
        )
    return samples


# --- Statistics -----------------------------------------------------------------------------


def spread_percent(rates: Sequence[float]) -> float:
    """Return (max - min) / median of `rates`, in percent."""
    return 100 * (max(rates) - min(rates)) / statistics.median(rates)


def paired_ratios(
    samples: Mapping[Cell, Sequence[float]], cell: Cell, baseline: Cell
) -> list[float]:
    """Return, round by round, the rate of `cell` divided by that of `baseline`."""
    pairs = zip(samples[cell], samples[baseline], strict=True)
    return [mine / theirs for mine, theirs in pairs]


@dataclass
class RatioStats:
    """Paired ratios of a cell to a baseline measured in the same rounds."""

    baseline: Cell
    rounds: list[float]
    median: float
    low: float
    high: float


def ratio_stats(
    samples: Mapping[Cell, Sequence[float]], cell: Cell, baseline: Cell
) -> RatioStats | None:
    """Summarize `cell` / `baseline` round by round; None if either was not measured."""
    if cell not in samples or baseline not in samples:
        return None
    ratios = paired_ratios(samples, cell, baseline)
    return RatioStats(baseline, ratios, statistics.median(ratios), min(ratios), max(ratios))


@dataclass
class CellStats:
    """A cell's samples and what is read from them.

    Attributes:
        cell: What was measured.
        unit: Of the samples, e.g. `ops/s`.
        samples: One rate per round.
        median: Median over rounds.
        spread_percent: (max - min) / median, in percent.
        ratios: Paired ratios to other cells, by what they are read as (e.g. `vs raw ...`).
    """

    cell: Cell
    unit: str
    samples: list[float]
    median: float
    spread_percent: float
    ratios: dict[str, RatioStats] = field(default_factory=dict)


def summarize(
    samples: Samples,
    unit: str,
    baselines: Callable[[Cell], Mapping[str, Cell]] = lambda cell: {},
) -> dict[Cell, CellStats]:
    """Return every cell's statistics, with paired ratios to the cells `baselines` names.

    Args:
        samples: Rates per round.
        unit: Of the rates.
        baselines: For a cell, the cells it is compared with, by label; a baseline that was not
            measured (a peer not installed) is left out.
    """
    stats = {}
    for cell, rates in samples.items():
        ratios = {}
        for label, baseline in baselines(cell).items():
            ratio = ratio_stats(samples, cell, baseline)
            if ratio is not None:
                ratios[label] = ratio
        stats[cell] = CellStats(
            cell, unit, rates, statistics.median(rates), spread_percent(rates), ratios
        )
    return stats


# --- What a scenario returns ----------------------------------------------------------------


@dataclass
class Figure:
    """A single figure a scenario reports beside its cells (a cost ratio, bytes, sockets)."""

    value: float
    unit: str
    detail: str = ""


@dataclass
class Table:
    """Rows of text for the report to print, with the first `left` columns left-aligned.

    An empty row prints as a blank line.
    """

    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    left: int = 1
    title: str = ""


@dataclass
class Section:
    """What one scenario measured, for the printed report, the results file and the targets.

    Attributes:
        scenario: The scenario's name (`--only` takes it).
        title: The section's heading.
        notes: How to read the tables, printed under the heading.
        tables: What the report prints.
        cells: Every cell measured, with its samples and ratios.
        figures: Single figures, by name.
        skipped: What could not be measured, and why (a peer not installed).
    """

    scenario: str
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    cells: dict[Cell, CellStats] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def samples(self) -> Samples:
        """Every cell's rates per round."""
        return {cell: stats.samples for cell, stats in self.cells.items()}


@dataclass
class Context:
    """What every scenario gets: the mode, the state to store, and the servers."""

    mode: Mode
    state: State
    servers: Servers


@dataclass(frozen=True)
class Scenario:
    """One family of measurements: a name for `--only`, a summary, and the coroutine to run."""

    name: str
    summary: str
    run: Callable[[Context], Awaitable[Section]]


def task_count(tasks: int) -> str:
    """Return `1 task` or `64 tasks`."""
    return f"{tasks} task{'s' if tasks > 1 else ''}"
