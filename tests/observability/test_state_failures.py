"""Stored states that could not be read, counted once each: a value that does not decrypt,
and a typed view's failed migration, newer schema or refused state, on memory and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from tests.observability.readings import Telemetry
from tests.observability.stores import observer_for
from valerie.infrastructure import (
    DecryptionError,
    InMemorySessionStore,
    MigrationError,
    NewerSchemaVersionError,
    RedisSessionStore,
    StateValidationError,
)
from valerie.infrastructure.session_store.encryption import Encryption, EncryptionKey, Keyring
from valerie.infrastructure.session_store.telemetry import names

BACKENDS = ("memory", pytest.param("redis", marks=pytest.mark.redis))
KEY = EncryptionKey("key-a", bytes(range(32)))


class Turn(BaseModel):
    n: int


def failing(state: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("this migration fails")


@pytest.fixture(params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, telemetry: Telemetry
) -> AsyncIterator[InMemorySessionStore | RedisSessionStore]:
    options: dict[str, Any] = {
        "observers": [observer_for(telemetry)],
        "encryption": Encryption(Keyring([KEY])),
    }
    made: InMemorySessionStore | RedisSessionStore
    if request.param == "memory":
        made = InMemorySessionStore(**options)
    else:
        server = request.getfixturevalue("redis_server")
        made = RedisSessionStore(server.url, prefix=f"failures-{uuid.uuid4()}:", **options)
    async with made:
        yield made
        await made.clear()


def failures(telemetry: Telemetry) -> dict[tuple[str, ...], float]:
    """The state failure counter's points, by (operation, error type[, reason])."""
    counted = {}
    for attributes, point in telemetry.points(names.STATE_FAILURES):
        key = (
            str(attributes[names.DB_OPERATION_NAME]),
            str(attributes[names.ERROR_TYPE]),
            *(
                [str(attributes[names.DECRYPTION_REASON])]
                if names.DECRYPTION_REASON in attributes
                else []
            ),
        )
        counted[key] = point.value
    return counted


async def test_a_value_that_does_not_decrypt_is_counted_with_its_reason(
    store: InMemorySessionStore | RedisSessionStore, telemetry: Telemetry
) -> None:
    await store.backend.write("plain", b'{"n": 1}', 60)
    with pytest.raises(DecryptionError):
        await store.load("plain")
    with pytest.raises(DecryptionError):
        await store.update("plain", lambda state: {"n": 2})
    assert failures(telemetry) == {
        ("load", "DecryptionError", "plaintext"): 1,
        ("update", "DecryptionError", "plaintext"): 1,
    }


async def test_each_typed_failure_is_counted_once_with_its_operation(
    store: InMemorySessionStore | RedisSessionStore, telemetry: Telemetry
) -> None:
    turns = store.typed(Turn)
    await store.save("refused", {"n": "not a number"})
    with pytest.raises(StateValidationError):
        await turns.load("refused")
    with pytest.raises(StateValidationError):  # inside the store's update: reported by it
        await turns.update("refused", lambda turn: turn)
    with pytest.raises(StateValidationError):
        await turns.load_many(["refused"])
    await store.save("newer", {"n": 1, "_schema_version": 5})
    with pytest.raises(NewerSchemaVersionError):
        await turns.load_versioned("newer")
    await store.save("old", {"n": 1})
    with pytest.raises(MigrationError):
        await store.typed(Turn, version=2, migrations={1: failing}).load("old")
    assert failures(telemetry) == {
        ("load", "StateValidationError"): 1,
        ("update", "StateValidationError"): 1,
        ("load_many", "StateValidationError"): 1,
        ("load_versioned", "NewerSchemaVersionError"): 1,
        ("load", "MigrationError"): 1,
    }
    assert await turns.load("old") == Turn(n=1)  # a state the view takes counts nothing
    assert sum(failures(telemetry).values()) == 5


async def test_a_failure_met_inside_an_update_function_is_counted_once_where_it_happened(
    store: InMemorySessionStore | RedisSessionStore, telemetry: Telemetry
) -> None:
    """An update's function that loads a session that does not decrypt, or a typed session
    the model refuses: counted once, by that load, not again by the update it raised through."""
    turns = store.typed(Turn)
    await store.save("ok", {"n": 1})
    await store.backend.write("plain", b'{"n": 1}', 60)
    await store.save("refused", {"n": "not a number"})

    async def load_plain(state: dict[str, Any] | None) -> dict[str, Any]:
        await store.load("plain")
        return {"n": 2}

    async def load_refused(turn: Turn | None) -> Turn:
        await turns.load("refused")
        return Turn(n=2)

    with pytest.raises(DecryptionError):
        await store.update("ok", load_plain)
    with pytest.raises(StateValidationError):
        await turns.update("ok", load_refused)
    assert failures(telemetry) == {
        ("load", "DecryptionError", "plaintext"): 1,
        ("load", "StateValidationError"): 1,
    }
