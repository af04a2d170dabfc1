"""Encryption at rest: AES-256-GCM over a session's encoded bytes, with a keyring that rotates.

A sealed value is a small self-describing envelope followed by the ciphertext and its tag::

    b"vse" | format version (1 byte) | key id length (1 byte) | key id (ASCII) | nonce (12 bytes)
    | ciphertext + 16-byte GCM tag

The associated data is the envelope's header plus the store's prefix and the session id, so a
value copied to another id or another store, or whose header was edited, fails to open. The
header's first byte is never `{`, so a sealed value is never mistaken for a JSON object, and
plaintext is told from ciphertext at a glance (`key_id_of`).

`cryptography` is imported when an `Encryption` is made, never when the package is imported:
`import valerie.infrastructure` needs the standard library only.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .errors import ConfigurationError, DecryptionError, MissingDependencyError

KEYS_VAR = "VALERIE_SESSION_ENCRYPTION_KEYS"
"""Comma-separated `key_id:base64(32 bytes)`; the first key encrypts, every key decrypts."""

MAGIC = b"vse"
FORMAT_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KEY_ID_RULE = "1 to 64 letters, digits, '_', '.' or '-'"


class EncryptionKey:
    """One AES-256 key and the id that names it in every value it seals.

    The key material is kept out of `repr`, `str` and every error: only the id is shown.

    Args:
        key_id: A short public name for the key, stored in clear in each value.
        secret: Exactly 32 random bytes (e.g. `os.urandom(32)`).

    Raises:
        ConfigurationError: The id breaks the rule, or the secret is not 32 bytes.
    """

    __slots__ = ("_secret", "key_id")

    def __init__(self, key_id: str, secret: bytes) -> None:
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise ConfigurationError(
                f"an encryption key id must be {_KEY_ID_RULE}; name each key e.g. '2026-11'"
            )
        if not isinstance(secret, bytes | bytearray) or len(secret) != KEY_BYTES:
            raise ConfigurationError(
                f"encryption key {key_id!r} must be exactly {KEY_BYTES} bytes; make one with "
                "os.urandom(32) (base64 of it in the environment variable)"
            )
        self.key_id = key_id
        self._secret = bytes(secret)

    def __repr__(self) -> str:
        return f"EncryptionKey(key_id={self.key_id!r}, secret=***)"

    @classmethod
    def generate(cls, key_id: str) -> EncryptionKey:
        """Return a new random key named `key_id`."""
        return cls(key_id, os.urandom(KEY_BYTES))

    def export(self) -> str:
        """Return `key_id:base64(secret)`, the form `VALERIE_SESSION_ENCRYPTION_KEYS` reads.

        The only way to see the secret: for writing it to a secret manager, never to a log.
        """
        return f"{self.key_id}:{base64.b64encode(self._secret).decode('ascii')}"


class Keyring:
    """The keys a store may use: the first seals new values, every one opens old ones.

    Args:
        keys: The keys, newest (the one that encrypts) first; ids must be distinct.

    Raises:
        ConfigurationError: No key, a key that is not an `EncryptionKey`, or a repeated id.
    """

    __slots__ = ("_by_id", "current")

    def __init__(self, keys: Iterable[EncryptionKey]) -> None:
        listed = list(keys)
        if not listed:
            raise ConfigurationError(
                "an encryption keyring needs at least one key; make one with "
                "EncryptionKey.generate('k1')"
            )
        by_id: dict[str, EncryptionKey] = {}
        for key in listed:
            if not isinstance(key, EncryptionKey):
                raise ConfigurationError(
                    f"a keyring holds EncryptionKey objects, got a {type(key).__name__}"
                )
            if key.key_id in by_id:
                raise ConfigurationError(
                    f"the encryption key id {key.key_id!r} appears twice; give each key its own id"
                )
            by_id[key.key_id] = key
        self.current = listed[0]
        self._by_id = by_id

    def __repr__(self) -> str:
        return f"Keyring(key_ids={self.key_ids!r})"

    @property
    def key_ids(self) -> list[str]:
        """The ids of the keys, the one that encrypts first."""
        return list(self._by_id)

    def __iter__(self) -> Iterator[EncryptionKey]:
        return iter(self._by_id.values())

    def get(self, key_id: str) -> EncryptionKey | None:
        """Return the key named `key_id`, or `None` if the keyring lacks it."""
        return self._by_id.get(key_id)

    @classmethod
    def parse(cls, text: str, name: str = KEYS_VAR) -> Keyring:
        """Read `key_id:base64(32 bytes)[,key_id:base64…]`; the first key encrypts.

        Raises:
            ConfigurationError: A malformed entry; the message names its position and, when
                readable, its id, never the key material.
        """
        if not isinstance(text, str) or not text:
            raise ConfigurationError(
                f"{name} must be comma-separated key_id:base64(32 bytes) entries, e.g. "
                "k2:<base64>,k1:<base64>; it is empty"
            )
        keys = []
        for position, entry in enumerate(text.split(","), start=1):
            key_id, colon, encoded = entry.partition(":")
            where = f"entry {position} of {name}"
            if not colon:
                raise ConfigurationError(
                    f"{where} has no ':'; write each key as key_id:base64(32 bytes)"
                )
            if not _KEY_ID.fullmatch(key_id):
                raise ConfigurationError(
                    f"{where} has a key id that is not {_KEY_ID_RULE} (whitespace is not trimmed)"
                )
            try:
                secret = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(
                    f"{where} (key id {key_id!r}) is not valid base64; encode 32 random bytes, "
                    "e.g. base64.b64encode(os.urandom(32))"
                ) from None
            if len(secret) != KEY_BYTES:
                raise ConfigurationError(
                    f"{where} (key id {key_id!r}) decodes to {len(secret)} bytes, not "
                    f"{KEY_BYTES}; AES-256 needs 32 random bytes"
                )
            keys.append(EncryptionKey(key_id, secret))
        return cls(keys)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Keyring | None:
        """Return the keyring `VALERIE_SESSION_ENCRYPTION_KEYS` holds, or `None` if unset."""
        env = os.environ if environ is None else environ
        text = env.get(KEYS_VAR)
        return None if text is None else cls.parse(text)


class Encryption:
    """Seals and opens session values with AES-256-GCM, bound to their prefix and session id.

    Give one to a store (`encryption=`). Fail closed: a stored value that is not sealed is
    refused with `DecryptionError`, unless `migrate_plaintext=True`, in which case it is read
    as is and sealed by the store's next write of it (or by `rotate_keys()`).

    Args:
        keyring: The keys; the first seals.
        migrate_plaintext: Accept stored plaintext while a store moves to encryption.

    Raises:
        MissingDependencyError: `cryptography` is not installed.
        ConfigurationError: `keyring` is not a `Keyring`.
    """

    __slots__ = ("_ciphers", "_current_header", "keyring", "migrate_plaintext")

    def __init__(self, keyring: Keyring, *, migrate_plaintext: bool = False) -> None:
        if not isinstance(keyring, Keyring):
            raise ConfigurationError(
                f"encryption needs a Keyring, got a {type(keyring).__name__}; build one with "
                "Keyring([EncryptionKey(...)]) or Keyring.parse(...)"
            )
        aesgcm = _aesgcm_class()
        self.keyring = keyring
        self.migrate_plaintext = bool(migrate_plaintext)
        self._ciphers: dict[str, Any] = {key.key_id: aesgcm(key._secret) for key in keyring}
        # What every value sealed by the current key starts with: read on every load.
        self._current_header = _header(keyring.current.key_id, b"")

    def __repr__(self) -> str:
        return (
            f"Encryption(key_ids={self.keyring.key_ids!r}, "
            f"migrate_plaintext={self.migrate_plaintext})"
        )

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, *, migrate_plaintext: bool = False
    ) -> Encryption | None:
        """Return encryption with the keys of `VALERIE_SESSION_ENCRYPTION_KEYS`, or `None`."""
        keyring = Keyring.from_environ(environ)
        return None if keyring is None else cls(keyring, migrate_plaintext=migrate_plaintext)

    @property
    def current_key_id(self) -> str:
        """The id of the key that seals new values."""
        return self.keyring.current.key_id

    def seal(self, data: bytes, prefix: str, session_id: str) -> bytes:
        """Return `data` encrypted under the current key, bound to `prefix` and `session_id`."""
        key_id = self.current_key_id
        header = _header(key_id, os.urandom(NONCE_BYTES))
        nonce = header[-NONCE_BYTES:]
        sealed: bytes = self._ciphers[key_id].encrypt(
            nonce, data, _associated(header, prefix, session_id)
        )
        return header + sealed

    def open(self, data: bytes, prefix: str, session_id: str) -> bytes:
        """Return the plaintext of a sealed value (or the plaintext itself, in migration mode).

        Raises:
            DecryptionError: The value is not sealed (outside migration mode), is malformed,
                names a key the keyring lacks, or fails authentication (altered, copied from
                another id or store, or sealed with another key of the same id). The stored
                value is left in place.
        """
        current = self._current_header
        # The common case first: a value sealed by the current key, told by its first bytes.
        if data.startswith(current) and len(data) >= len(current) + NONCE_BYTES + TAG_BYTES:
            end = len(current) + NONCE_BYTES
            return self._decrypt(
                self._ciphers[self.keyring.current.key_id], data, data[:end], prefix, session_id
            )
        parsed = _parse(data)
        if parsed is None:
            if self.migrate_plaintext:
                return data
            raise DecryptionError(
                "the stored value is not encrypted and this store refuses plaintext; it is "
                "left in place. If the store is moving to encryption, open it with "
                "migrate_plaintext=True until rotate_keys() has sealed every session",
                reason="plaintext",
            )
        key_id, header = parsed
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(
                f"the stored value is sealed with key {key_id!r}, which the keyring lacks "
                f"(it has {self.keyring.key_ids!r}); add that key after the current one",
                reason="unknown-key",
            )
        return self._decrypt(cipher, data, header, prefix, session_id)

    def _decrypt(
        self, cipher: Any, data: bytes, header: bytes, prefix: str, session_id: str
    ) -> bytes:
        try:
            opened: bytes = cipher.decrypt(
                header[-NONCE_BYTES:],
                data[len(header) :],
                _associated(header, prefix, session_id),
            )
        except _invalid_tag() as error:
            raise DecryptionError(
                "the stored value failed authentication: it was altered, copied from another "
                "session id or store, or sealed with a different key under the same id; it is "
                "left in place",
                reason="tampered",
            ) from error
        return opened

    def key_id_of(self, data: bytes) -> str | None:
        """Return the id of the key that sealed `data`, or `None` if `data` is not sealed."""
        parsed = _parse(data)
        return None if parsed is None else parsed[0]

    def is_current(self, data: bytes) -> bool:
        """Return whether `data` is sealed with the current key (nothing to rotate)."""
        return data.startswith(self._current_header)


def binding_of(backend: object) -> str:
    """The name of a backend's storage that every sealed value is bound to: its `prefix`.

    A backend that shares storage with others under a namespace exposes it as a `str`
    attribute `prefix` (the Redis backend does); otherwise values are bound to their id only.
    """
    prefix = getattr(backend, "prefix", "")
    return prefix if isinstance(prefix, str) else ""


def check_encryption(value: object) -> Encryption | None:
    """Return `value` if it is an `Encryption` or `None`.

    Raises:
        ConfigurationError: It is anything else (a key or a keyring given directly, say).
    """
    if value is None or isinstance(value, Encryption):
        return value
    raise ConfigurationError(
        f"encryption must be an Encryption or None, got a {type(value).__name__}; pass e.g. "
        "encryption=Encryption(Keyring.parse(keys)) or Encryption.from_environ()"
    )


def _header(key_id: str, nonce: bytes) -> bytes:
    encoded = key_id.encode("ascii")
    return MAGIC + bytes((FORMAT_VERSION, len(encoded))) + encoded + nonce


def _parse(data: bytes) -> tuple[str, bytes] | None:
    """Return (key id, header) of a sealed value, `None` for plaintext.

    Raises:
        DecryptionError: The value starts like an envelope but is not a valid one.
    """
    if data[: len(MAGIC)] != MAGIC:
        return None
    if len(data) < len(MAGIC) + 2:
        raise _malformed("it is cut short")
    version, length = data[len(MAGIC)], data[len(MAGIC) + 1]
    if version != FORMAT_VERSION:
        raise _malformed(
            f"its format version is {version}, and this version of valerie reads "
            f"{FORMAT_VERSION}; upgrade valerie"
        )
    end = len(MAGIC) + 2 + length
    key_id = bytes(data[len(MAGIC) + 2 : end]).decode("ascii", errors="replace")
    if not _KEY_ID.fullmatch(key_id):
        raise _malformed("its key id is not valid")
    if len(data) < end + NONCE_BYTES + TAG_BYTES:
        raise _malformed("it is cut short")
    return key_id, bytes(data[: end + NONCE_BYTES])


def _associated(header: bytes, prefix: str, session_id: str) -> bytes:
    """The associated data: the header, then the prefix and id, each after its length."""
    where = prefix.encode("utf-8")
    who = session_id.encode("utf-8")
    return b"".join((header, _LENGTH.pack(len(where)), where, _LENGTH.pack(len(who)), who))


_LENGTH = struct.Struct(">I")


def _malformed(why: str) -> DecryptionError:
    return DecryptionError(
        f"the stored value looks encrypted but its envelope is malformed ({why}); it is left "
        "in place",
        reason="malformed",
    )


def _aesgcm_class() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as error:
        raise MissingDependencyError(
            "encryption needs the cryptography package: pip install 'valerie[crypto]'"
        ) from error
    return AESGCM


def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag
