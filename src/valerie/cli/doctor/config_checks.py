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


def check_encryption(settings: SessionStoreSettings) -> Finding:
    """Encryption keys: which one encrypts, which only decrypt.

    A malformed key never gets this far: the settings refuse it (exit code 4).
    """
    encryption = settings.encryption
    if encryption is None:
        return passed(
            "encryption",
            "not encrypted: sessions are stored in clear; set "
            "VALERIE_SESSION_ENCRYPTION_KEYS to encrypt them",
        )
    key_ids = encryption.keyring.key_ids
    shown = f"{len(key_ids)} keys, {key_ids[0]!r} encrypts" + (
        f", {', '.join(map(repr, key_ids[1:]))} only decrypt" if len(key_ids) > 1 else ""
    )
    if encryption.migrate_plaintext:
        return warned(
            "encryption",
            f"{shown}; migration mode reads plaintext sessions: turn "
            "it off once rotate_keys() has sealed them all",
        )
    return passed("encryption", shown)


def configuration_checks(settings: SessionStoreSettings) -> list[Finding]:
    """Every configuration check."""
    return [check_ttl(settings), check_prefix(settings), check_encryption(settings)]
