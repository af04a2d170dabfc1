"""A minimal RESP2 client for the test deployments' own checks, and servers reached with TLS or
a login.

The deployments talk to their servers with these few lines of RESP rather than redis-py, so that a
bug in the client under test cannot hide a bug in a deployment (and vice versa).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import BinaryIO

from tests.support.redis_server import RedisServer

HOST = "127.0.0.1"

Reply = int | str | None | list["Reply"]


class ReplyError(RuntimeError):
    """The server answered a command with an error reply."""


@dataclass(frozen=True)
class Access:
    """What `call` needs to talk to a server beyond plain TCP: TLS, a login, or both."""

    tls: ssl.SSLContext | None = None
    login: tuple[str, str] | None = field(default=None, repr=False)  # (username, password)


_ACCESS: dict[int, Access] = {}
"""How to reach the servers started here that need TLS or a login, by port; `call` looks here."""


def call(
    port: int, *args: str | int, timeout: float = 1.0, tls: ssl.SSLContext | None = None
) -> Reply:
    """Send one command to the server on 127.0.0.1:`port` over a new connection; return the reply.

    A server started here with TLS or a login is reached with them (see `Access`); `tls`
    overrides the context. Bulk strings come back decoded as text. A frozen or dead server
    raises `OSError` (a timeout or a refused connection) within `timeout`.

    Raises:
        ReplyError: The server answered with an error.
        OSError: The server could not be reached, or closed the connection.
    """
    access = _ACCESS.get(port, Access())
    tls = tls or access.tls
    commands = [args] if access.login is None else [("AUTH", *access.login), args]
    payload = b""
    for command in commands:
        payload += b"*%d\r\n" % len(command)
        for arg in command:
            data = str(arg).encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection((HOST, port), timeout=timeout) as raw:
        # wrap_socket detaches `raw`, so the TLS socket's own `with` closes the connection.
        connection = tls.wrap_socket(raw, server_hostname=HOST) if tls is not None else raw
        with connection, connection.makefile("rb") as reader:
            connection.sendall(payload)
            replies = [read_reply(reader) for _ in commands]
            return replies[-1]


def call_server(server: RedisServer, *args: str | int, timeout: float = 1.0) -> Reply:
    """`call` on `server`'s port."""
    return call(server.port, *args, timeout=timeout)


def command_calls(port: int, command: str) -> int:
    """How many times the server on `port` has run `command` (`INFO commandstats`)."""
    stats = server_info(port, "commandstats").get(f"cmdstat_{command.lower()}", "calls=0")
    return int(stats.split(",")[0].removeprefix("calls="))


def acl_denials(port: int, reason: str) -> int:
    """How many times the server on `port` refused access for `reason` ("auth", "key",
    "command"), from its ACL LOG (Redis 7.0 has no counters in INFO for it)."""
    total = 0
    for entry in as_items(call(port, "ACL", "LOG")):
        fields = as_pairs(entry)
        if fields["reason"] == reason:
            total += int(fields["count"])
    return total


def stat(port: int, name: str) -> int:
    """A counter of `INFO stats` on the server on `port`, e.g. `total_reads_processed`."""
    return int(server_info(port, "stats")[name])


class AccessedServer(RedisServer):
    """A `redis-server` reached with the `Access` given (TLS, a login), also by `call`.

    Attributes:
        access: How to reach it; registered for its port until `close()`.
    """

    def __init__(self, port: int | None, *extra_args: str, access: Access) -> None:
        super().__init__(port, *extra_args)
        self.access = access
        _ACCESS[self.port] = access

    def set_access(self, access: Access) -> None:
        """Reach the server with `access` from now on."""
        self.access = _ACCESS[self.port] = access

    def ping(self) -> bool:
        """Return whether the server answers PING right now (with its TLS and login)."""
        try:
            return call(self.port, "PING", timeout=0.5) == "PONG"
        except (OSError, ReplyError):
            return False

    def close(self) -> None:
        """Kill the server, remove its directory and forget its access."""
        super().close()
        _ACCESS.pop(self.port, None)


def read_reply(reader: BinaryIO) -> Reply:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("the server closed the connection")
    kind, body = line[:1], line[1:-2].decode(errors="replace")
    if kind == b"+":
        return body
    if kind == b"-":
        raise ReplyError(body)
    if kind == b":":
        return int(body)
    if kind == b"$":
        length = int(body)
        return None if length < 0 else reader.read(length + 2)[:-2].decode(errors="replace")
    if kind == b"*":
        length = int(body)
        return None if length < 0 else [read_reply(reader) for _ in range(length)]
    raise ConnectionError(f"unexpected reply line {line!r}")


def as_text(reply: Reply) -> str:
    if not isinstance(reply, str):
        raise ReplyError(f"expected a string reply, got {reply!r}")
    return reply


def as_items(reply: Reply) -> list[Reply]:
    if not isinstance(reply, list):
        raise ReplyError(f"expected an array reply, got {reply!r}")
    return reply


def as_pairs(reply: Reply) -> dict[str, str]:
    """A flat `[key, value, key, value, ...]` reply (SENTINEL MASTER and friends) as a dict."""
    items = as_items(reply)
    return {as_text(key): str(value) for key, value in zip(items[::2], items[1::2], strict=True)}


def server_info(port: int, section: str) -> dict[str, str]:
    """INFO `section` (or CLUSTER INFO, with section="cluster-info") as a dict."""
    command = ("CLUSTER", "INFO") if section == "cluster-info" else ("INFO", section)
    text = as_text(call(port, *command))
    return dict(
        line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#")
    )
