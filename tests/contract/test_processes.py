"""Several OS processes on one Redis: no update is lost, leases exclude and expire."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import workers
from tests.support.backends import backend_url
from tests.support.redis_server import RedisServer
from valerie.infrastructure import RedisSessionStore

pytestmark = [pytest.mark.slow, pytest.mark.redis]

PROCESSES = 4
context = multiprocessing.get_context("spawn")


def run_processes(target: Callable[..., None], url: str, prefix: str, count: int) -> None:
    start = context.Barrier(PROCESSES)
    processes = [
        context.Process(target=target, args=(url, prefix, count, start)) for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0


async def counter(url: str, prefix: str) -> Any:
    async with RedisSessionStore(url, prefix) as store:
        state = await store.load("counter")
        return None if state is None else state["count"]


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
async def test_4_processes_x_250_updates_end_at_exactly_1000(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """update is atomic across processes: 1,000 increments from 4 processes, none lost, on one
    server and on a cluster."""
    url = backend_url(request, backend)
    prefix = f"procs:{uuid.uuid4().hex}:"
    run_processes(workers.update_increments, url, prefix, 250)
    assert await counter(url, prefix) == 1000


async def test_the_same_with_plain_load_and_save_loses_updates(redis_server: RedisServer) -> None:
    """The control experiment: load then save from 4 processes loses increments."""
    prefix = f"procs:{uuid.uuid4().hex}:"
    run_processes(workers.unsafe_increments, redis_server.url, prefix, 250)
    assert await counter(redis_server.url, prefix) < 1000


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
async def test_processes_under_the_lease_never_interleave(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """Plain load/save turns from 4 processes lose nothing when each holds the lease."""
    url = backend_url(request, backend)
    prefix = f"procs:{uuid.uuid4().hex}:"
    run_processes(workers.leased_increments, url, prefix, 50)
    assert await counter(url, prefix) == 200


async def test_a_killed_holder_blocks_others_only_until_its_lease_expires(
    redis_server: RedisServer,
) -> None:
    """SIGKILL the holder: the lease is taken by another process once its timeout passes."""
    prefix = f"procs:{uuid.uuid4().hex}:"
    held = context.Event()
    holder = context.Process(
        target=workers.hold_lease_until_killed, args=(redis_server.url, prefix, 1.5, held)
    )
    holder.start()
    try:
        assert held.wait(timeout=60)
        holder.kill()
        holder.join(timeout=10)
        started = time.monotonic()
        store = RedisSessionStore(redis_server.url, prefix)
        async with store, store.lock("counter", wait=10):
            waited = time.monotonic() - started
        assert 0.5 < waited < 5
    finally:
        holder.kill()
