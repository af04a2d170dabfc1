"""The installed `valerie-sessions` console script, run as a subprocess, and helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(sys.executable).parent / "valerie-sessions"


@dataclass
class Result:
    """What one run of the console script gave."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout as one JSON document."""
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        """stdout as JSON Lines."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


class Cli:
    """Runs the console script with a clean `VALERIE_SESSION_*` environment."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        base = {k: v for k, v in os.environ.items() if not k.upper().startswith("VALERIE_")}
        self.env = {**base, **(env or {})}

    def __call__(
        self, *args: str, input: str | bytes | None = None, env: Mapping[str, str] | None = None
    ) -> Result:
        raw = input.encode() if isinstance(input, str) else input
        done = subprocess.run(
            [str(SCRIPT), *args],
            input=raw,
            capture_output=True,
            env={**self.env, **(env or {})},
            timeout=120,
            check=False,
        )
        return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.fixture(scope="session")
def cli() -> Cli:
    """The console script as `make test` installs it; the run fails if it is not installed."""
    if not SCRIPT.exists():
        pytest.fail(
            f"{SCRIPT} is missing: install the package with its cli extra "
            "(pip install -e '.[dev]', or make .venv/bin/.installed)",
            pytrace=False,
        )
    return Cli()


@pytest.fixture
def prefix() -> str:
    """A prefix of the test's own."""
    return f"cli:{uuid.uuid4().hex[:12]}:"
