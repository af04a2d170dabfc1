"""The backend registry: built-in store types, third-party ones by entry point, one lookup."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.backends import BACKENDS
from tests.support.children import python_env
from valerie.infrastructure import (
    ConfigurationError,
    InMemorySessionStore,
    RedisSessionStore,
    SessionStoreSettings,
    get_session_store,
    registered_backends,
)
from valerie.infrastructure.session_store.registry import ENTRY_POINT_GROUP, BackendRegistry


def test_the_built_in_types_are_registered() -> None:
    """memory and redis come first, in that order."""
    assert registered_backends()[:2] == ("memory", "redis")


def test_the_contract_suite_covers_every_registered_built_in_type() -> None:
    """Each registered type has a backend in the contract suite's parametrization."""
    for name in registered_backends():
        assert name in BACKENDS


def test_the_environment_selects_through_the_registry() -> None:
    """VALERIE_SESSION_STORE picks the registered factory (any case)."""
    assert type(get_session_store({})) is InMemorySessionStore
    store = get_session_store({"VALERIE_SESSION_STORE": "Redis"})
    assert type(store) is RedisSessionStore


def test_an_unknown_type_lists_the_registered_ones() -> None:
    """The error names the value and every registered type."""
    with pytest.raises(ConfigurationError) as raised:
        get_session_store({"VALERIE_SESSION_STORE": "dynamo"})
    assert str(raised.value) == (
        "VALERIE_SESSION_STORE='dynamo' is not a store type; set it to "
        f"{' or '.join(registered_backends())} (in any case), or leave it out for memory"
    )


@pytest.mark.parametrize("name", ["", "Upper", "1st", "has space", None])
def test_register_refuses_a_bad_name(name: object) -> None:
    """Names are lowercase identifiers (with - and _)."""
    with pytest.raises(ConfigurationError, match="name must be lowercase"):
        BackendRegistry().register(name, lambda settings: InMemorySessionStore())  # type: ignore[arg-type]


def test_register_refuses_a_taken_name_and_a_non_callable() -> None:
    """A name is registered once; a factory must be callable."""
    registry = BackendRegistry(group="valerie.tests.none")
    registry.register("mine", lambda settings: InMemorySessionStore())
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register("mine", lambda settings: InMemorySessionStore())
    with pytest.raises(ConfigurationError, match="must be callable"):
        registry.register("other", "not a factory")  # type: ignore[arg-type]
    assert registry.names() == ("mine",)
    settings = SessionStoreSettings()
    assert type(registry.factory("mine")(settings)) is InMemorySessionStore
    with pytest.raises(ConfigurationError, match="registered: mine"):
        registry.factory("memory")


def _install_plugin(root: Path, body: str) -> None:
    """A real distribution on sys.path: a module, and dist-info declaring its entry point."""
    (root / "dict_sessions.py").write_text(textwrap.dedent(body))
    info = root / "dict_sessions-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dict-sessions\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ndictstore = dict_sessions:create_store\n"
        "broken = dict_sessions:missing_name\n"
    )


def _run(root: Path, code: str, store: str) -> subprocess.CompletedProcess[str]:
    env = python_env()
    env["PYTHONPATH"] = f"{root}{':' + env['PYTHONPATH'] if env.get('PYTHONPATH') else ''}"
    env["VALERIE_SESSION_STORE"] = store
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_package_registers_a_backend_by_entry_point(tmp_path: Path) -> None:
    """An installed package's entry point becomes a store type VALERIE_SESSION_STORE selects,
    and the factory receives the checked settings."""
    _install_plugin(
        tmp_path,
        """
        from valerie.infrastructure import InMemorySessionStore

        def create_store(settings):
            return InMemorySessionStore(default_ttl=settings.ttl * 2)
        """,
    )
    code = textwrap.dedent(
        """
        import asyncio
        from valerie.infrastructure import get_session_store, registered_backends

        async def main():
            store = get_session_store()
            await store.save("s1", {"n": 1})
            print(registered_backends(), store.default_ttl, await store.load("s1"))

        asyncio.run(main())
        """
    )
    result = _run(tmp_path, code, "dictstore")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('memory', 'redis', 'broken', 'dictstore') 7200 {'n': 1}"


def test_a_broken_entry_point_is_a_configuration_error(tmp_path: Path) -> None:
    """An entry point that cannot be loaded is named, only when selected."""
    _install_plugin(tmp_path, "def create_store(settings):\n    raise AssertionError\n")
    code = (
        "from valerie.infrastructure import get_session_store, ConfigurationError\n"
        "try:\n    get_session_store()\nexcept ConfigurationError as error:\n    print(error)\n"
    )
    result = _run(tmp_path, code, "broken")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "the store type 'broken' (entry point 'dict_sessions:missing_name' of "
        "valerie.session_store.backends) could not be loaded: AttributeError"
    )
