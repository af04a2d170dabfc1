"""Configuration from environment variables: which store, where, and for how long.

Every reader takes a mapping that defaults to `os.environ`, so tests and applications that
load their settings themselves pass a dict instead of changing the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .base import DEFAULT_TTL_SECONDS, EncodedSessionStore
from .errors import ConfigurationError, InvalidTTLError
from .memory import InMemorySessionStore
from .redis import DEFAULT_PREFIX, DEFAULT_REDIS_URL, RedisSessionStore
from .urls import check_redis_url, mask_url
from .validation import MAX_TTL_SECONDS, check_prefix, ttl_seconds

STORE_VAR = "VALERIE_SESSION_STORE"
REDIS_URL_VAR = "VALERIE_SESSION_REDIS_URL"
TTL_VAR = "VALERIE_SESSION_TTL"
PREFIX_VAR = "VALERIE_SESSION_PREFIX"

STORE_TYPES = ("memory", "redis")


@dataclass(frozen=True)
class SessionStoreSettings:
    """The store settings read from the environment, checked; `repr` masks the password."""

    store: str = "memory"
    redis_url: str = DEFAULT_REDIS_URL
    ttl: int = DEFAULT_TTL_SECONDS
    prefix: str = DEFAULT_PREFIX

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(store={self.store!r}, "
            f"redis_url={mask_url(self.redis_url)!r}, ttl={self.ttl}, prefix={self.prefix!r})"
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SessionStoreSettings:
        """Read and check every `VALERIE_SESSION_*` variable; unset ones take their default.

        Raises:
            ConfigurationError: A variable is set to a value that is not allowed; the message
                names the variable, the value (password masked) and what is allowed.
        """
        env = os.environ if environ is None else environ
        store = env.get(STORE_VAR, "memory").strip().lower()
        if store not in STORE_TYPES:
            raise ConfigurationError(
                f"{STORE_VAR}={env[STORE_VAR]!r} is not a store type; set it to "
                f"{' or '.join(STORE_TYPES)}, or unset it for the default (memory)"
            )
        redis_url = check_redis_url(env.get(REDIS_URL_VAR, DEFAULT_REDIS_URL), REDIS_URL_VAR)
        try:
            prefix = check_prefix(env.get(PREFIX_VAR, DEFAULT_PREFIX))
        except ConfigurationError as error:
            raise ConfigurationError(f"{PREFIX_VAR}: {error}") from None
        return cls(store=store, redis_url=redis_url, ttl=get_default_ttl(env), prefix=prefix)

    def create_store(self) -> EncodedSessionStore:
        """Return a new store of the configured type."""
        if self.store == "redis":
            try:
                return RedisSessionStore(self.redis_url, self.prefix, default_ttl=self.ttl)
            except ConfigurationError as error:
                raise ConfigurationError(f"{REDIS_URL_VAR}: {error}") from None
        return InMemorySessionStore(default_ttl=self.ttl)


def get_default_ttl(environ: Mapping[str, str] | None = None) -> int:
    """Return `VALERIE_SESSION_TTL` in seconds, or 3600 when it is unset.

    Raises:
        ConfigurationError: The variable is not a positive whole number of seconds.
    """
    env = os.environ if environ is None else environ
    raw = env.get(TTL_VAR)
    if raw is None:
        return DEFAULT_TTL_SECONDS
    text = raw.strip()
    try:
        if not text.isdigit() or not text.isascii():
            raise InvalidTTLError("not a whole number")
        return ttl_seconds(int(text), TTL_VAR)
    except InvalidTTLError:
        raise ConfigurationError(
            f"{TTL_VAR}={raw!r} is not a whole number of seconds from 1 to {MAX_TTL_SECONDS}; "
            f"set it to e.g. 3600 (one hour), or unset it for the default ({DEFAULT_TTL_SECONDS})"
        ) from None


def get_session_store(environ: Mapping[str, str] | None = None) -> EncodedSessionStore:
    """Return a new store as the `VALERIE_SESSION_*` variables configure it.

    `VALERIE_SESSION_STORE` picks `memory` (the default) or `redis`; there is no silent
    fallback: an unknown type, a bad URL, TTL or prefix raises `ConfigurationError`.
    """
    return SessionStoreSettings.from_environ(environ).create_store()
