"""The benchmark cannot rot: its smoke mode runs end to end in `make test`; its harness is right.

`make test` has no bench venv: the peers (Litestar, aiocache) are skipped there, and the run
must say so; valerie's stores and the raw redis-py client must run.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

import pytest

from benchmarks.contestants import (
    AIOCACHE_MEMORY,
    AIOCACHE_REDIS,
    LITESTAR_MEMORY,
    LITESTAR_REDIS,
    RAW,
    RAW_ORJSON,
    VALERIE_MEMORY,
    VALERIE_REDIS,
    VALERIE_REDIS_UNPIPELINED,
)
from benchmarks.harness import QUICK, Cell, Section, interleaved_rates, summarize
from benchmarks.scenarios.throughput import CEILING, OPERATIONS, sockets_figure
from benchmarks.targets import Ratio, Target, Value, check
from tests.support.paths import REPO

CONCURRENCIES = {"redis": (1, 64, 256), "memory": (1, 64)}
PEERS = {
    LITESTAR_REDIS: "litestar",
    LITESTAR_MEMORY: "litestar",
    AIOCACHE_REDIS: "aiocache",
    AIOCACHE_MEMORY: "aiocache",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """`python -m benchmarks --quick --only throughput`, run once: its stdout and results file."""
    results_dir = tmp_path_factory.mktemp("results")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "throughput",
         "--results-dir", str(results_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    [path] = results_dir.glob("*-quick.json")
    assert f"Results written to {path}" in completed.stdout
    return completed.stdout, json.loads(path.read_text())


@pytest.mark.redis
@pytest.mark.slow
def test_quick_throughput_measures_every_cell_of_the_installed_contestants(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    stdout, results = quick_run
    cells = {
        (cell["contestant"], cell["operation"], cell["tasks"]): cell
        for cell in results["scenarios"]["throughput"]["cells"]
    }
    contestants = {RAW: "redis", RAW_ORJSON: "redis", VALERIE_REDIS: "redis"}
    contestants[VALERIE_REDIS_UNPIPELINED] = "redis"
    contestants[VALERIE_MEMORY] = "memory"
    for peer, module in PEERS.items():
        if importlib.util.find_spec(module) is None:
            assert f"{peer}: skipped, {module}" in stdout
            assert not any(key[0] == peer for key in cells)
        else:
            contestants[peer] = "redis" if "Redis" in peer else "memory"
    for name, backend in contestants.items():
        for kind in OPERATIONS:
            for tasks in CONCURRENCIES[backend]:
                cell = cells.pop((name, kind, tasks))
                assert len(cell["samples"]) == QUICK.rounds
                assert all(rate > 0 for rate in cell["samples"])
                if backend == "redis" or LITESTAR_MEMORY in contestants:
                    assert cell["ratios"]["vs baseline"]["median"] > 0
                else:  # its baseline, Litestar's MemoryStore, is not installed
                    assert "vs baseline" not in cell["ratios"]
    for kind in OPERATIONS:
        for tasks in CONCURRENCIES["redis"]:
            ceiling = cells.pop((CEILING, kind, tasks))
            assert all(rate > 0 for rate in ceiling["samples"])
    assert cells == {}, f"unexpected cells: {sorted(cells)}"


@pytest.mark.redis
@pytest.mark.slow
def test_quick_run_counts_sockets_and_records_how_it_ran(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    stdout, results = quick_run
    figures = results["scenarios"]["throughput"]["figures"]
    # The raw client opens one connection per task; valerie's store, pipelined, at most 8.
    assert figures[sockets_figure(RAW)]["value"] == 256
    assert 0 < figures[sockets_figure(VALERIE_REDIS)]["value"] <= 8
    assert "QUICK SMOKE RUN" in results["note"]
    assert results["command"].startswith("python -m benchmarks --quick --only throughput")
    assert f"command: {results['command']}" in stdout
    environment = results["environment"]
    assert environment["cpus"] >= 1
    assert environment["redis-server"][0].isdigit()
    assert environment["packages"]["redis"]
    verdicts = {(target["description"], target["source"]): target for target in results["targets"]}
    seed = verdicts["Redis store / raw redis.asyncio + json, save, 64 tasks", "seed"]
    assert seed["met"] == (seed["figure"] >= 1.1)
    pipelining = verdicts["Redis store / the store without pipelining, save, 1 task", "issue 13"]
    assert pipelining["met"] == (pipelining["figure"] >= 0.95)
    assert all(target["measure"]["scenario"] == "throughput" for target in results["targets"])


async def test_interleaving_rotates_the_order_every_piece_and_round() -> None:
    order: list[str] = []

    def runner(name: str) -> Any:
        async def run(seconds: float) -> tuple[int, float]:
            order.append(name)
            return 10, 0.5

        return run

    rates = await interleaved_rates({key: runner(key) for key in "abc"}, 1.0, 3, number=1)
    assert order == ["b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert rates == {"a": 20.0, "b": 20.0, "c": 20.0}


def test_ratios_are_paired_round_by_round_and_targets_read_their_median() -> None:
    mine, theirs = Cell("mine", "save", 1), Cell("theirs", "save", 1)
    # Round 2 is slow for both and round 3 for mine only: paired, the median ratio is 2.0;
    # the ratio of the medians (150 / 100) would say 1.5.
    samples = {mine: [200.0, 20.0, 150.0], theirs: [100.0, 10.0, 300.0]}
    cells = summarize(samples, "ops/s", lambda cell: {"vs": theirs})
    assert cells[mine].ratios["vs"].rounds == [2.0, 2.0, 0.5]
    assert cells[mine].ratios["vs"].median == 2.0
    section = Section("s", "title", cells=cells)
    verdict = check(Target("t", Ratio("s", mine, theirs), "test", floor=1.9), section)
    assert (verdict.figure, verdict.met) == (2.0, True)
    assert verdict.detail == "rounds 0.50-2.00, 2 of 3 met"
    higher = check(Target("t", Ratio("s", mine, theirs), "test", floor=2.1), section)
    assert higher.met is False


def test_a_target_whose_cells_or_figure_are_missing_is_not_measured_never_met() -> None:
    mine = Cell("mine", "save", 1)
    section = Section("s", "title", cells=summarize({mine: [1.0]}, "ops/s"))
    missing_peer = Target("t", Ratio("s", mine, Cell("peer", "save", 1)), "test", floor=0)
    missing_figure = Target("t", Value("s", "sockets"), "test", ceiling=8)
    for target in (missing_peer, missing_figure):
        verdict = check(target, section)
        assert (verdict.figure, verdict.met) == (None, None)
        assert verdict.detail.startswith("not measured")
