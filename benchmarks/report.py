"""The printed report and the JSON results file.

Every run writes `benchmarks/results/<UTC date>-<mode>.json` (another `--results-dir` if asked;
a second run on the same day gets `-2`, `-3`... rather than overwriting a file a README may
cite): the command line, the environment (CPUs, Python, redis-server, package versions, the
commit), and for every scenario every cell's samples, median, spread and paired ratios, its
single figures, and every target met, missed or not measured.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Cell, CellStats, Mode, RatioStats, Section, Table
from benchmarks.workload import SESSION_COUNT, State, session_id
from valerie.infrastructure.session_store import StateCodec

if TYPE_CHECKING:
    from benchmarks.targets import Verdict

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("valerie", "redis", "orjson", "msgspec", "litestar", "aiocache")
QUICK_NOTE = (
    "QUICK SMOKE RUN: a few short rounds to check that the benchmark works; its figures are "
    "noise and must not be cited. Cite a full run (`make bench`)."
)


# --- Formatting helpers for the scenarios' tables -------------------------------------------


def rate(stats: CellStats) -> str:
    """The cell's median, e.g. `12,345`."""
    return f"{stats.median:,.0f}"


def spread(stats: CellStats) -> str:
    """The cell's spread over rounds, e.g. `14%`."""
    return f"{stats.spread_percent:.0f}%"


def ratio(stats: RatioStats | None, digits: int = 2) -> tuple[str, str]:
    """The median ratio and its (min-max) over rounds, or `-` when it was not measured."""
    if stats is None:
        return ("-", "")
    return (
        f"{stats.median:.{digits}f}x",
        f"({stats.low:.{digits}f}-{stats.high:.{digits}f})",
    )


# --- Printing -------------------------------------------------------------------------------


def measured(stats: CellStats, label: str, digits: int = 2) -> tuple[str, ...]:
    """The cell's rate, spread, and its `label` ratio with (min-max): a table row's tail."""
    return (rate(stats), spread(stats), *ratio(stats.ratios.get(label), digits))


def format_table(table: Table) -> list[str]:
    """Return the table's lines, columns padded to their widest cell."""
    rows = [table.header, *table.rows]
    widths = [max(len(row[i]) for row in rows if len(row) > i) for i in range(len(table.header))]
    lines = [f"\n{table.title}"] if table.title else []
    for row in rows:
        if not row:
            lines.append("")
            continue
        cells = [
            cell.ljust(widths[i]) if i < table.left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  " + " ".join(cells).rstrip())
    return lines


def print_section(section: Section) -> None:
    """Print a scenario's heading, notes, skipped contestants and tables."""
    print(f"\n== {section.title}")
    for note in section.notes:
        print(f"   {note}")
    for skipped in section.skipped:
        print(f"   {skipped}")
    spreads = [stats.spread_percent for stats in section.cells.values() if len(stats.samples) > 1]
    if spreads:
        print(
            f"   noise: spread over rounds of this section's cells: median "
            f"{statistics.median(spreads):.0f}%, max {max(spreads):.0f}%"
        )
    for table in section.tables:
        for line in format_table(table):
            print(line)


def print_targets(verdicts: Sequence[Verdict]) -> None:
    """Print each target as PASS, MISS or `----` (not measured) with its figure."""
    print("\n== Targets (the figure is the median over rounds of the paired ratio, or the value)")
    width = max((len(verdict.target.description) for verdict in verdicts), default=0)
    for verdict in verdicts:
        target = verdict.target
        label = {True: "PASS", False: "MISS", None: "----"}[verdict.met]
        if verdict.figure is None:
            figure = "-"
        elif target.unit == "x":
            figure = f"{verdict.figure:.2f}x"
        else:
            figure = f"{verdict.figure:,.0f}"
        detail = f"; {verdict.detail}" if verdict.detail else ""
        print(
            f"  {label}  {target.description:<{width}} {figure:>7}  "
            f"(target {target.goal}, {target.source}{detail})"
        )
    measured = [verdict for verdict in verdicts if verdict.met is not None]
    met = sum(bool(verdict.met) for verdict in measured)
    unmeasured = len(verdicts) - len(measured)
    print(
        f"\n  {met} of {len(measured)} measured targets met"
        + (f"; {unmeasured} not measured" if unmeasured else "")
    )


# --- The environment ------------------------------------------------------------------------


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """The installed version of each package, None where it is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The checkout's commit, with `-dirty` if it has uncommitted changes; None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if status else commit


def environment(state: State, servers: Mapping[str, str]) -> dict[str, Any]:
    """Describe the machine, the versions and the state this run used.

    Args:
        state: The state the scenarios store.
        servers: Versions of `redis-server` and `redis-benchmark`, by name.
    """
    codec = StateCodec()
    json_sizes = {
        "valerie (compact)": len(codec.encode(state)),
        "json.dumps (raw client, aiocache)": len(json.dumps(state).encode()),
    }
    try:
        from litestar.serialization import encode_json

        json_sizes["litestar encode_json (msgspec)"] = len(encode_json(state))
    except ImportError:
        pass
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **servers,
        "packages": package_versions(),
        "commit": git_commit(),
        "valerie codec": codec.name,
        "state JSON bytes": json_sizes,
        "session id": f"{len(session_id(0))} chars, e.g. {session_id(0)}",
        "session ids per contestant": f"{SESSION_COUNT:,}, split evenly between its tasks",
    }


def print_environment(command: str, mode: Mode, env: Mapping[str, Any]) -> None:
    """Print the command line and the environment at the top of the report."""
    print("== valerie session store benchmark")
    print(f"  command: {command}")
    if mode.name == "quick":
        print(f"  {QUICK_NOTE}")
    for key, value in env.items():
        if isinstance(value, Mapping):
            value = ", ".join(
                f"{name} {item if item is not None else '-'}" for name, item in value.items()
            )
        print(f"  {key:<28} {value}")


# --- The results file -----------------------------------------------------------------------


def _cell(cell: Cell) -> dict[str, Any]:
    return asdict(cell)


def _stats(stats: CellStats) -> dict[str, Any]:
    return {
        **_cell(stats.cell),
        "unit": stats.unit,
        "samples": stats.samples,
        "median": stats.median,
        "spread_percent": stats.spread_percent,
        "ratios": {
            label: {
                "baseline": _cell(ratio.baseline),
                "rounds": ratio.rounds,
                "median": ratio.median,
                "min": ratio.low,
                "max": ratio.high,
            }
            for label, ratio in stats.ratios.items()
        },
    }


def results(
    command: str,
    mode: Mode,
    started: datetime.datetime,
    env: Mapping[str, Any],
    sections: Sequence[Section],
    verdicts: Sequence[Verdict],
) -> dict[str, Any]:
    """Everything the run measured, in a form JSON can hold."""
    document: dict[str, Any] = {}
    if mode.name == "quick":
        document["note"] = QUICK_NOTE
    document.update(
        {
            "command": command,
            "mode": asdict(mode),
            "started_utc": started.isoformat(timespec="seconds"),
            "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "environment": env,
            "scenarios": {
                section.scenario: {
                    "title": section.title,
                    "notes": section.notes,
                    "skipped": section.skipped,
                    "cells": [_stats(stats) for stats in section.cells.values()],
                    "figures": {name: asdict(figure) for name, figure in section.figures.items()},
                }
                for section in sections
            },
            "targets": [verdict.as_json() for verdict in verdicts],
        }
    )
    return document


def results_path(directory: Path, started: datetime.datetime, mode: Mode) -> Path:
    """`<directory>/<UTC date>-<mode>.json`, or `...-2.json` and on if that file exists."""
    stem = f"{started:%Y-%m-%d}-{mode.name}"
    path = directory / f"{stem}.json"
    number = 1
    while path.exists():
        number += 1
        path = directory / f"{stem}-{number}.json"
    return path


def write_results(
    directory: Path, document: Mapping[str, Any], started: datetime.datetime, mode: Mode
) -> Path:
    """Write `document` to a new results file in `directory`; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = results_path(directory, started, mode)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
