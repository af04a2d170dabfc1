"""Checks of a Redis server (each node of a Cluster): read-only, each bounded by timeouts.

A command the server refuses (no permission, renamed away on a managed service) makes its
check a WARN that names what could not be checked, never a crash.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import NoPermissionError, RedisError, ResponseError

from .findings import GRAVITY as _GRAVITY
from .findings import Finding, failed, passed, warned
from .nodes import Node

MINIMUM_VERSION = (6, 2)
PINGS = 30
HEADROOM_WARN = 0.80
HEADROOM_FAIL = 0.95
LAG_WARN_SECONDS = 10
SLOTS = 16384

# The commands the store sends on keys of its prefix (the README's ACL rule), as
# `acl_check_cmd` arguments; <key> is a key of the prefix, <lock> a lease key.
STORE_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("GET", "<key>"),
    ("SET", "<key>", "v", "EX", "1"),
    ("GETEX", "<key>", "EX", "1"),
    ("EXISTS", "<key>"),
    ("UNLINK", "<key>"),
    ("EXPIRE", "<key>", "1"),
    ("PTTL", "<key>"),
    ("SCAN", "0"),
    ("EVAL", "return 1", "1", "<key>"),
    ("DEL", "<key>"),
    ("PEXPIRE", "<lock>", "1"),
    ("PING",),
)
CLI_COMMANDS: tuple[tuple[str, ...], ...] = (("STRLEN", "<key>"),)
"""What only this command line sends (`ls`, `stats`)."""

_ACL_CHECK = """
local denied = {}
local i = 1
while i <= #ARGV do
    local n = tonumber(ARGV[i])
    local args = {}
    for j = 1, n do args[j] = ARGV[i + j] end
    if not redis.acl_check_cmd(unpack(args)) then table.insert(denied, args[1]) end
    i = i + n + 1
end
return denied
"""


def refused(error: Exception) -> bool:
    """Whether the server refused a command (permission, unknown or renamed command)."""
    return isinstance(error, (NoPermissionError, ResponseError))


def reason(error: BaseException) -> str:
    """The first line of an error, short."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


def text(value: Any) -> str:
    """A reply as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def percentile(samples: list[float], share: float) -> float:
    """The `share` quantile (0.5, 0.99) of the samples, in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def timed(call: Callable[[], Awaitable[Any]], times: int) -> list[float]:
    """Seconds each of `times` calls took."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def check_reachable(node: Node) -> tuple[Finding, list[float]]:
    """PING, a few dozen times: reachable, and the samples for the latency check."""
    await node.command("PING")  # connects: not a round trip to count
    samples = await timed(lambda: node.command("PING"), PINGS)
    return passed("reachable", f"{node.name} answers PING"), samples


async def check_version(nodes: list[Node]) -> Finding:
    """Redis 6.2 or later (GETEX)."""
    versions = []
    for node in nodes:
        try:
            info = await node.command("INFO", "server")
        except RedisError as error:
            if refused(error):
                return warned(
                    "version",
                    f"INFO refused ({reason(error)}): check by hand that "
                    "the server is Redis 6.2 or later",
                )
            raise
        versions.append((node.name, str(info.get("redis_version", "?"))))
    oldest_name, oldest = min(versions, key=lambda item: _version_tuple(item[1]))
    if _version_tuple(oldest) < MINIMUM_VERSION:
        return failed(
            "version",
            f"{oldest_name} runs Redis {oldest}; the store needs 6.2 or "
            "later (GETEX): upgrade the server",
        )
    return passed("version", f"Redis {oldest}" + (" (oldest node)" if len(nodes) > 1 else ""))


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return (0,)


def check_latency(
    pings: list[float], swaps: list[float] | None, swap_error: str | None, limit_ms: float
) -> Finding:
    """p50 and p99 of the pings and of compare-and-set script calls, against `limit_ms`."""
    shown = f"PING p50 {percentile(pings, 0.5):.2f} ms, p99 {percentile(pings, 0.99):.2f} ms"
    worst = percentile(pings, 0.99)
    if swaps:
        shown += (
            f"; compare-and-set p50 {percentile(swaps, 0.5):.2f} ms, "
            f"p99 {percentile(swaps, 0.99):.2f} ms"
        )
        worst = max(worst, percentile(swaps, 0.99))
    if swap_error is not None:
        return warned("latency", f"{shown}; compare-and-set not measured: {swap_error}")
    if worst > limit_ms:
        return warned(
            "latency",
            f"{shown}: above {limit_ms:g} ms; check the network path "
            "and the server's load (SLOWLOG GET, INFO commandstats)",
        )
    return passed("latency", f"{shown} (limit {limit_ms:g} ms)")


async def check_eviction_policy(nodes: list[Node]) -> Finding:
    """`maxmemory-policy`: only noeviction keeps every session."""
    policies = []
    for node in nodes:
        try:
            reply = await node.command("CONFIG", "GET", "maxmemory-policy")
        except RedisError as error:
            if refused(error):
                return warned(
                    "eviction-policy",
                    f"CONFIG GET refused ({reason(error)}), as on "
                    "managed services: check by hand (in the provider's console) "
                    "that maxmemory-policy is noeviction",
                )
            raise
        policies.append((node.name, text(_config_value(reply))))
    for name, policy in policies:
        if policy.startswith("allkeys-"):
            return failed(
                "eviction-policy",
                f"{name} has maxmemory-policy {policy}: at "
                "maxmemory Redis evicts live sessions silently; set noeviction "
                "(CONFIG SET maxmemory-policy noeviction, and in redis.conf)",
            )
    for name, policy in policies:
        if policy.startswith("volatile-"):
            return warned(
                "eviction-policy",
                f"{name} has maxmemory-policy {policy}: every "
                "session has a TTL, so at maxmemory Redis evicts sessions silently; "
                "set noeviction unless sessions may be lost",
            )
    if all(policy == "noeviction" for _, policy in policies):
        return passed(
            "eviction-policy",
            "noeviction: a full server refuses writes loudly and keeps every session",
        )
    return warned(
        "eviction-policy", f"unknown maxmemory-policy {policies[0][1]}: check that it is noeviction"
    )


def _config_value(reply: Any) -> Any:
    if isinstance(reply, dict):
        return next(iter(reply.values()), b"")
    if isinstance(reply, list) and len(reply) == 2:
        return reply[1]
    return reply


async def check_memory(nodes: list[Node]) -> list[Finding]:
    """`maxmemory` headroom, and `evicted_keys` since the server started."""
    headrooms: list[Finding] = []
    evicted = 0
    for node in nodes:
        try:
            memory = await node.command("INFO", "memory")
            stats = await node.command("INFO", "stats")
        except RedisError as error:
            if refused(error):
                return [
                    warned(
                        "memory-headroom",
                        f"INFO refused ({reason(error)}): check "
                        "used_memory against maxmemory by hand",
                    ),
                    warned("evictions", "INFO refused: check evicted_keys by hand"),
                ]
            raise
        evicted += int(stats.get("evicted_keys", 0))
        headrooms.append(
            _headroom(node, int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0)))
        )
    headroom = max(headrooms, key=lambda finding: _GRAVITY[finding.status])
    if evicted:
        eviction = warned(
            "evictions",
            f"{evicted} keys evicted since the server started: "
            "sessions may have been lost; set maxmemory-policy noeviction and "
            "size maxmemory",
        )
    else:
        eviction = passed("evictions", "no key evicted since the server started")
    return [headroom, eviction]


def _headroom(node: Node, used: int, limit: int) -> Finding:
    if not limit:
        return passed(
            "memory-headroom",
            f"{node.name}: no maxmemory set, so Redis grows "
            "until the machine's memory runs out; set maxmemory to fail loudly first",
        )
    share = used / limit
    shown = f"{node.name} uses {share:.0%} of maxmemory ({used} of {limit} bytes)"
    if share >= HEADROOM_FAIL:
        return failed(
            "memory-headroom",
            f"{shown}: writes are about to fail (or sessions to "
            "be evicted); raise maxmemory or add memory",
        )
    if share >= HEADROOM_WARN:
        return warned("memory-headroom", f"{shown}: raise maxmemory before it is reached")
    return passed("memory-headroom", shown)


async def check_persistence(nodes: list[Node]) -> Finding:
    """AOF or RDB enabled, and the last write of each succeeded: sessions survive a restart."""
    for node in nodes:
        try:
            info = await node.command("INFO", "persistence")
        except RedisError as error:
            if refused(error):
                return warned(
                    "persistence",
                    f"INFO refused ({reason(error)}): check by hand that appendonly or save is set",
                )
            raise
        if info.get("rdb_last_bgsave_status") not in (None, "ok"):
            return failed(
                "persistence",
                f"{node.name}: the last background save failed "
                "(rdb_last_bgsave_status): a restart would lose sessions; read the "
                "server log (disk full? permissions?)",
            )
        if int(info.get("aof_enabled", 0)):
            if info.get("aof_last_write_status") not in (None, "ok"):
                return failed(
                    "persistence",
                    f"{node.name}: the last AOF write failed: read "
                    "the server log (disk full? permissions?)",
                )
            continue
        try:
            save = text(_config_value(await node.command("CONFIG", "GET", "save")))
        except RedisError as error:
            if refused(error):
                return warned(
                    "persistence",
                    f"{node.name}: AOF is off and CONFIG GET save "
                    f"was refused ({reason(error)}): check by hand that RDB "
                    "snapshots (save) are on, or set appendonly yes",
                )
            raise
        if not save.strip():
            return warned(
                "persistence",
                f"{node.name} has neither AOF nor RDB snapshots: a "
                "restart loses every session; set appendonly yes (or save)",
            )
    return passed("persistence", "AOF or RDB on, last writes succeeded: sessions survive a restart")


async def check_permissions(
    nodes: list[Node], key: str, lock: str, extra: tuple[tuple[str, ...], ...] = ()
) -> Finding:
    """Every command the store sends is allowed on its keys, scripting included (Redis 7+)."""
    commands = [_with_keys(c, key, lock) for c in (*STORE_COMMANDS, *extra)]
    cli_only = [_with_keys(c, key, lock) for c in CLI_COMMANDS]
    for node in nodes:
        try:
            denied = await _acl_check(node, commands)
            cli_denied = await _acl_check(node, cli_only)
        except RedisError as error:
            if isinstance(error, NoPermissionError):
                return failed(
                    "permissions",
                    f"{node.name} refuses scripts ({reason(error)}): "
                    "update, versions and leases need EVAL; add +eval to the user",
                )
            if "acl_check_cmd" in str(error):
                return warned(
                    "permissions",
                    "Redis before 7 cannot check permissions: run the README's ACL rule by hand",
                )
            if refused(error):
                return warned("permissions", f"could not check permissions ({reason(error)})")
            raise
        if denied:
            names = " ".join(f"+{name.lower()}" for name in denied)
            return failed(
                "permissions",
                f"{node.name} refuses {', '.join(denied)} on the "
                f"store's keys: calls that need them fail; add {names} (see the "
                "README's ACL rule)",
            )
        if cli_denied:
            return warned(
                "permissions",
                f"the store's commands are allowed; this command "
                f"line's ls and stats also need {', '.join(cli_denied)} (+strlen)",
            )
    return passed(
        "permissions", "every command the store sends is allowed on its keys, scripting included"
    )


def _with_keys(command: tuple[str, ...], key: str, lock: str) -> tuple[str, ...]:
    return tuple(key if a == "<key>" else lock if a == "<lock>" else a for a in command)


async def _acl_check(node: Node, commands: list[tuple[str, ...]]) -> list[str]:
    arguments: list[Any] = []
    for command in commands:
        arguments += [len(command), *command]
    reply = await node.command("EVAL", _ACL_CHECK, 0, *arguments)
    return [text(name) for name in reply]


async def check_replication(nodes: list[Node], min_replicas: int) -> Finding:
    """Replicas connected (against `min_replicas`) and their lag."""
    notes = []
    for node in nodes:
        try:
            info = await node.command("INFO", "replication")
        except RedisError as error:
            if refused(error):
                return warned(
                    "replication", f"INFO refused ({reason(error)}): check the replicas by hand"
                )
            raise
        if info.get("role") != "master":
            return failed(
                "replication",
                f"{node.name} is a replica: the store's writes fail "
                "there; point the URL at the primary (or use Sentinel)",
            )
        connected = int(info.get("connected_slaves", 0))
        lags = [
            int(v.get("lag", 0))
            for k, v in info.items()
            if k.startswith("slave") and isinstance(v, dict)
        ]
        if connected < min_replicas:
            return failed(
                "replication",
                f"{node.name} has {connected} replicas connected, "
                f"fewer than min_replicas={min_replicas}: every write would raise "
                "ReplicationError; reconnect the replicas",
            )
        if lags and max(lags) > LAG_WARN_SECONDS:
            return warned(
                "replication",
                f"{node.name}: a replica lags {max(lags)} s behind: "
                "a failover now would lose the sessions written since",
            )
        notes.append(connected)
    if not any(notes):
        return passed(
            "replication",
            "no replicas: a crash loses what was not persisted "
            "(fine for one server with persistence)",
        )
    return passed("replication", f"replicas connected: {', '.join(map(str, notes))}, in sync")


async def check_cluster_slots(seed: Node) -> Finding:
    """Every one of the 16384 slots is assigned and served."""
    try:
        raw = text(await seed.command("CLUSTER", "INFO"))
    except RedisError as error:
        if refused(error):
            return warned(
                "cluster-slots",
                f"CLUSTER INFO refused ({reason(error)}): check slot coverage by hand",
            )
        raise
    info = dict(line.split(":", 1) for line in raw.splitlines() if ":" in line)
    served = int(info.get("cluster_slots_ok", 0))
    state = info.get("cluster_state", "?")
    if served < SLOTS or state != "ok":
        return failed(
            "cluster-slots",
            f"cluster_state {state}, {SLOTS - served} of {SLOTS} "
            "slots not served: sessions whose keys hash there cannot be read or "
            "written; assign them (redis-cli --cluster fix)",
        )
    return passed("cluster-slots", f"all {SLOTS} slots served, cluster_state ok")
