"""The adapters' benchmark cannot rot: its quick mode runs end to end in `make test`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.children import python_env


@pytest.mark.redis
def test_the_adapter_benchmark_runs_every_row_in_quick_mode() -> None:
    """Every operation and concurrency gets a row with a paired ratio."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.adapters", "--quick"],
        env=python_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "x [" in line]
    labels = [line.split(" | ")[0][2:] for line in rows]
    assert labels == [
        "update_data, 1",
        "update_data, 64",
        "get/set turn, 1",
        "get/set turn, 64",
        *(
            f"{operation} on {backend}, {tasks}"
            for backend in ("memory", "Redis")
            for tasks in (1, 64)
            for operation in ("aput", "aget_tuple")
        ),
    ]
    assert result.stdout.startswith("langgraph-checkpoint-redis: ")
