"""update() deletes only on an explicit DELETE; None for an existing session is an error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.conftest import MakeStore
from valerie.infrastructure import (
    DELETE,
    InvalidArgumentError,
    SessionState,
    UpdaterReturnedNoneError,
)


async def test_update_returning_none_for_an_existing_session_writes_nothing(
    make_store: MakeStore,
) -> None:
    """The common slip (change the state in place, forget `return state`) raises a typed error
    and leaves the session exactly as it was, instead of deleting the conversation."""
    store = make_store()
    await store.save("s1", {"step": 1, "history": ["hi"]})

    def forgot_to_return(state: Any) -> Any:
        state["step"] += 1
        state["history"].append("again")

    with pytest.raises(UpdaterReturnedNoneError) as raised:
        await store.update("s1", forgot_to_return)
    assert isinstance(raised.value, InvalidArgumentError)
    assert isinstance(raised.value, TypeError)
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert "return state" in message
    assert "DELETE" in message
    assert "nothing was written" in message
    assert await store.load("s1") == {"step": 1, "history": ["hi"]}


async def test_an_async_function_returning_none_is_refused_too(make_store: MakeStore) -> None:
    """The same for an async fn."""
    store = make_store()
    await store.save("s1", {"n": 1})

    async def returns_none(state: Any) -> Any:
        return None

    with pytest.raises(UpdaterReturnedNoneError):
        await store.update("s1", returns_none)
    assert await store.load("s1") == {"n": 1}


async def test_delete_is_explicit(make_store: MakeStore) -> None:
    """Returning DELETE removes the session and update returns None."""
    store = make_store()
    await store.save("s1", {"n": 1})
    assert await store.update("s1", lambda state: DELETE) is None
    assert not await store.exists("s1")
    assert repr(DELETE) == "DELETE"


async def test_none_or_delete_for_a_missing_session_writes_nothing(make_store: MakeStore) -> None:
    """No session and fn returns None or DELETE: update returns None and stores nothing."""
    store = make_store()

    def none_when_missing(state: SessionState | None) -> Any:
        return state

    assert await store.update("s1", none_when_missing) is None
    assert await store.update("s1", lambda state: DELETE) is None
    assert not await store.exists("s1")
