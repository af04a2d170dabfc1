"""No part of a credential reaches a message, a log record, a repr or a public attribute.

The property tests build every URL form the store reads (standalone, TLS, unix socket,
Sentinel, Cluster, and the query credentials `password`, `ssl_password`, `sentinel_password`)
from generated user names and passwords full of the characters that break URL parsing, raw and
percent-encoded. For each URL they collect everything a user could see: the
`ConfigurationError` (if any) from the store, the settings and the environment, the repr and
every public attribute of what was built, and, when the URL is accepted, the error and every
log record (DEBUG, root logger, redis-py's included) of a store trying to reach a port where
nothing listens. Two checks, each exact:

- Invariance: the same URL built with other credentials of the same shape (every letter and
  digit swapped for another of its class, punctuation kept) gives the same text, so nothing
  shown depends on the credentials.
- No fragment: no 4-character window of a credential (as given, encoded or decoded) appears,
  unless the text of the other credentials shows it too (then it is the store's own text, such
  as a port number or a word of a message, not a leak).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import string
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.support.properties import examples
from valerie.infrastructure import (
    ConfigurationError,
    EncodedSessionStore,
    InvalidSessionIdError,
    RedisSessionStore,
    SessionStoreError,
    SessionStoreSettings,
    get_session_store,
)
from valerie.infrastructure.session_store.backends.redis.urls import mask_url


def _held_port() -> socket.socket:
    """A bound socket that never listens: its port refuses every connection at once, and no
    server the suite starts meanwhile can take it."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    return held


_HELD = (_held_port(), _held_port())
DEAD_PORTS: tuple[int, int] = (_HELD[0].getsockname()[1], _HELD[1].getsockname()[1])


@pytest.fixture(scope="module", autouse=True)
def _release_dead_ports() -> Iterator[None]:
    yield
    for held in _HELD:
        held.close()


# '.' is left out so that an IPv6-like "[v1.x]" in the user info, which Python's URL parser
# reads as a host, cannot occur: with it, swapping letters could change how a URL parses.
PUNCTUATION = "/#?@:,%&=+[]!$'()*;~ -_"
ALPHABET = string.ascii_letters + string.digits + PUNCTUATION + "éßЖ"
# Runs of letters and digits between punctuation, as in "2718/Wm3J" or "Zq8K,x@y", besides
# free text: the runs are what a split in the wrong place would show.
runs = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "éßЖ"), min_size=2, max_size=6
)
structured = st.lists(st.tuples(runs, st.sampled_from(PUNCTUATION)), min_size=2, max_size=4).map(
    lambda pairs: "".join(run + mark for run, mark in pairs)
)
secrets = (
    st.text(st.sampled_from(ALPHABET), min_size=4, max_size=24)
    | structured
    | st.tuples(structured, runs).map("".join)
)
user_names = st.text(st.sampled_from(ALPHABET), max_size=12) | structured


def _rotate(letters: str, by: int) -> dict[str, str]:
    return {char: letters[(index + by) % len(letters)] for index, char in enumerate(letters)}


# Swaps each letter and digit for another of the same class: hex digits stay hex digits (so
# '%4a' stays a valid escape and '%4g' an invalid one), other letters stay other letters.
SWAP = str.maketrans(
    {
        **_rotate(string.digits, 5),
        **_rotate("abcdef", 3),
        **_rotate("ABCDEF", 3),
        **_rotate("ghijklmnopqrstuvwxyz", 10),
        **_rotate("GHIJKLMNOPQRSTUVWXYZ", 10),
        **_rotate("éßЖ", 1),
    }
)


def _encoded(text: str, encode: bool, query: bool = False) -> str:
    if encode:
        return quote(text, safe="")
    # In a query, '&' separates options by definition: a raw one makes the rest of the value
    # another option, named or not, which test_a_raw_ampersand_in_a_query_secret covers.
    return text.replace("&", "%26") if query else text


def _userinfo(user: str, password: str, shape: str, encode: bool) -> str:
    if shape == "user":
        return _encoded(user, encode) + "@"
    return f"{_encoded(user, encode)}:{_encoded(password, encode)}@"


def _url(form: str, user: str, password: str, shape: str, encode: bool) -> str:
    """Build one URL form around the credentials; every host and port is unreachable."""
    first, second = DEAD_PORTS
    userinfo = _userinfo(user, password, shape, encode)
    user_q, password_q = (_encoded(text, encode, query=True) for text in (user, password))
    nodes = f"127.0.0.1:{first},127.0.0.1:{second}"
    forms = {
        "standalone": f"redis://{userinfo}127.0.0.1:{first}/0",
        "tls": f"rediss://{userinfo}127.0.0.1:{first}/1?ssl_cert_reqs=none",
        "unix": f"unix://{userinfo}/tmp/valerie-no-such-{first}.sock",
        "sentinel": f"redis+sentinel://{userinfo}{nodes}/mymaster/0",
        "tls sentinel": f"rediss+sentinel://{userinfo}{nodes}/mymaster?ssl_cert_reqs=none",
        "cluster": f"redis+cluster://{userinfo}{nodes}",
        "query password": f"redis://127.0.0.1:{first}/0?username={user_q}&password={password_q}",
        "query ssl_password": (
            f"rediss://127.0.0.1:{first}/0?ssl_password={password_q}&ssl_cert_reqs=none"
        ),
        "query sentinel_password": (
            f"redis+sentinel://{nodes}/mymaster?sentinel_username={user_q}"
            f"&sentinel_password={password_q}"
        ),
    }
    return forms[form]


FORMS = (
    "standalone",
    "tls",
    "unix",
    "sentinel",
    "tls sentinel",
    "cluster",
    "query password",
    "query ssl_password",
    "query sentinel_password",
)
SHAPES = ("user:password", ":password", "user")


def _error_text(error: BaseException) -> str:
    """The exception as a traceback shows it: its type, message and notes, and its causes.

    Memory addresses in reprs (`<... object at 0x7f...>`) are blanked: they differ by run.
    """
    lines = "".join(traceback.format_exception_only(error))
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    text = lines + ("" if cause is None else _error_text(cause))
    return re.sub(r" at 0x[0-9a-f]+", " at 0x...", text)


def _visible(value: object) -> str:
    """Everything a user sees of an object: its repr and each public non-callable attribute."""
    texts = [repr(value), str(value)]
    for name in dir(value):
        if not name.startswith("_"):
            attribute = getattr(value, name)
            if not callable(attribute):
                texts.append(f"{name}={attribute!r}")
    return "\n".join(texts)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@contextmanager
def _debug_logs() -> Iterator[list[str]]:
    """Capture every log record at DEBUG, from the root logger down (redis-py's included)."""
    root = logging.getLogger()
    handler = _Records()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler.texts
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _try_to_reach(store: EncodedSessionStore) -> str:
    try:
        await store.load("probe")
    except SessionStoreError as error:
        return _error_text(error)
    finally:
        await store.close()
    raise AssertionError("a store reached a port where nothing listens")


@dataclass
class Seen:
    """What a user could see of one URL: exact texts, and log records (which vary in detail)."""

    texts: list[str]
    logs: list[str]


def _outcome(build: Callable[[], object]) -> tuple[object | None, str]:
    try:
        built = build()
    except ConfigurationError as error:
        return None, _error_text(error)
    return built, _visible(built)


def _see(url: str, connect: bool) -> Seen:
    """Build a store, settings and an environment store from `url`; connect if accepted."""
    store, store_text = _outcome(lambda: RedisSessionStore(url, timeout=0.5, retries=0))
    _, settings_text = _outcome(lambda: SessionStoreSettings(store="redis", redis_url=url))
    # Explicitly memory: the URL is still checked, and its errors must be as safe.
    env = {"VALERIE_SESSION_STORE": "memory", "VALERIE_SESSION_REDIS_URL": url}
    _, environ_text = _outcome(lambda: SessionStoreSettings.from_environ(env))
    texts = [store_text, settings_text, environ_text]
    event("accepted" if store is not None else "refused")
    logs: list[str] = []
    if store is not None and connect:
        assert isinstance(store, RedisSessionStore)
        with _debug_logs() as logs:
            texts.append(asyncio.run(_try_to_reach(store)))
        assert logs, "the capture saw no record at all (asyncio logs its selector at DEBUG)"
    return Seen(texts, logs)


def _fragments(*credentials: str) -> set[str]:
    forms = set()
    for credential in credentials:
        forms |= {credential, quote(credential, safe=""), unquote(credential)}
        forms.add(unquote_plus(credential))
    return {form[i : i + 4] for form in forms for i in range(len(form) - 3)}


def _check(form: str, user: str, password: str, shape: str, encode: bool, connect: bool) -> None:
    url = _url(form, user, password, shape, encode)
    seen = _see(url, connect)
    other = _see(_url(form, user.translate(SWAP), password.translate(SWAP), shape, encode), connect)
    assert seen.texts == other.texts, f"what is shown depends on the credentials of {form}"
    public = "\n".join(other.texts + other.logs)
    credentials = (password, user) if shape != "user" else (user,)
    for text in seen.texts + seen.logs:
        for fragment in _fragments(*credentials):
            assert fragment not in text or fragment in public, (
                f"{fragment!r}, part of a credential, shows in: {text}"
            )


any_credentials = given(
    form=st.sampled_from(FORMS),
    user=user_names,
    password=secrets,
    shape=st.sampled_from(SHAPES),
    encode=st.booleans(),
)
"""Every URL form, with any user and password in any shape, raw or percent-encoded."""


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@any_credentials
@example(form="standalone", user="app", password="2718/Wm3J", shape="user:password", encode=False)
@example(form="standalone", user="app", password="3141#Xy7P", shape="user:password", encode=False)
@example(form="sentinel", user="app", password="Zq8K/x", shape="user:password", encode=False)
@example(form="cluster", user="app", password="Zq8K#x", shape="user:password", encode=False)
@example(form="standalone", user="app", password="Qw9R?x=1", shape="user:password", encode=False)
@example(form="standalone", user="ap p", password="pa ss word", shape="user:password", encode=False)
@example(form="query ssl_password", user="", password="Xy7P#Qw9R", shape=":password", encode=False)
def test_no_credential_shows_in_errors_reprs_or_attributes(
    form: str, user: str, password: str, shape: str, encode: bool
) -> None:
    """Whatever the credentials, raw or encoded, errors, reprs and attributes never show them."""
    _check(form, user, password, shape, encode, connect=False)


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@any_credentials
@example(form="standalone", user="app", password="3141Xy7P", shape="user:password", encode=True)
@example(form="sentinel", user="app", password="Zq8K,x:y", shape="user:password", encode=False)
@example(form="cluster", user="Wm3Jx", password="Zq8K,x@y", shape="user:password", encode=False)
def test_no_credential_shows_while_connecting(
    form: str, user: str, password: str, shape: str, encode: bool
) -> None:
    """A store that cannot reach its server shows no credential in its error or in DEBUG logs."""
    _check(form, user, password, shape, encode, connect=True)


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("redis://app:2718/Wm3J@127.0.0.1:27342/0", ["2718", "Wm3J"]),
        ("redis://app:3141#Xy7P@127.0.0.1", ["3141", "Xy7P"]),
        ("redis://app:Qw9R?x=Tz5M@127.0.0.1", ["Qw9R", "Tz5M"]),
        ("redis+sentinel://app:Zq8K/Lp4N@127.0.0.1:26379/mymaster", ["Zq8K", "Lp4N"]),
        ("redis+cluster://app:Zq8K#Lp4N@127.0.0.1:7000,127.0.0.1:7001", ["Zq8K", "Lp4N"]),
        ("unix://app:Zq8K/Lp4N@/tmp/redis.sock", ["Zq8K", "Lp4N"]),
    ],
)
def test_a_url_that_cannot_be_split_safely_is_refused_without_showing_it(
    url: str, fragments: list[str]
) -> None:
    """The issue's URLs: refused, saying why and how to encode, with no part of the user info."""
    for build in (
        lambda: RedisSessionStore(url),
        lambda: SessionStoreSettings(store="redis", redis_url=url),
        lambda: get_session_store(
            {"VALERIE_SESSION_STORE": "redis", "VALERIE_SESSION_REDIS_URL": url}
        ),
    ):
        with pytest.raises(ConfigurationError, match="cannot be split safely") as caught:
            build()
        message = _error_text(caught.value)
        assert "percent-encode" in message
        assert "%2F" in message
        assert "app" not in message
        for fragment in fragments:
            assert fragment not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "redis://h:6379/0?socket_timeout=2&client_name=a",
            "redis://h:6379/0?socket_timeout=2&client_name=a",
        ),
        ("redis://h:6379/0?nonsense=1&password=x", "redis://h:6379/0?nonsense=1&password=***"),
        ("redis://h:6379/0?password=a=b&db=1", "redis://h:6379/0?password=***&db=1"),
        (
            "redis://h:6379/0?password=a&b&socket_timeout=2",
            "redis://h:6379/0?password=***&***&socket_timeout=2",
        ),
        ("redis://h:6379/0?password=a&&b", "redis://h:6379/0?password=***&&***"),
        (
            "redis+cluster://u:p@h:7000/?ssl_password=a",
            "redis+cluster://***@h:7000/?ssl_password=***",
        ),
    ],
)
def test_masking_shows_exactly_what_is_not_a_credential(url: str, shown: str) -> None:
    """Only credentials, and what may be their tail after an unencoded '&', become ***."""
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster?sentinel_password=Zq8K%26Lp4N",
        "redis+sentinel://127.0.0.1:26379/mymaster?sentinel_username=Wm3Jx&sentinel_password=Zq8K",
        "rediss://127.0.0.1:6380/0?ssl_keyfile=/k.pem&ssl_password=Zq8K%23Lp4N",
        "rediss://127.0.0.1:6380/0?ssl_password=Zq8K&ssl_certfile=/c.pem",
        "rediss+sentinel://127.0.0.1:26379/m?ssl_password=Zq8K&sentinel_password=Lp4N",
        "rediss+cluster://127.0.0.1:7000/?ssl_password=Zq8KLp4N",
        "redis://127.0.0.1:6379/0?password=Zq8KLp4N&username=Wm3Jx",
    ],
)
def test_query_credentials_are_masked(url: str) -> None:
    """?sentinel_password=, ?ssl_password= and the other query credentials show as ***."""
    store = RedisSessionStore(url)
    settings_ = SessionStoreSettings(store="redis", redis_url=url)
    for text in (_visible(store), _visible(settings_), mask_url(url)):
        for secret in ("Zq8K", "Lp4N", "Wm3J"):
            assert secret not in text
        assert "=***" in text
    assert store.redis_url == settings_.redis_url == mask_url(url)
    # The same URL with a mistake added: the error masks the credentials too.
    with pytest.raises(ConfigurationError) as caught:
        RedisSessionStore(url + "&socket_timeout=never")
    assert "socket_timeout" in str(caught.value)
    for secret in ("Zq8K", "Lp4N", "Wm3J"):
        assert secret not in _error_text(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?password=Xy7P&Qw9R",
        "rediss://127.0.0.1:6379/0?ssl_password=Xy7P&Qw9R=1&ssl_cert_reqs=none",
        "redis+sentinel://127.0.0.1:26379/m?sentinel_password=Xy7P&Qw9R",
    ],
)
def test_a_raw_ampersand_in_a_query_secret(url: str) -> None:
    """The tail of a secret split off by an unencoded '&' looks like an option: never named."""
    with pytest.raises(ConfigurationError, match="unknown option after") as caught:
        RedisSessionStore(url)
    message = _error_text(caught.value)
    assert "Xy7P" not in message
    assert "Qw9R" not in message
    assert "%26" in message
    assert "Qw9R" not in mask_url(url)


def test_the_store_and_the_settings_never_hold_the_password_in_clear() -> None:
    """`redis_url` is the masked URL; the arguments still take the real one."""
    url = "redis://app:Zq8K%2FLp4N@cache.internal:6380/2"
    store = RedisSessionStore(url, prefix="bot:")
    settings_ = SessionStoreSettings(store="redis", redis_url=url)
    assert store.redis_url == settings_.redis_url == "redis://***@cache.internal:6380/2"
    for text in (_visible(store), _visible(settings_)):
        assert "Zq8K" not in text
        assert "app" not in text


@any_credentials
@settings(max_examples=examples(300), deadline=None)
def test_masking_is_idempotent(
    form: str, user: str, password: str, shape: str, encode: bool
) -> None:
    """A masked URL masks to itself, so a URL masked twice (a store's own) reads the same."""
    masked = mask_url(_url(form, user, password, shape, encode))
    assert mask_url(masked) == masked


async def test_a_too_long_session_id_is_never_quoted(store: EncodedSessionStore) -> None:
    """A session id can be a bearer secret: an id over 512 bytes is refused without quoting it."""
    session_id = "Zq8K" + "x" * 600 + "Lp4N"
    for call in (store.load, store.exists, store.delete):
        with pytest.raises(InvalidSessionIdError) as caught:
            await call(session_id)
        message = _error_text(caught.value)
        assert "Zq8K" not in message
        assert "Lp4N" not in message
        assert "xxxx" not in message
    with pytest.raises(InvalidSessionIdError) as caught:
        await store.save(session_id, {"n": 1})
    assert "Zq8K" not in _error_text(caught.value)
