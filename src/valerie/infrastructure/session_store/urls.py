"""Redis URLs: checked before use, and shown only with their secrets masked."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from .errors import ConfigurationError

SCHEMES = ("redis", "rediss", "unix")
_SECRET_QUERY_KEYS = frozenset({"password", "ssl_password"})
_EXPECTED = (
    "expected redis://[[user]:password@]host[:port][/db], rediss://... for TLS, "
    "or unix:///path/to/redis.sock"
)


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
    """Return `url` if redis-py can connect with it.

    Raises:
        ConfigurationError: It is not a Redis URL; the message names `name`, shows the URL with
            its password masked and the accepted forms.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"{name} must be a str, got {type(url).__name__}; {_EXPECTED}")
    shown = mask_url(url)
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
        return url
    if not parts.hostname:
        raise ConfigurationError(f"{name}={shown!r} names no host; {_EXPECTED}")
    if port == 0:
        raise ConfigurationError(f"{name}={shown!r} has port 0; {_EXPECTED}")
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        raise ConfigurationError(
            f"{name}={shown!r} names the database {database!r}, which is not a number; {_EXPECTED}"
        )
    return url
