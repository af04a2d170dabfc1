"""Moving sessions in bulk: export, import (JSON Lines, streamed) and clear."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import click

from valerie.infrastructure import (
    ABSENT,
    InvalidArgumentError,
    SessionStore,
    VersionConflictError,
)

from . import jsonl
from .errors import CommandFailure
from .exit_codes import ExitCode
from .output import emit_json, json_option, progress, stderr
from .paging import PAGE, Unreadable, loaded, take, unreadable_failure
from .runner import run
from .settings import Target, open_store, resolve, store_options

IMPORT_BATCH = 200
"""Lines read, checked and written at a time."""

IMPORT_CONCURRENCY = 32
"""Writes in flight at once during an import (the store's pool holds 64 connections)."""

SHOWN_ERRORS = 10
"""Refused import lines described one by one; the rest are counted."""


def _where(target: Target) -> str:
    if not target.is_redis:
        return "the demo store"
    settings = target.settings
    return f"prefix {settings.prefix!r} at {settings.redis_url}"


@click.command("export")
@click.option("--match", metavar="GLOB", help="Only ids matching this pattern.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted export into --output: keep its complete lines, skip their "
    "ids, append the rest.",
)
@store_options
def export(
    match: str | None,
    output: Path | None,
    resume: bool,
    url: str | None,
    prefix: str | None,
    demo: bool,
) -> None:
    """Write sessions as JSON Lines with their remaining TTL (`export > sessions.jsonl`)."""
    if resume and output is None:
        raise click.UsageError("--resume continues a file: give it with --output")
    done: set[str] = set()
    if output is not None and output.exists() and output.stat().st_size:
        if not resume:
            raise click.UsageError(
                f"{output} exists; add --resume to continue that export, or remove it"
            )
        done = _complete_ids(output)
    target = resolve(url, prefix, demo)
    stream: IO[bytes] = sys.stdout.buffer if output is None else output.open("ab")

    async def main() -> tuple[int, list[str]]:
        written, unreadable = 0, []
        async with open_store(target) as store:
            with progress("exporting") as ticker:
                ids = store.iter_ids(match)
                while page := [i async for i in take(ids, PAGE)]:
                    page = [i for i in page if i not in done]
                    found = await loaded(store, page) if page else []
                    now = jsonl.utc_now()
                    lines = []
                    for session_id, item in found:
                        if isinstance(item, Unreadable):
                            unreadable.append(session_id)
                        else:
                            lines.append(jsonl.line(session_id, item.state, item.ttl_ms, now))
                    stream.write("".join(line + "\n" for line in lines).encode())
                    stream.flush()
                    written += len(lines)
                    ticker.advance(len(lines))
        return written, unreadable

    try:
        written, unreadable = run(main())
    finally:
        if output is not None:
            stream.close()
    resumed = f" (after {len(done)} already in {output})" if done else ""
    console = stderr()
    console.print(f"exported {written} sessions from {_where(target)}{resumed}", markup=False)
    if unreadable:
        shown = ", ".join(unreadable[:SHOWN_ERRORS]) + (", ..." if len(unreadable) > 10 else "")
        console.print(f"not exported, no session: {shown}", markup=False)
        raise unreadable_failure(len(unreadable))


def _complete_ids(path: Path) -> set[str]:
    """The ids of the complete lines of an export; a cut last line is dropped from the file."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with path.open("r+b") as file:
            file.truncate(end)
    ids: set[str] = set()
    now = jsonl.utc_now()
    for number, text in enumerate(data[:end].decode().splitlines(), start=1):
        try:
            ids.add(jsonl.parse(text, now, restart_ttl=True).session_id)
        except ValueError as error:
            raise CommandFailure(
                f"{path} line {number} is not an export line ({error}); it cannot be resumed",
                ExitCode.DATA,
            ) from None
    return ids


@dataclass
class ImportReport:
    """What an import did, line by line."""

    imported: int = 0
    existing: int = 0
    expired: int = 0
    refused: int = 0
    reasons: list[str] = field(default_factory=list)

    def refuse(self, number: int, reason: str) -> None:
        """Count line `number` as refused, and keep its reason if few are kept yet."""
        self.refused += 1
        if len(self.reasons) < SHOWN_ERRORS:
            self.reasons.append(f"line {number}: {reason}")


@click.command("import")
@click.option(
    "-i",
    "--input",
    "source",
    type=click.File("rb"),
    default="-",
    help="Read this file instead of stdin.",
)
@click.option("--overwrite", is_flag=True, help="Replace sessions that exist already.")
@click.option(
    "--restart-ttl",
    is_flag=True,
    help="Give each session the TTL it had left at export, from now (default: it expires "
    "when it would have).",
)
@json_option
@store_options
def import_(
    source: IO[bytes],
    overwrite: bool,
    restart_ttl: bool,
    as_json: bool,
    url: str | None,
    prefix: str | None,
    demo: bool,
) -> None:
    """Read sessions from an export (`import < sessions.jsonl`); existing ones are kept.

    Without --overwrite a session that exists is left as it is (so an interrupted import can
    simply be run again). Lines that are not sessions are refused, described, and the others
    imported; the exit code is then 7.
    """
    target = resolve(url, prefix, demo)
    report = ImportReport()

    async def main() -> None:
        async with open_store(target) as store:
            gate = asyncio.Semaphore(IMPORT_CONCURRENCY)
            with progress("importing") as ticker:
                async for batch in _batches(source):
                    now = jsonl.utc_now()
                    await asyncio.gather(
                        *(
                            _import_line(
                                store, gate, report, number, text, now, overwrite, restart_ttl
                            )
                            for number, text in batch
                        )
                    )
                    ticker.advance(len(batch))

    run(main())
    summary = {
        "imported": report.imported,
        "existing": report.existing,
        "expired": report.expired,
        "refused": report.refused,
    }
    if as_json:
        emit_json({**summary, "reasons": report.reasons})
    else:
        console = stderr()
        console.print(
            f"imported {report.imported} sessions into {_where(target)}; "
            f"{report.existing} existed already and were kept"
            + (" (--overwrite replaces them)" if report.existing else "")
            + f"; {report.expired} had expired; {report.refused} lines refused",
            markup=False,
        )
        for reason in report.reasons:
            console.print(f"  {reason}", markup=False)
    if report.refused:
        raise CommandFailure(f"{report.refused} lines were refused", ExitCode.DATA)


async def _batches(source: IO[bytes]) -> AsyncIterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for number, raw in enumerate(source, start=1):
        if raw.strip():
            batch.append((number, raw.decode("utf-8", errors="replace")))
        if len(batch) == IMPORT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def _import_line(
    store: SessionStore,
    gate: asyncio.Semaphore,
    report: ImportReport,
    number: int,
    text: str,
    now: datetime,
    overwrite: bool,
    restart_ttl: bool,
) -> None:
    try:
        record = jsonl.parse(text, now, restart_ttl=restart_ttl)
    except ValueError as error:
        report.refuse(number, str(error))
        return
    if record.expired:
        report.expired += 1
        return
    async with gate:
        try:
            if overwrite:
                await store.save(record.session_id, record.state, record.ttl_seconds)
            else:
                await store.save(
                    record.session_id, record.state, record.ttl_seconds, if_version=ABSENT
                )
        except VersionConflictError:
            report.existing += 1
            return
        except InvalidArgumentError as error:
            report.refuse(number, str(error))
            return
    report.imported += 1


@click.command("clear")
@click.option("--yes", is_flag=True, help="Really delete; without it, only count.")
@json_option
@store_options
def clear(yes: bool, as_json: bool, url: str | None, prefix: str | None, demo: bool) -> None:
    """Delete every session of this prefix (and of any longer prefix it starts), in batches.

    Without --yes, say how many sessions would be deleted, delete nothing, and exit with 1.
    """
    target = resolve(url, prefix, demo)

    async def main() -> tuple[int, int]:
        async with open_store(target) as store:
            total = await store.count()
            if not yes:
                return total, 0
            deleted = 0
            with progress("deleting", total) as ticker:
                ids = store.iter_ids()
                while page := [i async for i in take(ids, PAGE)]:
                    await store.delete_many(page)
                    deleted += len(page)
                    ticker.advance(len(page))
            # What the walk could not see: sessions saved meanwhile, and leases.
            deleted += await store.clear()
            return total, deleted

    total, deleted = run(main())
    if as_json:
        emit_json({"sessions": total, "deleted": deleted})
    elif not yes:
        stderr().print(
            f"would delete {total} sessions of {_where(target)}; nothing deleted: run again "
            "with --yes to delete them",
            markup=False,
        )
    else:
        stderr().print(f"deleted {deleted} sessions of {_where(target)}", markup=False)
    if not yes:
        raise click.exceptions.Exit(ExitCode.WARNINGS)
