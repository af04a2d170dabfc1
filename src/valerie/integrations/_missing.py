"""What every adapter needs when its framework is missing."""

from __future__ import annotations

from valerie.infrastructure.session_store import MissingDependencyError


def missing(extra: str, package: str) -> MissingDependencyError:
    """Return the error raised when an adapter's framework is not installed."""
    return MissingDependencyError(
        f"valerie.integrations.{extra} needs {package}, which is not installed; "
        f"install it with: pip install 'valerie[{extra}]'"
    )
