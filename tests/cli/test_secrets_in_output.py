"""No credential ever shows in the command line's output or errors, whatever happens."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Cli, Result
from tests.support.redis_server import RedisServer, free_port
from valerie.cli.exit_codes import ExitCode

# Most tests start a redis-server of their own (not through a fixture of tests/conftest.py).
pytestmark = pytest.mark.redis

PASSWORD = "Sup3r-s3cret-pw"
WRONG = "Wr0ng-s3cret-pw"
USER = "operat0r-name"

LINE = json.dumps({"id": "x", "ttl_ms": None, "expires_at": None, "state": {}})
COMMANDS: list[tuple[str, ...]] = [
    ("ls",),
    ("ls", "--json"),
    ("get", "x"),
    ("ttl", "x"),
    ("touch", "x"),
    ("rm", "x"),
    ("stats",),
    ("export",),
    ("import",),
    ("clear",),
    ("clear", "--yes"),
    ("doctor",),
    ("doctor", "--json"),
]


@pytest.fixture(scope="module")
def guarded_server() -> Iterator[RedisServer]:
    """A server whose user `operat0r-name` logs in with PASSWORD only."""
    with RedisServer(None) as server:
        server.command("ACL", "SETUSER", USER, "on", f">{PASSWORD}", "~*", "+@all")
        yield server


def assert_secret_free(result: Result) -> None:
    shown = result.out + result.err
    for secret in (PASSWORD, WRONG, USER):
        assert secret not in shown, (secret, shown)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_working_login_is_never_shown(
    cli: Cli, guarded_server: RedisServer, command: tuple[str, ...]
) -> None:
    """With the right credentials, every command's output masks them."""
    url = f"redis://{USER}:{PASSWORD}@127.0.0.1:{guarded_server.port}/0"
    result = cli(*command, "--url", url, "--prefix", "secrets:", input=LINE)
    assert result.code in (0, ExitCode.WARNINGS, ExitCode.NOT_FOUND), result
    assert_secret_free(result)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_refused_login_is_never_shown(
    cli: Cli, guarded_server: RedisServer, command: tuple[str, ...]
) -> None:
    """Wrong password: access denied (doctor: FAIL), and neither password shows."""
    url = f"redis://{USER}:{WRONG}@127.0.0.1:{guarded_server.port}/0"
    result = cli(*command, "--url", url, input=LINE)
    expected = ExitCode.FAILURES if command[0] == "doctor" else ExitCode.ACCESS_DENIED
    assert result.code == expected, result
    assert_secret_free(result)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unreachable_server_with_credentials_is_never_shown(
    cli: Cli, command: tuple[str, ...]
) -> None:
    """Nothing listening: unavailable (doctor: FAIL); the URL shows masked, if at all."""
    url = f"redis://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/0?socket_timeout=0.2"
    result = cli(*command, "--url", url, input=LINE)
    expected = ExitCode.FAILURES if command[0] == "doctor" else ExitCode.UNAVAILABLE
    assert result.code == expected, result
    assert_secret_free(result)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://{USER}:{PASSWORD}@127.0.0.1:99999/0",  # bad port
        f"redis://127.0.0.1:6390/0?password={PASSWORD}&bogus=1",  # unknown option
        f"redis://{USER}:{PASSWORD}@127.0.0.1:6390/zero",  # bad database
    ],
)
def test_a_refused_url_is_shown_masked(cli: Cli, url: str) -> None:
    """A URL the configuration refuses: exit code 4, its credentials masked."""
    for command in (("ls",), ("doctor",)):
        result = cli(*command, "--url", url)
        assert result.code == ExitCode.CONFIGURATION, result
        assert_secret_free(result)
        assert "***" in result.err or "redis://127.0.0.1:6390" in result.err


def test_a_url_from_the_environment_is_masked_too(cli: Cli) -> None:
    """VALERIE_SESSION_REDIS_URL is read like --url and masked like it."""
    env = {
        "VALERIE_SESSION_STORE": "redis",
        "VALERIE_SESSION_REDIS_URL": f"redis://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/0",
    }
    result = cli("doctor", env=env)
    assert result.code == ExitCode.FAILURES
    assert "redis://***@127.0.0.1" in result.out
    assert_secret_free(result)


def test_ls_under_the_readme_rule_needs_strlen(cli: Cli, guarded_server: RedisServer) -> None:
    """The README's ACL rule runs export; ls needs +strlen as well, and says so (exit 6)."""
    prefix = "acl-cli:"
    commands = [
        "get", "set", "getex", "exists", "unlink", "expire", "pttl", "scan", "eval", "del",
        "pexpire", "ping",
    ]  # fmt: skip
    rule = ["resetkeys", f"~{prefix}*", "-@all", *(f"+{c}" for c in commands)]
    for name, extra in (("app-rule", []), ("app-strlen", ["+strlen"])):
        guarded_server.command("ACL", "SETUSER", name, "reset", "on", f">{PASSWORD}", *rule, *extra)
    base = f"127.0.0.1:{guarded_server.port}/0"
    plain = ("--url", f"redis://app-rule:{PASSWORD}@{base}", "--prefix", prefix)
    assert cli("import", *plain, input=LINE).code == 0
    assert cli("export", *plain).json_lines()[0]["id"] == "x"
    refused = cli("ls", *plain)
    assert refused.code == ExitCode.ACCESS_DENIED
    assert "strlen" in refused.err.lower()
    assert_secret_free(refused)
    allowed = ("--url", f"redis://app-strlen:{PASSWORD}@{base}", "--prefix", prefix)
    assert cli("ls", "--json", *allowed).json_lines()[0]["id"] == "x"
