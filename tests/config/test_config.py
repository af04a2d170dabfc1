"""Settings follow one set of rules, from arguments or from VALERIE_SESSION_*.

No setting ever falls back silently: an unknown store type or variable, a bad URL (whatever the
store type), TTL or prefix, Redis settings without the Redis store, or a value with whitespace
around it raises `ConfigurationError` naming the argument or the variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from typing import Any

import pytest

from tests.support.acl import create_acl_user
from tests.support.children import python_env
from tests.support.redis_server import RedisServer
from valerie.infrastructure import (
    ConfigurationError,
    InMemorySessionStore,
    RedisSessionStore,
    SessionStoreSettings,
    get_default_ttl,
    get_session_store,
)
from valerie.infrastructure.session_store.backends.redis.urls import mask_url, parse_redis_url

STORE = "VALERIE_SESSION_STORE"
URL = "VALERIE_SESSION_REDIS_URL"
TTL = "VALERIE_SESSION_TTL"
PREFIX = "VALERIE_SESSION_PREFIX"


def test_defaults_give_a_memory_store_with_one_hour_ttl() -> None:
    """With nothing set: memory, 3600 s, the default URL and prefix."""
    store = get_session_store({})
    assert isinstance(store, InMemorySessionStore)
    assert store.default_ttl == 3600
    assert get_default_ttl({}) == 3600
    defaults = SessionStoreSettings.from_environ({})
    assert (
        defaults
        == SessionStoreSettings()
        == SessionStoreSettings(
            store="memory",
            redis_url="redis://localhost:6379",
            ttl=3600,
            prefix="valerie:session:",
        )
    )
    assert (defaults.store, defaults.redis_url, defaults.ttl, defaults.prefix) == (
        "memory",
        "redis://localhost:6379",
        3600,
        "valerie:session:",
    )


def test_os_environ_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an argument the process environment is used."""
    monkeypatch.setenv(TTL, "90")
    monkeypatch.delenv(STORE, raising=False)
    assert get_default_ttl() == 90
    assert get_session_store().default_ttl == 90
    assert os.environ[TTL] == "90"


@pytest.mark.parametrize("value", ["redis", "REDIS", "Redis"])
def test_store_type_is_case_insensitive(value: str) -> None:
    """'redis' in any case selects the Redis store, with the URL, prefix and TTL given."""
    environ = {STORE: value, URL: "redis://cache:6380/1", PREFIX: "bot:", TTL: "120"}
    for settings in (
        SessionStoreSettings.from_environ(environ),
        SessionStoreSettings(store=value, redis_url="redis://cache:6380/1", ttl=120, prefix="bot:"),
    ):
        assert settings.store == "redis"
        store = settings.create_store()
        assert isinstance(store, RedisSessionStore)
        assert (store.redis_url, store.prefix, store.default_ttl) == (
            "redis://cache:6380/1",
            "bot:",
            120,
        )


@pytest.mark.parametrize("value", ["memory", "MEMORY", "Memory"])
def test_memory_store_type(value: str) -> None:
    """'memory' in any case selects the memory store."""
    assert isinstance(get_session_store({STORE: value}), InMemorySessionStore)
    assert isinstance(SessionStoreSettings(store=value).create_store(), InMemorySessionStore)


@pytest.mark.parametrize("value", ["redis-cluster", "memroy", "postgres", "in-memory", "re dis"])
def test_an_unknown_store_type_is_an_error_not_a_fallback(value: str) -> None:
    """A typo never silently gives a memory store: it names the variable and the choices."""
    with pytest.raises(ConfigurationError) as caught:
        get_session_store({STORE: value})
    message = str(caught.value)
    assert STORE in message
    assert repr(value) in message
    assert "memory or redis" in message


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"store": "bogus"}, "store="),
        ({"store": ""}, "store="),
        ({"store": " redis"}, "store="),
        ({"store": 1}, "store "),
        ({"store": "memory", "prefix": ""}, "prefix "),
        ({"store": "redis", "prefix": "a\nb"}, "prefix "),
        ({"store": "memory", "prefix": " app:"}, "prefix="),
        ({"store": "memory", "redis_url": "http://x"}, "redis_url="),
        ({"store": "memory", "redis_url": "redis://local host:6379"}, "redis_url="),
        ({"store": "redis", "redis_url": "redis://h/0?foo=bar"}, "redis_url="),
        ({"store": "memory", "redis_url": "redis://h/0?socket_timeout=abc"}, "redis_url="),
        ({"ttl": 0}, "ttl "),
        ({"ttl": -5}, "ttl "),
        ({"ttl": 1.5}, "ttl "),
        ({"ttl": True}, "ttl "),
        ({"ttl": "60"}, "ttl "),
        ({"ttl": timedelta(milliseconds=1500)}, "ttl "),
    ],
)
def test_settings_from_arguments_follow_the_same_rules(
    arguments: dict[str, Any], field: str
) -> None:
    """SessionStoreSettings(...) refuses what the environment refuses, naming the argument."""
    with pytest.raises(ConfigurationError) as caught:
        SessionStoreSettings(**arguments)
    assert str(caught.value).startswith(field)


@pytest.mark.parametrize(
    ("field", "value", "variable", "text"),
    [
        ("store", "Redis", STORE, "Redis"),
        ("store", "bogus", STORE, "bogus"),
        ("store", "redis ", STORE, "redis "),
        ("redis_url", "redis://cache:6380/3", URL, "redis://cache:6380/3"),
        ("redis_url", "redis://u:p@h:1/0?password=x", URL, "redis://u:p@h:1/0?password=x"),
        (
            "redis_url",
            "redis://h:1/0?socket_keepalive=maybe",
            URL,
            "redis://h:1/0?socket_keepalive=maybe",
        ),
        ("redis_url", "redis+cluster://h:7000/2", URL, "redis+cluster://h:7000/2"),
        ("ttl", 86400, TTL, "86400"),
        ("ttl", 0, TTL, "0"),
        ("ttl", 10**9, TTL, str(10**9)),
        ("prefix", "bot:", PREFIX, "bot:"),
        ("prefix", "bot: ", PREFIX, "bot: "),
        ("prefix", "a\tb", PREFIX, "a\tb"),
    ],
)
@pytest.mark.parametrize("store", ["memory", "redis"])
def test_arguments_and_environment_agree(
    field: str, value: object, variable: str, text: str, store: str
) -> None:
    """The same value is accepted by both paths, with equal settings, or refused by both."""
    arguments: dict[str, Any] = {"store": store, field: value}
    environ = {STORE: store, variable: text}
    from_arguments: SessionStoreSettings | ConfigurationError
    try:
        from_arguments = SessionStoreSettings(**arguments)
    except ConfigurationError as error:
        from_arguments = error
    if isinstance(from_arguments, ConfigurationError):
        with pytest.raises(ConfigurationError) as caught:
            SessionStoreSettings.from_environ(environ)
        assert variable in str(caught.value)
        assert variable not in str(from_arguments)
    else:
        assert SessionStoreSettings.from_environ(environ) == from_arguments


def test_redis_arguments_without_the_redis_store_are_an_error() -> None:
    """A URL or prefix given, the store type left out: an error, never a memory store."""
    cases: list[dict[str, Any]] = [{"redis_url": "redis://cache:6379"}, {"prefix": "bot:"}]
    for arguments in cases:
        with pytest.raises(ConfigurationError, match="store='redis'") as caught:
            SessionStoreSettings(**arguments)
        assert "but store is not" in str(caught.value)
    assert SessionStoreSettings(store="memory", redis_url="redis://cache:6379").store == "memory"


@pytest.mark.parametrize(
    "environ",
    [
        {URL: "redis://cache:6379"},
        {PREFIX: "bot:"},
        {URL: "redis://cache:6379", TTL: "60"},
    ],
)
def test_redis_variables_without_the_redis_store_are_an_error(environ: dict[str, str]) -> None:
    """Only the URL (or the prefix) set: an error saying to set VALERIE_SESSION_STORE=redis."""
    with pytest.raises(ConfigurationError) as caught:
        get_session_store(environ)
    message = str(caught.value)
    assert f"{STORE}=redis" in message
    assert f"{STORE}=memory" in message
    assert isinstance(get_session_store({STORE: "memory", **environ}), InMemorySessionStore)


def test_an_explicit_memory_store_still_checks_the_url() -> None:
    """VALERIE_SESSION_STORE=memory with a URL is allowed, and the URL is checked all the same."""
    for url in ("http://x", "redis://h:6379/0?foo=bar", "redis://h/0?socket_timeout=abc"):
        with pytest.raises(ConfigurationError, match=URL):
            get_session_store({STORE: "memory", URL: url})


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("VALERIE_SESSION_STROE", STORE),
        ("VALERIE_SESSION_REDISURL", URL),
        ("VALERIE_SESION_TTL", TTL),
        ("valerie_session_prefix", PREFIX),
        ("VALERIE_SESSION_STORE_TYPE", STORE),
        ("VALERIE_SESSION_HOST", None),
    ],
)
def test_an_unknown_variable_is_an_error_that_suggests_the_close_match(
    variable: str, suggestion: str | None
) -> None:
    """A misspelt VALERIE_SESSION_* name never silently leaves a setting at its default."""
    with pytest.raises(ConfigurationError) as caught:
        get_session_store({variable: "redis"})
    message = str(caught.value)
    assert message.startswith(variable)
    if suggestion is not None:
        assert f"did you mean {suggestion}?" in message
    else:
        assert all(name in message for name in (STORE, URL, TTL, PREFIX))
    assert "'redis'" not in message  # its value may be a secret: never shown


def test_an_unknown_variable_is_found_whatever_comes_before_it() -> None:
    """Every name is checked, not only those before the first known or unrelated one."""
    for first in (STORE, "PATH"):
        for misspelt in ("VALERIE_SESSION_STROE", "VALERIE_SESION_TTL"):
            environ = {first: "memory", misspelt: "x"}
            with pytest.raises(ConfigurationError, match=f"^{misspelt} is not a variable"):
                get_session_store(environ)


def test_an_unknown_variable_far_from_every_name_lists_the_four() -> None:
    """With no close match the message lists the variables the store reads."""
    with pytest.raises(ConfigurationError) as caught:
        get_session_store({"VALERIE_SESSION_HOST": "x"})
    assert (
        f"it reads {STORE}, {URL}, {TTL}, {PREFIX}, VALERIE_SESSION_ENCRYPTION_KEYS, "
        "VALERIE_SESSION_MAX_BYTES. Rename or unset it"
    ) in str(caught.value)


def test_a_setting_that_is_not_text_names_its_type() -> None:
    """A store type or prefix given as another type says which type it got."""
    with pytest.raises(ConfigurationError, match=r"^store must be a str, got int$"):
        SessionStoreSettings(store=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^prefix must be a str, got bytes$"):
        SessionStoreSettings(store="redis", prefix=b"app:")  # type: ignore[arg-type]


def test_an_option_only_redis_py_can_check_names_the_variable() -> None:
    """An option that passes our checks but not redis-py's names where it came from."""
    url = "rediss://h:6379/0?ssl_include_verify_flags=NOPE"
    with pytest.raises(ConfigurationError, match=f"^{URL}=.* redis-py cannot read"):
        get_session_store({STORE: "redis", URL: url})
    with pytest.raises(ConfigurationError, match=r"^redis_url=.* redis-py cannot read"):
        SessionStoreSettings(store="redis", redis_url=url)


def test_other_variables_are_left_alone() -> None:
    """Names that are not near the store's own are none of its business."""
    environ = {
        "PATH": "/bin",
        "VALERIE_LOG_LEVEL": "debug",
        "VALERIE_SESSION": "x",
        STORE: "memory",
    }
    assert isinstance(get_session_store(environ), InMemorySessionStore)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (STORE, " redis"),
        (STORE, "redis\n"),
        (URL, " redis://h:6379"),
        (URL, "redis://h:6379\t"),
        (TTL, " 60 "),
        (TTL, "60\n"),
        (PREFIX, "bot: "),
    ],
)
def test_a_value_with_whitespace_around_it_is_refused_not_trimmed(
    variable: str, value: str
) -> None:
    """One rule for every variable: values are used exactly as given, and the message says so."""
    environ = {STORE: "redis", variable: value}
    with pytest.raises(ConfigurationError, match="whitespace around it") as caught:
        get_session_store(environ)
    assert str(caught.value).startswith(variable)
    if variable == TTL:
        with pytest.raises(ConfigurationError, match="whitespace around it"):
            get_default_ttl({TTL: value})


@pytest.mark.parametrize("shape", ["{} ", " {}", "{}\n"])
def test_a_url_with_whitespace_around_it_is_refused_masked(shape: str) -> None:
    """The whitespace error shows the URL as every message does: masked."""
    url = shape.format("redis://app:hunter2@cache:6379/0?password=Zq8K")
    for make in (
        lambda: get_session_store({STORE: "redis", URL: url}),
        lambda: SessionStoreSettings(store="redis", redis_url=url),
    ):
        with pytest.raises(ConfigurationError, match="whitespace around it") as caught:
            make()
        message = str(caught.value)
        assert "'redis://***@cache:6379/0?password=***'" in message
        assert "hunter2" not in message
        assert "Zq8K" not in message


@pytest.mark.parametrize("variable", [STORE, URL, TTL, PREFIX])
def test_an_empty_variable_is_an_error(variable: str) -> None:
    """Set but empty is not unset: the message says to unset it for the default."""
    with pytest.raises(ConfigurationError, match="set but empty; unset it"):
        get_session_store({STORE: "redis", variable: ""})


@pytest.mark.parametrize(
    "value", ["0", "-5", "1.5", "1h", "abc", "١٢٣", "315360001", "99999999999", "3_600", "+60"]
)
def test_a_bad_ttl_variable_is_an_error(value: str) -> None:
    """VALERIE_SESSION_TTL must be a whole number of seconds from 1 to ten years."""
    with pytest.raises(ConfigurationError, match=TTL) as caught:
        get_default_ttl({TTL: value})
    assert "3600" in str(caught.value)
    assert str(caught.value).startswith(f"{TTL}={value!r} is not a whole number of seconds")
    with pytest.raises(ConfigurationError, match=TTL):
        get_session_store({TTL: value})


def test_a_five_thousand_digit_ttl_is_a_configuration_error() -> None:
    """Python's own int-conversion limit never surfaces; the message stays short."""
    value = "9" * 5000
    with pytest.raises(ConfigurationError, match=TTL) as caught:
        get_default_ttl({TTL: value})
    assert len(str(caught.value)) < 300
    assert "5000 characters" in str(caught.value)
    with pytest.raises(ConfigurationError, match=TTL):
        get_session_store({TTL: value})
    assert get_default_ttl({TTL: "0" * 5000 + "60"}) == 60


@pytest.mark.parametrize("value", ["60", "86400", "315360000", "0060"])
def test_a_good_ttl_variable_is_read(value: str) -> None:
    """Whole seconds, ASCII digits, nothing around them."""
    assert get_default_ttl({TTL: value}) == int(value)
    assert get_session_store({TTL: value}).default_ttl == int(value)


@pytest.mark.parametrize(
    "url",
    [
        "localhost:6379",
        "http://localhost:6379",
        "redis://",
        "redis://host:port",
        "redis://:s3cr3t@host:99999",
        "redis://host/zero",
        "redis://local host:6379",
        "redis://host:",
        "redis://ho$t:6379",
        "unix://",
        "unix://host/tmp/redis.sock",
        "redis//:s3cr3t@localhost:6379",
        "redis:/:s3cr3t@localhost:6379",
        "redis:s3cr3t@localhost",
        "redis://:s3cr3t@localhost:6379/0#frag",
        "redis://h1:6379,h2:6379",
    ],
)
def test_a_malformed_url_is_an_error_that_hides_the_password(url: str) -> None:
    """The message names the variable and the accepted forms, never the password."""
    with pytest.raises(ConfigurationError, match=URL) as caught:
        get_session_store({STORE: "redis", URL: url})
    message = str(caught.value)
    assert "s3cr3t" not in message
    assert "[[user]:password@]" in message or "percent-encode" in message


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("redis://local host:6379", ""),
        ("redis://u:Zq8K Lp4N@h:6379", " in its user info"),
        ("redis://u:Zq8K\tLp4N@h:6379", " in its user info"),
        ("redis://u:Zq8K@h:6379/0\n", ""),
        ("redis://h:6379/0?client_name=a\u00a0b", ""),
    ],
)
def test_whitespace_or_a_control_character_in_a_url_is_refused(url: str, where: str) -> None:
    """Python's URL parser would drop a tab or a newline silently (a different password):
    the store refuses any whitespace or unprintable character, saying where."""
    with pytest.raises(ConfigurationError) as caught:
        RedisSessionStore(url)
    assert f"contains a space or an unprintable character{where};" in str(caught.value)
    assert "Zq8K" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "redis://localhost:6379/0",
        "REDIS://Localhost:6379/0",
        "rediss://user:pass@example.com:6380/2",
        "redis://:pass@127.0.0.1",
        "redis://[::1]:6379",
        "unix:///var/run/redis.sock",
        "unix://user:pass@/var/run/redis%40main.sock?db=2",
        "redis://localhost:6379?socket_timeout=2",
        "redis://localhost:6379/0?socket_keepalive=true&health_check_interval=10",
        "rediss://h/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required&ssl_check_hostname=false",
    ],
)
@pytest.mark.parametrize("store", ["memory", "redis"])
def test_well_formed_urls_are_accepted(url: str, store: str) -> None:
    """Every form redis-py understands is accepted; the settings show it masked."""
    settings = SessionStoreSettings.from_environ({STORE: store, URL: url})
    assert settings.redis_url == mask_url(url)
    assert "pass" not in settings.redis_url
    if store == "redis":
        created = settings.create_store()
        assert isinstance(created, RedisSessionStore)
        assert created.redis_url == mask_url(url)


def test_a_bad_prefix_is_an_error() -> None:
    """An empty or unprintable prefix names the variable."""
    for value in ("", "a\nb"):
        with pytest.raises(ConfigurationError, match=PREFIX):
            get_session_store({STORE: "redis", PREFIX: value})


def test_settings_never_show_the_password() -> None:
    """Settings can be logged: the user info and query credentials show as ***."""
    url = "redis://user:s3cr3t@host:6379/0?password=s3cr3t"
    settings = SessionStoreSettings.from_environ({STORE: "redis", URL: url})
    assert "s3cr3t" not in repr(settings)
    assert "user" not in repr(settings)
    assert settings.redis_url == "redis://***@host:6379/0?password=***"
    assert repr(settings) == (
        "SessionStoreSettings(store='redis', redis_url='redis://***@host:6379/0?password=***', "
        "ttl=3600, prefix='valerie:session:')"
    )


def test_settings_are_immutable_and_hashable() -> None:
    """Settings are values: equal when they would build the same store, never changed."""
    one = SessionStoreSettings(store="REDIS", redis_url="redis://u:a@h/0")
    assert one == SessionStoreSettings(store="redis", redis_url="redis://u:a@h/0")
    assert one != SessionStoreSettings(store="redis", redis_url="redis://u:b@h/0")
    assert len({one, SessionStoreSettings(store="redis", redis_url="redis://u:a@h/0")}) == 1
    with pytest.raises(AttributeError):
        one.store = "memory"  # type: ignore[misc]


async def test_settings_give_the_store_the_real_url(redis_server: RedisServer) -> None:
    """The password is masked in the settings, yet the store they create logs in with it."""
    user = create_acl_user(redis_server, prefix="factory-acl:", password="pa/ss#wo@rd%")
    settings = SessionStoreSettings.from_environ(
        {STORE: "redis", URL: user.url, PREFIX: "factory-acl:"}
    )
    assert user.password not in repr(settings)
    async with settings.create_store() as store:
        await store.save("s1", {"n": 1})
        assert await store.load("s1") == {"n": 1}


async def test_the_factory_builds_a_working_redis_store(redis_server: RedisServer) -> None:
    """From variables alone to a store that saves and loads on a real server."""
    environ = {STORE: "redis", URL: redis_server.url, PREFIX: "factory:", TTL: "30"}
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
            "redis+sentinel://:pw@h1:26379,[::1]:26380/my%20master/2",
            [("h1", 26379), ("::1", 26380)],
            "my master",
            2,
            {},
        ),
        (
            "rediss+cluster://u:pw@H1:7000,h2:7001?ssl_ca_certs=/etc/ca.pem",
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
    ("userinfo", "username", "password"),
    [
        ("", None, None),
        ("app@", "app", None),
        (":p%3Aw@", None, "p:w"),
        ("app:p:w@", "app", "p:w"),
        ("a%40p:p%40w@", "a@p", "p@w"),
        ("app:@", "app", ""),
    ],
)
@pytest.mark.parametrize("form", ["redis+sentinel://{}h1:26379/m", "redis+cluster://{}h1:7000"])
def test_multi_host_urls_give_their_credentials(
    form: str, userinfo: str, username: str | None, password: str | None
) -> None:
    """The user info of a Sentinel or Cluster URL is the data nodes' user and password,
    percent-decoded, split at the first ':'."""
    target = parse_redis_url(form.format(userinfo))
    assert (target.username, target.password) == (username, password)


@pytest.mark.parametrize(
    ("url", "start"),
    [
        (
            "redis+cluster://u:pw@h1:notaport",
            "redis_url='redis+cluster://***@h1:***' has the node 'h1:***', whose port is not",
        ),
        (
            "redis+sentinel://h1:26379/m/x1",
            "redis_url='redis+sentinel://h1:26379/m/x1' names the database 'x1', which is not",
        ),
        (
            "redis+cluster://h1:7000/x",
            "redis_url='redis+cluster://h1:7000/x' names the database 'x', which is not",
        ),
        ("redis+sentinel:///m", "redis_url='redis+sentinel:///m' names no host; expected"),
        (
            "redis://app:pa/ss@h:6379/0",
            "redis_url cannot be split safely into user info, host and the rest, so none of "
            "it is shown ('redis://***'): ",
        ),
        ("app:pa/ss@h:6379/0", "redis_url is not a URL (not shown, as it may hold a password)"),
    ],
)
def test_a_refused_url_is_shown_masked_at_the_start_of_its_message(url: str, start: str) -> None:
    """The message starts with the setting and the URL as it may be shown (masked, or only its
    scheme when it cannot be split safely, or nothing when it has none), then the problem."""
    with pytest.raises(ConfigurationError) as caught:
        parse_redis_url(url)
    assert str(caught.value).startswith(start)


@pytest.mark.parametrize("flag", ["true", "FALSE", "Yes", "no", "1", "0"])
def test_every_flag_spelling_is_accepted(flag: str) -> None:
    """A yes/no option takes true, false, yes, no, 1 or 0, in any case."""
    target = parse_redis_url(f"redis://h1:6379/0?socket_keepalive={flag}")
    assert dict(target.query) == {"socket_keepalive": flag}


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("redis+sentinel://h1:26379", "names no master"),
        ("redis+sentinel://h1/master", "not host:port"),
        ("redis+sentinel://h1:26379/master#fragment", "'#'"),
        ("redis+cluster://h1:7000/3", "database 0 only"),
        ("redis+cluster://h1:7000/0/0", "database '0/0', which is not a number"),
        ("redis+sentinel://h1:26379/master/0/0", "names no master"),
        ("redis+sentinel://h1:26379/master/0x", "database '0x', which is not a number"),
        ("redis+cluster://[zz::1]:7000", "not a host name"),
        ("redis://h1:6379/0?socket_timeout=0", "socket_timeout"),
        ("redis://h1:6379/0?socket_keepalive=on", "socket_keepalive"),
        ("redis+cluster://h1:7000/?password=s3cr3t", "user info"),
        ("redis+cluster://h1:7000/?nonsense=1", "unknown option 'nonsense'"),
        ("redis://h1:6379/0?nonsense=1", "unknown option 'nonsense'"),
        ("redis://h1:6379/0?sentinel_password=s3cr3t", "only a redis\\+sentinel"),
        ("redis://h1:6379/0?ssl_ca_certs=/ca.pem", "without TLS"),
        ("redis://h1:6379/0?decode_responses=true", "does not allow"),
        ("redis://h1:6379/0?max_connections=5", "does not allow"),
        ("redis://h1:6379/0?socket_timeout=1&socket_timeout=2", "twice"),
        ("redis://h1:6379/1?db=2", "database twice"),
        ("redis://h1:6379/0?socket_timeout=-1", "positive number"),
        ("redis://h1:6379/0?socket_keepalive=maybe", "true or false"),
        ("rediss://h1:6379/0?ssl_cert_reqs=always", "none, optional or required"),
        ("redis://h1:6379/0?retry=forever", "unknown option 'retry'"),
    ],
)
def test_bad_urls_and_options_are_refused(url: str, match: str) -> None:
    """Mistakes in URLs and their options are configuration errors that hide the password."""
    with pytest.raises(ConfigurationError, match=match) as caught:
        RedisSessionStore(url)
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(ConfigurationError, match=match):
        SessionStoreSettings(store="memory", redis_url=url)


def test_a_bad_url_option_from_the_environment_names_the_variable() -> None:
    """Options checked when the settings are read name the variable they came from."""
    for store in ("memory", "redis"):
        with pytest.raises(ConfigurationError, match=URL):
            get_session_store({STORE: store, URL: "redis+cluster://h1:7000/?nonsense=1"})


def test_urls_are_checked_without_redis_py() -> None:
    """Without redis-py the memory store still refuses a bad URL, option names and values
    included; a good one is accepted."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["redis"] = None  # as if redis-py were not installed
        from valerie.infrastructure import ConfigurationError, get_session_store
        bad = ["redis://h/0?foo=bar", "redis://h/0?socket_timeout=abc", "http://x",
               "redis://local host", "redis://h/0?decode_responses=1"]
        for url in bad:
            try:
                get_session_store({"VALERIE_SESSION_STORE": "memory",
                                   "VALERIE_SESSION_REDIS_URL": url})
            except ConfigurationError as error:
                assert "VALERIE_SESSION_REDIS_URL" in str(error), error
            else:
                raise SystemExit(f"accepted {url}")
        get_session_store({"VALERIE_SESSION_STORE": "memory",
                           "VALERIE_SESSION_REDIS_URL": "redis://h/0?socket_timeout=2"})
        print("checked")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=python_env(),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip() == "checked"
