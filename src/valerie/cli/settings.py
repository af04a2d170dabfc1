"""Which store a command works on: the `VALERIE_SESSION_*` variables, overridden by flags."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from valerie.infrastructure import (
    ConfigurationError,
    InMemorySessionStore,
    SessionStore,
    SessionStoreError,
    SessionStoreSettings,
)
from valerie.infrastructure.session_store.config import PREFIX_VAR, REDIS_URL_VAR, STORE_VAR

from . import errors
from .errors import CommandFailure, Scrubber, failure_from
from .exit_codes import ExitCode

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "redis://localhost:6379"

MEMORY_STORE = (
    "the configured store is the in-memory one (VALERIE_SESSION_STORE is unset or memory), "
    "which lives inside each bot process, so no other process can see its sessions; point the "
    "command at Redis with --url redis://host:6379 (or VALERIE_SESSION_STORE=redis and "
    "VALERIE_SESSION_REDIS_URL), or try it on sample sessions with --demo"
)

# Query options whose values are credentials (see the README's Configuration section).
_SECRET_OPTIONS = ("password", "ssl_password", "sentinel_password", "username", "sentinel_username")


@dataclass(frozen=True)
class Target:
    """The checked settings, and the real URL (kept out of every output) for the doctor."""

    settings: SessionStoreSettings
    url: str = field(repr=False)
    demo: bool = False

    @property
    def is_redis(self) -> bool:
        """Whether the commands go to a Redis server (not the demo or a memory store)."""
        return not self.demo and self.settings.store == "redis"


def store_options(command: F) -> F:
    """Add `--url`, `--prefix` and `--demo` to a command that works on a store."""
    command = click.option(
        "--demo",
        is_flag=True,
        help="Work on an in-memory store of sample sessions (made for this one command).",
    )(command)
    command = click.option(
        "--prefix",
        metavar="PREFIX",
        help="Key prefix of the store; overrides VALERIE_SESSION_PREFIX.",
    )(command)
    command = click.option(
        "--url",
        metavar="URL",
        help="Redis URL (credentials are never shown); overrides VALERIE_SESSION_REDIS_URL "
        "and selects the Redis store.",
    )(command)
    return command


def resolve(url: str | None, prefix: str | None, demo: bool) -> Target:
    """Check the configuration as the library would, with the flags taking precedence.

    Raises:
        CommandFailure: The configuration is not allowed (exit code CONFIGURATION).
    """
    env = dict(os.environ)
    if url is not None:
        env[REDIS_URL_VAR] = url
        env[STORE_VAR] = "redis"
    if prefix is not None:
        env[PREFIX_VAR] = prefix
        env.setdefault(STORE_VAR, "redis")
    real_url = env.get(REDIS_URL_VAR, DEFAULT_URL)
    errors.SCRUB = Scrubber(_secrets_of(real_url))
    try:
        settings = SessionStoreSettings.from_environ(env)
    except ConfigurationError as error:
        flags = " (--url and --prefix stand for their variables)" if url or prefix else ""
        raise CommandFailure(f"{error}{flags}", ExitCode.CONFIGURATION) from None
    return Target(settings, real_url, demo)


def _secrets_of(url: str) -> tuple[str, ...]:
    """The credentials in a URL, however it is written, to scrub from any output."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    secrets: list[str] = []
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            info = netloc.rsplit("@", 1)[0]
            secrets += [info, *info.split(":", 1)]
            secrets += [unquote(part) for part in info.split(":", 1)]
        for key, value in parse_qsl(parts.query):
            if key in _SECRET_OPTIONS:
                secrets += [value, unquote(value)]
    except ValueError:
        pass
    # A secret of one or two characters would blank out ordinary words; none is that short
    # in practice, and the store's own messages mask the URL anyway.
    return tuple(secret for secret in secrets if len(secret) >= 3)


@asynccontextmanager
async def open_store(target: Target) -> AsyncIterator[SessionStore]:
    """Open the store the target names (the demo's, filled with samples), closed on exit.

    Raises:
        CommandFailure: The configured store is the per-process memory store (nothing to
            inspect), or the store cannot be made.
    """
    if target.demo:
        from .demo import fill

        store: SessionStore = InMemorySessionStore(default_ttl=target.settings.ttl)
        await fill(store)
    elif target.settings.store == "memory":
        raise CommandFailure(MEMORY_STORE, ExitCode.CONFIGURATION)
    else:
        try:
            store = target.settings.create_store()
        except SessionStoreError as error:  # redis-py missing, for one
            raise failure_from(error) from None
    async with store:
        yield store
