"""What the real local Redis deployments share: waiting for a state, free ports, replication
checks, and the context-manager plumbing.

Every process listens on 127.0.0.1 only, on free ports (never 6379), keeps its files in temp
directories of its own, and is gone, with those directories, when its `with` block ends. Each
launcher returns only once the deployment is fully formed (replicas in sync, Sentinels and
Cluster nodes agreeing), polling rather than sleeping, so failover tests start from a known state.
The deployments: `tests.support.sentinel`, `tests.support.cluster`, `tests.support.tls` (and
`tests.support.acl` for users limited to a prefix).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Self, TypeVar

from tests.support.lifecycle import Started
from tests.support.redis_server import RedisServer, free_port
from tests.support.resp import ReplyError, server_info

POLL_INTERVAL = 0.02

Address = tuple[str, int]
T = TypeVar("T")


class DeploymentError(RuntimeError):
    """A deployment did not form, or did not reach the awaited state, in time."""


class NotYet(Exception):
    """Raised by a readiness check: not ready yet, and why."""


def wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    """Call `check` until it returns instead of raising `NotYet` (or a connection or reply
    error); return what it returned.

    Raises:
        DeploymentError: `timeout` seconds passed; the message says what was awaited and why the
            last check failed.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (NotYet, OSError, ReplyError) as error:
            reason = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            raise DeploymentError(f"{what}: not done within {timeout} s; last check: {reason}")
        time.sleep(POLL_INTERVAL)


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (free_port may hand out the same port twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port != 6379:
            ports.append(port)
    return ports


def is_running(server: RedisServer) -> bool:
    return server.process is not None and server.process.poll() is None


def replica_in_sync(port: int) -> None:
    """Check that the replica on `port` is linked up and that its primary streams writes to it."""
    replication = server_info(port, "replication")
    if replication.get("master_link_status") != "up":
        raise NotYet(
            f"replica on port {port}: master_link_status={replication.get('master_link_status')}"
        )
    primary = server_info(int(replication["master_port"]), "replication")
    entries = [value for key, value in primary.items() if key.startswith("slave")]
    if not any(f"port={port}," in entry and "state=online" in entry for entry in entries):
        raise NotYet(f"replica on port {port}: its primary says {entries}")


def replicated(primary: RedisServer, replicas: Sequence[RedisServer], timeout: float) -> None:
    """Wait until every replica has applied everything `primary` had written when called."""
    target = int(server_info(primary.port, "replication")["master_repl_offset"])

    def check() -> None:
        for replica in replicas:
            offset = int(server_info(replica.port, "replication").get("slave_repl_offset", "-1"))
            if offset < target:
                raise NotYet(f"replica {replica.port} at offset {offset}, primary at {target}")

    wait_until(check, timeout, f"replication from {primary.port}")


# A diskless full sync (the default) waits 5 s for more replicas to join it, and the replica
# then gets no writes until its next once-a-second ACK; an RDB file in the temp dir is quicker.
# (RedisServer deletes it before each start, so a restart still comes back empty.)
FAST_SYNC = ("--repl-diskless-sync", "no", "--rdb-del-sync-files", "yes")


class Deployment(Started):
    """A multi-process deployment: a start that fails on entering `with` closes what it made."""

    servers: list[RedisServer]

    def close(self) -> None:
        """Kill every process of the deployment and remove every directory it made."""
        for server in self.servers:
            server.close()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self
