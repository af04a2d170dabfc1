"""`valerie-sessions doctor`: every check, rendered as a table or JSON, and the verdict."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.markup import escape

from .. import errors
from ..errors import CommandFailure
from ..exit_codes import ExitCode
from ..output import emit_json, json_option, stdout
from ..runner import run
from ..settings import Target, resolve, store_options
from .config_checks import configuration_checks
from .findings import Finding, Status, exit_code, passed, warned, worst

_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


async def diagnose(target: Target, limit_ms: float, min_replicas: int) -> list[Finding]:
    """Run every check that applies to the target; read-only."""
    configured = configuration_checks(target.settings)
    if target.demo:
        return [passed("store", "the demo store (memory, sample sessions)"), *configured]
    if not target.is_redis:
        return [
            warned(
                "store",
                "the memory store: per process, so bot processes do not share sessions and a "
                "restart loses them; use Redis (VALERIE_SESSION_STORE=redis) for more than one "
                "process",
            ),
            *configured,
        ]
    try:
        from .diagnosis import diagnose_redis
    except ImportError:
        raise CommandFailure(
            "redis-py is not installed, and checking a Redis server needs it: "
            "pip install 'valerie[redis]'",
            ExitCode.CONFIGURATION,
        ) from None

    return await diagnose_redis(target, limit_ms, min_replicas, configured)


def _render(findings: list[Finding], target: Target) -> None:
    console = stdout()
    settings = target.settings
    if target.demo:
        where = "the demo store"
    elif target.is_redis:
        where = f"{settings.redis_url} prefix {settings.prefix!r}"
    else:
        where = "the memory store"
    console.print(f"doctor: {errors.SCRUB(where)}", markup=False)
    width = max(len(finding.check) for finding in findings)
    for finding in findings:
        status = f"[{_STYLE[finding.status]}]{finding.status.name}[/]"
        message = escape(errors.SCRUB(finding.message))
        console.print(f"{status}  {finding.check:<{width}}  {message}")
    verdict = worst(findings)
    console.print(f"[{_STYLE[verdict]}]{verdict.name}[/] (exit code {exit_code(findings)})")


@click.command("doctor")
@click.option(
    "--max-latency-ms",
    type=click.FloatRange(min=0, min_open=True),
    default=20.0,
    show_default=True,
    help="p99 round trip above which latency warns.",
)
@click.option(
    "--min-replicas",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Replicas the application's store waits for (its min_replicas).",
)
@json_option
@store_options
def doctor(
    max_latency_ms: float,
    min_replicas: int,
    as_json: bool,
    url: str | None,
    prefix: str | None,
    demo: bool,
) -> None:
    """Check the server and configuration for what loses sessions; read-only.

    Each check is PASS, WARN or FAIL with one line on how to fix it. Exit code 0: all passed,
    1: warnings, 2: failures.
    """
    target = resolve(url, prefix, demo)
    started = time.perf_counter()
    findings = run(diagnose(target, max_latency_ms, min_replicas))
    seconds = round(time.perf_counter() - started, 3)
    if as_json:
        document: dict[str, Any] = {
            "status": worst(findings).value,
            "exit_code": int(exit_code(findings)),
            "seconds": seconds,
            "checks": [{**f.as_json(), "message": errors.SCRUB(f.message)} for f in findings],
        }
        emit_json(document)
    else:
        _render(findings, target)
    raise click.exceptions.Exit(int(exit_code(findings)))
