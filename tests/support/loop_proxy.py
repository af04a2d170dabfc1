"""`LoopProxy`: a TCP proxy, in the test's own event loop, in front of a real redis-server, that
can stall replies, slow the link, run a hook before a command, or make SCAN start over.

Unlike `tests.support.fault_proxy.FaultProxy` (a thread of its own, faults chosen per command
and mode), it runs in the test's event loop, so a test can act between two commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def _command_end(buffer: bytearray) -> tuple[list[bytes], int] | None:
    """Parse one RESP command (an array of bulk strings) at the start of `buffer`.

    Returns its arguments and its length in bytes, or None if it is not all there yet.
    """
    end = buffer.find(b"\r\n")
    if end < 0:
        return None
    assert buffer[:1] == b"*", bytes(buffer[:20])
    count, position, args = int(buffer[1:end]), end + 2, []
    for _ in range(count):
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return None
        length = int(buffer[position + 1 : end])
        start, position = end + 2, end + 2 + length + 2
        if position > len(buffer):
            return None
        args.append(bytes(buffer[start : start + length]) if length < 256 else b"")
    return args, position


def _pack(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class _Link:
    """One client connection through the proxy."""

    def __init__(self) -> None:
        self.stalled = False
        self.writers: list[asyncio.StreamWriter] = []


class LoopProxy:
    """A TCP proxy, in the test's event loop, in front of a real redis-server.

    It forwards bytes both ways, noting each command's name (`commands`; not with `raw=True`,
    which forwards TLS, or anything, untouched; nor with `rate`, bytes a second it lets through
    to the server, a slow link), until told to misbehave:
    - `stall_replies()`: the connections open now forward nothing more from the server to the
      client (the server still gets, and runs, every command); new connections are served.
    - `repeat_next_scan(after=0)`: the next SCAN that continues a walk (after `after` others)
      is sent with cursor 0, so the walk starts over: keys come twice, as SCAN may do.
    """

    def __init__(self, upstream_port: int, *, raw: bool = False, rate: float | None = None) -> None:
        self.upstream_port = upstream_port
        self.raw = raw or rate is not None
        self.rate = rate
        self.links: list[_Link] = []
        self.commands: list[str] = []
        self.hooks: dict[str, Callable[[], object]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.repeat_scan = False
        self.scans_before_repeat = 0
        self.scans_repeated = 0
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> LoopProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for link in self.links:
            for writer in link.writers:
                writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def stall_replies(self) -> None:
        for link in self.links:
            link.stalled = True

    def before_next(self, command: str, action: Callable[[], object]) -> None:
        """Run `action` when the next `command` arrives, before it goes to the server."""
        self.hooks[command] = action

    def repeat_next_scan(self, after: int = 0) -> None:
        self.repeat_scan = True
        self.scans_before_repeat = after

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port
        )
        link = _Link()
        link.writers = [writer, upstream_writer]
        self.links.append(link)
        try:
            await asyncio.gather(
                self._commands(reader, upstream_writer),
                self._replies(upstream_reader, writer, link),
            )
        except (ConnectionError, OSError):
            pass
        finally:
            for each in link.writers:
                each.close()

    async def _commands(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        while data := await reader.read(1 << 20):
            if self.raw:
                if self.rate is not None:
                    await asyncio.sleep(len(data) / self.rate)
                writer.write(data)
                await writer.drain()
                continue
            buffer += data
            while parsed := _command_end(buffer):
                args, length = parsed
                chunk = bytes(buffer[:length])
                del buffer[:length]
                name = args[0].decode().upper()
                self.commands.append(name)
                hook = self.hooks.pop(name, None)
                if hook is not None:
                    hook()
                if self.repeat_scan and args[:1] == [b"SCAN"] and args[1] != b"0":
                    if self.scans_before_repeat:
                        self.scans_before_repeat -= 1
                    else:
                        self.repeat_scan = False
                        self.scans_repeated += 1
                        chunk = _pack([b"SCAN", b"0", *args[2:]])
                writer.write(chunk)
                await writer.drain()
        writer.close()

    async def _replies(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        while data := await reader.read(1 << 20):
            if not link.stalled:
                writer.write(data)
                await writer.drain()
        writer.close()
