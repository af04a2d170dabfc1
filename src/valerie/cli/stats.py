"""`stats`: how many sessions, how big, how long they have left, drawn in the terminal."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

import click

from .output import emit_json, human_duration, human_size, json_option, stdout
from .paging import Unreadable, described, unreadable_failure
from .runner import run
from .settings import open_store, resolve, store_options

SIZE_EDGES = (256, 1024, 4096, 16384, 65536, 262144, 1048576)
"""Upper bounds (bytes, inclusive) of the size buckets; a last one holds the rest."""

TTL_EDGES = (60_000, 600_000, 3_600_000, 21_600_000, 86_400_000, 604_800_000)
"""Upper bounds (milliseconds left, inclusive) of the TTL buckets; a last one holds the rest."""

LARGEST = 5
BAR_WIDTH = 40


@dataclass
class Histogram:
    """Counts of values per bucket, with one label per bucket."""

    edges: tuple[int, ...]
    labels: list[str]
    counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.edges) + 1)

    def add(self, value: int) -> None:
        """Count `value` in its bucket."""
        self.counts[bisect_left(self.edges, value)] += 1

    def as_json(self) -> list[dict[str, Any]]:
        """Each bucket's label, upper bound (None for the last) and count."""
        bounds: list[int | None] = [*self.edges, None]
        return [
            {"bucket": label, "up_to": bound, "count": count}
            for label, bound, count in zip(self.labels, bounds, self.counts, strict=True)
        ]


def _labels(edges: tuple[int, ...], show: Any) -> list[str]:
    return [f"≤ {show(edge)}" for edge in edges] + [f"> {show(edges[-1])}"]


@dataclass
class Statistics:
    """What `stats` gathers in one walk of the store, in bounded memory."""

    count: int = 0
    total: int = 0
    never_expire: int = 0
    unreadable: int = 0
    largest: list[tuple[int, str]] = field(default_factory=list)  # a min-heap of (size, id)
    sizes: Histogram = field(
        default_factory=lambda: Histogram(SIZE_EDGES, _labels(SIZE_EDGES, human_size))
    )
    ttls: Histogram = field(
        default_factory=lambda: Histogram(TTL_EDGES, _labels(TTL_EDGES, human_duration))
    )

    def add(self, session_id: str, size: int, ttl_ms: int) -> None:
        """Count one session."""
        self.count += 1
        self.total += size
        self.sizes.add(size)
        if ttl_ms < 0:
            self.never_expire += 1
        else:
            self.ttls.add(ttl_ms)
        if len(self.largest) < LARGEST:
            heapq.heappush(self.largest, (size, session_id))
        else:
            heapq.heappushpop(self.largest, (size, session_id))

    def as_json(self) -> dict[str, Any]:
        """Everything gathered, for `--json`."""
        return {
            "count": self.count,
            "total_bytes": self.total,
            "largest": [{"id": i, "size": s} for s, i in sorted(self.largest, reverse=True)],
            "sizes": self.sizes.as_json(),
            "ttls": self.ttls.as_json(),
            "without_expiry": self.never_expire,
            "unreadable": self.unreadable,
        }


def _chart(title: str, histogram: Histogram) -> list[str]:
    """The histogram as lines of text: label, bar, count (no trailing spaces)."""
    most = max(histogram.counts) or 1
    width = max(len(label) for label in histogram.labels)
    lines = [title]
    for label, count in zip(histogram.labels, histogram.counts, strict=True):
        bar = "█" * round(BAR_WIDTH * count / most) if count else ""
        lines.append(f"  {label:>{width}}  [cyan]{bar:<{BAR_WIDTH}}[/cyan]  {count}")
    return lines


@click.command("stats")
@click.option("--match", metavar="GLOB", help="Only ids matching this pattern.")
@json_option
@store_options
def stats(
    match: str | None, as_json: bool, url: str | None, prefix: str | None, demo: bool
) -> None:
    """Count sessions, total and largest sizes, and histograms of size and TTL left."""
    target = resolve(url, prefix, demo)
    gathered = Statistics()

    async def main() -> None:
        async with open_store(target) as store:
            async for page in described(store, match):
                for session_id, info in page:
                    if isinstance(info, Unreadable):
                        gathered.unreadable += 1
                    else:
                        gathered.add(session_id, info.size, info.ttl_ms)

    run(main())
    if as_json:
        emit_json(gathered.as_json())
    else:
        _draw(gathered)
    if gathered.unreadable:
        raise unreadable_failure(gathered.unreadable)


def _draw(gathered: Statistics) -> None:
    console = stdout()
    average = gathered.total // gathered.count if gathered.count else 0
    console.print(
        f"[bold]{gathered.count}[/bold] sessions, {human_size(gathered.total)} in all, "
        f"{human_size(average)} on average"
    )
    if gathered.largest:
        largest = ", ".join(
            f"{session_id} ({human_size(size)})"
            for size, session_id in sorted(gathered.largest, reverse=True)
        )
        console.print(f"largest: {largest}", markup=False)
    for line in [*_chart("Size", gathered.sizes), *_chart("TTL left", gathered.ttls)]:
        console.print(line)
    if gathered.never_expire:
        console.print(f"{gathered.never_expire} keys without expiry (not written by a store)")
