"""Real local Redis deployments for tests: Sentinel, Cluster, TLS, and ACL-limited users.

Every process listens on 127.0.0.1 only, on free ports (never 6379), keeps its files in temp
directories of its own, and is gone, with those directories, when its `with` block ends. Each
launcher returns only once the deployment is fully formed (replicas in sync, Sentinels and
Cluster nodes agreeing), polling rather than sleeping, so failover tests start from a known state.

The launchers talk to the servers with a few lines of RESP of their own rather than redis-py, so
that a bug in the client under test cannot hide a bug in the deployment (and vice versa).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, Self, TypeVar
from urllib.parse import quote, urlencode

from tests.fault_proxy import FaultProxy
from tests.redis_server import RedisServer, free_port

HOST = "127.0.0.1"
CLUSTER_SLOTS = 16384
POLL_INTERVAL = 0.02

Address = tuple[str, int]
Reply = int | str | None | list["Reply"]
T = TypeVar("T")


class DeploymentError(RuntimeError):
    """A deployment did not form, or did not reach the awaited state, in time."""


class TlsUnsupported(RuntimeError):
    """The installed `redis-server`, or the machine, cannot run a TLS server."""


class ReplyError(RuntimeError):
    """The server answered a command with an error reply."""


class _NotYet(Exception):
    """Raised by a readiness check: not ready yet, and why."""


# --- a minimal RESP2 client, for the deployments' own checks ------------------------------------


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
            replies = [_read_reply(reader) for _ in commands]
            return replies[-1]


def call_server(server: RedisServer, *args: str | int, timeout: float = 1.0) -> Reply:
    """`call` on `server`'s port."""
    return call(server.port, *args, timeout=timeout)


def command_calls(port: int, command: str) -> int:
    """How many times the server on `port` has run `command` (`INFO commandstats`)."""
    stats = _info(port, "commandstats").get(f"cmdstat_{command.lower()}", "calls=0")
    return int(stats.split(",")[0].removeprefix("calls="))


def stat(port: int, name: str) -> int:
    """A counter of `INFO stats` on the server on `port`, e.g. `total_reads_processed`."""
    return int(_info(port, "stats")[name])


class AccessedServer(RedisServer):
    """A `redis-server` reached with the `Access` given (TLS, a login), also by `call`.

    Attributes:
        access: How to reach it; registered for its port until `close()`.
    """

    def __init__(self, port: int | None, *extra_args: str, access: Access) -> None:
        super().__init__(port, *extra_args)
        self.access = access
        _ACCESS[self.port] = access

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


def _read_reply(reader: BinaryIO) -> Reply:
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
        return None if length < 0 else [_read_reply(reader) for _ in range(length)]
    raise ConnectionError(f"unexpected reply line {line!r}")


def _text(reply: Reply) -> str:
    if not isinstance(reply, str):
        raise ReplyError(f"expected a string reply, got {reply!r}")
    return reply


def _items(reply: Reply) -> list[Reply]:
    if not isinstance(reply, list):
        raise ReplyError(f"expected an array reply, got {reply!r}")
    return reply


def _pairs(reply: Reply) -> dict[str, str]:
    """A flat `[key, value, key, value, ...]` reply (SENTINEL MASTER and friends) as a dict."""
    items = _items(reply)
    return {_text(key): str(value) for key, value in zip(items[::2], items[1::2], strict=True)}


def _info(port: int, section: str) -> dict[str, str]:
    """INFO `section` (or CLUSTER INFO, with section="cluster-info") as a dict."""
    command = ("CLUSTER", "INFO") if section == "cluster-info" else ("INFO", section)
    text = _text(call(port, *command))
    return dict(
        line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#")
    )


def _wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    """Call `check` until it returns instead of raising `_NotYet` (or a connection or reply
    error); return what it returned.

    Raises:
        DeploymentError: `timeout` seconds passed; the message says what was awaited and why the
            last check failed.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (_NotYet, OSError, ReplyError) as error:
            reason = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            raise DeploymentError(f"{what}: not done within {timeout} s; last check: {reason}")
        time.sleep(POLL_INTERVAL)


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (free_port may hand out the same port twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port != 6379:
            ports.append(port)
    return ports


def _running(server: RedisServer) -> bool:
    return server.process is not None and server.process.poll() is None


def _replica_in_sync(port: int) -> None:
    """Check that the replica on `port` is linked up and that its primary streams writes to it."""
    replication = _info(port, "replication")
    if replication.get("master_link_status") != "up":
        raise _NotYet(
            f"replica on port {port}: master_link_status={replication.get('master_link_status')}"
        )
    primary = _info(int(replication["master_port"]), "replication")
    entries = [value for key, value in primary.items() if key.startswith("slave")]
    if not any(f"port={port}," in entry and "state=online" in entry for entry in entries):
        raise _NotYet(f"replica on port {port}: its primary says {entries}")


def _replicated(primary: RedisServer, replicas: Sequence[RedisServer], timeout: float) -> None:
    """Wait until every replica has applied everything `primary` had written when called."""
    target = int(_info(primary.port, "replication")["master_repl_offset"])

    def check() -> None:
        for replica in replicas:
            offset = int(_info(replica.port, "replication").get("slave_repl_offset", "-1"))
            if offset < target:
                raise _NotYet(f"replica {replica.port} at offset {offset}, primary at {target}")

    _wait_until(check, timeout, f"replication from {primary.port}")


# A diskless full sync (the default) waits 5 s for more replicas to join it, and the replica
# then gets no writes until its next once-a-second ACK; an RDB file in the temp dir is quicker.
# (RedisServer deletes it before each start, so a restart still comes back empty.)
_FAST_SYNC = ("--repl-diskless-sync", "no", "--rdb-del-sync-files", "yes")


class _Deployment:
    """Context-manager plumbing shared by the multi-process deployments."""

    servers: list[RedisServer]

    def start(self) -> None:
        raise NotImplementedError

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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# --- Sentinel ----------------------------------------------------------------------------------


class SentinelDeployment(_Deployment):
    """A primary, one replica and three Sentinels (quorum 2), all on 127.0.0.1.

    After `start` (or entering the `with` block) the replica is in sync and every Sentinel knows
    the primary, the replica and the two other Sentinels, so killing the primary is followed by
    a failover within a few seconds (`down_after_ms`, plus up to a second of Sentinel's
    deliberate desynchronisation, plus the election).

    `primary` and `replica` are the servers *as started*: after a failover the replica is the
    primary; ask `current_primary_address()` or `current_primary()`. Nothing is persisted, and a
    restarted server comes back empty in the role its command line gives (`replica` as a replica
    of the first primary); the Sentinels then reconfigure it, e.g. an old primary restarted after
    a failover is turned into a replica of the new one.

    With `tls=True` every process (data nodes and Sentinels) speaks TLS only, with one test CA
    (`certificates`), and replicates and monitors over TLS. With `sentinel_login=(user,
    password)` the Sentinels refuse anyone but that ACL user (their default user is off) and
    log in to each other as that user; the data nodes stay open.

    Attributes:
        master_name: The name the Sentinels monitor the primary under.
        primary: The server started as the primary.
        replica: The server started as its replica.
        sentinels: The three Sentinels (`redis-server <conf> --sentinel`).
        sentinel_addresses: Their `(host, port)` pairs, for `redis.asyncio.sentinel.Sentinel`.
        certificates: With `tls=True`, the directory of the test CA and certificates (see
            `make_certificates`); None otherwise.
        sentinel_login: The Sentinels' ACL user and password, if they require one.
    """

    def __init__(
        self,
        master_name: str = "valerie",
        *,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        startup_timeout: float = 20.0,
        tls: bool = False,
        sentinel_login: tuple[str, str] | None = None,
    ) -> None:
        self.master_name = master_name
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.startup_timeout = startup_timeout
        self.sentinel_login = sentinel_login
        self.servers = []
        self.directory = Path(tempfile.mkdtemp(prefix="valerie-sentinel-"))
        try:
            self.certificates = make_certificates(self.directory / "tls") if tls else None
        except BaseException:
            self.close()
            raise
        primary_port, replica_port, *sentinel_ports = _free_ports(5)
        self.primary = self._add(primary_port, *_FAST_SYNC)
        self.replica = self._add(replica_port, *_FAST_SYNC, "--replicaof", HOST, str(primary_port))
        self.sentinels = [
            self._add(port, "--sentinel", login=sentinel_login) for port in sentinel_ports
        ]
        self.sentinel_addresses: list[Address] = [(HOST, port) for port in sentinel_ports]
        self._last_primary: Address = (HOST, primary_port)

    def _add(self, port: int, *args: str, login: tuple[str, str] | None = None) -> RedisServer:
        server: RedisServer
        if self.certificates is not None:
            server = TlsRedisServer(port, *args, certificates=self.certificates, login=login)
        elif login is not None:
            server = AccessedServer(port, *args, access=Access(login=login))
        else:
            server = RedisServer(port, *args)
        self.servers.append(server)
        return server

    @property
    def url(self) -> str:
        """The `redis+sentinel://` URL of the primary, in the form valerie's store accepts
        (`rediss+sentinel://` with the test CA and client certificate, with TLS; with the
        Sentinels' login as `sentinel_username` and `sentinel_password`, if they need one)."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
        query: dict[str, str] = {}
        if self.certificates is not None:
            query |= {
                "ssl_ca_certs": str(self.certificates / "ca.crt"),
                "ssl_certfile": str(self.certificates / "client.crt"),
                "ssl_keyfile": str(self.certificates / "client.key"),
            }
        if self.sentinel_login is not None:
            username, password = self.sentinel_login
            query |= {"sentinel_username": username, "sentinel_password": password}
        scheme = "rediss+sentinel" if self.certificates is not None else "redis+sentinel"
        url = f"{scheme}://{hosts}/{self.master_name}/0"
        return f"{url}?{urlencode(query)}" if query else url

    def close(self) -> None:
        """Kill every process and remove every directory of the deployment."""
        super().close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def start(self) -> None:
        """Start every process; return once the replica is in sync and the Sentinels agree."""
        started = time.monotonic()
        self.primary.start()
        self.replica.start()
        _wait_until(
            lambda: _replica_in_sync(self.replica.port), self.startup_timeout, "replica sync"
        )
        # Each Sentinel is told the ids of the others, so they know each other at once rather
        # than from their hello messages (the first comes 2 s after start). They are spawned
        # together, so none finds another not yet listening (a failed link is retried after 1 s).
        ids = [secrets.token_hex(20) for _ in self.sentinels]
        for sentinel, sentinel_id in zip(self.sentinels, ids, strict=True):
            sentinel.config_file = sentinel.directory / "sentinel.conf"
            sentinel.config_file.write_text(self._sentinel_config(sentinel_id, ids))
        for sentinel in self.sentinels:
            sentinel.spawn()
        for sentinel in self.sentinels:
            sentinel.wait_until_ready()
        # Even so, the first one usually tries the others before they listen, and retries once
        # a ping period (1 s) has passed. Shorten it while they connect, then restore it.
        self._set_ping_period(100)
        remaining = self.startup_timeout - (time.monotonic() - started)
        for sentinel in self.sentinels:
            _wait_until(
                functools.partial(self._sentinel_ready, sentinel.port),
                max(remaining, 1.0),
                f"Sentinel {sentinel.port} knowing the primary, replica and other Sentinels",
            )
        self._set_ping_period(1000)

    def _set_ping_period(self, milliseconds: int) -> None:
        for sentinel in self.sentinels:
            # SENTINEL DEBUG is Redis 7.0's; without it, startup just takes a second longer.
            with contextlib.suppress(ReplyError):
                call(sentinel.port, "SENTINEL", "DEBUG", "ping-period", milliseconds)

    def _sentinel_config(self, own_id: str, ids: Sequence[str]) -> str:
        name = self.master_name
        lines = []
        if self.sentinel_login is not None:
            username, password = self.sentinel_login
            lines += [
                "user default off",
                f"user {username} on >{password} ~* &* +@all",
                f"sentinel sentinel-user {username}",
                f"sentinel sentinel-pass {password}",
            ]
        lines += [
            f"sentinel myid {own_id}",
            "sentinel resolve-hostnames no",
            f"sentinel monitor {name} {HOST} {self.primary.port} 2",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1",
            f"sentinel known-replica {name} {HOST} {self.replica.port}",
        ]
        lines += [
            f"sentinel known-sentinel {name} {HOST} {sentinel.port} {sentinel_id}"
            for sentinel, sentinel_id in zip(self.sentinels, ids, strict=True)
            if sentinel_id != own_id
        ]
        return "\n".join(lines) + "\n"

    def _sentinel_ready(self, port: int) -> None:
        name = self.master_name
        master = _pairs(call(port, "SENTINEL", "MASTER", name))
        if (master["flags"], master["num-slaves"], master["num-other-sentinels"]) != (
            "master",
            "1",
            "2",
        ):
            raise _NotYet(f"SENTINEL MASTER says {master}")
        replicas = [_pairs(item) for item in _items(call(port, "SENTINEL", "REPLICAS", name))]
        if [(r["flags"], r["master-link-status"]) for r in replicas] != [("slave", "ok")]:
            raise _NotYet(f"SENTINEL REPLICAS says {replicas}")
        others = [_pairs(item) for item in _items(call(port, "SENTINEL", "SENTINELS", name))]
        if [other["flags"] for other in others] != ["sentinel", "sentinel"]:
            raise _NotYet(f"SENTINEL SENTINELS says {others}")

    def _reported_primaries(self) -> list[Address]:
        """The primary address each running, answering Sentinel reports right now."""
        reported: list[Address] = []
        for sentinel in self.sentinels:
            if not _running(sentinel):
                continue
            try:
                reply = _items(
                    call(sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
                )
            except (OSError, ReplyError):
                continue
            reported.append((_text(reply[0]), int(_text(reply[1]))))
        return reported

    def current_primary_address(self) -> Address:
        """Return the primary's address as the first answering Sentinel reports it.

        Raises:
            DeploymentError: No Sentinel answered.
        """
        reported = self._reported_primaries()
        if not reported:
            raise DeploymentError("no Sentinel answered SENTINEL GET-MASTER-ADDR-BY-NAME")
        return reported[0]

    def server_at(self, address: Address) -> RedisServer:
        """Return the data server (primary or replica) listening at `address`."""
        for server in (self.primary, self.replica):
            if (HOST, server.port) == address:
                return server
        raise KeyError(address)

    def current_primary(self) -> RedisServer:
        """Return the server the Sentinels currently report as the primary."""
        return self.server_at(self.current_primary_address())

    def wait_for_failover(self, timeout: float = 30.0, previous: Address | None = None) -> Address:
        """Wait until the Sentinels report a primary other than `previous`; return its address.

        Done means: every running Sentinel that answers (at least two, a quorum) reports the
        same new address, and the server there says `ROLE` master, so writes go through.

        Args:
            timeout: Seconds to wait.
            previous: The address to move away from; by default the primary at startup or after
                the last failover this method saw.

        Raises:
            DeploymentError: No failover within `timeout`.
        """
        old = previous or self._last_primary

        def check() -> Address:
            reported = self._reported_primaries()
            if len(reported) < 2 or len(set(reported)) != 1 or reported[0] == old:
                raise _NotYet(f"Sentinels report {reported}, old primary {old}")
            role = _items(call(reported[0][1], "ROLE"))
            if role[0] != "master":
                raise _NotYet(f"{reported[0]} has ROLE {role[0]}")
            return reported[0]

        self._last_primary = _wait_until(check, timeout, f"failover away from {old}")
        return self._last_primary

    def wait_until_settled(self, timeout: float = 30.0) -> RedisServer:
        """Wait until the Sentinels agree on one primary and every other running data server
        is its replica, in sync; return the primary.

        A primary that comes back after a failover (thawed, or restarted) keeps serving as a
        primary until the Sentinels turn it into a replica, some 10 s later: Sentinel waits four
        hello periods and an INFO refresh before reconfiguring an instance.

        Raises:
            DeploymentError: Not settled within `timeout`.
        """

        def check() -> RedisServer:
            reported = self._reported_primaries()
            if len(reported) < 2 or len(set(reported)) != 1:
                raise _NotYet(f"Sentinels report {reported}")
            primary = self.server_at(reported[0])
            if _items(call(primary.port, "ROLE"))[0] != "master":
                raise _NotYet(f"the reported primary {primary.port} is not a primary yet")
            for server in (self.primary, self.replica):
                if server is not primary and _running(server):
                    following = _info(server.port, "replication").get("master_port")
                    if following != str(primary.port):
                        raise _NotYet(f"{server.port} replicates from {following}")
                    _replica_in_sync(server.port)
            return primary

        primary = _wait_until(check, timeout, "Sentinel deployment settling")
        self._last_primary = (HOST, primary.port)
        return primary

    def wait_until_replicated(self, timeout: float = 10.0) -> None:
        """Wait until the replica has applied every write the current primary had taken."""
        primary = self.current_primary()
        others = [server for server in (self.primary, self.replica) if server is not primary]
        _replicated(primary, others, timeout)


# --- Cluster -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClusterNodeLine:
    """One line of CLUSTER NODES."""

    node_id: str
    port: int
    flags: frozenset[str]
    primary_id: str | None
    connected: bool
    slots: tuple[str, ...]

    @classmethod
    def parse(cls, line: str) -> _ClusterNodeLine:
        node_id, address, flags, primary, *rest = line.split()
        return cls(
            node_id,
            int(address.split("@")[0].rsplit(":", 1)[1]),
            frozenset(flags.split(",")),
            None if primary == "-" else primary,
            rest[3] == "connected",
            tuple(rest[4:]),
        )

    @property
    def view(self) -> tuple[str, bool, str | None, tuple[str, ...]]:
        """What every node should agree on: id, whether a replica, of whom, which slots."""
        return (self.node_id, "slave" in self.flags, self.primary_id, self.slots)


_UNHEALTHY = frozenset({"fail", "fail?", "handshake", "noaddr"})


def _cluster_nodes(port: int, real: dict[int, int] | None = None) -> list[_ClusterNodeLine]:
    """CLUSTER NODES of the node on `port`; `real` maps announced ports to listening ones."""
    lines = [
        _ClusterNodeLine.parse(line)
        for line in _text(call(port, "CLUSTER", "NODES")).splitlines()
        if line
    ]
    if real:
        lines = [dataclasses.replace(line, port=real.get(line.port, line.port)) for line in lines]
    return lines


def _slot_owners(port: int, real: dict[int, int] | None = None) -> set[int]:
    """The ports of the primaries that `port`'s CLUSTER SLOTS names, checking full coverage;
    `real` maps announced ports to listening ones."""
    owners: set[int] = set()
    covered = 0
    for entry in _items(call(port, "CLUSTER", "SLOTS")):
        start, end, primary, *_ = _items(entry)
        covered += int(str(end)) - int(str(start)) + 1
        announced = int(str(_items(primary)[1]))
        owners.add((real or {}).get(announced, announced))
    if covered != CLUSTER_SLOTS:
        raise _NotYet(f"node {port}: CLUSTER SLOTS covers {covered} slots")
    return owners


class ClusterDeployment(_Deployment):
    """A Redis Cluster of `primaries` primaries with `replicas_per_primary` replicas each.

    Created with `redis-cli --cluster create`; `start` returns once every node says
    `cluster_state:ok`, all 16384 slots are assigned, and every replica is in sync. With
    `--cluster-node-timeout 1000` a killed primary's replica takes over within a few seconds.

    A node keeps its `nodes-<port>.conf` (its identity and view of the cluster) in the
    deployment's directory, so `restart()` brings it back as the same node, empty, and rejoining:
    a killed primary whose replica took over comes back as that replica's replica.

    With `proxied=True` each node has a `FaultProxy` in front of it and announces the proxy's
    port (`cluster-announce-port`), so clients reach every node, after redirections too, through
    its proxy; the deployment's own checks talk to the nodes directly. Replicas then replicate
    through the proxies as well.

    Attributes:
        nodes: Every node, as a `RedisServer` (kill, freeze, thaw, restart).
        primaries: The nodes created as primaries.
        replicas: The nodes created as replicas.
        node_ids: Each node's cluster id, by port.
        seed_url: `redis://` URL of the first node, for `RedisCluster.from_url`.
        startup_nodes: Every node's `(host, port)`.
        proxies: With `proxied=True`, each node's proxy, by the node's port.
    """

    def __init__(
        self,
        primaries: int = 3,
        replicas_per_primary: int = 0,
        *,
        node_timeout_ms: int = 1000,
        startup_timeout: float = 30.0,
        proxied: bool = False,
    ) -> None:
        if primaries < 3:
            raise ValueError(f"primaries={primaries}: redis-cli needs at least 3 to make a cluster")
        if replicas_per_primary < 0:
            raise ValueError(f"replicas_per_primary={replicas_per_primary} must be >= 0")
        self.replicas_per_primary = replicas_per_primary
        self.startup_timeout = startup_timeout
        count = primaries * (1 + replicas_per_primary)
        # The bus port is chosen too: the default, port + 10000, may be taken or above 65535.
        ports = _free_ports((3 if proxied else 2) * count)
        self.directory = Path(tempfile.mkdtemp(prefix="valerie-cluster-"))
        self.proxies = (
            {
                port: FaultProxy(port, proxy_port)
                for port, proxy_port in zip(ports[:count], ports[2 * count :], strict=True)
            }
            if proxied
            else {}
        )
        self._real_ports = {proxy.port: port for port, proxy in self.proxies.items()}
        self.nodes = [
            RedisServer(port, *self._node_args(port, bus_port, node_timeout_ms))
            for port, bus_port in zip(ports[:count], ports[count : 2 * count], strict=True)
        ]
        self.servers = list(self.nodes)
        self.primaries: list[RedisServer] = []
        self.replicas: list[RedisServer] = []
        self.node_ids: dict[int, str] = {}
        self._replicas_of: dict[int, list[int]] = {}

    def _node_args(self, port: int, bus_port: int, node_timeout_ms: int) -> tuple[str, ...]:
        proxy = self.proxies.get(port)
        announce = ("--cluster-announce-port", str(proxy.port)) if proxy is not None else ()
        return (
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.directory / f"nodes-{port}.conf"),
            "--cluster-node-timeout", str(node_timeout_ms),
            "--cluster-port", str(bus_port),
            *announce,
            *_FAST_SYNC,
        )  # fmt: skip

    @property
    def seed_url(self) -> str:
        """`redis://127.0.0.1:<first node's port>`."""
        return f"redis://{HOST}:{self.nodes[0].port}"

    @property
    def startup_nodes(self) -> list[Address]:
        """Every node's `(host, port)`."""
        return [(HOST, node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """The `redis+cluster://` URL of every node (of its proxy, if proxied), in the form
        valerie's store accepts."""
        ports = [self.proxies[node.port].port if self.proxies else node.port for node in self.nodes]
        return "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in ports)

    def node_at(self, port: int) -> RedisServer:
        """Return the node listening on `port`."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        """The replicas of `primary`, as of startup or the last `wait_for_failover`."""
        return [self.node_at(port) for port in self._replicas_of.get(primary.port, [])]

    def start(self) -> None:
        """Start the nodes, create the cluster and wait until it serves every slot."""
        for proxy in self.proxies.values():
            proxy.start()
        for node in self.nodes:
            node.start()
        created = subprocess.run(
            [
                "redis-cli", "--cluster", "create",
                *(f"{HOST}:{node.port}" for node in self.nodes),
                "--cluster-replicas", str(self.replicas_per_primary),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=self.startup_timeout,
            check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise DeploymentError(
                f"redis-cli --cluster create failed ({created.returncode}):\n"
                f"{created.stdout[-2000:]}{created.stderr[-2000:]}"
            )
        self.wait_until_ok(self.startup_timeout)
        self.primaries = [node for node in self.nodes if node.port in self._replicas_of]
        self.replicas = [node for node in self.nodes if node.port not in self._replicas_of]

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """Wait until the running nodes form a healthy cluster that agrees with itself.

        That is: every running node says cluster_state:ok and knows every node; its CLUSTER
        SLOTS covers all 16384 slots with running primaries; it sees every other running node as
        connected and not failing; all agree on who is whose replica and who serves which slots;
        and every replica is in sync. The roles learned here are what `replicas_of` answers.
        """
        running = [node for node in self.nodes if _running(node)]
        running_ports = {node.port for node in running}

        def check() -> None:
            views = set()
            for node in running:
                info = _info(node.port, "cluster-info")
                state = (
                    info["cluster_state"],
                    info["cluster_slots_ok"],
                    info["cluster_known_nodes"],
                )
                if state != ("ok", str(CLUSTER_SLOTS), str(len(self.nodes))):
                    raise _NotYet(f"node {node.port}: CLUSTER INFO state, slots, nodes = {state}")
                owners = _slot_owners(node.port, self._real_ports)
                if not owners <= running_ports:
                    raise _NotYet(f"node {node.port}: slots served by {owners - running_ports}")
                lines = _cluster_nodes(node.port, self._real_ports)
                for line in lines:
                    if line.port in running_ports and (
                        line.flags & _UNHEALTHY or not line.connected
                    ):
                        raise _NotYet(f"node {node.port} sees {line.port} as {line}")
                views.add(frozenset(line.view for line in lines))
                if any("myself" in line.flags and "slave" in line.flags for line in lines):
                    _replica_in_sync(node.port)
            if len(views) != 1:
                raise _NotYet(f"the nodes disagree on roles and slots: {views}")

        _wait_until(check, timeout, "cluster_state:ok on every node")
        self._learn_topology(running[0].port)

    def _learn_topology(self, port: int) -> None:
        lines = _cluster_nodes(port, self._real_ports)
        by_id = {line.node_id: line.port for line in lines}
        self.node_ids = {line.port: line.node_id for line in lines}
        self._replicas_of = {
            line.port: [] for line in lines if "master" in line.flags and line.slots
        }
        for line in lines:
            if line.primary_id is not None:
                self._replicas_of.setdefault(by_id[line.primary_id], []).append(line.port)

    def wait_for_failover(self, killed_node: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Wait until a replica of `killed_node` (a primary, killed) has taken over; return it.

        Done means: that replica says `ROLE` master, and every other running node says
        cluster_state:ok and no longer routes any slot to `killed_node`. A frozen node among
        the others makes this wait time out.

        Raises:
            DeploymentError: No takeover within `timeout`.
        """
        candidates = [self.node_at(port) for port in self._replicas_of.get(killed_node.port, [])]
        if not candidates:
            raise ValueError(f"node {killed_node.port} has no replica to take over")
        survivors = [node for node in self.nodes if node is not killed_node and _running(node)]

        def check() -> RedisServer:
            promoted = [
                node
                for node in candidates
                if _running(node) and _items(call(node.port, "ROLE"))[0] == "master"
            ]
            if not promoted:
                raise _NotYet(f"no replica of {killed_node.port} is a primary yet")
            for node in survivors:
                if _info(node.port, "cluster-info")["cluster_state"] != "ok":
                    raise _NotYet(f"node {node.port} says cluster_state is not ok")
                if killed_node.port in _slot_owners(node.port, self._real_ports):
                    raise _NotYet(f"node {node.port} still routes slots to {killed_node.port}")
            return promoted[0]

        promoted = _wait_until(check, timeout, f"failover of {killed_node.port}")
        self._learn_topology(promoted.port)
        return promoted

    def wait_until_replicated(self, timeout: float = 10.0) -> None:
        """Wait until every replica has applied every write its primary had taken."""
        for port, replica_ports in self._replicas_of.items():
            primary = self.node_at(port)
            if _running(primary) and replica_ports:
                _replicated(primary, [self.node_at(p) for p in replica_ports], timeout)

    def close(self) -> None:
        """Kill every node and proxy, and remove every directory of the deployment."""
        super().close()
        for proxy in self.proxies.values():
            proxy.close()
        shutil.rmtree(self.directory, ignore_errors=True)


# --- TLS ---------------------------------------------------------------------------------------

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = valerie test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
# P-256 keys: generated in milliseconds, where RSA takes a noticeable fraction of a second.
_NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@functools.cache
def redis_supports_tls(executable: str = "redis-server") -> bool:
    """Return whether `executable` was built with TLS (it then knows the `tls-port` directive).

    Probed by starting it with neither a TCP nor a TLS port: a TLS build exits at once saying it
    is configured to listen nowhere; a build without TLS rejects `tls-port` as a bad directive.
    """
    with tempfile.TemporaryDirectory(prefix="valerie-tls-probe-") as directory:
        try:
            probe = subprocess.run(
                [executable, "--port", "0", "--tls-port", "0", "--bind", HOST, "--save", "",
                 "--appendonly", "no", "--dir", directory],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return True  # it accepted the directive and kept running (run() has killed it)
    return "Bad directive" not in probe.stdout + probe.stderr


def _make_certificates(directory: Path) -> None:
    """Write a CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    directory.mkdir(mode=0o700)
    (directory / "openssl.cnf").write_text(_OPENSSL_CONFIG)

    def openssl(*args: str) -> None:
        done = subprocess.run(
            ["openssl", *args],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise TlsUnsupported(f"openssl {' '.join(args)} failed:\n{done.stderr[-2000:]}")

    openssl(
        "req", "-x509", "-config", "openssl.cnf", "-extensions", "ca", *_NEW_KEY,
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=valerie test CA",
    )  # fmt: skip
    for name, common_name in (("server", "localhost"), ("client", "valerie test client")):
        openssl(
            "req", "-new", "-config", "openssl.cnf", *_NEW_KEY,
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={common_name}",
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-set_serial", str(secrets.randbits(63)), "-days", "2",
            "-extfile", "openssl.cnf", "-extensions", name, "-out", f"{name}.crt",
        )  # fmt: skip


def _check_tls_support() -> None:
    executable = shutil.which("redis-server")
    if executable is not None and not redis_supports_tls(executable):
        raise TlsUnsupported(
            f"{executable} was built without TLS support (it rejects `tls-port`); TLS tests "
            "need a build with BUILD_TLS=yes, such as Debian's and Homebrew's redis packages"
        )
    if shutil.which("openssl") is None:
        raise TlsUnsupported("the `openssl` command is not on PATH; it makes the test certs")


def make_certificates(directory: Path) -> Path:
    """Make a test CA, a server and a client certificate in `directory` (new); return it.

    Several `TlsRedisServer`s given the same directory trust each other, as a deployment's
    servers must (replication and Sentinel over TLS).

    Raises:
        TlsUnsupported: `redis-server` cannot do TLS, or `openssl` is missing or failed.
    """
    _check_tls_support()
    _make_certificates(directory)
    return directory


class TlsRedisServer(AccessedServer):
    """A `redis-server` that speaks TLS only, with a test CA, server and client certificates.

    The certificates are made with the `openssl` command in the server's temp directory (or
    taken from `certificates`, made by `make_certificates`), and the server certificate is
    valid for `IP:127.0.0.1` and `DNS:localhost`, so clients can verify it with `ca_cert` and
    hostname checking on. `port` is the TLS port; plain TCP is off. Outgoing connections
    (replication, a Sentinel's links) use TLS too, with the client certificate.

    Attributes:
        ca_cert: The test CA's certificate (`ssl_ca_certs`).
        client_cert: A client certificate signed by the CA (`ssl_certfile`).
        client_key: Its key (`ssl_keyfile`).
        server_cert: The server's certificate.
        server_key: The server's key.
        auth_clients: `tls-auth-clients`: "yes" (a client certificate is required),
            "optional" (checked if sent) or "no".
    """

    def __init__(
        self,
        port: int | None = None,
        *extra_args: str,
        auth_clients: Literal["yes", "optional", "no"] = "optional",
        certificates: Path | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        _check_tls_support()
        super().__init__(port, *extra_args, access=Access())
        self.auth_clients = auth_clients
        tls = certificates or self.directory / "tls"
        self.ca_cert = tls / "ca.crt"
        self.server_cert, self.server_key = tls / "server.crt", tls / "server.key"
        self.client_cert, self.client_key = tls / "client.crt", tls / "client.key"
        if certificates is None:
            try:
                _make_certificates(tls)
            except BaseException:
                self.close()
                raise
        self.access = _ACCESS[self.port] = Access(self.ssl_context(), login)
        self.extra_args = (
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.server_cert),
            "--tls-key-file", str(self.server_key),
            "--tls-ca-cert-file", str(self.ca_cert),
            "--tls-auth-clients", auth_clients,
            "--tls-replication", "yes",
            "--tls-client-cert-file", str(self.client_cert),
            "--tls-client-key-file", str(self.client_key),
            *extra_args,
        )  # fmt: skip

    @property
    def url(self) -> str:
        """`rediss://127.0.0.1:<port>/0` (the client must still be given `ca_cert`)."""
        return f"rediss://{HOST}:{self.port}/0"

    def verified_url(self, client_cert: bool = False) -> str:
        """`url` with `ssl_ca_certs` (and the client certificate) as redis-py query parameters."""
        query = {"ssl_ca_certs": str(self.ca_cert)}
        if client_cert:
            query |= {"ssl_certfile": str(self.client_cert), "ssl_keyfile": str(self.client_key)}
        return f"{self.url}?{urlencode(query)}"

    def ssl_context(self, client_cert: bool = True) -> ssl.SSLContext:
        """A client context that trusts the test CA and (by default) presents the client cert."""
        context = ssl.create_default_context(cafile=self.ca_cert)
        if client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def command(self, *args: str) -> bytes:
        """Send one command with redis-cli over TLS and return its raw output."""
        return subprocess.run(
            [
                "redis-cli", "-p", str(self.port), "--tls", "--cacert", str(self.ca_cert),
                "--cert", str(self.client_cert), "--key", str(self.client_key), "--no-raw", *args,
            ],
            check=True,
            capture_output=True,
            timeout=10,
        ).stdout  # fmt: skip


# --- ACL ---------------------------------------------------------------------------------------

DENIED_COMMANDS = (
    "flushdb", "flushall", "keys", "config", "debug", "shutdown", "acl", "module", "monitor",
    "replicaof", "slaveof", "failover", "swapdb", "migrate", "restore",
)  # fmt: skip
"""What an ACL user made by `create_acl_user` may not run: whole-database and admin commands."""


@dataclass(frozen=True)
class AclUser:
    """A Redis user limited to keys under one prefix, as made by `create_acl_user`."""

    username: str
    password: str = field(repr=False)
    key_pattern: str
    url: str = field(repr=False)


def create_acl_user(
    server: RedisServer,
    *more_servers: RedisServer,
    prefix: str,
    username: str | None = None,
    password: str | None = None,
    denied: Sequence[str] = DENIED_COMMANDS,
) -> AclUser:
    """Create (or replace) a user allowed only keys starting with `prefix` and no `denied`
    command, on `server` and each of `more_servers`; return it with a URL for `server`.

    ACLs are per server and not replicated: pass every data node of a deployment (the Sentinel
    replica, every Cluster node) for the user to survive a failover. A restarted server has
    forgotten the user (nothing is persisted). Glob characters in `prefix` are escaped, so they
    match only themselves.

    Args:
        server: The server whose URL (with this user's credentials) is returned.
        *more_servers: Other servers to create the same user on.
        prefix: The key prefix the user is limited to (`~<prefix>*`).
        username: The user's name; a random one if not given.
        password: The user's password; a random one if not given.
        denied: Commands to take away from `+@all`.
    """
    username = username or f"valerie-{secrets.token_hex(4)}"
    password = password or secrets.token_urlsafe(16)
    escaped = "".join(f"\\{char}" if char in "*?[]\\" else char for char in prefix)
    key_pattern = f"~{escaped}*"
    rules = ["reset", "on", f">{password}", key_pattern, "+@all", *(f"-{c}" for c in denied)]
    for target in (server, *more_servers):
        # Over RESP rather than redis-cli, so the password never shows in a process list.
        reply = call_server(target, "ACL", "SETUSER", username, *rules)
        if reply != "OK":
            raise DeploymentError(f"ACL SETUSER {username} on {target.port} answered {reply!r}")
    scheme, _, rest = server.url.partition("://")
    url = f"{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{rest}"
    return AclUser(username, password, key_pattern, url)
