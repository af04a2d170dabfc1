"""A Redis Cluster deployment, optionally with a `FaultProxy` in front of every node."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

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
from tests.support.fault_proxy import FaultProxy
from tests.support.redis_server import RedisServer
from tests.support.resp import HOST, as_items, as_text, call, server_info

CLUSTER_SLOTS = 16384


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
        for line in as_text(call(port, "CLUSTER", "NODES")).splitlines()
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
    for entry in as_items(call(port, "CLUSTER", "SLOTS")):
        start, end, primary, *_ = as_items(entry)
        covered += int(str(end)) - int(str(start)) + 1
        announced = int(str(as_items(primary)[1]))
        owners.add((real or {}).get(announced, announced))
    if covered != CLUSTER_SLOTS:
        raise NotYet(f"node {port}: CLUSTER SLOTS covers {covered} slots")
    return owners


class ClusterDeployment(Deployment):
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
        ports = free_ports((3 if proxied else 2) * count)
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
            *FAST_SYNC,
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
        running = [node for node in self.nodes if is_running(node)]
        running_ports = {node.port for node in running}

        def check() -> None:
            views = set()
            for node in running:
                info = server_info(node.port, "cluster-info")
                state = (
                    info["cluster_state"],
                    info["cluster_slots_ok"],
                    info["cluster_known_nodes"],
                )
                if state != ("ok", str(CLUSTER_SLOTS), str(len(self.nodes))):
                    raise NotYet(f"node {node.port}: CLUSTER INFO state, slots, nodes = {state}")
                owners = _slot_owners(node.port, self._real_ports)
                if not owners <= running_ports:
                    raise NotYet(f"node {node.port}: slots served by {owners - running_ports}")
                lines = _cluster_nodes(node.port, self._real_ports)
                for line in lines:
                    if line.port in running_ports and (
                        line.flags & _UNHEALTHY or not line.connected
                    ):
                        raise NotYet(f"node {node.port} sees {line.port} as {line}")
                views.add(frozenset(line.view for line in lines))
                if any("myself" in line.flags and "slave" in line.flags for line in lines):
                    replica_in_sync(node.port)
            if len(views) != 1:
                raise NotYet(f"the nodes disagree on roles and slots: {views}")

        wait_until(check, timeout, "cluster_state:ok on every node")
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
        survivors = [node for node in self.nodes if node is not killed_node and is_running(node)]

        def check() -> RedisServer:
            promoted = [
                node
                for node in candidates
                if is_running(node) and as_items(call(node.port, "ROLE"))[0] == "master"
            ]
            if not promoted:
                raise NotYet(f"no replica of {killed_node.port} is a primary yet")
            for node in survivors:
                if server_info(node.port, "cluster-info")["cluster_state"] != "ok":
                    raise NotYet(f"node {node.port} says cluster_state is not ok")
                if killed_node.port in _slot_owners(node.port, self._real_ports):
                    raise NotYet(f"node {node.port} still routes slots to {killed_node.port}")
            return promoted[0]

        promoted = wait_until(check, timeout, f"failover of {killed_node.port}")
        self._learn_topology(promoted.port)
        return promoted

    def wait_until_replicated(self, timeout: float = 10.0) -> None:
        """Wait until every replica has applied every write its primary had taken."""
        for port, replica_ports in self._replicas_of.items():
            primary = self.node_at(port)
            if is_running(primary) and replica_ports:
                replicated(primary, [self.node_at(p) for p in replica_ports], timeout)

    def close(self) -> None:
        """Kill every node and proxy, and remove every directory of the deployment."""
        super().close()
        for proxy in self.proxies.values():
            proxy.close()
        shutil.rmtree(self.directory, ignore_errors=True)
