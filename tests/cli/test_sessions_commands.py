"""ls, get, ttl, touch, rm and stats through the installed console script, on Redis."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from tests.cli.conftest import Cli
from tests.support.redis_server import RedisServer
from valerie.cli.exit_codes import ExitCode
from valerie.infrastructure import RedisSessionStore

STATE = {
    "user": {"name": "Ada", "email": "ada@example.com"},
    "history": [{"role": "user", "content": "my card is 4111"}, {"role": "bot", "content": "ok"}],
}


@pytest.fixture
async def store(redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisSessionStore]:
    async with RedisSessionStore(redis_server.url, prefix=prefix) as store:
        yield store


def args(redis_server: RedisServer, prefix: str) -> tuple[str, ...]:
    return ("--url", redis_server.url, "--prefix", prefix)


async def test_ls_streams_ids_with_ttl_and_size(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """Every session with its TTL and stored size; --match filters, --limit stops."""
    await store.save_many({f"user-{i}": {"n": i} for i in range(1200)}, ttl=600)
    await store.save("other", {"n": "x" * 100}, ttl=30)
    listed = cli("ls", "--json", *args(redis_server, prefix))
    assert listed.code == 0, listed.err
    rows = {row["id"]: row for row in listed.json_lines()}
    assert len(rows) == 1201
    assert rows["other"]["size"] == len('{"n":"' + "x" * 100 + '"}')
    assert 20_000 < rows["other"]["ttl_ms"] <= 30_000
    assert rows["user-7"]["size"] == len('{"n":7}')
    matched = cli("ls", "--json", "--match", "user-1?", *args(redis_server, prefix))
    assert sorted(row["id"] for row in matched.json_lines()) == [f"user-1{i}" for i in range(10)]
    limited = cli("ls", "--json", "--limit", "5", *args(redis_server, prefix))
    assert len(limited.json_lines()) == 5
    table = cli("ls", "--match", "other", *args(redis_server, prefix))
    header, row = table.out.splitlines()
    assert header.split() == ["TTL", "SIZE", "ID"]
    ttl, *size, session_id = row.split()
    assert (ttl[-1], size, session_id) == ("s", ["108", "B"], "other")


async def test_ls_walks_with_scan_never_keys(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """ls and stats send SCAN, never KEYS (which blocks a big server)."""
    await store.save_many({f"s{i}": {} for i in range(50)})
    redis_server.command("CONFIG", "RESETSTAT")
    assert cli("ls", *args(redis_server, prefix)).code == 0
    assert cli("stats", *args(redis_server, prefix)).code == 0
    stats = redis_server.command("INFO", "commandstats").decode()
    assert "cmdstat_scan" in stats
    assert "cmdstat_keys" not in stats


async def test_get_prints_the_state_and_redacts_on_request(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """get shows the state; --redact hides what each path reaches; --json is one line."""
    await store.save("ada", STATE)
    plain = cli("get", "ada", "--json", *args(redis_server, prefix))
    assert plain.code == 0
    assert plain.json() == STATE
    hidden = cli(
        "get", "ada", "--json", "--redact", "user.email", "--redact", "history.*.content",
        *args(redis_server, prefix),
    )  # fmt: skip
    assert hidden.json() == {
        "user": {"name": "Ada", "email": "***"},
        "history": [{"role": "user", "content": "***"}, {"role": "bot", "content": "***"}],
    }
    assert "4111" not in hidden.out
    every_field = cli("get", "ada", "--json", "--redact", "*.name", *args(redis_server, prefix))
    assert every_field.json()["user"] == {"name": "***", "email": "ada@example.com"}
    pretty = cli("get", "ada", "--redact", "history.0", *args(redis_server, prefix))
    assert pretty.out.startswith("{\n")
    assert '"history": [\n    "***",' in pretty.out
    bad = cli("get", "ada", "--redact", "user..email", *args(redis_server, prefix))
    assert bad.code == 2
    assert "not a path" in bad.err


async def test_missing_sessions_exit_3(cli: Cli, redis_server: RedisServer, prefix: str) -> None:
    """get, ttl and touch of a session that does not exist exit with 3, saying so."""
    for command in ("get", "ttl", "touch"):
        result = cli(command, "nobody", *args(redis_server, prefix))
        assert result.code == ExitCode.NOT_FOUND, (command, result)
        assert "no such session" in result.err


async def test_ttl_touch_and_rm(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """ttl reports seconds left; touch renews (to TTL, or the default); rm deletes and counts."""
    await store.save("a", {}, ttl=100)
    await store.save("b", {}, ttl=100)
    assert 90 < cli("ttl", "a", "--json", *args(redis_server, prefix)).json()["ttl"] <= 100
    assert re.fullmatch(
        r"(9\d|100) s \(1m [34]\ds\)\n", cli("ttl", "a", *args(redis_server, prefix)).out
    )
    assert cli("touch", "a", "5000", *args(redis_server, prefix)).code == 0
    assert await store.ttl("a") == 5000
    touched = cli("touch", "b", "--json", *args(redis_server, prefix))
    assert touched.json() == {"ttl": 3600}
    assert await store.ttl("b") == 3600
    removed = cli("rm", "a", "b", "c", "--json", *args(redis_server, prefix))
    assert removed.json() == {"deleted": 2, "missing": 1}
    assert not await store.exists("a")
    assert not await store.exists("b")


async def test_stats_counts_sizes_and_ttls(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """Count, total and largest sizes, and histograms that add up to the count."""
    await store.save_many({f"small{i}": {} for i in range(10)}, ttl=30)
    await store.save("big", {"text": "x" * 5000}, ttl=7200)
    result = cli("stats", "--json", *args(redis_server, prefix))
    assert result.code == 0
    stats = result.json()
    assert stats["count"] == 11
    assert stats["total_bytes"] == 10 * 2 + len('{"text":""}') + 5000
    assert stats["largest"][0] == {"id": "big", "size": 5011}
    sizes = {b["bucket"]: b["count"] for b in stats["sizes"]}
    assert sizes["≤ 256 B"] == 10
    assert sizes["≤ 16 KiB"] == 1
    ttls = {b["bucket"]: b["count"] for b in stats["ttls"]}
    assert ttls["≤ 1m"] == 10
    assert ttls["≤ 6h"] == 1
    drawn = cli("stats", *args(redis_server, prefix))
    assert drawn.out.startswith("11 sessions, 4.9 KiB in all")
    assert "█" * 40 in drawn.out


def test_the_memory_store_is_refused_with_what_to_do(cli: Cli) -> None:
    """With the default (per-process memory) store there is nothing to inspect: exit 4."""
    result = cli("ls")
    assert result.code == ExitCode.CONFIGURATION
    assert "--url" in result.err
    assert "--demo" in result.err


def test_the_demo_store_answers_every_command(cli: Cli) -> None:
    """--demo: a memory store of sample sessions, for trying the CLI without Redis."""
    listed = cli("ls", "--demo", "--json").json_lines()
    assert len(listed) == 12
    assert cli("get", "chat:ada", "--demo", "--json").json()["user"]["name"] == "Ada"
    assert cli("stats", "--demo", "--json").json()["count"] == 12
    assert cli("ttl", "chat:ada", "--demo", "--json").json() == {"ttl": 300}
    assert cli("touch", "chat:ada", "60", "--demo", "--json").json() == {"ttl": 60}
    assert cli("rm", "chat:ada", "--demo", "--json").json() == {"deleted": 1, "missing": 0}
    assert cli("clear", "--yes", "--demo", "--json").json() == {"sessions": 12, "deleted": 12}
    assert len(cli("export", "--demo").json_lines()) == 12
    assert cli("doctor", "--demo", "--json").json()["status"] == "pass"


def test_help_on_every_command_and_python_dash_m(cli: Cli) -> None:
    """--help works everywhere; `python -m valerie.cli` is the same program."""
    import subprocess
    import sys

    for command in ("ls", "get", "ttl", "touch", "rm", "stats", "export", "import", "clear",
                    "doctor"):  # fmt: skip
        result = cli(command, "--help")
        assert result.code == 0, command
        assert "Usage: valerie-sessions" in result.out
    module = subprocess.run(
        [sys.executable, "-m", "valerie.cli", "--help"], capture_output=True, check=True
    )
    assert b"doctor" in module.stdout


async def test_keys_that_hold_no_session_never_hide_the_others(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """A value that is not JSON and a hash under the prefix: ls, stats and export show every
    session, name the broken keys and exit 7; get says what is wrong; rm deletes them."""
    await store.save_many({f"s{i}": {"n": i} for i in range(600)})
    redis_server.command("SET", f"{prefix}broken", "not json")
    redis_server.command("HSET", f"{prefix}ahash", "a", "1")
    listed = cli("ls", "--json", *args(redis_server, prefix))
    assert listed.code == ExitCode.DATA
    rows = {row["id"]: row for row in listed.json_lines()}
    assert len(rows) == 602
    assert "a Redis type other than a string" in rows["ahash"]["error"]
    assert rows["broken"]["size"] == 8
    assert "hold no session" in listed.err
    stats = cli("stats", "--json", *args(redis_server, prefix))
    assert stats.code == ExitCode.DATA
    assert (stats.json()["count"], stats.json()["unreadable"]) == (601, 1)
    exported = cli("export", *args(redis_server, prefix))
    assert exported.code == ExitCode.DATA
    assert len(exported.json_lines()) == 600
    assert "not exported, no session: " in exported.err
    assert {"ahash", "broken"} == set(
        exported.err.split("not exported, no session: ")[1].splitlines()[0].split(", ")
    )
    broken = cli("get", "broken", *args(redis_server, prefix))
    assert broken.code == ExitCode.DATA
    assert "not valid JSON" in broken.err
    assert cli("rm", "broken", "ahash", "--json", *args(redis_server, prefix)).json() == {
        "deleted": 2, "missing": 0
    }  # fmt: skip
    assert cli("ls", *args(redis_server, prefix)).code == 0


def test_without_redis_py_the_demo_works_and_redis_says_what_to_install() -> None:
    """The command line needs redis-py only for Redis: --demo works without it, and a Redis
    URL names the extra to install (exit code 4)."""
    import subprocess
    import sys

    from tests.support.children import python_env

    script = """
import sys
sys.modules["redis"] = None  # as if redis-py were not installed
from valerie.cli.main import main
sys.argv = ["valerie-sessions", *sys.argv[1:]]
main()
"""
    demo = subprocess.run(
        [sys.executable, "-c", script, "doctor", "--demo"],
        capture_output=True, text=True, timeout=60, env=python_env(), check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.splitlines()[-1] == "PASS (exit code 0)"
    for command in ("ls", "doctor"):
        redis = subprocess.run(
            [sys.executable, "-c", script, command, "--url", "redis://127.0.0.1:1/0"],
            capture_output=True, text=True, timeout=60, env=python_env(), check=False,
        )  # fmt: skip
        assert redis.returncode == ExitCode.CONFIGURATION, (command, redis.stderr)
        assert "pip install 'valerie[redis]'" in redis.stderr


@pytest.mark.parametrize("module", ["click", "rich"])
def test_without_the_cli_extra_the_script_says_what_to_install(module: str) -> None:
    """Click or rich missing: one line naming the extra, exit code 4, no traceback."""
    import subprocess
    import sys

    from tests.support.children import python_env

    script = f"import sys; sys.modules[{module!r}] = None; from valerie.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", script, "ls"],
        capture_output=True, text=True, timeout=60, env=python_env(), check=False,
    )  # fmt: skip
    assert result.returncode == ExitCode.CONFIGURATION
    assert result.stderr == (
        f"error: valerie-sessions needs {module}, which is not installed: "
        "pip install 'valerie[cli]'\n"
    )
