"""Memory that `InMemorySessionStore` holds per session, against the state's JSON size.

tracemalloc counts every byte allocated while a fresh store takes `memory_sessions` sessions:
the JSON bytes, the id strings (made inside the measured window), the store's dicts and
expiry-bucket entries, everything but tracemalloc's own bookkeeping.
"""

from __future__ import annotations

import gc
import linecache
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import Context, Figure, Scenario, Section, Table
from benchmarks.workload import TTL_SECONDS, State, session_id
from valerie.infrastructure.session_store import InMemorySessionStore, StateCodec

NAME = "memory"
PER_JSON = "bytes held per session / JSON size"
PER_SESSION = "bytes held per session"


@dataclass
class MemoryFigures:
    """What the store holds per session, from a tracemalloc snapshot diff."""

    sessions: int
    json_bytes: int
    bytes_per_session: float
    top_lines: list[tuple[str, float]]


def describe_line(frame: tracemalloc.Frame) -> str:
    """Return `file:line  source` for a frame of a tracemalloc traceback."""
    source = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{Path(frame.filename).name}:{frame.lineno}  {source}"


async def measure_memory(count: int, state: State) -> MemoryFigures:
    """Save `count` sessions into a fresh memory store and count every byte allocated."""
    json_bytes = len(StateCodec().encode(state))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    store = InMemorySessionStore(default_ttl=TTL_SECONDS)
    for number in range(count):
        await store.save(session_id(number), state)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert await store.exists(session_id(count - 1))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    total = sum(stat.size_diff for stat in stats)
    top = [(describe_line(stat.traceback[0]), stat.size_diff / count) for stat in stats[:5]]
    return MemoryFigures(count, json_bytes, total / count, top)


async def run(context: Context) -> Section:
    """Measure the bytes held per session."""
    figures = await measure_memory(context.mode.memory_sessions, context.state)
    ratio = figures.bytes_per_session / figures.json_bytes
    return Section(
        scenario=NAME,
        title=f"Memory held by InMemorySessionStore ({figures.sessions:,} sessions, tracemalloc)",
        notes=[
            f"{figures.bytes_per_session:,.0f} bytes per session for {figures.json_bytes:,} "
            f"bytes of JSON: {ratio:.3f}x",
        ],
        tables=[
            Table(
                ("allocated at", "B/session"),
                [(where, f"{size:.1f}") for where, size in figures.top_lines],
            )
        ],
        figures={
            PER_JSON: Figure(
                ratio, "x", f"{figures.bytes_per_session:,.0f} / {figures.json_bytes:,} bytes"
            ),
            PER_SESSION: Figure(figures.bytes_per_session, "bytes"),
        },
    )


SCENARIO = Scenario(NAME, "memory store: bytes held per session against its JSON size", run)
