"""doctor against real redis-server processes configured well and badly, through the script."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli.conftest import Cli, Result
from tests.support.cluster import ClusterDeployment
from tests.support.redis_server import RedisServer, free_port
from tests.support.sentinel import SentinelDeployment
from tests.support.tls import TlsRedisServer
from valerie.cli.exit_codes import ExitCode
from valerie.infrastructure import RedisSessionStore

# The README's ACL rule, command by command.
STORE_COMMANDS = (
    "get", "set", "getex", "exists", "unlink", "expire", "pttl", "scan", "eval", "del",
    "pexpire", "ping",
)  # fmt: skip
# Most tests start a redis-server of their own (not through a fixture of tests/conftest.py).
pytestmark = pytest.mark.redis

RELAXED = ("--max-latency-ms", "1000")
"""A loaded test machine's latency is no finding of these tests (one test checks the limit)."""


def statuses(result: Result) -> dict[str, str]:
    document: dict[str, Any] = result.json()
    return {check["check"]: check["status"] for check in document["checks"]}


def messages(result: Result) -> dict[str, str]:
    return {check["check"]: check["message"] for check in result.json()["checks"]}


@pytest.fixture(scope="module")
def healthy_server() -> Iterator[RedisServer]:
    """AOF on, noeviction, no maxmemory: what the README recommends."""
    with RedisServer(None, "--appendonly", "yes") as server:
        yield server


def server_with(*options: str) -> RedisServer:
    return RedisServer(None, *options)


def user(server: RedisServer, *rule: str) -> str:
    """Create an ACL user with `rule`; return the server's URL logged in as it."""
    name, password = f"doc-{secrets.token_hex(4)}", secrets.token_hex(8)
    server.command("ACL", "SETUSER", name, "reset", "on", f">{password}", *rule)
    return f"redis://{name}:{password}@127.0.0.1:{server.port}/0"


def test_a_healthy_server_passes_every_check_within_two_seconds(
    cli: Cli, healthy_server: RedisServer
) -> None:
    """AOF on, noeviction, every permission: all PASS, exit code 0, in about 2 s at most."""
    result = cli("doctor", "--json", "--url", healthy_server.url, *RELAXED)
    assert result.code == ExitCode.OK, result.out
    assert set(statuses(result).values()) == {"pass"}
    assert list(statuses(result)) == [
        "reachable", "version", "latency", "eviction-policy", "memory-headroom", "evictions",
        "persistence", "permissions", "replication", "ttl", "prefix",
    ]  # fmt: skip
    assert result.json()["status"] == "pass"
    assert result.json()["seconds"] < 2
    table = cli("doctor", "--url", healthy_server.url, *RELAXED)
    assert table.code == 0
    assert table.out.splitlines()[0] == f"doctor: {healthy_server.url} prefix 'valerie:session:'"
    assert table.out.splitlines()[-1] == "PASS (exit code 0)"


@pytest.mark.parametrize(
    ("policy", "status", "code"),
    [
        ("allkeys-lru", "fail", ExitCode.FAILURES),
        ("allkeys-random", "fail", ExitCode.FAILURES),
        ("volatile-lru", "warn", ExitCode.WARNINGS),
        ("noeviction", "pass", ExitCode.OK),
    ],
)
def test_the_eviction_policy(cli: Cli, policy: str, status: str, code: ExitCode) -> None:
    """allkeys-* fails (sessions evicted silently), volatile-* warns (every session has a TTL)."""
    with server_with("--appendonly", "yes", "--maxmemory-policy", policy) as server:
        result = cli("doctor", "--json", "--url", server.url, *RELAXED)
    assert statuses(result)["eviction-policy"] == status
    assert result.code == code
    if status == "fail":
        assert "evicts live sessions silently" in messages(result)["eviction-policy"]


async def test_evicted_keys_warn_and_a_full_server_fails_headroom(cli: Cli) -> None:
    """A 2 MB server that has evicted sessions: evictions WARN, headroom near the limit."""
    with server_with("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru") as server:
        async with RedisSessionStore(server.url, prefix="fill:") as store:
            for batch in range(40):
                await store.save_many({f"{batch}-{i}": {"x": "y" * 1000} for i in range(100)})
        result = cli("doctor", "--json", "--url", server.url, *RELAXED)
    found = statuses(result)
    assert found["evictions"] == "warn"
    assert found["memory-headroom"] in ("warn", "fail")
    assert found["eviction-policy"] == "fail"
    assert result.code == ExitCode.FAILURES


def test_no_persistence_warns(cli: Cli, redis_server: RedisServer) -> None:
    """Neither AOF nor RDB: a restart loses every session, said with the fix."""
    result = cli("doctor", "--json", "--url", redis_server.url, *RELAXED)
    assert statuses(result)["persistence"] == "warn"
    assert "appendonly yes" in messages(result)["persistence"]
    assert result.code == ExitCode.WARNINGS


def test_an_acl_user_without_eval_fails_permissions(cli: Cli, redis_server: RedisServer) -> None:
    """The store's compare-and-set and leases need EVAL: its absence is a FAIL."""
    rule = [f"+{c}" for c in STORE_COMMANDS if c != "eval"]
    url = user(redis_server, "~*", "-@all", *rule, "+info", "+config|get")
    result = cli("doctor", "--json", "--url", url, *RELAXED)
    assert statuses(result)["permissions"] == "fail"
    assert "+eval" in messages(result)["permissions"]
    assert result.code == ExitCode.FAILURES


def test_a_missing_command_on_the_prefix_fails_permissions(
    cli: Cli, redis_server: RedisServer
) -> None:
    """Checked on a key of the prefix: GETEX denied is named, with the rule to add."""
    rule = [f"+{c}" for c in STORE_COMMANDS if c != "getex"]
    url = user(redis_server, "~valerie:session:*", "-@all", *rule, "+strlen", "+info")
    result = cli("doctor", "--json", "--url", url, *RELAXED)
    assert statuses(result)["permissions"] == "fail"
    assert "refuses GETEX" in messages(result)["permissions"]
    assert "+getex" in messages(result)["permissions"]
    wrong_keys = user(redis_server, "~other:*", "-@all", *[f"+{c}" for c in STORE_COMMANDS])
    assert statuses(cli("doctor", "--json", "--url", wrong_keys))["permissions"] == "fail"


def test_the_readme_rule_alone_degrades_to_warnings_never_a_crash(
    cli: Cli, redis_server: RedisServer
) -> None:
    """With exactly the README's rule, INFO and CONFIG are refused: each is a WARN that says
    what to check by hand; the store's own commands pass; STRLEN (ls, stats) warns."""
    url = user(redis_server, "~valerie:session:*", "-@all", *[f"+{c}" for c in STORE_COMMANDS])
    result = cli("doctor", "--json", "--url", url, *RELAXED)
    found = statuses(result)
    assert found["reachable"] == "pass"
    for check in ("version", "eviction-policy", "memory-headroom", "persistence", "replication"):
        assert found[check] == "warn", check
        assert "refused" in messages(result)[check], check
    assert "managed services" in messages(result)["eviction-policy"]
    assert found["permissions"] == "warn"
    assert "STRLEN" in messages(result)["permissions"]
    assert result.code == ExitCode.WARNINGS


def test_a_cluster_with_an_uncovered_slot_fails(cli: Cli) -> None:
    """A Cluster whose slots are not all assigned: cluster-slots FAIL, exit code 2."""
    cluster = ("--cluster-enabled", "yes", "--cluster-port", str(free_port()))
    with server_with(*cluster, "--appendonly", "yes") as node:
        node.command("CLUSTER", "ADDSLOTSRANGE", "0", "16000")
        url = f"redis+cluster://127.0.0.1:{node.port}"
        result = cli("doctor", "--json", "--url", url, *RELAXED)
    assert statuses(result)["cluster-slots"] == "fail"
    assert "383 of 16384 slots not served" in messages(result)["cluster-slots"]
    assert result.code == ExitCode.FAILURES


def test_a_healthy_cluster_is_checked_node_by_node(
    cli: Cli, cluster_deployment: ClusterDeployment
) -> None:
    """Every slot served; each primary's checks run (the deployment has no persistence)."""
    result = cli("doctor", "--json", "--url", cluster_deployment.url, *RELAXED)
    found = statuses(result)
    assert found["cluster-slots"] == "pass"
    assert found["permissions"] == "pass"
    assert found["eviction-policy"] == "pass"
    assert found["persistence"] == "warn"


def test_sentinel_replicas_are_counted_against_min_replicas(
    cli: Cli, sentinel_deployment: SentinelDeployment
) -> None:
    """Through Sentinel the primary's replica is seen; min_replicas above it fails."""
    url = str(sentinel_deployment.url)
    result = cli("doctor", "--json", "--url", url, *RELAXED)
    assert statuses(result)["replication"] == "pass"
    assert "replicas connected: 1" in messages(result)["replication"]
    demanding = cli("doctor", "--json", "--url", url, "--min-replicas", "2", *RELAXED)
    assert statuses(demanding)["replication"] == "fail"


def test_min_replicas_without_replicas_fails(cli: Cli, healthy_server: RedisServer) -> None:
    """Every write would raise ReplicationError: a FAIL that says so."""
    result = cli("doctor", "--json", "--url", healthy_server.url, "--min-replicas", "1", *RELAXED)
    assert statuses(result)["replication"] == "fail"
    assert "ReplicationError" in messages(result)["replication"]


def test_latency_above_the_limit_warns(cli: Cli, healthy_server: RedisServer) -> None:
    """p50/p99 of PING and of the compare-and-set script, against --max-latency-ms."""
    result = cli("doctor", "--json", "--url", healthy_server.url, "--max-latency-ms", "0.0001")
    assert statuses(result)["latency"] == "warn"
    message = messages(result)["latency"]
    assert "PING p50" in message
    assert "compare-and-set p50" in message
    assert result.code == ExitCode.WARNINGS


def test_the_doctor_writes_nothing(cli: Cli, healthy_server: RedisServer) -> None:
    """Read-only: no key appears, and no write command reaches the server."""
    healthy_server.command("CONFIG", "RESETSTAT")
    cli("doctor", "--json", "--url", healthy_server.url, *RELAXED)
    stats = healthy_server.command("INFO", "commandstats").decode()
    assert "cmdstat_set:" not in stats
    assert "cmdstat_del:" not in stats
    assert "cmdstat_eval:" in stats
    assert healthy_server.command("DBSIZE") == b"(integer) 0\n"


def test_a_prefix_without_a_separator_warns(cli: Cli, healthy_server: RedisServer) -> None:
    """prefix 'app' also covers 'apple:': said, with the fix."""
    result = cli("doctor", "--json", "--url", healthy_server.url, "--prefix", "app", *RELAXED)
    assert statuses(result)["prefix"] == "warn"
    assert "end it with ':'" in messages(result)["prefix"]


def test_an_unreachable_server_fails_fast(cli: Cli) -> None:
    """Nothing listening: reachable FAIL with what to check, exit code 2, within 2 s."""
    result = cli("doctor", "--json", "--url", f"redis://127.0.0.1:{free_port()}/0")
    assert statuses(result) == {"reachable": "fail", "ttl": "pass", "prefix": "pass"}
    assert "check the URL" in messages(result)["reachable"]
    assert result.code == ExitCode.FAILURES
    assert result.json()["seconds"] < 2


def test_a_certificate_close_to_expiry_warns(cli: Cli, tls_server: TlsRedisServer) -> None:
    """The test CA's certificate lasts two days: tls-certificate WARNs with the days left."""
    result = cli("doctor", "--json", "--url", tls_server.verified_url(client_cert=True), *RELAXED)
    assert statuses(result)["tls-certificate"] == "warn"
    assert "expires in" in messages(result)["tls-certificate"]
    assert statuses(result)["reachable"] == "pass"


def test_the_memory_store_warns_that_it_is_per_process(cli: Cli) -> None:
    """With the memory store configured, doctor says what that means; --demo passes."""
    result = cli("doctor", "--json", env={"VALERIE_SESSION_STORE": "memory"})
    assert statuses(result)["store"] == "warn"
    assert result.code == ExitCode.WARNINGS
