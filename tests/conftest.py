"""Fixtures: a private redis-server for the session, and one store per backend for each test."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import Phase, settings

from tests.redis_deployments import ClusterDeployment, SentinelDeployment, TlsRedisServer
from tests.redis_server import RedisServer, RedisServerMissing
from valerie.infrastructure import EncodedSessionStore, InMemorySessionStore, RedisSessionStore

# `make mutation` runs each test once per mutant: the same examples every time, a fifth as
# many, none saved, and no shrinking (a mutant is killed by the first failing example).
settings.register_profile(
    "mutation",
    max_examples=20,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
)


def python_env() -> dict[str, str]:
    """The environment for a child `python -c` that imports what this process imports (under
    `make mutation`, the mutated copy of the package, with the mutant under test)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}


def examples(count: int) -> int:
    """`count` examples for a property test under the default profile (100 examples), scaled
    like the profile in use (a fifth under `mutation`)."""
    profile = settings.default
    assert profile is not None
    return max(1, count * profile.max_examples // 100)


# Every contract test runs on each: the memory store, and the Redis store on one server, over
# TLS, through Sentinel and on a Cluster.
BACKENDS = ("memory", "redis", "redis-tls", "redis-sentinel", "redis-cluster")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--standalone-only",
        action="store_true",
        help="skip the tests that need a TLS, Sentinel or Cluster deployment (make mutation)",
    )


def skip_unless_every_deployment(request: pytest.FixtureRequest) -> None:
    """Skip the test asking for a TLS, Sentinel or Cluster deployment under --standalone-only."""
    if request.config.getoption("--standalone-only"):
        pytest.skip("needs a TLS, Sentinel or Cluster deployment (--standalone-only)")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test session's own; fails the run (never skips) if not installed."""
    try:
        server = RedisServer()
    except RedisServerMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    with server:
        yield server


@pytest.fixture(scope="session")
def tls_server(request: pytest.FixtureRequest) -> Iterator[TlsRedisServer]:
    """A TLS-only redis-server with a test CA, for the session."""
    skip_unless_every_deployment(request)
    try:
        server = TlsRedisServer()
    except RedisServerMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    with server:
        yield server


@pytest.fixture(scope="session")
def sentinel_deployment(request: pytest.FixtureRequest) -> Iterator[SentinelDeployment]:
    """A primary, a replica and three sentinels, shared by the tests that do not break them."""
    skip_unless_every_deployment(request)
    with SentinelDeployment() as deployment:
        yield deployment


@pytest.fixture(scope="session")
def cluster_deployment(request: pytest.FixtureRequest) -> Iterator[ClusterDeployment]:
    """A three-primary cluster, shared by the tests that do not break it."""
    skip_unless_every_deployment(request)
    with ClusterDeployment(primaries=3) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def proxied_cluster_deployment(request: pytest.FixtureRequest) -> Iterator[ClusterDeployment]:
    """A three-primary cluster whose nodes announce the ports of their `FaultProxy`s, shared by
    the tests that put faults on the proxies (each within its own `with` block)."""
    skip_unless_every_deployment(request)
    with ClusterDeployment(primaries=3, proxied=True) as deployment:
        yield deployment


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


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisSessionStore]:
    """A Redis store with a prefix of its own, so tests never see each other's keys."""
    async with RedisSessionStore(redis_server.url, prefix=f"test:{uuid.uuid4().hex}:") as store:
        yield store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EncodedSessionStore]:
    """Each backend in turn: the contract suite runs once per backend."""
    if request.param == "memory":
        async with InMemorySessionStore() as memory_store:
            yield memory_store
    else:
        prefix = f"test:{uuid.uuid4().hex}:"
        url = backend_url(request, request.param)
        async with RedisSessionStore(url, prefix=prefix) as redis_store:
            yield redis_store
