"""A Sentinel deployment: a primary, a replica and three Sentinels, optionally over TLS or with
the Sentinels behind an ACL login."""

from __future__ import annotations

import contextlib
import functools
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode

from tests.support.deployment import (
    FAST_SYNC,
    Address,
    Deployment,
    DeploymentError,
    NotYet,
    free_ports,
    is_running,
    replica_in_sync,
    replicated,
    wait_until,
)
from tests.support.redis_server import RedisServer
from tests.support.resp import (
    HOST,
    Access,
    AccessedServer,
    ReplyError,
    as_items,
    as_pairs,
    as_text,
    call,
    server_info,
)
from tests.support.tls import TlsRedisServer, make_certificates


class SentinelDeployment(Deployment):
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
        primary_port, replica_port, *sentinel_ports = free_ports(5)
        self.primary = self._add(primary_port, *FAST_SYNC)
        self.replica = self._add(replica_port, *FAST_SYNC, "--replicaof", HOST, str(primary_port))
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
        wait_until(lambda: replica_in_sync(self.replica.port), self.startup_timeout, "replica sync")
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
            wait_until(
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
        master = as_pairs(call(port, "SENTINEL", "MASTER", name))
        if (master["flags"], master["num-slaves"], master["num-other-sentinels"]) != (
            "master",
            "1",
            "2",
        ):
            raise NotYet(f"SENTINEL MASTER says {master}")
        replicas = [as_pairs(item) for item in as_items(call(port, "SENTINEL", "REPLICAS", name))]
        if [(r["flags"], r["master-link-status"]) for r in replicas] != [("slave", "ok")]:
            raise NotYet(f"SENTINEL REPLICAS says {replicas}")
        others = [as_pairs(item) for item in as_items(call(port, "SENTINEL", "SENTINELS", name))]
        if [other["flags"] for other in others] != ["sentinel", "sentinel"]:
            raise NotYet(f"SENTINEL SENTINELS says {others}")

    def _reported_primaries(self) -> list[Address]:
        """The primary address each running, answering Sentinel reports right now."""
        reported: list[Address] = []
        for sentinel in self.sentinels:
            if not is_running(sentinel):
                continue
            try:
                reply = as_items(
                    call(sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
                )
            except (OSError, ReplyError):
                continue
            reported.append((as_text(reply[0]), int(as_text(reply[1]))))
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
                raise NotYet(f"Sentinels report {reported}, old primary {old}")
            role = as_items(call(reported[0][1], "ROLE"))
            if role[0] != "master":
                raise NotYet(f"{reported[0]} has ROLE {role[0]}")
            return reported[0]

        self._last_primary = wait_until(check, timeout, f"failover away from {old}")
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
                raise NotYet(f"Sentinels report {reported}")
            primary = self.server_at(reported[0])
            if as_items(call(primary.port, "ROLE"))[0] != "master":
                raise NotYet(f"the reported primary {primary.port} is not a primary yet")
            for server in (self.primary, self.replica):
                if server is not primary and is_running(server):
                    following = server_info(server.port, "replication").get("master_port")
                    if following != str(primary.port):
                        raise NotYet(f"{server.port} replicates from {following}")
                    replica_in_sync(server.port)
            return primary

        primary = wait_until(check, timeout, "Sentinel deployment settling")
        self._last_primary = (HOST, primary.port)
        return primary

    def wait_until_replicated(self, timeout: float = 10.0) -> None:
        """Wait until the replica has applied every write the current primary had taken."""
        primary = self.current_primary()
        others = [server for server in (self.primary, self.replica) if server is not primary]
        replicated(primary, others, timeout)
