"""Typed: `load` and `save` through `store.typed(Model)`, against the dict API and Pydantic.

Pydantic's own `model_validate_json` / `model_dump_json` of the same ~2 KB state is measured too.

The issue's bound: what the typed path adds to the dict API costs at most Pydantic's own
(de)serialization of the state plus 10%, i.e. per round
`(1/typed - 1/dict) / (1/pydantic) <= 1.10` with the rates of the same round. The cells of one
store (dict, typed, Pydantic alone) are interleaved. A typed `save` without `if_version` is a
guarded write (it never replaces a session of a newer schema): on both stores it runs as an
`update`, which is where most of its cost over `save` comes from.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel

from benchmarks import report
from benchmarks.contestants import VALERIE_MEMORY, VALERIE_REDIS
from benchmarks.harness import (
    Cell,
    Context,
    Figure,
    PieceRunner,
    Samples,
    Scenario,
    Section,
    Table,
    measure_rounds,
    summarize,
    timed_calls,
)
from benchmarks.scenarios.valerie_pair import closing, valerie_stores
from benchmarks.workload import session_ids
from valerie.infrastructure.session_store import (
    EncodedSessionStore,
)

NAME = "typed"
PYDANTIC = "pydantic alone"
STORES = (VALERIE_MEMORY, VALERIE_REDIS)
OPERATIONS = ("save", "typed save", "load", "typed load")
PAIRS = (("typed load", "load", "model_validate_json"), ("typed save", "save", "model_dump_json"))
TASKS = 1
IDS = 256


class Message(BaseModel):
    """One message of the conversation."""

    role: Literal["user", "assistant"]
    content: str
    timestamp: datetime


class Reminder(BaseModel):
    """How the user is reminded."""

    channel: str
    opt_in: bool


class Context_(BaseModel):
    """The conversation's context."""

    order_id: str
    address: str
    channel: str
    confidence: float
    sentiment: float
    reason: str
    authenticated: bool
    escalated: bool
    agent_id: str | None
    slots_offered: list[str]
    slot_chosen: str
    reminder: Reminder


class BenchState(BaseModel):
    """The benchmark's 2 KB chat state as a model (timestamps become datetimes)."""

    user_id: str
    step: str
    intent: str
    turn: int
    locale: str
    timezone: str
    messages: list[Message]
    context: Context_


def overhead_figure(store: str, operation: str) -> str:
    """The name of the figure: the typed path's cost over the dict API / Pydantic's own."""
    return f"typed overhead / pydantic: {store}, {operation}"


def overheads(samples: Samples, store: str, typed: str, plain: str, alone: str) -> list[float]:
    """Round by round, (1/typed - 1/dict) / (1/pydantic), from rates of the same round."""
    rounds = zip(
        samples[Cell(store, typed, TASKS)],
        samples[Cell(store, plain, TASKS)],
        samples[Cell(PYDANTIC + " " + store, alone, TASKS)],
        strict=True,
    )
    return [(1 / t - 1 / d) / (1 / p) for t, d, p in rounds]


def operations(
    store: EncodedSessionStore, model: BenchState, state: dict[str, Any]
) -> dict[str, Callable[[str], Awaitable[object]]]:
    """The calls of each operation on one session id."""
    view = store.typed(BenchState)
    data = model.model_dump_json().encode()

    async def dump(session_id: str) -> bytes:
        return model.model_dump_json().encode()

    async def validate(session_id: str) -> BenchState:
        return BenchState.model_validate_json(data)

    return {
        "save": partial(_save, store, state),
        "typed save": partial(view.save, state=model),
        "load": store.load,
        "typed load": view.load,
        "model_dump_json": dump,
        "model_validate_json": validate,
    }


async def _save(store: EncodedSessionStore, state: dict[str, Any], session_id: str) -> None:
    await store.save(session_id, state)


async def run(context: Context) -> Section:
    """Measure the dict and typed paths and Pydantic alone, interleaved per store."""
    mode = context.mode
    state = {**context.state, "_schema_version": 1}
    model = BenchState.model_validate(context.state)
    server = context.servers.standalone()
    redis_and_memory = valerie_stores(server.url, "bench:typed:")
    stores = {name: redis_and_memory[name] for name in (VALERIE_MEMORY, VALERIE_REDIS)}
    ids = session_ids(IDS)
    groups: list[dict[Cell, PieceRunner]] = []
    for name, store in stores.items():
        calls = operations(store, model, state)
        group: dict[Cell, PieceRunner] = {
            Cell(name, kind, TASKS): partial(timed_calls, calls[kind], ids, TASKS)
            for kind in OPERATIONS
        }
        for _, _, alone in PAIRS:
            group[Cell(f"{PYDANTIC} {name}", alone, TASKS)] = partial(
                timed_calls, calls[alone], ids, TASKS
            )
        groups.append(group)

    async def prepare() -> None:
        for store in stores.values():
            await store.typed(BenchState).save_many(dict.fromkeys(ids, model))

    async with closing(stores.values()):
        samples = await measure_rounds(
            groups, mode, mode.update_slice_seconds, NAME, prepare=prepare
        )
    cells = summarize(
        samples,
        "ops/s",
        lambda cell: {
            "vs dict": Cell(cell.contestant, "load" if "load" in cell.operation else "save", TASKS)
        },
    )
    figures: dict[str, Figure] = {}
    for name in STORES:
        for typed, plain, alone in PAIRS:
            rounds = overheads(samples, name, typed, plain, alone)
            figures[overhead_figure(name, typed)] = Figure(
                statistics.median(rounds),
                "x",
                f"(1/{typed} - 1/{plain}) / (1/{alone}), min {min(rounds):.2f}, "
                f"max {max(rounds):.2f}",
            )
    rows: list[tuple[str, ...]] = []
    for name in STORES:
        for kind in OPERATIONS:
            stats = cells[Cell(name, kind, TASKS)]
            rows.append((name, kind, *report.measured(stats, "vs dict")))
        for _, _, alone in PAIRS:
            stats = cells[Cell(f"{PYDANTIC} {name}", alone, TASKS)]
            rows.append((PYDANTIC, alone, report.rate(stats), report.spread(stats), "", ""))
        rows.append(())
    return Section(
        scenario=NAME,
        title=(
            f"Typed: ops/s at {TASKS} task, median of {mode.rounds} rounds; each round gives "
            f"every cell {mode.update_slice_seconds:g} s in {mode.pieces} interleaved pieces"
        ),
        notes=[
            "ratio = median over rounds of the ratio to the same store's dict save or load",
            "typed overhead / pydantic = (1/typed - 1/dict) / (1/pydantic alone), per round, "
            "the issue's bound being 1.10",
        ],
        tables=[
            Table(("store", "op", "ops/s", "spread", "vs dict", "(min-max)"), rows[:-1], 2),
            Table(
                ("figure", "median", "detail"),
                [
                    (label, f"{figure.value:.2f}x", figure.detail)
                    for label, figure in figures.items()
                ],
                left=1,
                title="What the typed path adds, against Pydantic's own cost",
            ),
        ],
        cells=cells,
        figures=figures,
    )


SCENARIO = Scenario(NAME, "typed load and save against the dict API and Pydantic alone", run)
