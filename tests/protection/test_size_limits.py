"""max_state_bytes: an oversized state is refused before anything is written."""

from __future__ import annotations

import pytest

from tests.protection.conftest import KEY_A, Backend, encryption
from valerie.infrastructure import (
    ConfigurationError,
    EncodedSessionStore,
    InvalidArgumentError,
    SerializationError,
    SessionStoreSettings,
    get_session_store,
)
from valerie.infrastructure.session_store.errors import StateTooLargeError

BIG = {
    "history": [{"role": "user", "content": "x" * 1_000} for _ in range(1_800)],
    "context": {"notes": "y" * 150_000},
    "step": 3,
}


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "encrypted"])
async def test_an_oversized_save_is_refused_naming_the_largest_paths(
    backend: Backend, sealed: bool
) -> None:
    """The error names the size, the limit and the largest parts; what was stored stays."""
    store = backend.open(encryption(KEY_A) if sealed else None, max_state_bytes=2_000_000)
    await store.save("s1", {"step": 1})
    with pytest.raises(StateTooLargeError) as caught:
        await store.save("s1", BIG)
    error = caught.value
    assert isinstance(error, SerializationError)
    assert isinstance(error, InvalidArgumentError)
    assert isinstance(error, ValueError)
    message = str(error)
    assert "bytes encoded, over max_state_bytes (2,000,000)" in message
    assert "state['history'] is 1.9 MB" in message
    assert "state['history'][0] is 1.0 kB" in message
    assert "state['context'] is 150.0 kB" in message
    assert error.path == "state['history']"
    assert error.limit == 2_000_000
    assert error.size > 2_000_000
    assert [path for path, _ in error.largest[:3]] == [
        "state['history']",
        "state['history'][0]",
        "state['context']",
    ]
    assert "xxxx" not in message
    assert await store.load("s1") == {"step": 1}


async def test_update_and_batches_are_refused_too(backend: Backend) -> None:
    """update writes nothing; save_many writes none of the batch."""
    store = backend.open(None, max_state_bytes=1_000)
    await store.save("s1", {"n": 1})
    with pytest.raises(StateTooLargeError):
        await store.update("s1", lambda state: {"n": 2, "blob": "z" * 2_000})
    assert await store.load("s1") == {"n": 1}
    with pytest.raises(StateTooLargeError):
        await store.save_many({"a": {"ok": 1}, "b": {"blob": "z" * 2_000}})
    assert await store.load_many(["a", "b"]) == {"a": None, "b": None}


async def test_the_limit_counts_the_encoded_state_not_the_ciphertext(backend: Backend) -> None:
    """A state exactly at the limit is stored, with or without encryption."""
    state = {"t": "a" * 100}
    exact = len(b'{"t":""}') + 100
    for keys in (None, encryption(KEY_A)):
        store = backend.open(keys, max_state_bytes=exact)
        await store.save("s1", state)
        assert await store.load("s1") == state
        with pytest.raises(
            StateTooLargeError, match="the state is 109 bytes encoded, over max_state_bytes"
        ):
            await store.save("s1", {"t": "a" * 101})


@pytest.mark.parametrize("bad", [0, -1, 1.5, "100", True])
def test_a_bad_limit_is_a_configuration_error(bad: object) -> None:
    """max_state_bytes is a positive int or None."""
    with pytest.raises(ConfigurationError, match="max_state_bytes must be a positive number"):
        SessionStoreSettings(max_state_bytes=bad)  # type: ignore[arg-type]


async def test_the_environment_variable_sets_the_limit() -> None:
    """VALERIE_SESSION_MAX_BYTES reaches the store; a bad value names the variable."""
    store = get_session_store({"VALERIE_SESSION_MAX_BYTES": "50"})
    assert isinstance(store, EncodedSessionStore)
    assert store.max_state_bytes == 50
    with pytest.raises(StateTooLargeError):
        await store.save("s1", {"t": "a" * 60})
    for bad in ("0", "-5", "1e6", " 100", "\u0661\u0660\u0660"):  # Arabic-Indic digits
        with pytest.raises(ConfigurationError, match=r"^VALERIE_SESSION_MAX_BYTES must be"):
            get_session_store({"VALERIE_SESSION_MAX_BYTES": bad})
