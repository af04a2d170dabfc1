"""export, import and clear through the installed console script, on Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, store_args
from tests.support.cluster import ClusterDeployment
from tests.support.redis_server import RedisServer
from valerie.cli.exit_codes import ExitCode
from valerie.infrastructure import LockNotOwnedError, RedisSessionStore


@pytest.fixture
async def store(redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisSessionStore]:
    async with RedisSessionStore(redis_server.url, prefix=prefix) as store:
        yield store


def state_of(number: int) -> dict[str, object]:
    return {"n": number, "name": f"user {number} é", "history": [{"turn": t} for t in range(3)]}


@pytest.mark.slow
async def test_export_clear_import_restores_1000_sessions_with_their_ttls(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore, tmp_path: Path
) -> None:
    """A round trip restores every state exactly, and every session expires within a second of
    when the original would have (import's default; --restart-ttl is tested below)."""
    ttls = {f"s{i}": 60 + 37 * i for i in range(1000)}
    for number, (session_id, ttl) in enumerate(ttls.items()):
        await store.save(session_id, state_of(number), ttl=ttl)
    before = await store.load_many_with_ttl(list(ttls))
    read_before = time.monotonic()
    exported = cli("export", *store_args(redis_server, prefix))
    assert exported.code == 0, exported.err
    assert exported.err == f"exported 1000 sessions from prefix {prefix!r} at {redis_server.url}\n"
    dump = tmp_path / "sessions.jsonl"
    dump.write_text(exported.out)
    cleared = cli("clear", "--yes", *store_args(redis_server, prefix))
    assert cleared.code == 0, cleared.err
    assert await store.count() == 0
    imported = cli("import", "--json", "-i", str(dump), *store_args(redis_server, prefix))
    assert imported.code == 0, imported.err
    assert imported.json() == {
        "imported": 1000, "existing": 0, "expired": 0, "refused": 0, "reasons": []
    }  # fmt: skip
    elapsed_ms = (time.monotonic() - read_before) * 1000
    after = await store.load_many_with_ttl(list(ttls))
    for session_id in ttls:
        old, new = before[session_id], after[session_id]
        assert old is not None
        assert new is not None
        assert new.state == old.state
        assert abs(new.ttl_ms - (old.ttl_ms - elapsed_ms)) <= 1000, session_id


async def test_import_keeps_existing_sessions_unless_told_to_overwrite(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """Without --overwrite an existing session is kept and counted; with it, replaced."""
    await store.save("a", {"v": "old"})
    lines = "\n".join(
        json.dumps({"id": i, "ttl_ms": 50_000, "expires_at": None, "state": {"v": "new"}})
        for i in ("a", "b")
    )
    kept = cli("import", "--json", "--restart-ttl", *store_args(redis_server, prefix), input=lines)
    assert kept.code == 0
    assert kept.json()["imported"] == 1
    assert kept.json()["existing"] == 1
    assert await store.load("a") == {"v": "old"}
    assert await store.load("b") == {"v": "new"}
    assert 49 <= (await store.ttl("b") or 0) <= 50
    replaced = cli(
        "import", "--overwrite", "--restart-ttl", *store_args(redis_server, prefix), input=lines
    )
    assert replaced.code == 0
    assert "imported 2 sessions" in replaced.err
    assert await store.load("a") == {"v": "new"}


async def test_import_refuses_bad_lines_by_number_and_imports_the_rest(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """Lines that are not sessions are refused with their number and reason; exit code 7."""
    good = {"id": "ok", "ttl_ms": None, "expires_at": None, "state": {"x": 1}}
    expired = {"id": "old", "ttl_ms": 1, "expires_at": "2000-01-01T00:00:00Z", "state": {}}
    lines = [
        json.dumps(good),
        "not json",
        json.dumps({"id": 5, "state": {}}),
        "",
        json.dumps({"id": "bad\n", "ttl_ms": None, "expires_at": None, "state": {}}),
        json.dumps(expired),
    ]
    result = cli("import", "--json", *store_args(redis_server, prefix), input="\n".join(lines))
    assert result.code == ExitCode.DATA
    report = result.json()
    assert (report["imported"], report["expired"], report["refused"]) == (1, 1, 3)
    assert report["reasons"][0] == "line 2: not JSON"
    assert report["reasons"][1] == 'line 3: "id" is missing or not a string'
    assert report["reasons"][2].startswith("line 5: ")
    assert await store.load("ok") == {"x": 1}
    assert await store.ttl("ok") == 3600  # no TTL recorded: the store's default
    assert not await store.exists("old")


async def test_an_interrupted_export_resumes_without_duplicates(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore, tmp_path: Path
) -> None:
    """--resume keeps the complete lines, drops a cut last line, and appends the rest."""
    await store.save_many({f"s{i}": {"n": i} for i in range(300)}, ttl=600)
    full = cli("export", *store_args(redis_server, prefix)).out.splitlines(keepends=True)
    dump = tmp_path / "partial.jsonl"
    dump.write_text("".join(full[:120]) + full[120][:15])  # cut inside line 121
    refused = cli("export", "-o", str(dump), *store_args(redis_server, prefix))
    assert refused.code == 2
    assert "--resume" in refused.err
    resumed = cli("export", "-o", str(dump), "--resume", *store_args(redis_server, prefix))
    assert resumed.code == 0, resumed.err
    assert "exported 180 sessions" in resumed.err
    ids = [json.loads(line)["id"] for line in dump.read_text().splitlines()]
    assert sorted(ids) == sorted(f"s{i}" for i in range(300))


async def test_clear_without_yes_counts_and_deletes_nothing(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """clear alone says how many it would delete and exits 1; --yes deletes this prefix only."""
    neighbour = prefix.rstrip(":") + "x:"
    await store.save_many({f"s{i}": {} for i in range(1500)})
    async with store.lock("s1"):
        pass
    async with RedisSessionStore(redis_server.url, prefix=neighbour) as other:
        await other.save("keep", {})
        dry = cli("clear", *store_args(redis_server, prefix))
        assert dry.code == ExitCode.WARNINGS
        assert dry.err.startswith("would delete 1500 sessions of prefix")
        assert await store.count() == 1500
        with pytest.raises(LockNotOwnedError):  # clear deleted the lease too
            async with store.lock("s2", timeout=60):
                done = cli("clear", "--yes", "--json", *store_args(redis_server, prefix))
        assert done.code == 0
        assert done.json() == {"sessions": 1500, "deleted": 1500}
        assert await store.count() == 0
        assert redis_server.command("EXISTS", f"{prefix}s2\x1flock") == b"(integer) 0\n"
        assert await other.load("keep") == {}


async def test_no_progress_bar_when_piped(
    cli: Cli, redis_server: RedisServer, prefix: str, store: RedisSessionStore
) -> None:
    """Piped, export and clear print data and one summary line, no progress bar."""
    await store.save_many({f"s{i}": {} for i in range(10)})
    exported = cli("export", *store_args(redis_server, prefix))
    assert exported.err.count("\n") == 1
    assert "\r" not in exported.err + exported.out
    cleared = cli("clear", "--yes", *store_args(redis_server, prefix))
    assert cleared.err == f"deleted 10 sessions of prefix {prefix!r} at {redis_server.url}\n"


def test_import_into_the_demo_store(cli: Cli) -> None:
    """import works on the demo store too (it lives for the one command)."""
    line = json.dumps({"id": uuid.uuid4().hex, "ttl_ms": None, "expires_at": None, "state": {}})
    result = cli("import", "--demo", "--json", input=line)
    assert result.json()["imported"] == 1


async def test_ls_export_clear_import_on_a_cluster(
    cli: Cli, cluster_deployment: ClusterDeployment, prefix: str
) -> None:
    """On a Cluster the walk visits every primary, and the round trip restores every session."""
    url = str(cluster_deployment.url)
    async with RedisSessionStore(url, prefix=prefix) as store:
        await store.save_many({f"s{i}": {"n": i} for i in range(300)}, ttl=900)
        listed = cli("ls", "--json", "--url", url, "--prefix", prefix)
        assert len(listed.json_lines()) == 300
        exported = cli("export", "--url", url, "--prefix", prefix)
        assert cli("clear", "--yes", "--url", url, "--prefix", prefix).code == 0
        assert await store.count() == 0
        imported = cli("import", "--json", "--url", url, "--prefix", prefix, input=exported.out)
        assert imported.json()["imported"] == 300
        restored = await store.load_many_with_ttl([f"s{i}" for i in range(300)])
        for number, item in enumerate(restored.values()):
            assert item is not None
            assert item.state == {"n": number}
            assert 890_000 < item.ttl_ms <= 900_500
