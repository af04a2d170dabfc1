"""The `valerie.session_store` loggers: gave-up errors at WARNING, recovery at INFO, retries at
DEBUG; never a secret, an id or a state."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.observability.stores import private_server
from tests.support.acl import create_acl_user
from tests.support.redis_server import RedisServer
from valerie.infrastructure import BackendUnavailableError, RedisSessionStore

# These tests start redis-server processes of their own.
pytestmark = pytest.mark.redis

SECRET_ID = "user-4711"
STATE = {"text": "my-secret-words"}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with private_server() as made:
        yield made


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.levelno == level and record.name.startswith("valerie.session_store")
    ]


async def test_giving_up_is_a_warning_and_answering_again_is_info(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    user = create_acl_user(server, prefix="logs:")
    caplog.set_level(logging.DEBUG, logger="valerie")
    async with RedisSessionStore(user.url, prefix="logs:", timeout=0.3, retries=1) as store:
        await store.save(SECRET_ID, STATE)
        server.stop()
        with pytest.raises(BackendUnavailableError):
            await store.load(SECRET_ID)
        assert not records(caplog, logging.INFO)
        server.start()
        user = create_acl_user(
            server, prefix="logs:", username=user.username, password=user.password
        )
        assert await store.load(SECRET_ID) is None  # the restarted server is empty
        await store.load(SECRET_ID)
    (warning,) = records(caplog, logging.WARNING)
    assert warning.name == "valerie.session_store.redis"
    assert warning.getMessage().startswith("GET gave up: ")
    (info,) = records(caplog, logging.INFO)
    assert info.getMessage().endswith("answers again")
    for secret in (user.password, SECRET_ID, "my-secret-words"):
        assert secret not in caplog.text


async def test_a_retry_is_debug(server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """A pooled connection the server closed (a restart between calls) is retried: DEBUG."""
    caplog.set_level(logging.DEBUG, logger="valerie")
    async with RedisSessionStore(server.url, prefix="logs:") as store:
        await store.save(SECRET_ID, STATE)
        server.restart()
        await store.save(SECRET_ID, STATE)
    assert not records(caplog, logging.WARNING)
    debug = [r.getMessage() for r in records(caplog, logging.DEBUG)]
    assert any("SET to Redis at redis://127.0.0.1:" in m and "retrying" in m for m in debug)
    assert SECRET_ID not in caplog.text
