"""Printing: data to stdout (JSON when asked), messages and progress to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
"""`--json` for a command whose output is data."""

PIPED_WIDTH = 4096
"""Columns when not on a terminal: a line of a table is never cut for a reader like grep."""


def stdout() -> Console:
    """A console on stdout: colours and styles only on a terminal."""
    return Console(highlight=False, soft_wrap=True, width=_width(sys.stdout))


def stderr() -> Console:
    """A console on stderr, for messages beside the data."""
    return Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr))


def _width(stream: Any) -> int | None:
    return None if stream.isatty() else PIPED_WIDTH


def emit_json(value: Any) -> None:
    """Print one value as one line of JSON on stdout."""
    click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def human_size(size: int) -> str:
    """`1536` -> `1.5 KiB`, `16384` -> `16 KiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            if unit == "B":
                return f"{size} B"
            return f"{value:.0f} {unit}" if value.is_integer() else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(milliseconds: int) -> str:
    """`3599000` -> `59m 59s`; -1 (a key without expiry) -> `never`."""
    if milliseconds < 0:
        return "never"
    seconds = -(-milliseconds // 1000)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value]
    return " ".join(shown[:2]) or "0s"


class Ticker:
    """Advances a progress bar, or does nothing when there is none."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: int) -> None:
        """Count `amount` more items done."""
        if self._progress is not None:
            self._progress.advance(self._task, amount)


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Ticker]:
    """A progress bar on stderr when it is a terminal; none when piped or redirected."""
    if not sys.stderr.isatty():
        yield Ticker(None, None)
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns.append(BarColumn())
    columns += [MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=stderr(), transient=True) as bar:
        yield Ticker(bar, bar.add_task(description, total=total))
