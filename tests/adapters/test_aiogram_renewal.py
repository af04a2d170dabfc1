"""aiogram event isolation on a real redis-server: a transient outage does not lose the lease."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiogram.fsm.storage.base import StorageKey

from tests.support.redis_server import RedisServer
from valerie.infrastructure import RedisSessionStore, SessionLockedError
from valerie.integrations.aiogram import ValerieEventIsolation

KEY = StorageKey(bot_id=42, chat_id=7, user_id=7)
LEASE = 1.5  # renewed every 0.5 s
STORE_TIMEOUT = 0.3


class HandlerFailed(Exception):
    """The handler's own error, which must reach aiogram unchanged."""


@pytest.mark.redis
async def test_isolation_keeps_its_lease_through_a_frozen_server_and_keeps_the_handlers_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A renewal that times out is logged and retried: the lease outlives its first expiry,
    no second process gets the chat, and the handler's exception propagates as raised."""
    with RedisServer() as server:
        async with (
            RedisSessionStore(server.url, prefix="iso:", timeout=STORE_TIMEOUT, retries=0) as store,
            RedisSessionStore(server.url, prefix="iso:") as other_process,
        ):
            isolation = ValerieEventIsolation(store, timeout=LEASE, wait=0)
            rival = ValerieEventIsolation(other_process, timeout=LEASE, wait=0)
            overtaken = False

            async def handle_one_update() -> None:
                nonlocal overtaken
                async with isolation.lock(KEY):
                    await asyncio.sleep(0.6)  # one renewal done (lease to 2.0 s)
                    server.freeze()  # the renewal at 1.0 s times out at 1.3 s
                    try:
                        await asyncio.sleep(0.9)
                    finally:
                        server.thaw()
                    # The timed-out EXTEND may still run at the thaw (1.5 s), so without a
                    # retry the lease ends at 3.0 s at the latest; 3.4 s is past it.
                    await asyncio.sleep(1.9)
                    try:
                        async with rival.lock(KEY):
                            overtaken = True
                    except SessionLockedError:
                        pass
                    raise HandlerFailed("the handler's own error")

            caplog.set_level(logging.WARNING, logger="valerie")
            with pytest.raises(HandlerFailed) as raised:
                await handle_one_update()
            assert not overtaken, "the lease lapsed: another process got the chat"
            assert type(raised.value) is HandlerFailed
            assert str(raised.value) == "the handler's own error"
            assert any(
                record.levelno == logging.WARNING and "could not renew" in record.getMessage()
                for record in caplog.records
            )
