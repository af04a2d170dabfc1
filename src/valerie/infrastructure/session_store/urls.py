"""Redis URLs: checked before use, and shown only with their secrets masked."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .errors import ConfigurationError

STANDALONE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SCHEMES = STANDALONE_SCHEMES + SENTINEL_SCHEMES + CLUSTER_SCHEMES
_SECRET_QUERY_KEYS = frozenset({"password", "ssl_password", "sentinel_password"})
_EXPECTED = (
    "expected redis://[[user]:password@]host[:port][/db], rediss://... for TLS, "
    "unix:///path/to/redis.sock, redis+sentinel://[[user]:password@]host:port[,host:port...]"
    "/master_name[/db], or redis+cluster://[[user]:password@]host:port[,host:port...]"
)


@dataclass(frozen=True)
class RedisTarget:
    """Where a Redis URL points: one server, a Sentinel-managed primary, or a Cluster."""

    topology: str  # "standalone", "sentinel" or "cluster"
    url: str
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()  # sentinels, or cluster seed nodes
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    master_name: str | None = None
    db: int = 0
    query: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        return f"RedisTarget(topology={self.topology!r}, url={mask_url(self.url)!r})"


def mask_url(url: str) -> str:
    """Return `url` with its password (and any secret query parameter) replaced by `***`.

    Everything before the last `@` counts as user info, so a password holding `/`, `#` or `?`
    is masked too (over-masking is the safe side).
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        # Malformed (redis:/x, redis//x): the user info may start anywhere, so hide it all.
        scheme, separator, rest = "", "", url
        if "@" in rest:
            return "***@" + mask_url("redis://" + rest.rpartition("@")[2]).partition("://")[2]
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:***@{rest}" if colon else f"***@{rest}"
    base, question, query = rest.partition("?")
    if question:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(key, "***" if key in _SECRET_QUERY_KEYS else value) for key, value in pairs],
            safe="*",
        )
    return f"{scheme}{separator}{base}{question}{query}"


def check_redis_url(url: object, name: str = "redis_url") -> str:
    """Return `url` if it is a Redis URL of a form this store connects to.

    Raises:
        ConfigurationError: It is not; the message names `name`, shows the URL with its
            password masked and the accepted forms.
    """
    return parse_redis_url(url, name).url


def parse_redis_url(url: object, name: str = "redis_url") -> RedisTarget:
    """Return what a Redis URL points at.

    Raises:
        ConfigurationError: It is not a Redis URL; the message names `name`, shows the URL with
            its password masked and the accepted forms.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"{name} must be a str, got {type(url).__name__}; {_EXPECTED}")
    shown = mask_url(url)
    scheme = url.partition("://")[0]
    if scheme in SENTINEL_SCHEMES + CLUSTER_SCHEMES:
        return _parse_multi_host(url, name, shown)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # The parser's own message may quote part of a password: never pass it on.
        raise ConfigurationError(
            f"{name}={shown!r} is not a valid URL (is the port a number, and are '/', '#', "
            f"'?' and '@' in the password percent-encoded?); {_EXPECTED}"
        ) from None
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"{name}={shown!r} has the scheme {parts.scheme!r}, not one of "
            f"{', '.join(SCHEMES)}; {_EXPECTED}"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigurationError(f"{name}={shown!r} names no socket path; {_EXPECTED}")
        return RedisTarget("standalone", url)
    if parts.scheme in STANDALONE_SCHEMES:
        if not parts.hostname:
            raise ConfigurationError(f"{name}={shown!r} names no host; {_EXPECTED}")
        if port == 0:
            raise ConfigurationError(f"{name}={shown!r} has port 0; {_EXPECTED}")
        _database(parts.path.lstrip("/"), name, shown)
        return RedisTarget("standalone", url, tls=parts.scheme == "rediss")
    return _parse_multi_host(url, name, shown)


def _database(text: str, name: str, shown: str) -> int:
    if text and not text.isdigit():
        raise ConfigurationError(
            f"{name}={shown!r} names the database {text!r}, which is not a number; {_EXPECTED}"
        )
    return int(text or 0)


def _parse_multi_host(url: str, name: str, shown: str) -> RedisTarget:
    """Parse `redis+sentinel://` and `redis+cluster://` URLs, whose host part is a list."""
    scheme, _, rest = url.partition("://")
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinel = scheme in SENTINEL_SCHEMES
    nodes = []
    for host in hosts.split(","):
        try:
            node = urlsplit("//" + host)
            hostname, port = node.hostname, node.port
        except ValueError:
            hostname, port = None, None
        if not hostname or port is None or port == 0:
            raise ConfigurationError(
                f"{name}={shown!r} has the node {host!r}, not host:port; {_EXPECTED}"
            )
        nodes.append((hostname, port))
    segments = [segment for segment in path.split("/") if segment]
    if sentinel:
        if not segments or len(segments) > 2:
            raise ConfigurationError(
                f"{name}={shown!r} names no master: add /master_name after the sentinels "
                f"(the name in their 'sentinel monitor' line); {_EXPECTED}"
            )
        master_name = unquote(segments[0])
        db = _database("".join(segments[1:]), name, shown)
    else:
        master_name, db = None, _database("".join(segments), name, shown)
        if db != 0:
            raise ConfigurationError(
                f"{name}={shown!r} names database {db}; a Redis Cluster has database 0 only"
            )
    return RedisTarget(
        topology="sentinel" if sentinel else "cluster",
        url=url,
        tls=scheme.startswith("rediss"),
        nodes=tuple(nodes),
        username=username,
        password=password,
        master_name=master_name,
        db=db,
        query=tuple(parse_qsl(query, keep_blank_values=True)),
    )
