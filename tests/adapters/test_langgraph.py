"""LangGraph on our stores: the conformance suite, two writers, a restart, bounded history."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any, NotRequired, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from redis.crc import key_slot

from tests.adapters import langgraph_workers as workers
from tests.support.backends import backend_params, backend_url, open_store
from tests.support.redis_server import RedisServer
from valerie.infrastructure import (
    EncodedSessionStore,
    InMemorySessionStore,
    InvalidArgumentError,
    RedisSessionStore,
    VersionConflictError,
)
from valerie.integrations.langgraph import (
    CheckpointConflictError,
    SyncCallError,
    ValerieCheckpointSaver,
)

context = multiprocessing.get_context("spawn")


def config(thread_id: str = "t", checkpoint_id: str | None = None) -> Any:
    configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def new_checkpoint(**values: Any) -> Any:
    checkpoint = empty_checkpoint()
    checkpoint["id"] = str(uuid6(clock_seq=-1))
    checkpoint["channel_values"] = dict(values)
    checkpoint["channel_versions"] = dict.fromkeys(values, 1)
    return checkpoint


async def put_chain(saver: ValerieCheckpointSaver, count: int, thread_id: str = "t") -> list[Any]:
    stored, parent = [], config(thread_id)
    for step in range(count):
        checkpoint = new_checkpoint(step=step)
        parent = await saver.aput(parent, checkpoint, {"step": step}, {"step": 1})
        stored.append(parent)
    return stored


@pytest.fixture(params=backend_params(("memory", "redis")))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EncodedSessionStore]:
    async with open_store(request, request.param) as opened:
        yield opened


@pytest.mark.parametrize(
    "backend", backend_params(("memory", "redis", "redis-sentinel", "redis-cluster"))
)
async def test_the_conformance_suite_passes_every_capability(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """langgraph-checkpoint-conformance: every base and extended capability, all passed."""
    url = None if backend == "memory" else backend_url(request, backend)

    @checkpointer_test(name=f"valerie-{backend}")
    async def saver() -> AsyncIterator[ValerieCheckpointSaver]:
        if url is None:
            async with InMemorySessionStore() as memory:
                yield ValerieCheckpointSaver(memory)
        else:
            async with RedisSessionStore(url, f"conformance:{uuid.uuid4().hex}:") as redis:
                yield ValerieCheckpointSaver(redis)

    report = await validate(saver)
    outcome = {name: (r.detected, r.passed, r.failures) for name, r in report.results.items()}
    assert set(outcome) == {capability.value for capability in ALL_CAPABILITIES}
    assert all(detected and passed for detected, passed, _ in outcome.values()), outcome
    assert sum(r.tests_passed for r in report.results.values()) >= 80


async def test_a_stale_writer_gets_a_typed_error_and_its_checkpoint_is_not_kept(
    store: EncodedSessionStore,
) -> None:
    """A child of a checkpoint that is no longer the latest is refused (linear=True)."""
    saver = ValerieCheckpointSaver(store)
    first, second = await put_chain(saver, 2)
    stale = new_checkpoint(step=9)
    with pytest.raises(CheckpointConflictError) as raised:
        await saver.aput(first, stale, {"step": 9}, {"step": 1})
    assert isinstance(raised.value, VersionConflictError)
    assert "re-run from the latest checkpoint" in str(raised.value)
    assert await saver.aget_tuple(config(checkpoint_id=stale["id"])) is None
    latest = await saver.aget_tuple(config())
    assert latest is not None
    assert latest.config == second
    assert await store.count() == 3  # the index and two checkpoints: the refused one is gone


async def test_linear_false_allows_branching_from_an_older_checkpoint(
    store: EncodedSessionStore,
) -> None:
    """Time travel: with linear=False a child of an old checkpoint is kept as a branch."""
    saver = ValerieCheckpointSaver(store, linear=False)
    first, _ = await put_chain(saver, 2)
    branch = new_checkpoint(step=5)
    await saver.aput(first, branch, {"step": 5}, {"step": 1})
    found = await saver.aget_tuple(config(checkpoint_id=branch["id"]))
    assert found is not None
    assert found.parent_config == first


@pytest.mark.slow
@pytest.mark.parametrize("linear", [True, False])
async def test_two_writer_processes_on_one_thread_never_interleave_silently(
    redis_server: RedisServer, linear: bool
) -> None:
    """2 processes x 30 checkpoints on one thread, each from the latest it read: every kept
    checkpoint extends the one before it and none is lost; losers got CheckpointConflictError.
    The control (linear=False) interleaves the two runs."""
    prefix = f"lg:{uuid.uuid4().hex}:"
    async with RedisSessionStore(redis_server.url, prefix) as store:
        saver = ValerieCheckpointSaver(store, max_checkpoints=None)
        await saver.aput(config("shared"), new_checkpoint(), {"step": -1}, {})
        start, results = context.Barrier(2), context.Queue()
        processes = [
            context.Process(
                target=workers.writer_process,
                args=(redis_server.url, prefix, linear, 30, start, results),
            )
            for _ in range(2)
        ]
        for process in processes:
            process.start()
        reports = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0
        chain = [t async for t in saver.alist(config("shared"))][::-1]
    kept = {checkpoint_id for ids, _ in reports for checkpoint_id in ids}
    listed = [t.config["configurable"]["checkpoint_id"] for t in chain]
    assert kept <= set(listed)  # nothing acknowledged was lost
    assert len(listed) == 61
    forks = sum(
        1 for parent, child in itertools.pairwise(chain) if child.parent_config != parent.config
    )
    if linear:
        assert forks == 0
        assert sum(conflicts for _, conflicts in reports) > 0
    else:
        assert forks > 0


@pytest.mark.slow
async def test_a_compiled_state_graph_resumes_the_conversation_after_a_restart(
    redis_server: RedisServer,
) -> None:
    """Each turn runs in a new process (a restart between turns); the third sees all before."""
    prefix = f"lg:{uuid.uuid4().hex}:"
    for text in ("hello", "how are you"):
        process = context.Process(
            target=workers.turn_process, args=(redis_server.url, prefix, "chat-1", text)
        )
        process.start()
        process.join(timeout=120)
        assert process.exitcode == 0
    result = await workers.one_turn(redis_server.url, prefix, "chat-1", "bye")
    assert result["messages"] == [
        "hello",
        "echo hello (turn 1)",
        "how are you",
        "echo how are you (turn 2)",
        "bye",
        "echo bye (turn 3)",
    ]
    assert result["turns"] == 3


async def test_history_is_bounded_per_thread_and_namespace(store: EncodedSessionStore) -> None:
    """With max_checkpoints=5, 30 checkpoints (with writes) leave 5 and their writes."""
    saver = ValerieCheckpointSaver(store, max_checkpoints=5)
    stored, parent = [], config()
    for step in range(30):
        parent = await saver.aput(parent, new_checkpoint(step=step), {"step": step}, {"step": 1})
        await saver.aput_writes(parent, [("messages", "hi")], "task-1")
        stored.append(parent)
    listed = [t.config for t in [t async for t in saver.alist(config())]]
    assert listed == stored[::-1][:5]
    assert await store.count() == 1 + 5 + 5  # index, checkpoints, their writes


async def test_every_session_of_a_thread_gets_the_ttl(redis_server: RedisServer) -> None:
    """The index, each checkpoint and its writes expire `ttl` after their last write."""
    async with RedisSessionStore(redis_server.url, f"lg:{uuid.uuid4().hex}:") as store:
        saver = ValerieCheckpointSaver(store, ttl=300)
        [saved] = await put_chain(saver, 1)
        await saver.aput_writes(saved, [("messages", "hi")], "task-1")
        ids = [session_id async for session_id in store.iter_ids()]
        assert len(ids) == 3
        for session_id in ids:
            assert 290 < (await store.ttl(session_id) or 0) <= 300


async def test_a_threads_keys_share_one_cluster_slot(redis_server: RedisServer) -> None:
    """Every key of a thread (odd characters in its id too) hashes to the same slot."""
    prefix = f"lg:{uuid.uuid4().hex}:"
    async with RedisSessionStore(redis_server.url, prefix) as store:
        saver = ValerieCheckpointSaver(store)
        for thread_id in ("plain", "with {braces} and : colons", "ünï/cødé"):
            for saved in await put_chain(saver, 2, thread_id):
                await saver.aput_writes(saved, [("messages", "hi")], "task-1")
        slots: dict[str, set[int]] = {}
        async for session_id in store.iter_ids():
            thread = session_id.split("}")[0]
            slots.setdefault(thread, set()).add(key_slot((prefix + session_id).encode()))
    assert len(slots) == 3
    assert all(len(found) == 1 for found in slots.values())


async def test_values_go_through_the_langgraph_serializer_never_pickle(
    store: EncodedSessionStore,
) -> None:
    """Stored values carry the serializer's type tag (msgpack by default), never pickle."""
    saver = ValerieCheckpointSaver(store)
    assert isinstance(saver.serde, JsonPlusSerializer)
    [saved] = await put_chain(saver, 1)
    await saver.aput_writes(saved, [("messages", {"role": "user"})], "task-1")
    stored = [await store.load(i) async for i in store.iter_ids()]
    tags = set()
    for state in stored:
        assert state is not None
        text = repr(state)
        tags |= {tag for tag in ("msgpack", "pickle", "json") if f"'{tag}'" in text}
    assert tags == {"msgpack"}


async def test_sync_methods_run_on_the_stores_loop_from_another_thread(
    store: EncodedSessionStore,
) -> None:
    """graph.invoke-style sync calls work from a worker thread; on the loop they raise."""
    saver = ValerieCheckpointSaver(store)
    [saved] = await put_chain(saver, 1)
    with pytest.raises(SyncCallError, match="call the async method"):
        saver.get_tuple(saved)
    found: list[Any] = []
    thread = threading.Thread(target=lambda: found.append(saver.get_tuple(saved)))
    thread.start()
    await asyncio.to_thread(thread.join)
    assert found[0].config == saved
    assert [t.config for t in await asyncio.to_thread(lambda: list(saver.list(saved)))] == [saved]


def test_sync_use_without_any_event_loop_runs_a_graph() -> None:
    """A purely synchronous program (graph.invoke) works on the memory store."""
    saver = ValerieCheckpointSaver(InMemorySessionStore())
    graph = workers.build_graph(saver)
    run: RunnableConfig = {"configurable": {"thread_id": "sync"}}
    graph.invoke({"messages": ["one"]}, run)
    result = graph.invoke({"messages": ["two"]}, run)
    assert result["messages"][-1] == "echo two (turn 2)"
    assert len(list(saver.list(run))) > 2


async def test_bad_arguments_are_typed_errors() -> None:
    """Bad bounds, a prefix that would move the hash tag, a config without thread_id."""
    store = InMemorySessionStore()
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="max_checkpoints"):
            ValerieCheckpointSaver(store, max_checkpoints=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="hash tag"):
        ValerieCheckpointSaver(store, prefix="{app}:")
    saver = ValerieCheckpointSaver(store)
    with pytest.raises(InvalidArgumentError, match="thread_id"):
        await saver.aget_tuple({"configurable": {}})
    with pytest.raises(InvalidArgumentError, match="strategy"):
        await saver.aprune(["t"], strategy="everything")


async def test_an_interrupted_graph_resumes_on_a_new_graph_object(
    store: EncodedSessionStore,
) -> None:
    """interrupt() pauses a run (its pending writes stored); Command(resume=...) on a freshly
    compiled graph, as after a restart, finishes it."""

    class Approval(TypedDict):
        request: str
        decision: NotRequired[str]

    def ask(state: Approval) -> dict[str, Any]:
        return {"decision": interrupt(f"approve {state['request']}?")}

    def build() -> Any:
        builder = StateGraph(Approval)
        builder.add_node("ask", ask)
        builder.add_edge(START, "ask")
        builder.add_edge("ask", END)
        return builder.compile(checkpointer=ValerieCheckpointSaver(store))

    run: RunnableConfig = {"configurable": {"thread_id": "approval"}}
    paused = await build().ainvoke({"request": "refund"}, run)
    assert paused["__interrupt__"][0].value == "approve refund?"
    done = await build().ainvoke(Command(resume="yes"), run)
    assert done == {"request": "refund", "decision": "yes"}
