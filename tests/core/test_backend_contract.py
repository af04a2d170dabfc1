"""The declared contracts: what SessionStore shows, what a backend declares, and Lease on it."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from tests.support.children import python_env
from valerie.infrastructure import (
    Capability,
    EncodedSessionStore,
    InMemorySessionStore,
    LockNotOwnedError,
    RedisSessionStore,
    SessionLockedError,
    SessionStore,
    get_session_store,
)
from valerie.infrastructure.session_store import lease as lease_module
from valerie.infrastructure.session_store.backend import Backend, Leases

WHOLE_API = [
    "save",
    "load",
    "delete",
    "exists",
    "close",
    "load_versioned",
    "update",
    "touch",
    "ttl",
    "lock",
    "load_many",
    "save_many",
    "delete_many",
    "iter_ids",
    "count",
    "clear",
    "ping",
]


@pytest.mark.parametrize("name", WHOLE_API)
def test_the_type_users_annotate_with_declares_the_whole_api(name: str) -> None:
    """SessionStore, which get_session_store() returns, declares and documents every method."""
    method = getattr(SessionStore, name)
    assert method.__doc__
    assert get_type_hints(get_session_store)["return"] is SessionStore


def test_the_built_in_stores_offer_every_capability() -> None:
    """Redis declares every optional capability, memory all but batches (its loops are as
    fast), visible before any call."""
    assert RedisSessionStore().capabilities == set(Capability)
    assert InMemorySessionStore().capabilities == set(Capability) - {Capability.BATCHES}


class TokenLeases(Leases):
    """A third party's backend with leases: a dict of holders, no expiry."""

    def __init__(self) -> None:
        self.holders: dict[str, str] = {}

    async def read(self, session_id: str) -> bytes | None:
        return None

    async def write(self, session_id: str, data: bytes, ttl_seconds: int) -> None:
        pass

    async def remove(self, session_id: str) -> None:
        pass

    async def contains(self, session_id: str) -> bool:
        return False

    async def ping(self) -> dict[str, Any]:
        return {"topology": "tokens"}

    async def acquire_lease(self, session_id: str, token: str, milliseconds: int) -> bool:
        if self.holders.get(session_id, token) != token:
            return False
        self.holders[session_id] = token
        return True

    async def release_lease(self, session_id: str, token: str) -> bool:
        if self.holders.get(session_id) != token:
            return False
        del self.holders[session_id]
        return True

    async def extend_lease(self, session_id: str, token: str, milliseconds: int) -> bool:
        return self.holders.get(session_id) == token


async def test_a_lease_works_on_any_backend_with_the_leases_capability() -> None:
    """lock() over a third party's Leases: exclusive, released, and refused once lost."""
    backend = TokenLeases()
    store = EncodedSessionStore(backend)
    assert store.capabilities == {Capability.LEASES}
    async with store.lock("s1") as lease:
        assert backend.holders == {"s1": lease.token}
        with pytest.raises(SessionLockedError):
            await store.lock("s1", wait=0).acquire()
    assert backend.holders == {}
    lease = store.lock("s1")
    await lease.acquire()
    backend.holders["s1"] = "someone else"
    with pytest.raises(LockNotOwnedError):
        await lease.release()


def test_lease_uses_only_the_public_leases_capability() -> None:
    """lease.py imports no store module and calls no underscore method of the backend."""
    tree = ast.parse(Path(inspect.getfile(lease_module)).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"store", "base", "contract"}
    calls = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_leases"
    }
    assert calls == {"acquire_lease", "release_lease", "extend_lease"}
    assert set(calls) <= {name for name in dir(Leases) if not name.startswith("_")}


def test_the_lease_module_imports_on_its_own() -> None:
    """No import cycle: lease.py imports first, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", "import valerie.infrastructure.session_store.lease"],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_a_store_refuses_what_is_not_a_backend() -> None:
    """EncodedSessionStore needs a Backend; the error says how to write one."""
    from valerie.infrastructure import ConfigurationError

    with pytest.raises(ConfigurationError, match="subclass"):
        EncodedSessionStore(object())  # type: ignore[arg-type]
    assert issubclass(Leases, Backend)


def test_the_wheel_ships_the_mit_license() -> None:
    """pyproject puts LICENSE in the wheel (dist-info/licenses), and it is the MIT text."""
    import tomllib

    root = Path(__file__).parent.parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert (project["license"], project["license-files"]) == ("MIT", ["LICENSE"])
    assert (root / "LICENSE").read_text().startswith("MIT License\n")
