"""What a new user reads first: the README's first example, installation and requirements."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest

README = (Path(__file__).parent.parent.parent / "README.md").read_text()


def first_usage_example() -> str:
    """The first Python block of the README's Usage section."""
    usage = README.split("\n## Usage\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", usage, re.S)
    assert match is not None
    return match.group(1)


async def test_the_first_usage_example_keeps_every_concurrent_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run as written (memory default): three concurrent turns of one user, three turns kept.
    A store per message would keep nothing; load-then-save would lose turns."""
    for name in [name for name in os.environ if name.startswith("VALERIE_")]:
        monkeypatch.delenv(name)
    namespace: dict[str, Any] = {}
    exec(compile(first_usage_example(), "README.md", "exec"), namespace)
    await asyncio.gather(*(namespace["handle_message"]("s1", f"m{n}") for n in range(3)))
    state = await namespace["handle_message"]("s1", "last")
    assert state["step"] == 4
    assert sorted(m["content"] for m in state["history"]) == ["last", "m0", "m1", "m2"]
    await namespace["shutdown"]()


def test_the_readme_says_how_to_install_and_what_make_test_needs() -> None:
    """Not on PyPI: install from a checkout; make test needs redis-server, redis-cli, openssl."""
    install = README.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    assert "pip install -e '.[redis]'" in install
    assert "not published" in install
    two_commands = README.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    for tool in ("redis-server", "redis-cli", "openssl"):
        assert f"`{tool}`" in two_commands
