"""Configuration: which store, where, and for how long, with one set of rules.

`SessionStoreSettings` checks its values the same way whether they come from keyword arguments
or from the `VALERIE_SESSION_*` variables (`from_environ`). Every reader takes a mapping that
defaults to `os.environ`, so tests and applications that load their settings themselves pass a
dict instead of changing the process environment.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .backends.redis import DEFAULT_PREFIX, DEFAULT_REDIS_URL
from .backends.redis.urls import RedisTarget, mask_url, parse_redis_url
from .contract import DEFAULT_TTL_SECONDS, SessionStore
from .encryption import KEYS_VAR, Encryption, check_encryption
from .errors import ConfigurationError, InvalidTTLError
from .limits import MAX_BYTES_VAR, check_max_state_bytes, max_state_bytes_from_environ
from .registry import registry
from .validation import MAX_TTL_SECONDS, TTL, check_prefix, ttl_seconds

STORE_VAR = "VALERIE_SESSION_STORE"
REDIS_URL_VAR = "VALERIE_SESSION_REDIS_URL"
TTL_VAR = "VALERIE_SESSION_TTL"
PREFIX_VAR = "VALERIE_SESSION_PREFIX"
VARIABLES = (STORE_VAR, REDIS_URL_VAR, TTL_VAR, PREFIX_VAR, KEYS_VAR, MAX_BYTES_VAR)
"""Every variable the store reads; any other `VALERIE_SESSION_*` variable is an error."""

_NAMESPACE = "VALERIE_SESSION_"


@dataclass(frozen=True)
class _Names:
    """How errors name each setting: by argument, or by environment variable."""

    store: str
    redis_url: str
    ttl: str
    prefix: str
    environment: bool
    verb: str

    def setting(self, field: str, value: str) -> str:
        """How to give `field` the value `value`, in the words of this source."""
        name: str = getattr(self, field)
        return f"{name}={value}" if self.environment else f"{name}={value!r}"


_ARGUMENTS = _Names("store", "redis_url", "ttl", "prefix", environment=False, verb="pass")
_ENVIRONMENT = _Names(STORE_VAR, REDIS_URL_VAR, TTL_VAR, PREFIX_VAR, environment=True, verb="set")


class SessionStoreSettings:
    """Which store to create, checked when the settings are made; never shows a password.

    Built from arguments or from the environment (`from_environ`), the same rules apply; a
    value that breaks one raises `ConfigurationError` naming the argument or the variable:

    - `store` is a registered store type (`memory`, `redis`, or one an installed package
      registers, see `registry`), in any case. Left out, it means `memory`, and then
      `redis_url` and `prefix`, which only a Redis store uses, must be left out too: settings
      meant for Redis never silently give a per-process memory store.
    - `redis_url` is checked whatever the store type (see `RedisSessionStore`).
    - `ttl` is the default TTL: whole seconds (`int` or `timedelta`), 1 to ten years.
    - `prefix` is non-empty printable text.
    - Text is used exactly as given: surrounding whitespace is an error, not trimmed.

    The attribute `redis_url` shows the URL with its credentials masked; the store created
    gets the real one.

    Raises:
        ConfigurationError: A value breaks one of these rules.
    """

    __slots__ = ("_prefix", "_store", "_target", "_ttl", "encryption", "max_state_bytes")

    def __init__(
        self,
        store: str | None = None,
        redis_url: str | None = None,
        ttl: TTL | None = None,
        prefix: str | None = None,
        *,
        encryption: Encryption | None = None,
        max_state_bytes: int | None = None,
    ) -> None:
        self._set(store, redis_url, ttl, prefix, _ARGUMENTS)
        self.encryption = check_encryption(encryption)
        self.max_state_bytes = check_max_state_bytes(max_state_bytes)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SessionStoreSettings:
        """Read and check the `VALERIE_SESSION_*` variables; unset ones take their default.

        Besides the rules of the class, a variable set to an empty value is an error (unset it
        for the default), and so is any other variable named `VALERIE_SESSION_*` (in any case)
        or a near miss of one of the four names, such as `VALERIE_SESSION_STROE`.

        Raises:
            ConfigurationError: A variable is unknown or not allowed; the message names the
                variable, the value (URL masked) and what is allowed.
        """
        env = os.environ if environ is None else environ
        _check_names(env)
        raw = {variable: env.get(variable) for variable in VARIABLES}
        for variable, value in raw.items():
            if value == "":
                raise ConfigurationError(
                    f"{variable} is set but empty; unset it for its default, or give it a value"
                )
        ttl = raw[TTL_VAR]
        settings = cls.__new__(cls)
        settings._set(
            raw[STORE_VAR],
            raw[REDIS_URL_VAR],
            None if ttl is None else _ttl_from_text(ttl),
            raw[PREFIX_VAR],
            _ENVIRONMENT,
        )
        # Read only when set, so that stores without the crypto extra never import it.
        settings.encryption = None if raw[KEYS_VAR] is None else Encryption.from_environ(env)
        settings.max_state_bytes = max_state_bytes_from_environ(env)
        return settings

    def _set(
        self, store: object, redis_url: object, ttl: object, prefix: object, names: _Names
    ) -> None:
        """Check every value by the rules above, naming them as `names` says, and keep them."""
        if store is None:
            store_type = "memory"
            for field, value in (("redis_url", redis_url), ("prefix", prefix)):
                if value is not None:
                    raise ConfigurationError(
                        f"{getattr(names, field)} is set but {names.store} is not, so the "
                        f"store would be the in-memory one and ignore it; {names.verb} "
                        f"{names.setting('store', 'redis')} (or "
                        f"{names.setting('store', 'memory')} to keep the memory store)"
                    )
        else:
            store_type = _check_text(store, names.store).lower()
            store_types = registry.names()
            if store_type not in store_types:
                raise ConfigurationError(
                    f"{names.store}={store!r} is not a store type; {names.verb} it to "
                    f"{' or '.join(store_types)} (in any case), or leave it out for memory"
                )
        if redis_url is None:
            redis_url = DEFAULT_REDIS_URL
        elif isinstance(redis_url, str):
            _check_text(redis_url, names.redis_url, shown=mask_url(redis_url.strip()))
        target = check_redis_url(redis_url, names.redis_url)
        try:
            ttl_value = DEFAULT_TTL_SECONDS if ttl is None else ttl_seconds(ttl, names.ttl)
        except InvalidTTLError as error:
            raise ConfigurationError(str(error)) from None
        if prefix is None:
            prefix = DEFAULT_PREFIX
        try:
            prefix_value = check_prefix(_check_text(prefix, names.prefix))
        except ConfigurationError as error:
            if not names.environment:
                raise
            raise ConfigurationError(f"{names.prefix}: {error}") from None
        self._store = store_type
        self._target = target
        self._ttl = ttl_value
        self._prefix = prefix_value

    @property
    def store(self) -> str:
        """The store type, e.g. `memory` or `redis` (lowercase)."""
        return self._store

    @property
    def redis_url(self) -> str:
        """The Redis URL with its credentials masked (`redis://***@host:6379/0`)."""
        return mask_url(self._target.url)

    def unmasked_redis_url(self) -> str:
        """The Redis URL with its credentials, for store factories: never log or show it."""
        return self._target.url

    @property
    def ttl(self) -> int:
        """The default TTL, in seconds."""
        return self._ttl

    @property
    def prefix(self) -> str:
        """The key prefix of a Redis store."""
        return self._prefix

    def _key(self) -> tuple[str, str, int, str]:
        return (self._store, self._target.url, self._ttl, self._prefix)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionStoreSettings):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(store={self._store!r}, redis_url={self.redis_url!r}, "
            f"ttl={self._ttl}, prefix={self._prefix!r})"
        )

    def create_store(self) -> SessionStore:
        """Return a new store of the configured type, made by its registered factory.

        Raises:
            MissingDependencyError: The Redis store is configured, and redis-py is missing.
            ConfigurationError: A third-party type's entry point cannot be loaded.
        """
        return registry.factory(self._store)(self)


def _check_text(value: object, name: str, shown: str | None = None) -> str:
    """Return `value` if it is a `str` without surrounding whitespace."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a str, got {type(value).__name__}")
    if value != value.strip():
        quoted = f"={value!r}" if shown is None else f" ({shown!r})"
        raise ConfigurationError(
            f"{name}{quoted} has whitespace around it; remove it (values are used exactly "
            "as given, never trimmed)"
        )
    return value


def check_redis_url(url: object, name: str = "redis_url") -> RedisTarget:
    """Return what `url` points at, checked as far as possible with what is installed.

    Without redis-py, everything but what only redis-py knows is checked (see
    `parse_redis_url`); with it, the options are also read by redis-py itself.

    Raises:
        ConfigurationError: The URL is not allowed; the message names `name`.
    """
    target = parse_redis_url(url, name)
    try:
        from .backends.redis.topology import connection_options
    except ModuleNotFoundError as missing:
        if (missing.name or "").partition(".")[0] != "redis":
            raise
        return target
    connection_options(target, name)
    return target


def _check_names(env: Mapping[str, str]) -> None:
    """Refuse variables that look meant for the store but are none of its four."""
    for variable in env:
        if variable in VARIABLES:
            continue
        upper = variable.upper()
        if upper.startswith(_NAMESPACE):
            # Within the namespace, a near miss is judged on the part after it.
            suffixes = [name.removeprefix(_NAMESPACE) for name in VARIABLES]
            close = difflib.get_close_matches(upper.removeprefix(_NAMESPACE), suffixes, 1, 0.6)
            close = [_NAMESPACE + suffix for suffix in close]
        else:
            close = difflib.get_close_matches(upper, VARIABLES, n=1, cutoff=0.9)
            if not close:
                continue
        hint = f"did you mean {close[0]}?" if close else f"it reads {', '.join(VARIABLES)}."
        raise ConfigurationError(
            f"{variable} is not a variable of the session store; {hint} Rename or unset it: "
            "a misspelt setting would otherwise be silently ignored"
        )


def _ttl_from_text(raw: str, name: str = TTL_VAR) -> int:
    text = _check_text(raw, name)
    digits = text.lstrip("0")
    if text.isascii() and text.isdigit() and len(digits) <= len(str(MAX_TTL_SECONDS)):
        try:
            return ttl_seconds(int(digits or "0"), name)
        except InvalidTTLError:
            pass
    shown = repr(raw) if len(raw) <= 40 else f"{raw[:20]!r}... ({len(raw)} characters)"
    raise ConfigurationError(
        f"{name}={shown} is not a whole number of seconds from 1 to {MAX_TTL_SECONDS}; "
        f"set it to e.g. 3600 (one hour), or unset it for the default ({DEFAULT_TTL_SECONDS})"
    )


def get_default_ttl(environ: Mapping[str, str] | None = None) -> int:
    """Return `VALERIE_SESSION_TTL` in seconds, or 3600 when it is unset.

    Raises:
        ConfigurationError: The variable is not a whole number of seconds from 1 to ten years
            (written in ASCII digits, without whitespace around it).
    """
    env = os.environ if environ is None else environ
    raw = env.get(TTL_VAR)
    return DEFAULT_TTL_SECONDS if raw is None else _ttl_from_text(raw)


def get_session_store(environ: Mapping[str, str] | None = None) -> SessionStore:
    """Return a new store as the `VALERIE_SESSION_*` variables configure it.

    `VALERIE_SESSION_STORE` picks `memory` (the default), `redis` or another registered type
    (see `registry`); there is no silent
    fallback: an unknown type or variable, a bad URL, TTL or prefix, or Redis settings without
    `VALERIE_SESSION_STORE=redis`, raises `ConfigurationError`.
    """
    return SessionStoreSettings.from_environ(environ).create_store()
