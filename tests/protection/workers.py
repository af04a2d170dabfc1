"""Functions that run in child processes for the rotation test (spawned, so importable)."""

from __future__ import annotations

import asyncio
from multiprocessing.synchronize import Barrier

from valerie.infrastructure import Encryption, Keyring, RedisSessionStore, SessionState


def _increment(state: SessionState | None) -> SessionState:
    state = state or {"n": 0}
    state["n"] += 1
    return state


def update_each_session(
    url: str, prefix: str, keys: str, sessions: int, start: Barrier, tasks: int = 16
) -> None:
    """Increment every session once with update(), `tasks` at a time, under `keys`."""

    async def run() -> None:
        encryption = Encryption(Keyring.parse(keys))
        async with RedisSessionStore(url, prefix, encryption=encryption) as store:
            start.wait()

            async def share(first: int) -> None:
                for index in range(first, sessions, tasks):
                    await store.update(f"s{index}", _increment)

            await asyncio.gather(*(share(first) for first in range(tasks)))

    asyncio.run(run())
