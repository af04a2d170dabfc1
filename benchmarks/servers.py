"""The Redis servers the benchmark starts, and what it asks them.

The only module that imports the tests' support code (private `redis-server` processes on free
loopback ports, never 6379, and the Cluster launcher): when that code moves, only these imports
change. `python -m benchmarks`, run from the repository's root, finds the `tests` package there.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import subprocess
from dataclasses import dataclass

from redis.asyncio import Redis

from tests.support.cluster import ClusterDeployment
from tests.support.lifecycle import Closed
from tests.support.redis_server import INSTALL_HINT, RedisServer, RedisServerMissing

__all__ = [
    "INSTALL_HINT",
    "ClusterDeployment",
    "ConnectionCounts",
    "RedisBenchmarkMissing",
    "RedisServer",
    "RedisServerMissing",
    "Servers",
    "connection_counts",
    "redis_benchmark",
    "redis_benchmark_version",
    "server_version",
]

REDIS_BENCHMARK_HINT = (
    "redis-benchmark is not on PATH, and the benchmark needs it to measure the server's ceiling. "
    "It comes with the Redis server: `apt-get install redis-tools` (Debian/Ubuntu; "
    "redis-server pulls it in), `brew install redis` (macOS), or `dnf install redis` (Fedora)."
)


class RedisBenchmarkMissing(RuntimeError):
    """`redis-benchmark` is not installed."""


class Servers(Closed):
    """The private servers of one run, started when a scenario first asks for one.

    Use it as a context manager: every server it started is gone when the block ends.
    """

    def __init__(self) -> None:
        self._standalone: RedisServer | None = None

    def standalone(self) -> RedisServer:
        """The run's standalone `redis-server`, shared by the scenarios (each with its prefix)."""
        if self._standalone is None:
            server = RedisServer()
            server.start()
            self._standalone = server
        return self._standalone

    def cluster(self, primaries: int) -> ClusterDeployment:
        """A new Redis Cluster of `primaries` primaries without replicas, not yet started."""
        return ClusterDeployment(primaries=primaries)

    def close(self) -> None:
        """Stop every server this object started."""
        if self._standalone is not None:
            self._standalone.close()
            self._standalone = None


def _version(executable: str) -> str:
    output = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, check=True
    ).stdout
    # "Redis server v=7.0.15 sha=..." and "redis-benchmark 7.0.15"
    for word in output.split():
        if word[:1].isdigit() or word.startswith("v="):
            return word.removeprefix("v=")
    return output.strip()


def server_version() -> str:
    """The version of the `redis-server` on PATH."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RedisServerMissing(INSTALL_HINT)
    return _version(executable)


def _redis_benchmark() -> str:
    executable = shutil.which("redis-benchmark")
    if executable is None:
        raise RedisBenchmarkMissing(REDIS_BENCHMARK_HINT)
    return executable


def redis_benchmark_version() -> str:
    """The version of the `redis-benchmark` on PATH."""
    return _version(_redis_benchmark())


async def redis_benchmark(
    server: RedisServer, clients: int, value_bytes: int, requests: int, keys: int
) -> dict[str, float]:
    """Run `redis-benchmark` SET and GET against `server`; return requests/s by command.

    Args:
        server: The private server.
        clients: Parallel connections, one request in flight on each (no pipelining), like
            the contestants' concurrent tasks.
        value_bytes: Size of each value: the state's size.
        requests: Requests per command.
        keys: Random keys spread over this many names (`key:000000000042`...).

    Raises:
        RedisBenchmarkMissing: Not installed (the message says how to install it).
    """
    process = await asyncio.create_subprocess_exec(
        _redis_benchmark(),
        "-h", "127.0.0.1",
        "-p", str(server.port),
        "-t", "set,get",
        "-c", str(clients),
        "-n", str(requests),
        "-d", str(value_bytes),
        "-r", str(keys),
        "-P", "1",
        "--csv",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"redis-benchmark exited with {process.returncode}: {stderr.decode()[-2000:]}"
        )
    # CSV: "test","rps","avg_latency_ms",...; one line per command.
    rows = csv.DictReader(stdout.decode().splitlines())
    return {row["test"]: float(row["rps"]) for row in rows}


@dataclass(frozen=True)
class ConnectionCounts:
    """A server's connection counters (`INFO`), to count what a client opened between two reads.

    Attributes:
        received: Connections accepted since the server started (`total_connections_received`).
        connected: Client connections open now (`connected_clients`).
    """

    received: int
    connected: int


async def connection_counts(admin: Redis) -> ConnectionCounts:
    """Read the server's connection counters through `admin` (itself one of the connected)."""
    stats = await admin.info("stats")
    clients = await admin.info("clients")
    return ConnectionCounts(
        int(stats["total_connections_received"]), int(clients["connected_clients"])
    )
