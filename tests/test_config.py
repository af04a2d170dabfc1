"""The factory and helpers read VALERIE_SESSION_* from a mapping; bad values are errors."""

from __future__ import annotations

import os

import pytest

from tests.redis_server import RedisServer
from valerie.infrastructure import (
    ConfigurationError,
    InMemorySessionStore,
    RedisSessionStore,
    SessionStoreSettings,
    get_default_ttl,
    get_session_store,
)
from valerie.infrastructure.session_store.urls import parse_redis_url


def test_defaults_give_a_memory_store_with_one_hour_ttl() -> None:
    """With nothing set: memory, 3600 s, the default URL and prefix."""
    store = get_session_store({})
    assert isinstance(store, InMemorySessionStore)
    assert store.default_ttl == 3600
    assert get_default_ttl({}) == 3600
    assert SessionStoreSettings.from_environ({}) == SessionStoreSettings(
        store="memory",
        redis_url="redis://localhost:6379",
        ttl=3600,
        prefix="valerie:session:",
    )


def test_os_environ_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an argument the process environment is used."""
    monkeypatch.setenv("VALERIE_SESSION_TTL", "90")
    monkeypatch.delenv("VALERIE_SESSION_STORE", raising=False)
    assert get_default_ttl() == 90
    assert get_session_store().default_ttl == 90
    assert os.environ["VALERIE_SESSION_TTL"] == "90"


@pytest.mark.parametrize("value", ["redis", "REDIS", " Redis "])
def test_store_type_is_case_insensitive(value: str) -> None:
    """'redis' in any case selects the Redis store, with the URL, prefix and TTL given."""
    store = get_session_store(
        {
            "VALERIE_SESSION_STORE": value,
            "VALERIE_SESSION_REDIS_URL": "redis://cache:6380/1",
            "VALERIE_SESSION_PREFIX": "bot:",
            "VALERIE_SESSION_TTL": "120",
        }
    )
    assert isinstance(store, RedisSessionStore)
    assert (store.redis_url, store.prefix, store.default_ttl) == (
        "redis://cache:6380/1",
        "bot:",
        120,
    )


@pytest.mark.parametrize("value", ["memory", "MEMORY", "Memory"])
def test_memory_store_type(value: str) -> None:
    """'memory' in any case selects the memory store."""
    assert isinstance(get_session_store({"VALERIE_SESSION_STORE": value}), InMemorySessionStore)


@pytest.mark.parametrize("value", ["redis-cluster", "memroy", "", "postgres", "in-memory"])
def test_an_unknown_store_type_is_an_error_not_a_fallback(value: str) -> None:
    """A typo never silently gives a memory store: it names the variable and the choices."""
    with pytest.raises(ConfigurationError) as caught:
        get_session_store({"VALERIE_SESSION_STORE": value})
    message = str(caught.value)
    assert "VALERIE_SESSION_STORE" in message
    assert repr(value) in message
    assert "memory or redis" in message


@pytest.mark.parametrize(
    "value", ["0", "-5", "1.5", "1h", "", "abc", "١٢٣", "99999999999", "3_600"]
)
def test_a_bad_ttl_variable_is_an_error(value: str) -> None:
    """VALERIE_SESSION_TTL must be a positive whole number of seconds."""
    with pytest.raises(ConfigurationError, match="VALERIE_SESSION_TTL") as caught:
        get_default_ttl({"VALERIE_SESSION_TTL": value})
    assert "3600" in str(caught.value)
    with pytest.raises(ConfigurationError):
        get_session_store({"VALERIE_SESSION_TTL": value})


@pytest.mark.parametrize("value", ["60", " 60 ", "86400"])
def test_a_good_ttl_variable_is_read(value: str) -> None:
    """Whole seconds, surrounding spaces allowed."""
    assert get_default_ttl({"VALERIE_SESSION_TTL": value}) == int(value)


@pytest.mark.parametrize(
    "url",
    [
        "localhost:6379",
        "http://localhost:6379",
        "redis://",
        "redis://host:port",
        "redis://:s3cr3t@host:99999",
        "redis://host/zero",
        "unix://",
        "redis//:s3cr3t@localhost:6379",
        "redis:/:s3cr3t@localhost:6379",
        "redis:s3cr3t@localhost",
    ],
)
def test_a_malformed_url_is_an_error_that_hides_the_password(url: str) -> None:
    """The message names the variable and the accepted forms, never the password."""
    with pytest.raises(ConfigurationError, match="VALERIE_SESSION_REDIS_URL") as caught:
        get_session_store({"VALERIE_SESSION_STORE": "redis", "VALERIE_SESSION_REDIS_URL": url})
    assert "s3cr3t" not in str(caught.value)
    assert "redis://[[user]:password@]host" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "redis://localhost:6379/0",
        "rediss://user:pass@example.com:6380/2",
        "redis://:pass@127.0.0.1",
        "redis://[::1]:6379",
        "unix:///var/run/redis.sock",
        "redis://localhost:6379?socket_timeout=2",
    ],
)
def test_well_formed_urls_are_accepted(url: str) -> None:
    """Every form redis-py understands is accepted."""
    settings = SessionStoreSettings.from_environ({"VALERIE_SESSION_REDIS_URL": url})
    assert settings.redis_url == url


def test_a_bad_prefix_is_an_error() -> None:
    """An empty or unprintable prefix names the variable."""
    for value in ("", "a\nb"):
        with pytest.raises(ConfigurationError, match="VALERIE_SESSION_PREFIX"):
            get_session_store({"VALERIE_SESSION_PREFIX": value})


def test_settings_repr_masks_the_password() -> None:
    """Settings can be logged: the password shows as ***."""
    settings = SessionStoreSettings.from_environ(
        {"VALERIE_SESSION_REDIS_URL": "redis://user:s3cr3t@host:6379/0?password=s3cr3t"}
    )
    assert "s3cr3t" not in repr(settings)
    assert "redis://user:***@host:6379/0?password=***" in repr(settings)


async def test_the_factory_builds_a_working_redis_store(redis_server: RedisServer) -> None:
    """From variables alone to a store that saves and loads on a real server."""
    environ = {
        "VALERIE_SESSION_STORE": "redis",
        "VALERIE_SESSION_REDIS_URL": redis_server.url,
        "VALERIE_SESSION_PREFIX": "factory:",
        "VALERIE_SESSION_TTL": "30",
    }
    async with get_session_store(environ) as store:
        await store.save("s1", {"from": "factory"})
        assert await store.load("s1") == {"from": "factory"}
    assert redis_server.command("TTL", "factory:s1").strip() in {b"(integer) 30", b"(integer) 29"}


async def test_the_factory_builds_a_working_memory_store() -> None:
    """The default store works end to end."""
    async with get_session_store({}) as store:
        await store.save("s1", {"n": 1})
        assert await store.load("s1") == {"n": 1}


@pytest.mark.parametrize(
    ("url", "nodes", "master", "db", "query"),
    [
        (
            "redis+sentinel://:pw@h1:26379,[::1]:26380/my%20master/2#fragment",
            [("h1", 26379), ("::1", 26380)],
            "my master",
            2,
            {},
        ),
        (
            "redis+cluster://u:pw@h1:7000,h2:7001?ssl_ca_certs=/etc/ca.pem",
            [("h1", 7000), ("h2", 7001)],
            None,
            0,
            {"ssl_ca_certs": "/etc/ca.pem"},
        ),
        (
            "rediss+cluster://h1:7000/?ssl_password=a%26b%3Dc",
            [("h1", 7000)],
            None,
            0,
            {"ssl_password": "a&b=c"},
        ),
    ],
)
def test_multi_host_urls_are_parsed(
    url: str, nodes: list[tuple[str, int]], master: str | None, db: int, query: dict[str, str]
) -> None:
    """Sentinel and Cluster URLs: nodes (IPv6 too), master name, database, query values."""
    target = parse_redis_url(url)
    assert list(target.nodes) == nodes
    assert (target.master_name, target.db, dict(target.query)) == (master, db, query)
    assert "pw" not in repr(target)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("redis+sentinel://h1:26379", "names no master"),
        ("redis+sentinel://h1/master", "not host:port"),
        ("redis+cluster://h1:7000/3", "database 0 only"),
        ("redis+cluster://h1:7000/?password=s3cr3t", "user info"),
        ("redis+cluster://h1:7000/?nonsense=1", "unknown option"),
        ("redis://h1:6379/0?nonsense=1", "unknown option"),
    ],
)
def test_bad_multi_host_urls_and_options_are_refused(url: str, match: str) -> None:
    """Mistakes in topology URLs are configuration errors that hide the password."""
    with pytest.raises(ConfigurationError, match=match) as caught:
        RedisSessionStore(url)
    assert "s3cr3t" not in str(caught.value)


def test_a_bad_url_option_from_the_environment_names_the_variable() -> None:
    """Options checked when the store is built still name the variable they came from."""
    with pytest.raises(ConfigurationError, match="VALERIE_SESSION_REDIS_URL"):
        get_session_store(
            {
                "VALERIE_SESSION_STORE": "redis",
                "VALERIE_SESSION_REDIS_URL": "redis+cluster://h1:7000/?nonsense=1",
            }
        )
