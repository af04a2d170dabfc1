"""The `valerie-sessions` command group, and `main()`, the console script's entry point."""

from __future__ import annotations

import click

from .doctor.command import doctor
from .errors import CommandFailure
from .exit_codes import ExitCode
from .sessions import get, ls, rm, touch, ttl
from .stats import stats
from .transfer import clear, export, import_

EPILOG = (
    "Configuration: the VALERIE_SESSION_* variables, as the library reads them; --url and "
    "--prefix override them. Exit codes: 0 done, 1 doctor warned (or clear without --yes), "
    "2 doctor failed (or a usage error), 3 no such session, 4 configuration, 5 server "
    "unavailable, 6 access denied, 7 bad data, 8 the server refused a command, 130 interrupted."
)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="valerie", prog_name="valerie-sessions")
def cli() -> None:
    """Inspect, export, import and clear chatbot sessions; `doctor` checks the server."""


for command in (ls, get, ttl, touch, rm, stats, export, import_, clear, doctor):
    cli.add_command(command)


def main() -> None:
    """Run the command line (the `valerie-sessions` console script)."""
    try:
        cli(prog_name="valerie-sessions")
    except CommandFailure as failure:
        failure.show()
        raise SystemExit(failure.code) from None
    except KeyboardInterrupt:  # raised outside a command's own handling
        raise SystemExit(ExitCode.INTERRUPTED) from None
