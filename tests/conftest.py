"""Fixtures: private Redis deployments for the session, and one store per backend for each test.

Every test that needs `redis-server` carries the `redis` marker (set here from the fixtures it
uses, or by its module), so `pytest -m "not redis"` runs without one; a run that selects such a
test stops at once, saying how to install it, when `redis-server` is missing: never a skip.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Generator, Iterator

import pytest

import tests.support.properties  # noqa: F401  (registers the `mutation` Hypothesis profile)
from tests.support.backends import backend_params, open_store, skip_unless_every_deployment
from tests.support.cluster import ClusterDeployment
from tests.support.redis_server import (
    INSTALL_HINT,
    RedisServer,
    RedisServerMissing,
    refuse_new_servers,
)
from tests.support.sentinel import SentinelDeployment
from tests.support.tls import TlsRedisServer
from valerie.infrastructure import EncodedSessionStore, RedisSessionStore

# The fixtures that start a redis-server: a test using any of them gets the `redis` marker.
REDIS_FIXTURES = frozenset(
    {
        "redis_server",
        "redis_store",
        "tls_server",
        "sentinel_deployment",
        "cluster_deployment",
        "proxied_cluster_deployment",
    }
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--standalone-only",
        action="store_true",
        help="skip the tests that need a TLS, Sentinel or Cluster deployment (make mutation)",
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `redis` every test that uses a fixture starting a redis-server (a fixture that
    starts one for some of its parameters only marks those: see `backend_params`)."""
    for item in items:
        if REDIS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """While a test without the `redis` marker runs, refuse to start a redis-server: such a
    test fails, saying to add the marker, instead of failing only where there is no Redis."""
    if item.get_closest_marker("redis") is None:
        refuse_new_servers(
            f"{item.nodeid} starts a redis-server but has no `redis` marker; add "
            "@pytest.mark.redis (or use a fixture of REDIS_FIXTURES in tests/conftest.py), "
            "so that `pytest -m 'not redis'` leaves it out"
        )
    try:
        return (yield)
    finally:
        refuse_new_servers(None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop the run at once, saying how to install it, if a selected test needs `redis-server`
    and it is not on PATH (the Redis fixtures would fail each such test anyway)."""
    if shutil.which("redis-server") is None and any(
        item.get_closest_marker("redis") for item in session.items
    ):
        raise pytest.UsageError(
            f"{INSTALL_HINT} To run only the tests that need no Redis: pytest -m 'not redis'."
        )


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


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisSessionStore]:
    """A Redis store with a prefix of its own, so tests never see each other's keys."""
    async with RedisSessionStore(redis_server.url, prefix=f"test:{uuid.uuid4().hex}:") as store:
        yield store


@pytest.fixture(params=backend_params())
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EncodedSessionStore]:
    """Each backend in turn: the contract suite runs once per backend."""
    async with open_store(request, request.param) as backend_store:
        yield backend_store
