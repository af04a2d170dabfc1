"""A TCP proxy in front of a real Redis server that forwards commands and can lose their replies.

Some faults need a server that receives a command and then never answers it: that is where a
client that retries and one that sends once differ (the retry sends the command again). A
stopped or frozen server cannot show it, since the command never runs. This proxy forwards every
byte between a client and a real `redis-server`, and understands just enough RESP to count
commands and replies on each connection, so that a fault hits exactly the reply to a chosen
command, after the server has run it:

- `drop`: the connection is closed instead of forwarding that reply (the client reads EOF);
- `stall`: nothing more is forwarded on that connection (the client times out).

Other connections, and connections opened later, are forwarded normally unless they too send a
matching command while the fault is on. The proxy runs its own event loop in a thread, so it
keeps forwarding while the test's loop is blocked (a synchronous fixture, `redis-cli`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from tests.support.lifecycle import Started
from tests.support.redis_server import free_port

HOST = "127.0.0.1"
Command = tuple[bytes, ...]
Matcher = Callable[[Command], bool]
Mode = Literal["drop", "stall"]
T = TypeVar("T")


def command_named(name: str, *, key: str | None = None) -> Matcher:
    """Match the command `name` (any case), on `key` if given (its first argument)."""
    wanted = name.upper().encode()

    def match(command: Command) -> bool:
        if not command or command[0].upper() != wanted:
            return False
        return key is None or (len(command) > 1 and command[1] == key.encode())

    return match


def script(body: str) -> Matcher:
    """Match an `EVAL` of exactly this Lua script."""
    wanted = body.encode()
    return lambda command: (
        len(command) > 1 and command[0].upper() == b"EVAL" and command[1] == wanted
    )


@dataclass
class Fault:
    """A fault in force on a proxy: what it does, to the replies of which commands.

    Attributes:
        mode: `drop` (close the connection instead of the reply) or `stall` (hold it).
        match: Which commands lose their reply.
        hits: How many matching commands were forwarded to the server while it was in force.
    """

    mode: Mode
    match: Matcher
    hits: int = 0


@dataclass(eq=False)
class _Link:
    """One client connection and its server connection, as the proxy counts them."""

    commands: int = 0  # commands forwarded to the server
    doomed: int | None = None  # index of the first command whose reply the fault takes
    mode: Mode = "stall"  # what the fault that doomed it does
    raw: bool = False  # not RESP (a replication stream): forwarded without counting
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _frame(data: bytearray, start: int) -> tuple[int, Any] | None:
    """Parse one RESP value (or inline command) at `data[start:]`.

    Returns:
        Where it ends and the value (bytes, a list, or None), or None if it is incomplete.
    """
    line_end = data.find(b"\r\n", start)
    if line_end < 0:
        return None
    kind, body, after = data[start], bytes(data[start + 1 : line_end]), line_end + 2
    if kind in b"+-:_#,(":  # simple strings, errors, integers, RESP3 scalars
        return after, body
    if kind in b"$!=":  # bulk strings
        length = int(body)
        if length < 0:
            return after, None
        end = after + length + 2
        return None if len(data) < end else (end, bytes(data[after : end - 2]))
    if kind in b"*~>%|":  # arrays, sets, pushes, maps, attributes
        count = int(body) * (2 if kind in b"%|" else 1)
        items = []
        for _ in range(max(count, 0)):
            parsed = _frame(data, after)
            if parsed is None:
                return None
            after, item = parsed
            items.append(item)
        if kind == ord("|"):  # an attribute precedes the value it annotates
            return _frame(data, after)
        return after, items if count >= 0 else None
    return after, bytes(data[start:line_end]).split()  # an inline command (redis-cli, telnet)


class FaultProxy(Started):
    """Forwards 127.0.0.1:`port` to a Redis server on 127.0.0.1:`upstream_port`.

    Use it as a context manager (or `start()` / `close()`), point the client at `port`, and put
    a fault in force with `with proxy.fault("drop", script(...)) as fault:`.

    Attributes:
        port: The port the proxy listens on.
        upstream_port: The port of the server it forwards to.
    """

    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self._fault: Fault | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:<port>/0`: the server, through the proxy."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def connections(self) -> int:
        """Client connections open through the proxy right now."""
        return len(self._connections)

    @contextlib.contextmanager
    def fault(self, mode: Mode, match: Matcher) -> Iterator[Fault]:
        """Put a fault in force for the `with` block; connections it hit stay broken after."""
        fault = Fault(mode, match)
        self._fault = fault
        try:
            yield fault
        finally:
            self._fault = None

    def start(self) -> None:
        """Listen on `port`, forwarding in a thread of its own."""
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"fault-proxy-{self.port}", daemon=True
        )
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, HOST, self.port))

    def close(self) -> None:
        """Stop listening, close every connection and end the thread."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        assert self._thread is not None
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        serving = asyncio.current_task()
        assert serving is not None
        self._connections.add(serving)
        try:
            await self._forward(client, to_client)
        finally:
            self._connections.discard(serving)

    async def _forward(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        link = _Link()
        try:
            server, to_server = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:  # the server is down: so is the proxy, for this client
            to_client.close()
            return
        for pump in (
            self._requests(client, to_server, link),
            self._replies(server, to_client, link),
        ):
            link.tasks.add(asyncio.create_task(pump))
        try:
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in link.tasks:
                task.cancel()
            await asyncio.gather(*link.tasks, return_exceptions=True)
            for writer in (to_client, to_server):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        """Client to server: forward every byte, and count commands, marking a matching one."""
        buffer = bytearray()
        while chunk := await reader.read(65536):
            buffer += chunk
            consumed, hit = 0, None
            try:
                while not link.raw and (parsed := _frame(buffer, consumed)) is not None:
                    consumed, command = parsed
                    fault = self._fault
                    if link.doomed is None and fault is not None and fault.match(tuple(command)):
                        # Marked before the command's last byte is forwarded: before its reply.
                        link.doomed, link.mode, hit = link.commands, fault.mode, fault
                    link.commands += 1
            except ValueError:
                link.raw = True
            del buffer[:consumed]
            writer.write(chunk)
            await writer.drain()
            if hit is not None:
                hit.hits += 1

    async def _replies(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        """Server to client: forward each reply until the one the fault takes."""
        buffer = bytearray()
        replies, stalled = 0, False
        while chunk := await reader.read(65536):
            if stalled:
                continue  # read and discard, so the server never blocks on this client
            buffer += chunk
            consumed = 0
            try:
                while (parsed := _frame(buffer, consumed)) is not None:
                    if replies == link.doomed:
                        stalled = True
                        break
                    consumed = parsed[0]
                    replies += 1
            except ValueError:
                link.raw = True
            if link.raw:
                consumed = len(buffer)
            writer.write(bytes(buffer[:consumed]))
            del buffer[:consumed]
            await writer.drain()
            if stalled and link.mode == "drop":
                return  # _forward closes both connections: the client reads EOF


async def wait_for(condition: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
    """Poll `condition` from async code until it holds.

    Raises:
        AssertionError: It did not hold within `within` seconds.
    """
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what or condition}")
        await asyncio.sleep(0.005)
