"""Key material appears in no repr, error message, traceback or log record (DEBUG, all loggers)."""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Awaitable, Callable

import pytest

from tests.protection.conftest import KEY_A, Backend, encryption
from valerie.infrastructure import SessionStoreError, SessionStoreSettings, get_session_store
from valerie.infrastructure.session_store.encryption import (
    KEYS_VAR,
    Encryption,
    EncryptionKey,
    Keyring,
)

SECRET = bytes(range(200, 232))
OTHER = bytes(range(1, 33))


def _fragments(secret: bytes) -> list[str]:
    """Every 6-character window of the secret as base64, hex and Python repr."""
    forms = [base64.b64encode(secret).decode(), secret.hex(), repr(secret)[2:-1]]
    return [form[i : i + 6] for form in forms for i in range(len(form) - 5)]


def _assert_hidden(texts: list[str]) -> None:
    shown = "\n".join(texts)
    for secret in (SECRET, OTHER):
        for fragment in _fragments(secret):
            assert fragment not in shown, fragment


async def test_no_failure_path_shows_a_key(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """Every error of the encryption paths, with its traceback and every log record."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    key = EncryptionKey("live", SECRET)
    good = Encryption(Keyring([key]))
    impostor = Encryption(Keyring([EncryptionKey("live", OTHER)]))
    store = backend.open(good)
    texts += [repr(key), str(key), repr(good), repr(good.keyring), repr(store)]
    for thing in (key, good, good.keyring, store):
        texts += [repr(getattr(thing, name)) for name in dir(thing) if not name.startswith("_")]

    async def expect(call: Callable[[], Awaitable[object]] | Callable[[], object]) -> None:
        try:
            result = call()
            if isinstance(result, Awaitable):
                await result
        except SessionStoreError as error:
            texts.append(str(error))
            texts.append(repr(error))
            texts.append("".join(traceback.format_exception(error)))
        else:
            raise AssertionError("no error")

    await store.save("s", {"a": 1})
    encoded = base64.b64encode(SECRET).decode()
    environs = [
        {KEYS_VAR: encoded},
        {KEYS_VAR: f"bad id:{encoded}"},
        {KEYS_VAR: f"k:{encoded[:-2]}"},
        {KEYS_VAR: f"k:{encoded}!"},
        {KEYS_VAR: f"k:{base64.b64encode(SECRET[:20]).decode()}"},
        {KEYS_VAR: f"k:{encoded},k:{base64.b64encode(OTHER).decode()}"},
    ]
    for environ in environs:
        await expect(lambda environ=environ: get_session_store(environ))
        await expect(lambda environ=environ: SessionStoreSettings.from_environ(environ))
    await expect(lambda: EncryptionKey("k", SECRET[:31]))
    await expect(lambda: EncryptionKey("bad id", SECRET))
    await expect(lambda: backend.open(impostor).load("s"))
    await expect(lambda: backend.open(Encryption(Keyring([EncryptionKey("x", OTHER)]))).load("s"))
    await backend.open(None).save("p", {"a": 2})
    await expect(lambda: backend.open(good).load("p"))
    raw = await store.backend.read("s")
    assert raw is not None
    await store.backend.write("t", raw[:-1] + bytes([raw[-1] ^ 1]), 60)
    await expect(lambda: backend.open(good).load("t"))
    await expect(lambda: backend.open(good).update("t", lambda state: {"x": 1}))
    await backend.open(good).rotate_keys()
    await backend.open(Encryption(Keyring([EncryptionKey("new", OTHER), key]))).load("s")
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert len(texts) > 30
    _assert_hidden(texts)


def test_the_export_is_the_only_way_to_see_a_key() -> None:
    """The check above would catch a leak: the export shows the key in full."""
    with pytest.raises(AssertionError):
        _assert_hidden([EncryptionKey("k", SECRET).export()])
    _assert_hidden([repr(encryption(KEY_A))])
