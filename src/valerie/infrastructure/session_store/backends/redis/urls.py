"""Redis URLs: checked before use, and shown only with their credentials masked.

A URL is split as every URL parser splits it: after `scheme://`, the authority runs up to the
first `/`, `?` or `#`, and its user info is what comes before the authority's last `@`. A URL
with an `@` after that point cannot be split safely: a password holding an unencoded `/`, `?`
or `#` looks exactly like that, and whatever a parser makes of it, host, port, database or
option, would be part of the password. Such a URL is refused, and nothing of it but its scheme
is ever shown. Everywhere else, a URL is shown with its whole user info and every credential
in its query as `***`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NoReturn
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

from ...errors import ConfigurationError

STANDALONE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SCHEMES = STANDALONE_SCHEMES + SENTINEL_SCHEMES + CLUSTER_SCHEMES
SECRET_QUERY_KEYS = frozenset(
    {"password", "ssl_password", "sentinel_password", "username", "sentinel_username"}
)
"""Query options whose values are credentials: always shown as `***`."""

_EXPECTED = (
    "expected redis://[[user]:password@]host[:port][/db], rediss://... for TLS, "
    "unix://[[user]:password@]/path/to/redis.sock, redis+sentinel://[[user]:password@]host:port"
    "[,host:port...]/master_name[/db], or redis+cluster://[[user]:password@]host:port"
    "[,host:port...]"
)
_ENCODE = (
    "percent-encode the user name and password, e.g. with urllib.parse.quote(password, "
    "safe=''): '/' is %2F, '?' %3F, '#' %23, '@' %40, '%' %25, '&' %26, a space %20"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_NODE = re.compile(r"(?:\[(?P<ipv6>[^\[\]]*)\]|(?P<host>[^:\[\]]*))(?::(?P<port>.*))?", re.DOTALL)
_HOSTNAME = re.compile(r"[A-Za-z0-9._-]+")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _seconds(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value > 0


def _whole(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 9


def _flag(text: str) -> bool:
    # Only spellings that redis-py reads the same way: it takes any other text as true.
    return text.lower() in {"true", "false", "yes", "no", "1", "0"}


def _text(text: str) -> bool:
    return True


_OPTION_CHECKS: dict[str, tuple[Callable[[str], bool], str]] = {
    "socket_timeout": (_seconds, "a positive number of seconds"),
    "socket_connect_timeout": (_seconds, "a positive number of seconds"),
    "health_check_interval": (_whole, "a whole number of seconds"),
    "socket_read_size": (_whole, "a whole number of bytes"),
    "socket_keepalive": (_flag, "true or false"),
    "retry_on_timeout": (_flag, "true or false"),
    "client_name": (_text, ""),
    "lib_name": (_text, ""),
    "lib_version": (_text, ""),
    "db": (_whole, "a database number"),
    "username": (_text, ""),
    "password": (_text, ""),
    "sentinel_username": (_text, ""),
    "sentinel_password": (_text, ""),
    "ssl_ca_certs": (_text, ""),
    "ssl_ca_path": (_text, ""),
    "ssl_ca_data": (_text, ""),
    "ssl_certfile": (_text, ""),
    "ssl_keyfile": (_text, ""),
    "ssl_password": (_text, ""),
    "ssl_cert_reqs": (lambda text: text in {"none", "optional", "required"}, "none, optional "
                      "or required"),
    "ssl_check_hostname": (_flag, "true or false"),
    "ssl_ciphers": (_text, ""),
    "ssl_min_version": (_whole, "a TLS version number (ssl.TLSVersion)"),
    "ssl_include_verify_flags": (_text, ""),
    "ssl_exclude_verify_flags": (_text, ""),
}  # fmt: skip
URL_OPTIONS = frozenset(_OPTION_CHECKS)
"""The query options a URL may set: redis-py connection options the store leaves to the URL."""

STORE_OWNED_OPTIONS = {
    "decode_responses": "the store reads bytes",
    "protocol": "the store chooses the protocol",
    "max_connections": "pass max_connections= to RedisSessionStore instead",
}
_SENTINEL_ONLY = frozenset({"sentinel_username", "sentinel_password"})
_STANDALONE_ONLY = frozenset({"db", "username", "password"})


@dataclass(frozen=True)
class RedisTarget:
    """Where a Redis URL points: one server, a Sentinel-managed primary, or a Cluster.

    `url` is the URL as given, credentials included: keep it out of messages (`repr` masks it).
    """

    topology: str  # "standalone", "sentinel" or "cluster"
    url: str = field(repr=False)
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()  # sentinels, or cluster seed nodes
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    master_name: str | None = None
    db: int = 0
    query: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        return f"RedisTarget(topology={self.topology!r}, url={mask_url(self.url)!r})"


@dataclass(frozen=True)
class _Parts:
    """A URL split as URL parsers split it; only made when that split is beyond doubt."""

    scheme: str  # lowercased, as URL parsers do
    userinfo: str | None
    hosts: str
    path: str
    query: str | None
    fragment: str | None

    def masked(self) -> str:
        userinfo = "" if self.userinfo is None else "***@"
        hosts = ",".join(_masked_node(node) for node in self.hosts.split(","))
        query = "" if self.query is None else "?" + _masked_query(self.query)
        return f"{self.scheme}://{userinfo}{hosts}{self.path}{query}"


def _split(url: str) -> _Parts | None:
    """Split `url`, or return None when where its user info ends is in doubt."""
    scheme, separator, rest = url.partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        return None
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in tail:
        return None
    userinfo, at, hosts = authority.rpartition("@")
    tail, hash_mark, fragment = tail.partition("#")
    path, question_mark, query = tail.partition("?")
    return _Parts(
        scheme=scheme.lower(),
        userinfo=userinfo if at else None,
        hosts=hosts,
        path=path,
        query=query if question_mark else None,
        fragment=fragment if hash_mark else None,
    )


def _masked_node(node: str) -> str:
    match = _NODE.fullmatch(node)
    if match is None:
        return "***"
    port = match["port"]
    # A port that is not a number may be a password whose '@host' part was forgotten.
    if port is not None and not (port.isascii() and port.isdigit()):
        return node[: match.start("port")] + "***"
    return node


def _masked_query(query: str) -> str:
    pieces = []
    after_secret = False
    for piece in query.split("&"):
        raw_key = piece.partition("=")[0]
        key = unquote_plus(raw_key)
        if key in SECRET_QUERY_KEYS:
            pieces.append(f"{raw_key}=***")
            after_secret = True
        elif after_secret and piece and key not in URL_OPTIONS:
            # An unencoded '&' in the secret before would make its tail look like this.
            pieces.append("***")
        else:
            pieces.append(piece)
    return "&".join(pieces)


def mask_url(url: str) -> str:
    """Return `url` in a form safe to show: no user info, no credential in its query.

    The user info (user name and password) and the values of `password`, `ssl_password`,
    `sentinel_password`, `username` and `sentinel_username` become `***`, and a fragment is
    dropped. A URL that cannot be split safely (see the module's docstring) shows only its
    scheme: `redis://***`; text that is not a URL at all shows as `***`.
    """
    parts = _split(url)
    if parts is not None:
        return parts.masked()
    scheme, separator, _ = url.partition("://")
    return f"{scheme.lower()}://***" if separator and _SCHEME.fullmatch(scheme) else "***"


def parse_redis_url(url: object, name: str = "redis_url") -> RedisTarget:
    """Return what a Redis URL points at, after checking everything that needs no redis-py.

    Checked: the form of the URL and of each host, port, database and master name, and the
    query options (known names, values of the right type, options that suit the topology and
    the scheme). What only redis-py knows is checked by `topology.connection_options`.

    Raises:
        ConfigurationError: The URL is not one this store connects to; the message names
            `name`, shows the URL masked (or not at all, if it cannot be split safely) and says
            what to fix.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"{name} must be a str, got {type(url).__name__}; {_EXPECTED}")
    parts = _split(url)
    if parts is None:
        _refuse_unsplittable(url, name)
    shown = f"{name}={parts.masked()!r}"
    if any(char == " " or not char.isprintable() for char in url):
        where = (
            " in its user info"
            if any(char == " " or not char.isprintable() for char in parts.userinfo or "")
            else ""
        )
        raise ConfigurationError(
            f"{shown} contains a space or an unprintable character{where}; a URL holds none: "
            f"remove any whitespace around it, and {_ENCODE}"
        )
    if parts.fragment is not None:
        raise ConfigurationError(
            f"{shown} has a '#', which has no meaning in a Redis URL (is it part of a "
            f"password or an option?); {_ENCODE}"
        )
    if _BAD_ESCAPE.search(url):
        raise ConfigurationError(
            f"{shown} has a '%' that does not start a %XX escape; write a '%' that is part of "
            f"a password or an option as %25 ({_ENCODE})"
        )
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"{shown} has the scheme {parts.scheme!r}, not one of {', '.join(SCHEMES)}; {_EXPECTED}"
        )
    if parts.scheme in STANDALONE_SCHEMES:
        target = _standalone(url, parts, shown)
    else:
        target = _multi_host(url, parts, shown)
    return replace(target, query=_options(parts, target, shown))


def _refuse_unsplittable(url: str, name: str) -> NoReturn:
    shown = mask_url(url)
    if shown == "***":
        raise ConfigurationError(
            f"{name} is not a URL (not shown, as it may hold a password): it does not start "
            f"with a scheme such as redis://; {_EXPECTED}"
        )
    raise ConfigurationError(
        f"{name} cannot be split safely into user info, host and the rest, so none of it is "
        f"shown ({shown!r}): an '@' comes after a '/', '?' or '#', as when a password holds "
        f"one of these unencoded; {_ENCODE}; an '@' in a socket path or an option is %40"
    )


def _standalone(url: str, parts: _Parts, shown: str) -> RedisTarget:
    if parts.scheme == "unix":
        if parts.hosts:
            raise ConfigurationError(
                f"{shown} names a host, which a unix:// URL has none of: write "
                f"unix://[[user]:password@]/path/to/redis.sock"
            )
        if parts.path in ("", "/"):
            raise ConfigurationError(f"{shown} names no socket path; {_EXPECTED}")
    else:
        if not parts.hosts:
            raise ConfigurationError(f"{shown} names no host; {_EXPECTED}")
        if "," in parts.hosts:
            raise ConfigurationError(
                f"{shown} names several hosts; for Sentinel or Cluster, use redis+sentinel:// "
                f"or redis+cluster://; {_EXPECTED}"
            )
        _node(parts.hosts, shown, port_required=False)
        _database(parts.path.removeprefix("/"), shown)
    try:
        # redis-py reads the URL with urllib's parser: it must read it as we did.
        split = urlsplit(url)
        split.port  # noqa: B018 (parsing the port is the check)
    except ValueError:
        # Its message may quote part of a password: never pass it on.
        raise ConfigurationError(
            f"{shown} cannot be read by Python's URL parser, which redis-py uses (are there "
            f"'[' or ']' in the user info?); {_ENCODE}, '[' %5B, ']' %5D"
        ) from None
    return RedisTarget("standalone", url, tls=parts.scheme == "rediss")


def _node(text: str, shown: str, *, port_required: bool) -> tuple[str, int]:
    """Return (host, port) of a `host[:port]` or `[ipv6][:port]` node (port 6379 if omitted)."""
    match = _NODE.fullmatch(text)
    host = port = None
    if match is not None:
        port = match["port"]
        if match["ipv6"] is not None:
            host = match["ipv6"] if _is_ipv6(match["ipv6"]) else None
        elif _HOSTNAME.fullmatch(match["host"]):
            host = match["host"]
    if host is None:
        raise ConfigurationError(
            f"{shown} has the node {_masked_node(text)!r}, whose host is not a host name, an "
            f"IPv4 address or an [IPv6] address; {_EXPECTED}"
        )
    if port is None and port_required:
        raise ConfigurationError(
            f"{shown} has the node {_masked_node(text)!r}, not host:port; {_EXPECTED}"
        )
    if port is not None and not (_whole(port) and 0 < int(port) < 65536):
        raise ConfigurationError(
            f"{shown} has the node {_masked_node(text)!r}, whose port is not a number from 1 "
            f"to 65535; {_EXPECTED}"
        )
    return host.lower(), 6379 if port is None else int(port)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _database(text: str, shown: str) -> int:
    if text and not _whole(text):
        raise ConfigurationError(
            f"{shown} names the database {text!r}, which is not a number; {_EXPECTED}"
        )
    return int(text or 0)


def _multi_host(url: str, parts: _Parts, shown: str) -> RedisTarget:
    """Parse `redis+sentinel://` and `redis+cluster://` URLs, whose host part is a list."""
    username = password = None
    if parts.userinfo is not None:
        user, colon, secret = parts.userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    if not parts.hosts:
        raise ConfigurationError(f"{shown} names no host; {_EXPECTED}")
    nodes = tuple(_node(node, shown, port_required=True) for node in parts.hosts.split(","))
    segments = [segment for segment in parts.path.split("/") if segment]
    sentinel = parts.scheme in SENTINEL_SCHEMES
    if sentinel:
        if not segments or len(segments) > 2:
            raise ConfigurationError(
                f"{shown} names no master: add /master_name after the sentinels (the name in "
                f"their 'sentinel monitor' line); {_EXPECTED}"
            )
        master_name = unquote(segments[0])
        db = _database("/".join(segments[1:]), shown)
    else:
        master_name, db = None, _database("/".join(segments), shown)
        if db != 0:
            raise ConfigurationError(
                f"{shown} names database {db}; a Redis Cluster has database 0 only"
            )
    return RedisTarget(
        topology="sentinel" if sentinel else "cluster",
        url=url,
        tls=parts.scheme.startswith("rediss"),
        nodes=nodes,
        username=username,
        password=password,
        master_name=master_name,
        db=db,
    )


def _options(parts: _Parts, target: RedisTarget, shown: str) -> tuple[tuple[str, str], ...]:
    """Check the query options and return them, decoded, in order."""
    options: list[tuple[str, str]] = []
    after_secret = None
    for piece in (parts.query or "").split("&"):
        for key, value in parse_qsl(piece, keep_blank_values=True):
            _check_option(key, value, target, after_secret, shown)
            if key in (option for option, _ in options):
                raise ConfigurationError(f"{shown} sets {key} twice; keep one")
            options.append((key, value))
            if key in SECRET_QUERY_KEYS and after_secret is None:
                after_secret = key
    if parts.scheme != "unix" and "db" in dict(options) and parts.path.removeprefix("/"):
        raise ConfigurationError(
            f"{shown} names the database twice, in its path and as ?db=; keep one"
        )
    return tuple(options)


def _check_option(
    key: str, value: str, target: RedisTarget, after_secret: str | None, shown: str
) -> None:
    if key in STORE_OWNED_OPTIONS:
        raise ConfigurationError(
            f"{shown} sets {key}, which this store does not allow "
            f"({STORE_OWNED_OPTIONS[key]}); remove it from the URL"
        )
    if key not in _OPTION_CHECKS:
        if after_secret is not None:
            # Its name may be the tail of the secret: an unencoded '&' splits a value in two.
            raise ConfigurationError(
                f"{shown} has an unknown option after {after_secret}= (not named: if that "
                f"value holds an '&', the rest of it looks like an option; percent-encode "
                f"'&' as %26); the options a URL may set are listed in the README"
            )
        raise ConfigurationError(
            f"{shown} has the unknown option {key!r}; the options a URL may set are listed in "
            f"the README (e.g. ?socket_timeout=2&ssl_ca_certs=/path/ca.pem)"
        )
    if target.topology != "standalone" and key in _STANDALONE_ONLY:
        raise ConfigurationError(
            f"{shown} gives {key} as a query parameter; put credentials in the user info "
            "(user:password@) and the database after the master name"
        )
    if target.topology != "sentinel" and key in _SENTINEL_ONLY:
        raise ConfigurationError(
            f"{shown} sets {key}, which only a redis+sentinel:// URL uses; remove it"
        )
    if key.startswith("ssl_") and not target.tls:
        raise ConfigurationError(
            f"{shown} sets {key}, a TLS option, on a URL without TLS; use rediss:// "
            "(rediss+sentinel://, rediss+cluster://), or remove it"
        )
    check, expected = _OPTION_CHECKS[key]
    if not check(value):
        raise ConfigurationError(f"{shown} sets {key} to a value that is not {expected}")
