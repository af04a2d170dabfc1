"""Checks of the store's own configuration, which need no server."""

from __future__ import annotations

from valerie.infrastructure import SessionStoreSettings

from ..output import human_duration
from .findings import Finding, passed, warned

SEPARATORS = ":/._-|"
"""Characters that end a prefix so that no other store's prefix starts with it."""


def check_ttl(settings: SessionStoreSettings) -> Finding:
    """The default TTL: a minute or less makes sessions vanish between turns."""
    shown = f"{settings.ttl} s ({human_duration(settings.ttl * 1000)})"
    if settings.ttl <= 60:
        return warned(
            "ttl",
            f"default TTL {shown}: a conversation idle longer than that loses its session; "
            "raise VALERIE_SESSION_TTL unless that is meant",
        )
    return passed("ttl", f"default TTL {shown}")


def check_prefix(settings: SessionStoreSettings) -> Finding:
    """The prefix ends with a separator, so it does not cover another store's keys."""
    prefix = settings.prefix
    if prefix[-1] in SEPARATORS:
        return passed("prefix", f"prefix {prefix!r}")
    return warned(
        "prefix",
        f"prefix {prefix!r} has no trailing separator, so it also covers the keys of a store "
        f"with prefix {prefix + 'x:'!r} (clear() would delete them); end it with ':'",
    )


def configuration_checks(settings: SessionStoreSettings) -> list[Finding]:
    """Every configuration check (encryption keys join here once the store has them)."""
    return [check_ttl(settings), check_prefix(settings)]
