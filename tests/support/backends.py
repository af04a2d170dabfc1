"""The backends every contract test runs on, in one place, and how to open a store on each.

The contract suite is parametrized from `BACKENDS`; each Redis backend carries the `redis`
marker, so `pytest -m "not redis"` keeps the memory store only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.support.redis_server import RedisServer
from tests.support.tls import TlsRedisServer
from valerie.infrastructure import EncodedSessionStore, InMemorySessionStore, RedisSessionStore

# The memory store, and the Redis store on one server, over TLS, through Sentinel and on a
# Cluster (each deployment is a session fixture of tests/conftest.py).
BACKENDS = ("memory", "redis", "redis-tls", "redis-sentinel", "redis-cluster")


def needs_redis(backend: str) -> bool:
    """Return whether `backend` runs on a `redis-server`."""
    return backend != "memory"


def backend_params(backends: tuple[str, ...] = BACKENDS) -> list[Any]:
    """`backends` as pytest parameters named after themselves, the Redis ones marked `redis`."""
    return [
        pytest.param(backend, id=backend, marks=[pytest.mark.redis] if needs_redis(backend) else [])
        for backend in backends
    ]


def skip_unless_every_deployment(request: pytest.FixtureRequest) -> None:
    """Skip the test asking for a TLS, Sentinel or Cluster deployment under --standalone-only."""
    if request.config.getoption("--standalone-only"):
        pytest.skip("needs a TLS, Sentinel or Cluster deployment (--standalone-only)")


def backend_url(request: pytest.FixtureRequest, backend: str) -> str:
    """The URL of the Redis deployment behind a backend name."""
    if backend == "redis-tls":
        tls: TlsRedisServer = request.getfixturevalue("tls_server")
        return tls.verified_url(client_cert=True)
    if backend == "redis-sentinel":
        return str(request.getfixturevalue("sentinel_deployment").url)
    if backend == "redis-cluster":
        return str(request.getfixturevalue("cluster_deployment").url)
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@asynccontextmanager
async def open_store(
    request: pytest.FixtureRequest, backend: str, **options: Any
) -> AsyncIterator[EncodedSessionStore]:
    """A store on `backend` made with `options`; on Redis, with a prefix of its own, so tests
    never see each other's keys."""
    if not needs_redis(backend):
        async with InMemorySessionStore(**options) as memory_store:
            yield memory_store
        return
    url = backend_url(request, backend)
    prefix = f"test:{uuid.uuid4().hex}:"
    # The contract suite checks behaviour, not speed: on a loaded 2-core machine, 64 TLS
    # handshakes alone can take over the default second. The bounds have tests of their own.
    options.setdefault("timeout", 5.0)
    async with RedisSessionStore(url, prefix, **options) as redis_store:
        yield redis_store
