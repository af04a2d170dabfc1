"""The encryption transform on its own, against the real `cryptography` primitives."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from valerie.infrastructure.session_store.encryption import (
    KEYS_VAR,
    Encryption,
    EncryptionKey,
    Keyring,
)
from valerie.infrastructure.session_store.errors import (
    ConfigurationError,
    CorruptedSessionError,
    DecryptionError,
)

SECRET_A = bytes(range(32))
SECRET_B = bytes(range(100, 132))
PLAIN = b'{"name":"Ada Lovelace","address":"12 Analytical Way"}'


def _encryption(*secrets: tuple[str, bytes], migrate: bool = False) -> Encryption:
    keys = [EncryptionKey(key_id, secret) for key_id, secret in secrets]
    return Encryption(Keyring(keys), migrate_plaintext=migrate)


def test_a_sealed_value_opens_to_the_plaintext_and_shows_none_of_it() -> None:
    """Round trip; the sealed bytes contain no fragment of the plaintext."""
    enc = _encryption(("a", SECRET_A))
    sealed = enc.seal(PLAIN, "app:", "s1")
    assert b"Ada" not in sealed
    assert b"Analytical" not in sealed
    assert enc.open(sealed, "app:", "s1") == PLAIN


def test_the_envelope_is_aes_256_gcm_with_key_id_nonce_and_bound_associated_data() -> None:
    """Decrypted independently with AESGCM: the format is what the module documents."""
    enc = _encryption(("k-1", SECRET_A))
    sealed = enc.seal(PLAIN, "app:", "s1")
    assert sealed[:3] == b"vse"
    assert sealed[3] == 1
    assert sealed[4] == 3
    assert sealed[5:8] == b"k-1"
    header = sealed[: 8 + 12]
    aad = header + b"\x00\x00\x00\x04app:" + b"\x00\x00\x00\x02s1"
    assert AESGCM(SECRET_A).decrypt(header[-12:], sealed[len(header) :], aad) == PLAIN
    assert len(sealed) == len(header) + len(PLAIN) + 16


def test_each_seal_uses_a_fresh_nonce() -> None:
    """Two seals of the same bytes differ (a repeated nonce would break GCM)."""
    enc = _encryption(("a", SECRET_A))
    assert enc.seal(PLAIN, "p", "s") != enc.seal(PLAIN, "p", "s")


@pytest.mark.parametrize(
    ("prefix", "session_id"),
    [("app:", "s2"), ("other:", "s1"), ("app:s", "1"), ("", "app:s1")],
)
def test_a_value_moved_to_another_id_or_store_fails_authentication(
    prefix: str, session_id: str
) -> None:
    """The associated data binds a value to its prefix and id, unambiguously."""
    enc = _encryption(("a", SECRET_A))
    sealed = enc.seal(PLAIN, "app:", "s1")
    with pytest.raises(DecryptionError) as caught:
        enc.open(sealed, prefix, session_id)
    assert caught.value.reason == "tampered"
    assert isinstance(caught.value, CorruptedSessionError)


def test_every_flipped_byte_fails() -> None:
    """Header, nonce, ciphertext or tag: any single flipped bit is detected."""
    enc = _encryption(("a", SECRET_A))
    sealed = enc.seal(PLAIN, "p:", "s")
    for index in range(len(sealed)):
        broken = bytearray(sealed)
        broken[index] ^= 0x01
        with pytest.raises(DecryptionError):
            enc.open(bytes(broken), "p:", "s")


def test_a_wrong_key_under_the_same_id_fails() -> None:
    """Same key id, other key material: authentication fails."""
    sealed = _encryption(("a", SECRET_A)).seal(PLAIN, "p:", "s")
    with pytest.raises(DecryptionError) as caught:
        _encryption(("a", SECRET_B)).open(sealed, "p:", "s")
    assert caught.value.reason == "tampered"


def test_a_key_the_keyring_lacks_is_named() -> None:
    """The error names the missing key id and the ids at hand."""
    sealed = _encryption(("old", SECRET_A)).seal(PLAIN, "p:", "s")
    with pytest.raises(DecryptionError, match="'old', which the keyring lacks") as caught:
        _encryption(("new", SECRET_B)).open(sealed, "p:", "s")
    assert caught.value.reason == "unknown-key"


def test_plaintext_is_refused_unless_migrating() -> None:
    """Fail closed; in migration mode plaintext passes through untouched."""
    with pytest.raises(DecryptionError, match="migrate_plaintext=True") as caught:
        _encryption(("a", SECRET_A)).open(PLAIN, "p:", "s")
    assert caught.value.reason == "plaintext"
    assert _encryption(("a", SECRET_A), migrate=True).open(PLAIN, "p:", "s") == PLAIN


@pytest.mark.parametrize("cut", [3, 4, 5, 7, 20, 35])
def test_a_truncated_envelope_is_malformed(cut: int) -> None:
    """Cut anywhere, the value is refused, never opened."""
    enc = _encryption(("abc", SECRET_A), migrate=True)
    sealed = enc.seal(b"", "p:", "s")
    with pytest.raises(DecryptionError):
        enc.open(sealed[:cut], "p:", "s")


def test_an_unknown_format_version_says_to_upgrade() -> None:
    """A future envelope is refused with the fix."""
    enc = _encryption(("a", SECRET_A), migrate=True)
    sealed = bytearray(enc.seal(PLAIN, "p:", "s"))
    sealed[3] = 2
    with pytest.raises(DecryptionError, match="upgrade valerie") as caught:
        enc.open(bytes(sealed), "p:", "s")
    assert caught.value.reason == "malformed"


def test_rotation_old_keys_open_new_key_seals() -> None:
    """After rotation the old key still opens its values; new values use the first key."""
    old = _encryption(("a", SECRET_A))
    sealed_old = old.seal(PLAIN, "p:", "s")
    rotated = _encryption(("b", SECRET_B), ("a", SECRET_A))
    assert rotated.open(sealed_old, "p:", "s") == PLAIN
    assert rotated.key_id_of(sealed_old) == "a"
    assert not rotated.is_current(sealed_old)
    fresh = rotated.seal(PLAIN, "p:", "s")
    assert rotated.key_id_of(fresh) == "b"
    assert rotated.is_current(fresh)
    assert rotated.key_id_of(PLAIN) is None


def test_the_environment_variable_gives_the_keys_first_one_encrypting() -> None:
    """`key_id:base64` entries, comma-separated; unset means no encryption."""
    text = f"b:{base64.b64encode(SECRET_B).decode()},a:{base64.b64encode(SECRET_A).decode()}"
    enc = Encryption.from_environ({KEYS_VAR: text})
    assert enc is not None
    assert enc.current_key_id == "b"
    assert enc.keyring.key_ids == ["b", "a"]
    assert Encryption.from_environ({}) is None
    exported = EncryptionKey("b", SECRET_B).export() + "," + EncryptionKey("a", SECRET_A).export()
    assert exported == text


_B64 = base64.b64encode(SECRET_A).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "it is empty"),
        (_B64, "entry 1 .* has no ':'"),
        (f"a:{_B64},{_B64[:10]}", "entry 2 .* has no ':'"),
        (f"bad id:{_B64}", "entry 1 .* key id that is not"),
        (f" a:{_B64}", "entry 1 .* key id that is not"),
        (f"a:{_B64[:-3]}!!=", "entry 1 .*'a'.* not valid base64"),
        (f"a:{_B64} ", "not valid base64"),
        (f"a:{base64.b64encode(SECRET_A[:16]).decode()}", "decodes to 16 bytes, not 32"),
        (f"a:{_B64},a:{base64.b64encode(SECRET_B).decode()}", "'a' appears twice"),
    ],
)
def test_a_malformed_key_is_a_configuration_error_that_never_shows_it(
    text: str, message: str
) -> None:
    """The message names the variable, the entry and the fix, and no key material."""
    with pytest.raises(ConfigurationError, match=message) as caught:
        Keyring.parse(text)
    shown = str(caught.value) + repr(caught.value)
    assert KEYS_VAR in shown or "twice" in shown
    for secret in (SECRET_A, SECRET_B):
        encoded = base64.b64encode(secret).decode()
        for start in range(0, len(encoded) - 6):
            assert encoded[start : start + 6] not in shown


def test_keys_and_encryption_never_show_the_secret_in_repr_or_str() -> None:
    """Only key ids are shown."""
    key = EncryptionKey("k1", SECRET_A)
    enc = Encryption(Keyring([key]))
    encoded = base64.b64encode(SECRET_A).decode()
    for shown in (repr(key), str(key), repr(enc.keyring), repr(enc), str(enc)):
        assert "k1" in shown
        assert encoded[:8] not in shown
        assert SECRET_A.hex()[:8] not in shown
        assert repr(SECRET_A)[:12] not in shown


@pytest.mark.parametrize(
    ("key_id", "secret", "message"),
    [
        ("", SECRET_A, "key id must be"),
        ("a" * 65, SECRET_A, "key id must be"),
        ("k", SECRET_A[:31], "exactly 32 bytes"),
        ("k", "x" * 32, "exactly 32 bytes"),
    ],
)
def test_a_bad_key_object_is_refused(key_id: str, secret: bytes, message: str) -> None:
    """Key ids are short and printable; secrets are 32 bytes."""
    with pytest.raises(ConfigurationError, match=message):
        EncryptionKey(key_id, secret)


def test_an_empty_keyring_and_a_bad_keyring_are_refused() -> None:
    """A keyring needs keys; encryption needs a keyring."""
    with pytest.raises(ConfigurationError, match="at least one key"):
        Keyring([])
    with pytest.raises(ConfigurationError, match="holds EncryptionKey objects"):
        Keyring(["a:" + _B64])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="needs a Keyring"):
        Encryption("a:" + _B64)  # type: ignore[arg-type]


def test_generated_keys_are_random_and_usable() -> None:
    """`generate` makes 32 fresh bytes each time."""
    one, two = EncryptionKey.generate("x"), EncryptionKey.generate("x")
    assert one.export() != two.export()
    enc = Encryption(Keyring([one]))
    assert enc.open(enc.seal(os.urandom(100), "p", "s"), "p", "s") != b""
