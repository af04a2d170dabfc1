"""Commands on single sessions and listings: ls, get, ttl, touch, rm."""

from __future__ import annotations

import json
from itertools import islice

import click
from rich.json import JSON
from rich.markup import escape

from .errors import CommandFailure
from .exit_codes import ExitCode
from .output import emit_json, human_duration, human_size, json_option, stdout
from .paging import PAGE, Unreadable, described, read_page, unreadable_failure
from .redact import parse_path, redact
from .runner import run
from .settings import open_store, resolve, store_options

MISSING = "no such session (it does not exist, or has expired)"


@click.command("ls")
@click.option("--match", metavar="GLOB", help="Only ids matching this pattern (* ? [abc]).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Stop after N sessions.")
@json_option
@store_options
def ls(
    match: str | None,
    limit: int | None,
    as_json: bool,
    url: str | None,
    prefix: str | None,
    demo: bool,
) -> None:
    """List session ids with their TTL and size, as the store is walked (SCAN, never KEYS)."""
    target = resolve(url, prefix, demo)
    console = stdout()

    async def main() -> int:
        unreadable = 0
        async with open_store(target) as store:
            if not as_json:
                console.print(f"[bold]{'TTL':>10}  {'SIZE':>10}  ID[/bold]")
            async for page in described(store, match, limit):
                for session_id, info in page:
                    if isinstance(info, Unreadable):
                        unreadable += 1
                        if as_json:
                            emit_json({"id": session_id, "error": info.reason})
                        else:
                            console.print(
                                f"{'?':>10}  {'?':>10}  {escape(session_id)}  [red](no session)[/]"
                            )
                    elif as_json:
                        emit_json({"id": session_id, "ttl_ms": info.ttl_ms, "size": info.size})
                    else:
                        console.print(
                            f"{human_duration(info.ttl_ms):>10}  {human_size(info.size):>10}  "
                            f"{escape(session_id)}"
                        )
        return unreadable

    unreadable = run(main())
    if unreadable:
        raise unreadable_failure(unreadable)


@click.command("get")
@click.argument("session_id", metavar="ID")
@click.option(
    "--redact",
    "paths",
    multiple=True,
    metavar="PATH",
    help="Show *** instead of what PATH reaches: user.email, history.*.content (repeatable).",
)
@json_option
@store_options
def get(
    session_id: str,
    paths: tuple[str, ...],
    as_json: bool,
    url: str | None,
    prefix: str | None,
    demo: bool,
) -> None:
    """Print a session's state, pretty-printed (one line of JSON with --json)."""
    try:
        steps = [parse_path(path) for path in paths]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--redact") from None
    target = resolve(url, prefix, demo)

    async def main() -> None:
        async with open_store(target) as store:
            state = await store.load(session_id)
        if state is None:
            raise CommandFailure(MISSING, ExitCode.NOT_FOUND)
        shown = state
        for path in steps:
            shown = redact(shown, path)
        if as_json:
            emit_json(shown)
        else:
            stdout().print(JSON(json.dumps(shown, ensure_ascii=False)))

    run(main())


@click.command("ttl")
@click.argument("session_id", metavar="ID")
@json_option
@store_options
def ttl(session_id: str, as_json: bool, url: str | None, prefix: str | None, demo: bool) -> None:
    """Print the seconds a session has left."""
    target = resolve(url, prefix, demo)

    async def main() -> None:
        async with open_store(target) as store:
            seconds = await store.ttl(session_id)
        if seconds is None:
            raise CommandFailure(MISSING, ExitCode.NOT_FOUND)
        if as_json:
            emit_json({"ttl": seconds})
        else:
            stdout().print(f"{seconds} s ({human_duration(seconds * 1000)})")

    run(main())


@click.command("touch")
@click.argument("session_id", metavar="ID")
@click.argument("seconds", metavar="[TTL]", required=False, type=click.IntRange(min=1))
@json_option
@store_options
def touch(
    session_id: str,
    seconds: int | None,
    as_json: bool,
    url: str | None,
    prefix: str | None,
    demo: bool,
) -> None:
    """Renew a session's TTL without rewriting it: TTL seconds, or the store's default."""
    target = resolve(url, prefix, demo)

    async def main() -> None:
        async with open_store(target) as store:
            renewed = seconds if seconds is not None else store.default_ttl
            if not await store.touch(session_id, renewed):
                raise CommandFailure(MISSING, ExitCode.NOT_FOUND)
        if as_json:
            emit_json({"ttl": renewed})
        else:
            stdout().print(f"renewed: {renewed} s ({human_duration(renewed * 1000)}) from now")

    run(main())


@click.command("rm")
@click.argument("session_ids", metavar="ID...", nargs=-1, required=True)
@json_option
@store_options
def rm(
    session_ids: tuple[str, ...], as_json: bool, url: str | None, prefix: str | None, demo: bool
) -> None:
    """Delete sessions; one that does not exist is not an error."""
    target = resolve(url, prefix, demo)
    ids = list(dict.fromkeys(session_ids))

    async def main() -> None:
        deleted = 0
        async with open_store(target) as store:
            iterator = iter(ids)
            while page := list(islice(iterator, PAGE)):
                # Counted as read just before: a key that holds no session is deleted too.
                deleted += len(await read_page(store.describe_many, page))
                await store.delete_many(page)
        if as_json:
            emit_json({"deleted": deleted, "missing": len(ids) - deleted})
        else:
            stdout().print(f"deleted {deleted} of {len(ids)} ({len(ids) - deleted} not found)")

    run(main())
