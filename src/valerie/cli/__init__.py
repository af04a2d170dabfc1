"""`valerie-sessions`: the operator's command line over a session store.

Inspect, export, import and clear sessions, and `doctor`, which finds the server settings that
lose sessions. Needs the `cli` extra (Click and rich) and, for Redis, the `redis` extra.
"""

from __future__ import annotations

import sys

CLI_EXTRA = ("click", "rich")
MISSING_EXTRA = 4  # ExitCode.CONFIGURATION, which cannot be imported without the extra


def main() -> None:
    """Run the command line; without the `cli` extra, say how to install it (exit code 4)."""
    try:
        from .main import main as run
    except ModuleNotFoundError as missing:
        package = (missing.name or "").split(".")[0]
        if package not in CLI_EXTRA:
            raise
        sys.stderr.write(
            f"error: valerie-sessions needs {package}, which is not installed: "
            "pip install 'valerie[cli]'\n"
        )
        raise SystemExit(MISSING_EXTRA) from None
    run()
