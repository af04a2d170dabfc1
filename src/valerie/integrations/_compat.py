"""What the adapters need from the store's update contract, in one place."""

from __future__ import annotations

from typing import Any

from valerie.infrastructure import session_store
from valerie.infrastructure.session_store import MissingDependencyError

# What an updater returns to delete the session: the core's DELETE sentinel where it has one
# (`None` is refused there), else `None`, which deleted before that sentinel existed.
DELETE_SESSION: Any = getattr(session_store, "DELETE", None)


def missing(extra: str, package: str) -> MissingDependencyError:
    """Return the error raised when an adapter's framework is not installed."""
    return MissingDependencyError(
        f"valerie.integrations.{extra} needs {package}, which is not installed; "
        f"install it with: pip install 'valerie[{extra}]'"
    )
