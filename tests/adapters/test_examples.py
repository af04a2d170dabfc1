"""The adapter examples run as documented, on the memory default and on Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.backends import backend_params
from tests.support.children import python_env
from tests.support.redis_server import RedisServer, free_port

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def run(
    example: str, environ: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in python_env().items() if not k.startswith("VALERIE_SESSION_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / example)],
        env={**env, **environ},
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


@pytest.mark.parametrize("backend", backend_params(("memory", "redis")))
def test_the_aiogram_example_books_across_a_restart(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """The bot walks the booking conversation, the last step after its restart."""
    environ: dict[str, str] = {}
    if backend == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        environ = {"VALERIE_SESSION_STORE": "redis", "VALERIE_SESSION_REDIS_URL": server.url}
    output = run("aiogram_bot.py", environ).stdout
    assert ("RedisSessionStore" if backend == "redis" else "InMemorySessionStore") in output
    assert output.endswith("-- the bot restarts --\nuser: two\nbot:  Booked: Lisbon for two.\n")


@pytest.mark.parametrize("backend", backend_params(("memory", "redis")))
def test_the_langgraph_example_resumes_the_thread(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """The second turn, on a newly compiled graph, continues the first one's state."""
    environ: dict[str, str] = {}
    if backend == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        environ = {"VALERIE_SESSION_STORE": "redis", "VALERIE_SESSION_REDIS_URL": server.url}
    output = run("langgraph_agent.py", environ).stdout
    assert "this is turn 2." in output
    assert "turns: 2, checkpoints kept: 8" in output


@pytest.mark.parametrize("example", ["aiogram_bot.py", "langgraph_agent.py"])
def test_with_redis_down_an_example_ends_with_one_clear_line(example: str) -> None:
    """No traceback: one line naming the unreachable server."""
    url = f"redis://127.0.0.1:{free_port()}"
    environ = {"VALERIE_SESSION_STORE": "redis", "VALERIE_SESSION_REDIS_URL": url}
    result = run(example, environ, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "is unavailable" in result.stderr


@pytest.mark.parametrize(("module", "extra"), [("aiogram", "aiogram"), ("langgraph", "langgraph")])
def test_without_the_framework_the_adapter_says_which_extra_to_install(
    module: str, extra: str
) -> None:
    """Importing an adapter without its framework raises MissingDependencyError (an
    ImportError) naming the extra; `import valerie.integrations` needs nothing."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in ('aiogram', 'langgraph', 'langchain_core'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import valerie.integrations\n"
        "from valerie.infrastructure import MissingDependencyError\n"
        "try:\n"
        f"    import valerie.integrations.{module}\n"
        "except MissingDependencyError as error:\n"
        "    assert isinstance(error, ImportError)\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker],
        env=python_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert f"pip install 'valerie[{extra}]'" in result.stdout
    assert os.linesep not in result.stdout.strip()
