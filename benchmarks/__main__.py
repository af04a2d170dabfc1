"""`python -m benchmarks [--quick] [--only SCENARIO ...] [--results-dir DIR]`."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import report
from benchmarks.harness import FULL, QUICK, Context, Section
from benchmarks.scenarios import SCENARIOS
from benchmarks.servers import (
    RedisBenchmarkMissing,
    RedisServerMissing,
    Servers,
    redis_benchmark_version,
    server_version,
)
from benchmarks.targets import TARGETS, evaluate
from benchmarks.workload import make_state


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Throughput, scaling and memory of valerie's session stores, against raw "
        "redis-py and peers. Starts its own redis-server; run it from the repository's root.",
        epilog="scenarios: "
        + "; ".join(f"{name}: {scenario.summary}" for name, scenario in SCENARIOS.items()),
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: a few short rounds, figures not citable"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(SCENARIOS),
        metavar="SCENARIO",
        help=f"run only these scenarios (of: {', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=report.RESULTS_DIR,
        metavar="DIR",
        help="where the results file goes (default: benchmarks/results)",
    )
    return parser.parse_args(argv)


async def run(arguments: argparse.Namespace, command: str) -> Path:
    """Run the chosen scenarios, print the report, write the results file; return its path."""
    started = datetime.datetime.now(datetime.UTC)
    mode = QUICK if arguments.quick else FULL
    chosen = [SCENARIOS[name] for name in SCENARIOS if not arguments.only or name in arguments.only]
    state = make_state()
    versions = {"redis-server": server_version(), "redis-benchmark": redis_benchmark_version()}
    env = report.environment(state, versions)
    report.print_environment(command, mode, env)
    sections: dict[str, Section] = {}
    with Servers() as servers:
        context = Context(mode, state, servers)
        for scenario in chosen:
            section = await scenario.run(context)
            sections[scenario.name] = section
            report.print_section(section)
    verdicts = evaluate(TARGETS, sections)
    report.print_targets(verdicts)
    document = report.results(command, mode, started, env, list(sections.values()), verdicts)
    path = report.write_results(arguments.results_dir, document, started, mode)
    print(f"\nResults written to {path}")
    print(f"Command: {command}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark.

    Returns:
        The process exit code: 0 whether or not the targets are met (a target missed is a
        finding, not a failure); an error in a scenario ends the run with a traceback.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Progress goes to stderr: line buffering keeps the two in order when piped.
        sys.stdout.reconfigure(line_buffering=True)
    command = shlex.join(["python", "-m", "benchmarks", *arguments])
    parsed = parse(arguments)
    try:
        asyncio.run(run(parsed, command))
    except (RedisServerMissing, RedisBenchmarkMissing) as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
