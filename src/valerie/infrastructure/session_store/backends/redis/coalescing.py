"""Automatic pipelining: the commands concurrent tasks issue in one event-loop step go together.

Pure asyncio; what a batch is sent on is the transport's business (`send`). A lone call takes
a direct path; calls that arrive while a batch is in flight wait in a queue, and at the end of
the event loop's step everything queued goes out as one pipeline (not a transaction) on a
connection of its own, at most `connections` batches at a time. Each caller gets its own
replies, or its own error: a refused command fails its caller only, a broken connection fails
the callers of that batch. A caller cancelled while queued is never sent; one cancelled while
its batch is in flight does not stop the batch, whose replies are all read, so the connection
stays in step for the others.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

Command = tuple[Any, ...]
Send = Callable[[list[Command], bool], Awaitable[list[Any]]]


class _Entry:
    """One caller's commands, waiting in a queue, then in flight."""

    __slots__ = ("commands", "future", "size", "timer")

    def __init__(self, commands: list[Command], size: int, future: asyncio.Future[list[Any]]):
        self.commands = commands
        self.size = size
        self.future = future
        self.timer: asyncio.TimerHandle | None = None


class Coalescer:
    """Sends the commands of concurrent calls together, on at most `connections` at a time.

    Args:
        send: Sends commands in one round trip and returns their replies (an exception
            instance for each refused command); `once` says they must not be retried. Batches
            are never mixed: commands sent once and commands that may be retried go apart.
        connections: Batches in flight at most (each on its own connection).
        max_commands: Commands in one batch at most (a caller's commands are never split).
        max_bytes: Bytes of values in one batch at most (a caller's commands are never split).
        wait: Seconds a call may wait in the queue for a free connection.
        busy: Makes the error of a call that waited `wait` seconds in vain.
        waited: Told how long a call waited for a free connection, and whether in vain.
    """

    __slots__ = (
        "_busy",
        "_connections",
        "_in_flight",
        "_max_bytes",
        "_max_commands",
        "_queues",
        "_scheduled",
        "_send",
        "_tasks",
        "_wait",
        "_waited",
    )

    def __init__(
        self,
        send: Send,
        *,
        connections: int,
        max_commands: int,
        max_bytes: int,
        wait: float,
        busy: Callable[[], Exception],
        waited: Callable[[float, bool], None] | None = None,
    ) -> None:
        self._send = send
        self._connections = connections
        self._max_commands = max_commands
        self._max_bytes = max_bytes
        self._wait = wait
        self._busy = busy
        self._waited = waited
        self._queues: dict[bool, deque[_Entry]] = {False: deque(), True: deque()}
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Batches being sent or awaiting their replies now."""
        return self._in_flight

    @property
    def connections(self) -> int:
        """Batches in flight at most (each on its own connection)."""
        return self._connections

    @property
    def queued(self) -> int:
        """Calls waiting for their batch to be sent."""
        return sum(1 for queue in self._queues.values() for e in queue if not e.future.done())

    async def run(self, commands: list[Command], *, once: bool, size: int = 0) -> list[Any]:
        """Send `commands` with those of concurrent calls; return their replies.

        Args:
            commands: This call's commands, sent in order, in one batch.
            once: They must not be sent twice (no retry).
            size: Bytes of the values they carry.
        """
        if not self._in_flight and not self._queues[False] and not self._queues[True]:
            # Alone: no queue, no task, no extra step of the event loop.
            self._in_flight += 1
            try:
                return await self._send(commands, once)
            finally:
                self._in_flight -= 1
                self._schedule()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        entry = _Entry(commands, size, future)
        self._queues[once].append(entry)
        if self._in_flight >= self._connections:
            self._arm(entry)
        self._schedule()
        try:
            return await future
        finally:
            if entry.timer is not None:
                entry.timer.cancel()

    def _arm(self, entry: _Entry) -> None:
        """Bound the time `entry` may wait for a free connection."""
        loop = asyncio.get_running_loop()
        entry.timer = loop.call_later(self._wait, self._expire, entry)

    def _expire(self, entry: _Entry) -> None:
        for queue in self._queues.values():
            try:
                queue.remove(entry)
            except ValueError:
                continue
            if not entry.future.done():
                if self._waited is not None:
                    self._waited(self._wait, True)
                entry.future.set_exception(self._busy())
            return

    def _schedule(self) -> None:
        if self._scheduled or not (self._queues[False] or self._queues[True]):
            return
        self._scheduled = True
        # At the end of this step of the event loop: every task woken in it queues first.
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        loop = asyncio.get_running_loop()
        for once, queue in self._queues.items():
            while queue and self._in_flight < self._connections:
                batch = self._take(queue)
                if not batch:
                    break
                self._in_flight += 1
                task = loop.create_task(self._send_batch(batch, once))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            for entry in queue:
                if entry.timer is None:
                    self._arm(entry)

    def _take(self, queue: deque[_Entry]) -> list[_Entry]:
        """Take the next batch from `queue`: whole calls, within the bounds."""
        batch: list[_Entry] = []
        commands = size = 0
        while queue:
            entry = queue[0]
            if entry.future.done():  # cancelled while queued: never sent
                queue.popleft()
                continue
            if batch and (
                commands + len(entry.commands) > self._max_commands
                or size + entry.size > self._max_bytes
            ):
                break
            queue.popleft()
            if entry.timer is not None:
                # It waited for a free connection (all were busy when it came).
                entry.timer.cancel()
                if self._waited is not None:
                    started = entry.timer.when() - self._wait
                    self._waited(asyncio.get_running_loop().time() - started, False)
                entry.timer = None
            batch.append(entry)
            commands += len(entry.commands)
            size += entry.size
        return batch

    async def _send_batch(self, batch: list[_Entry], once: bool) -> None:
        try:
            commands = [command for entry in batch for command in entry.commands]
            replies = await self._send(commands, once)
        except asyncio.CancelledError:
            for entry in batch:
                entry.future.cancel()
            raise
        except Exception as error:
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(error)
        else:
            start = 0
            for entry in batch:
                end = start + len(entry.commands)
                if not entry.future.done():  # its caller may have been cancelled meanwhile
                    entry.future.set_result(replies[start:end])
                start = end
        finally:
            self._in_flight -= 1
            self._schedule()
