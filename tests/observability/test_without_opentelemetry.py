"""Without the `otel` extra the store imports and works, and never loads OpenTelemetry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import valerie

SOURCE = Path(valerie.__file__).resolve().parent.parent

SCRIPT = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
try:
    import opentelemetry
except ImportError:
    pass
else:
    raise SystemExit("this Python has opentelemetry: the test proves nothing")
import valerie.infrastructure as infra
from valerie.infrastructure.session_store import telemetry
from valerie.infrastructure.session_store.telemetry import RedisInfoSampler

async def main():
    async with infra.InMemorySessionStore() as store:
        await store.save("s", {"n": 1})
        await store.update("s", lambda state: {"n": state["n"] + 1})
        assert await store.load("s") == {"n": 2}
    try:
        from valerie.infrastructure.session_store.telemetry.otel import OpenTelemetryObserver
        OpenTelemetryObserver()
    except infra.MissingDependencyError as error:
        print(error)
    async def info():
        return {}
    try:
        RedisInfoSampler(info)
    except infra.MissingDependencyError as error:
        print(error)
    print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))

asyncio.run(main())
"""


def test_without_opentelemetry_the_store_works_and_says_how_to_install_the_extra() -> None:
    """A Python without site-packages (so no opentelemetry, no redis-py): the store imports,
    works, loads no OpenTelemetry module, and the observer and the sampler name the extra."""
    result = subprocess.run(
        [sys.executable, "-S", "-c", SCRIPT, str(SOURCE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert "pip install 'valerie[otel]'" in lines[0]
    assert "pip install 'valerie[otel]'" in lines[1]
    assert lines[2] == "[]"


def test_a_store_without_observers_never_imports_opentelemetry_even_when_installed() -> None:
    """Telemetry costs nothing unless asked for: the package and a store in use load no
    OpenTelemetry module, though it is installed here."""
    script = """
import asyncio, sys
import opentelemetry  # installed: the check below would see it if anything imported it
del sys.modules["opentelemetry"]
import valerie.infrastructure as infra
from valerie.infrastructure.session_store import telemetry

async def main():
    async with infra.InMemorySessionStore() as store:
        await store.save("s", {"n": 1})
        await store.load("s")

asyncio.run(main())
print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
