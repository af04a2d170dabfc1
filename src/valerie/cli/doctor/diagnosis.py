"""The Redis side of `doctor`: connects, runs each server check, never writes.

Imported only when the target is Redis, so the command line works without redis-py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable

from redis.exceptions import AuthenticationError, RedisError

from valerie.infrastructure import SessionStoreError, VersionConflictError
from valerie.infrastructure.session_store.backends.redis.topology import connection_options

from ..settings import Target
from . import server_checks as checks
from .findings import Finding, failed, warned
from .nodes import Node, cluster_primaries, entry_node, slot_ranges, target_of
from .tls_check import check_certificate

PROBE_ID = "valerie-doctor-probe"
"""The session id whose key the checks name: never written (its compare-and-set never matches)."""

NO_VERSION = "0" * 40
"""A version no stored value has: the compare-and-set script reads, compares, writes nothing."""

SWAPS = 20


async def diagnose_redis(
    target: Target, limit_ms: float, min_replicas: int, configured: list[Finding]
) -> list[Finding]:
    """Run every server check that applies to the target's deployment, then `configured`."""
    redis_target = target_of(target.url)
    findings: list[Finding] = []
    async with entry_node(redis_target) as entry:
        try:
            reachable, pings = await checks.check_reachable(entry)
        except RedisError as error:
            return [_unreachable(entry, error), *configured]
        findings.append(reachable)
        if redis_target.topology == "cluster":
            findings.append(await _guarded("cluster-slots", checks.check_cluster_slots(entry)))
            seed = redis_target.nodes[0][0]
            try:
                ranges = slot_ranges(await entry.command("CLUSTER", "SLOTS"), seed)
            except RedisError as error:
                return [
                    *findings,
                    warned(
                        "cluster",
                        f"CLUSTER SLOTS refused ({checks.reason(error)}): nodes not checked",
                    ),
                    *configured,
                ]
            async with cluster_primaries(redis_target, ranges) as nodes:
                findings += await _node_checks(target, nodes, pings, limit_ms, min_replicas)
        else:
            findings += await _node_checks(target, [entry], pings, limit_ms, min_replicas)
    if redis_target.tls and redis_target.topology == "standalone":
        kwargs = entry.client.connection_pool.connection_kwargs
        findings.append(
            await check_certificate(
                str(kwargs.get("host")),
                int(kwargs.get("port", 6379)),
                connection_options(redis_target),
            )
        )
    return [*findings, *configured]


def _unreachable(entry: Node, error: RedisError) -> Finding:
    if isinstance(error, AuthenticationError):
        return failed(
            "reachable",
            f"{entry.name} refused the credentials "
            f"({checks.reason(error)}): check the user and password in the URL",
        )
    return failed(
        "reachable",
        f"cannot reach {entry.name} ({checks.reason(error)}): check "
        "the URL, that the server runs, and that this host may connect to it",
    )


async def _node_checks(
    target: Target, nodes: list[Node], pings: list[float], limit_ms: float, min_replicas: int
) -> list[Finding]:
    prefix = target.settings.prefix
    key = prefix + PROBE_ID
    extra: list[tuple[str, ...]] = []
    redis_target = target_of(target.url)
    if redis_target.topology == "cluster":
        extra += [("CLUSTER", "SLOTS"), ("COMMAND",)]
    if redis_target.db:
        extra.append(("SELECT", str(redis_target.db)))
    if min_replicas:
        extra.append(("WAIT", "1", "1"))
    swaps, swap_error = await _swap_timings(target)
    found = [
        await _guarded("version", checks.check_version(nodes)),
        checks.check_latency(pings, swaps, swap_error, limit_ms),
        await _guarded("eviction-policy", checks.check_eviction_policy(nodes)),
    ]
    try:
        found += await checks.check_memory(nodes)
    except RedisError as error:
        found.append(warned("memory-headroom", f"could not check: {checks.reason(error)}"))
    found += [
        await _guarded("persistence", checks.check_persistence(nodes)),
        await _guarded(
            "permissions",
            checks.check_permissions(nodes, key, key + "\x1flock", tuple(extra)),
        ),
        await _guarded("replication", checks.check_replication(nodes, min_replicas)),
    ]
    return found


async def _guarded(name: str, check: Awaitable[Finding]) -> Finding:
    """The check's finding, or a WARN naming what could not be checked: never a crash."""
    try:
        return await check
    except RedisError as error:
        return warned(name, f"could not check: {checks.reason(error)}")


async def _swap_timings(target: Target) -> tuple[list[float] | None, str | None]:
    """Seconds each of a few compare-and-set script calls took, through the store itself."""

    async def swap() -> None:
        # Nothing matches NO_VERSION, so the conflict is certain and nothing is written.
        with contextlib.suppress(VersionConflictError):
            await store.save(PROBE_ID, {}, ttl=1, if_version=NO_VERSION)

    try:
        async with target.settings.create_store() as store:
            await store.ping()  # connects: not a round trip to count
            return await checks.timed(swap, SWAPS), None
    except SessionStoreError as error:
        return None, str(error).splitlines()[0][:200]
